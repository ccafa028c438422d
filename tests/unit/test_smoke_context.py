"""ctx.fact(host, role): the settings a role resolved on a host, read once, with a clear error when missing."""

from __future__ import annotations

import pytest

from labctl.checks.base import CheckFailed, Context
from tests.unit.conftest import FakeRunner, MakeCtx


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Context:
    return make_ctx({"zeromq": ["a", "b"]}, {"a": {"lab": "198.18.61.10"}, "b": {"lab": "198.18.61.11"}})


def test_fact_is_the_role_s_json_file(ctx: Context, runner: FakeRunner) -> None:
    runner.fact("a", "zeromq", {"echo": {"port": 5555}, "servers": True})
    assert ctx.fact("a", "zeromq") == {"echo": {"port": 5555}, "servers": True}
    assert runner.commands() == ["cat /etc/ansible/facts.d/zeromq.fact"]


def test_fact_is_read_once_per_host_and_role(ctx: Context, runner: FakeRunner) -> None:
    runner.fact("a", "zeromq", {"n": 1}).fact("b", "zeromq", {"n": 2}).fact("a", "swig", {"n": 3})
    for _ in range(3):
        assert [ctx.fact("a", "zeromq")["n"], ctx.fact("b", "zeromq")["n"], ctx.fact("a", "swig")["n"]] == [1, 2, 3]
    assert sorted((h, cmd) for h, cmd, _ in runner.calls) == [
        ("a", "cat /etc/ansible/facts.d/swig.fact"),
        ("a", "cat /etc/ansible/facts.d/zeromq.fact"),
        ("b", "cat /etc/ansible/facts.d/zeromq.fact"),
    ]


def test_missing_fact_says_the_role_has_not_run_and_the_fix(ctx: Context, runner: FakeRunner) -> None:
    runner.fact("a", "zeromq", {"servers": True})
    with pytest.raises(CheckFailed) as err:
        ctx.fact("b", "zeromq")
    assert str(err.value) == (
        "role zeromq has not run on host b (no /etc/ansible/facts.d/zeromq.fact); Fix: labctl provision --name t"
    )
    assert err.value.command == "cat /etc/ansible/facts.d/zeromq.fact"
    assert "No such file" in err.value.output


def test_a_missing_fact_is_not_cached(ctx: Context, runner: FakeRunner) -> None:
    with pytest.raises(CheckFailed):
        ctx.fact("a", "zeromq")
    runner.fact("a", "zeromq", {"servers": True})
    assert ctx.fact("a", "zeromq") == {"servers": True}


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", ""])
def test_a_fact_that_is_not_a_json_object_fails(ctx: Context, runner: FakeRunner, text: str) -> None:
    runner.fact("a", "zeromq", text)
    with pytest.raises(CheckFailed, match=r"a: /etc/ansible/facts.d/zeromq.fact is not a JSON object; Fix"):
        ctx.fact("a", "zeromq")
