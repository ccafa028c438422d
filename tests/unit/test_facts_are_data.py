"""Facts are data (issue 21 item 10): what a host reports never chooses where labctl connects. The sdn
controller's REST URL comes from the topology (the host's address) and the role's port, checked."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from labctl.bundles.sdn_controller import checks as sdn_controller
from labctl.bundles.sdn_controller.checks import cli as sdn_cli

from labctl.checks.base import CheckFailed, Context
from labctl.errors import LabError
from tests.unit.conftest import FakeRunner, MakeCtx, lab_host_vars, role_fact

GROUPS = {"sdn_controller": ["sdn"]}
ADDRESSES = {"sdn": {"lab": "198.18.2.13"}}
HOSTILE = "http://169.254.169.254/latest/meta-data/"


def _fact(**changes: Any) -> dict[str, Any]:
    fact = role_fact("sdn_controller", lab_host_vars("sdn", GROUPS, ADDRESSES))
    return {**fact, **changes}


@pytest.fixture
def ctx(runner: FakeRunner, make_ctx: MakeCtx) -> Context:
    return make_ctx(GROUPS, ADDRESSES)


def test_a_hostile_rest_url_fact_changes_nothing_labctl_connects_to(ctx: Context, runner: FakeRunner) -> None:
    runner.fact("sdn", "sdn_controller", _fact(rest_url=HOSTILE, rest_address="169.254.169.254"))
    assert sdn_controller.rest_url(ctx, "sdn") == "http://198.18.2.13:8080"


def test_the_port_comes_from_the_roles_fact_checked(ctx: Context, runner: FakeRunner) -> None:
    runner.fact("sdn", "sdn_controller", _fact(rest_port=8181))
    assert sdn_controller.rest_url(ctx, "sdn") == "http://198.18.2.13:8181"


@pytest.mark.parametrize("port", [0, 65536, -1, "8080", "80@169.254.169.254", True, None, 80.5])
def test_a_port_that_is_not_one_is_refused(ctx: Context, runner: FakeRunner, port: Any) -> None:
    runner.fact("sdn", "sdn_controller", _fact(rest_port=port))
    with pytest.raises(CheckFailed, match=r"rest_port .* is not a TCP port \(1-65535\); Fix: labctl provision"):
        sdn_controller.rest_url(ctx, "sdn")


def test_the_topologys_own_rest_address_is_used(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    ctx = make_ctx(GROUPS, ADDRESSES, {"sdn": {"sdn_controller_rest_address": "198.18.3.13"}})
    runner.fact("sdn", "sdn_controller", _fact(rest_url=HOSTILE))
    assert sdn_controller.rest_url(ctx, "sdn") == "http://198.18.3.13:8080"


def test_labctl_sdn_connects_where_the_topology_says(
    ctx: Context, runner: FakeRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`labctl sdn` (no --url) with a host whose fact names another URL: the client gets the lab's."""
    from labctl.checks import context
    from labctl.lifecycle import find

    runner.fact("sdn", "sdn_controller", _fact(rest_url=HOSTILE))
    monkeypatch.setattr(find, "resolve", lambda _f, _n: ("topo", "state"))
    monkeypatch.setattr(find, "require", lambda _t, _s: "running")
    monkeypatch.setattr(context, "context_for", lambda _lab: ctx)
    runner.close = lambda: None  # type: ignore[method-assign]
    args = argparse.Namespace(url=None, file=None, name="t", host=None)
    assert sdn_cli.api_url(args) == "http://198.18.2.13:8080"
    runner.fact("sdn", "sdn_controller", _fact(rest_port="99999"))
    ctx._facts.clear()
    with pytest.raises(LabError, match="rest_port"):
        sdn_cli.api_url(args)
