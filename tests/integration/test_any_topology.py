"""Roles and their checks in a topology unlike the default lab: ONE host carrying every role group that
has a client or second-host need, and no *_clients group (issue 11, item 4).

One real lab, converged once, smoked once: for each role it is at the same time a one-host lab and a
lab without the role's _clients group. Every check must pass or be skipped with a reason that names
what to add; none may fail (before: memcached's checks failed on missing memcstat and gcc).
swig and sdn_controller are one-host labs in their own Molecule scenarios (mol-swig, mol-sdn).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from .conftest import lab_containers, run

pytestmark = pytest.mark.integration

NAME = "atany"
ROLES = ["nat_gateway", "memcached", "mongodb", "mongrel2", "zeromq"]
TOPOLOGY = f"""---
schema: 1
name: {NAME}
networks:
  - {{name: outside, subnet: 198.19.30.0/24}}
  - {{name: inside, subnet: 198.19.31.0/24}}
hosts:
  - {{name: solo, groups: [{", ".join(ROLES)}], networks: [inside, outside]}}
"""


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, dict[tuple[str, str], dict[str, Any]]]]:
    """Converge the lab once (the role defaults must fit it), then the smoke checks as JSON, by (service, check)."""
    tmp = tmp_path_factory.mktemp("anytopo")
    path = tmp / f"{NAME}.yml"
    path.write_text(TOPOLOGY)
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp / "state"))
    try:
        run("up", "-f", str(path), "--no-smoke", env=env)
        res = run("smoke", "-f", str(path), "--json", env=env, check=False)
        checks = {(c["service"], c["check"]): c for c in json.loads(res.stdout)["checks"]}
        yield res.returncode, checks
    finally:
        run("down", "--name", NAME, env=env, check=False)
    assert lab_containers(NAME) == []


def results(checks: dict[tuple[str, str], dict[str, Any]], service: str) -> dict[str, dict[str, Any]]:
    return {name: c for (svc, name), c in checks.items() if svc == service}


def test_no_check_fails_and_smoke_exits_0(smoke: tuple[int, dict[tuple[str, str], dict[str, Any]]]) -> None:
    rc, checks = smoke
    failed = {k: (c["message"], c["output"][-500:]) for k, c in checks.items() if c["status"] == "failed"}
    assert failed == {} and rc == 0
    assert {svc for svc, _ in checks} == {"common", *ROLES}


def test_memcached_client_checks_skip_naming_the_group_to_add_or_run_on_the_server(
    smoke: tuple[int, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    mine = results(smoke[1], "memcached")
    for server_side in (
        "instances listen on the lab address (and localhost) only, UDP off",
        "service memcached status: active while the instances run",
        "the notebook's mem_test2.c builds and runs on the memcached host (localhost)",
    ):
        assert mine.pop(server_side)["status"] == "passed", server_side
    assert len(mine) == 3
    for name, c in mine.items():
        if c["status"] == "passed":  # the memcached host has the client tools (the role may install them)
            assert c["extra"]["needs"] == {"client": "solo"}, name
        else:
            assert c["status"] == "skipped", name
            assert c["message"].startswith("needs a client host: a host in group memcached_clients (add one)"), name
            assert "solo lacks " in c["message"] and "(libmemcached-tools)" in c["message"], name


def test_mongodb_c_program_checks_skip_naming_mongodb_clients(
    smoke: tuple[int, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    mine = results(smoke[1], "mongodb")
    for name in (
        "C driver program builds and fails cleanly without a server",
        "the C program connects, inserts and reads the same documents",
    ):
        assert (mine[name]["status"], mine[name]["message"]) == (
            "skipped",
            "needs a client host: a host in group mongodb_clients (add one)",
        )
    for name in ("unauthenticated writes are refused", "the seed's shell session (insert, find, findOne) via pymongo"):
        c = mine[name]
        # pymongo runs on the server host when the server is installed; without it (no MongoDB
        # repository here) the check is skipped with the role's reason.
        ran_on_server = c["status"] == "passed" and c["extra"]["needs"] == {"client": "solo"}
        skipped = c["status"] == "skipped" and c["message"].startswith(("not installed", "needs a client host"))
        assert ran_on_server or skipped, (name, c["status"], c["message"])


def test_mongrel2_and_zeromq_run_their_clients_on_the_one_host(
    smoke: tuple[int, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    zeromq = results(smoke[1], "zeromq")
    assert zeromq and {c["status"] for c in zeromq.values()} == {"passed"}
    mongrel2 = results(smoke[1], "mongrel2")
    assert mongrel2["handler answers through mongrel2"]["status"] == "passed"
    for name, c in mongrel2.items():
        assert c["status"] == "passed" or (c["status"] == "skipped" and c["message"]), name


def test_nat_gateway_checks_on_the_gateway_pass_the_ones_needing_other_hosts_skip(
    smoke: tuple[int, dict[tuple[str, str], dict[str, Any]]],
) -> None:
    mine = results(smoke[1], "nat_gateway")
    assert mine.pop("forwarding on, rules saved for boot")["status"] == "passed"
    assert mine and {c["status"] for c in mine.values()} == {"skipped"}
    for name, c in mine.items():
        assert c["message"].startswith(("needs an inside host: a host besides solo", "needs an outside host")), name
        assert "(add one)" in c["message"], name
