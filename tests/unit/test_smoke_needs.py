"""What a check needs and where it runs: the resolver (pure logic), the tool probe, and the runner
skipping a check whose need no host meets (with the reason) instead of failing it."""

from __future__ import annotations

import types
from collections.abc import Iterator

import pytest
from labctl.bundles.memcached import checks as memcached
from labctl.bundles.mongodb import checks as mongodb

from labctl.checks import base, runner
from labctl.checks.base import CheckFailed, CheckSkipped, Context, Need, Result, Tool, command, resolve
from tests.unit.conftest import FakeRunner, MakeCtx

GCC = command("gcc", "build-essential")
MEMCSTAT = command("memcstat", "libmemcached-tools")
CLIENT = Need("client", group="memcached_clients", tools=(MEMCSTAT, GCC), fallback=("memcached", "all"))


def lacking(table: dict[str, set[str]]) -> tuple[base.Probe, list[str]]:
    """A probe answering from {host: names of the tools it has}, and the hosts it was asked about."""
    asked: list[str] = []

    def probe(host: str, tools: tuple[Tool, ...]) -> list[Tool]:
        asked.append(host)
        return [t for t in tools if t.name not in table.get(host, set())]

    return probe, asked


def test_the_client_group_is_used_as_it_is_without_probing() -> None:
    probe, asked = lacking({})
    groups = {"memcached": ["m1"], "memcached_clients": ["c1", "c2"], "all": ["m1", "c1", "c2"]}
    assert resolve(CLIENT, groups, probe) == base.Resolution(("c1", "c2"))
    assert asked == []


def test_without_the_client_group_a_server_with_the_tools_is_picked_first() -> None:
    probe, asked = lacking({"m1": {"memcstat", "gcc"}, "z1": {"memcstat", "gcc"}})
    groups = {"memcached": ["m1"], "zeromq": ["z1"], "all": ["z1", "m1"]}
    assert resolve(CLIENT, groups, probe).hosts == ("m1", "z1")
    assert asked == ["m1", "z1"]


def test_a_host_lacking_one_tool_is_not_used() -> None:
    probe, _ = lacking({"m1": {"memcstat"}, "z1": {"memcstat", "gcc"}})
    groups = {"memcached": ["m1"], "all": ["m1", "z1"]}
    assert resolve(CLIENT, groups, probe).hosts == ("z1",)


def test_no_host_with_the_tools_skips_naming_the_group_to_add_and_what_each_host_lacks() -> None:
    probe, _ = lacking({"z1": {"gcc"}})
    groups = {"memcached": ["m1"], "zeromq": ["z1"], "all": ["m1", "z1"]}
    res = resolve(CLIENT, groups, probe)
    assert res.hosts == ()
    assert res.reason == (
        "needs a client host: a host in group memcached_clients (add one) or any lab host with memcstat, gcc "
        "installed; m1 lacks memcstat (libmemcached-tools), gcc (build-essential); "
        "z1 lacks memcstat (libmemcached-tools)"
    )


def test_the_reason_names_three_hosts_and_counts_the_others() -> None:
    probe, _ = lacking({})
    hosts = [f"h{i}" for i in range(1, 7)]
    res = resolve(CLIENT, {"memcached": hosts[:1], "all": hosts}, probe)
    assert "h3 lacks" in res.reason and "h4" not in res.reason
    assert res.reason.endswith("; 3 more host(s) lack them too")


def test_a_group_only_need_skips_without_probing() -> None:
    probe, asked = lacking({})
    need = Need("client", group="mongodb_clients")
    res = resolve(need, {"mongodb": ["db"], "all": ["db"]}, probe)
    assert res == base.Resolution((), "needs a client host: a host in group mongodb_clients (add one)")
    assert asked == []


def test_fallback_groups_keep_their_order_and_list_each_host_once() -> None:
    need = Need("peer", fallback=("b", "a", "all"))
    groups = {"a": ["x", "y"], "b": ["y", "z"], "all": ["w", "x", "y", "z"]}
    assert base.fallback_hosts(need, groups) == ["y", "z", "x", "w"]


def test_away_puts_hosts_of_that_group_last() -> None:
    need = Need("client", fallback=("all",), away="mongrel2")
    groups = {"mongrel2": ["web"], "all": ["web", "ext"]}
    assert base.fallback_hosts(need, groups) == ["ext", "web"]
    assert base.fallback_hosts(need, {"mongrel2": ["web"], "all": ["web"]}) == ["web"]


def test_a_need_without_a_candidate_says_the_lab_has_none() -> None:
    res = resolve(Need("client", fallback=("memcached",)), {"all": ["a"]}, lacking({})[0])
    assert res.reason == "needs a client host: a host in group memcached; the lab has no such host"


def _probe_answers(have: dict[str, set[str]]) -> object:
    """A FakeRunner answer to Context.lacks' probe script: yes/no per tool, in order."""

    def answer(host: str, cmd: str, _stdin: str | None) -> Result:
        tools = [part.split("if (", 1)[1].split(")", 1)[0] for part in cmd.split("; fi")[:-1]]
        lines = ["yes" if any(name in probe for name in have.get(host, set())) else "no" for probe in tools]
        return Result(cmd, 0, "\n".join(lines) + "\n", "")

    return answer


def test_context_probes_each_host_once_for_all_tools(make_ctx: MakeCtx, runner: FakeRunner) -> None:
    runner.on("then echo yes; else echo no", _probe_answers({"m1": {"gcc"}}))  # type: ignore[arg-type]
    ctx = make_ctx({"memcached": ["m1"]}, {"m1": {"lab": "10.0.0.1"}})
    assert ctx.lacks("m1", (MEMCSTAT, GCC)) == [MEMCSTAT]
    assert ctx.lacks("m1", (GCC, MEMCSTAT)) == [MEMCSTAT]
    assert len(runner.commands("m1")) == 1
    assert "command -v memcstat" in runner.commands("m1")[0] and "command -v gcc" in runner.commands("m1")[0]


def test_a_probe_that_does_not_answer_fails_the_check(make_ctx: MakeCtx, runner: FakeRunner) -> None:
    runner.on("then echo yes; else echo no", "", exited=255)
    ctx = make_ctx({"memcached": ["m1"]}, {"m1": {"lab": "10.0.0.1"}})
    with pytest.raises(CheckFailed, match="m1: cannot probe for memcstat"):
        ctx.lacks("m1", (MEMCSTAT,))


def test_pick_skips_with_the_reason(make_ctx: MakeCtx, runner: FakeRunner) -> None:
    runner.on("then echo yes; else echo no", _probe_answers({}))  # type: ignore[arg-type]
    ctx = make_ctx({"memcached": ["m1"]}, {"m1": {"lab": "10.0.0.1"}})
    with pytest.raises(CheckSkipped, match=r"memcached_clients \(add one\)"):
        ctx.pick(CLIENT)


@pytest.fixture
def fake_service(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """One service "svc" (group svc) with a check needing a client and one needing nothing."""
    ran: list[str] = []
    module = types.ModuleType("svc")
    module.SERVICE = "svc"  # type: ignore[attr-defined]
    module.GROUP = "svc"  # type: ignore[attr-defined]
    need = Need("client", group="svc_clients", tools=(GCC,), fallback=("svc",))

    def with_client(ctx: Context) -> str:
        ran.append("with_client")
        return f"from {ctx.pick(need)}"

    def alone(_ctx: Context) -> None:
        ran.append("alone")

    registry = [base.Check("svc", "needs a client", with_client, (need,)), base.Check("svc", "alone", alone)]
    monkeypatch.setattr(base, "_REGISTRY", registry)
    monkeypatch.setattr(runner, "service_modules", lambda: {"svc": module})
    yield ran


def test_runner_skips_an_unmet_need_without_running_the_check(
    fake_service: list[str], make_ctx: MakeCtx, runner: FakeRunner
) -> None:
    runner.on("then echo yes; else echo no", _probe_answers({}))  # type: ignore[arg-type]
    ctx = make_ctx({"svc": ["s1"]}, {"s1": {"lab": "10.0.0.1"}})
    results = runner_results(ctx)
    assert [(r.check, r.status) for r in results] == [("needs a client", "skipped"), ("alone", "passed")]
    assert results[0].message.startswith("needs a client host: a host in group svc_clients (add one)")
    assert results[0].ok and fake_service == ["alone"]


def test_runner_shows_the_host_a_need_picked(fake_service: list[str], make_ctx: MakeCtx, runner: FakeRunner) -> None:
    ctx = make_ctx({"svc": ["s1"], "svc_clients": ["c1"]}, {"s1": {"lab": "10.0.0.1"}, "c1": {"lab": "10.0.0.2"}})
    first = runner_results(ctx)[0]
    assert (first.status, first.message, first.hosts, first.extra) == (
        "passed",
        "from c1",
        ["s1", "c1"],
        {"needs": {"client": "c1"}},
    )


def runner_results(ctx: Context) -> list[base.CheckResult]:
    return runner.run_checks(ctx)


def _needs(module: types.ModuleType) -> dict[str, tuple[Need, ...]]:
    return {c.name: c.needs for c in base.registered() if c.service == module.SERVICE}


def test_every_memcached_client_check_declares_its_client() -> None:
    needs = _needs(memcached)
    assert needs["instances listen on the lab address (and localhost) only, UDP off"] == ()
    client_checks = [name for name, declared in needs.items() if declared]
    assert len(client_checks) == 3
    for name in client_checks:
        (need,) = needs[name]
        assert (need.group, need.fallback) == ("memcached_clients", ("memcached", "all"))
        assert memcached.MEMCSTAT in need.tools


def test_mongodb_c_program_checks_need_a_client_host_pymongo_checks_fall_back() -> None:
    needs = _needs(mongodb)
    assert needs["C driver program builds and fails cleanly without a server"] == (mongodb.C_CLIENT,)
    assert needs["the C program connects, inserts and reads the same documents"] == (mongodb.C_CLIENT,)
    assert mongodb.C_CLIENT.fallback == ()
    assert needs["unauthenticated writes are refused"] == (mongodb.PYMONGO_CLIENT,)
    assert mongodb.PYMONGO_CLIENT.fallback == ("mongodb", "all")


def test_the_table_shows_the_picked_host_and_the_skip_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    from rich.console import Console

    from labctl.ui import views

    console = Console(record=True, width=200)
    monkeypatch.setattr(views, "out", console)
    reason = "needs a client host: a host in group memcached_clients (add one)"
    views.smoke_table(
        [
            base.CheckResult("memcached", "c", ["m1", "dev"], "passed", 0.1, extra={"needs": {"client": "dev"}}),
            base.CheckResult("memcached", "py", ["m1"], "skipped", 0.1, reason),
        ]
    )
    text = console.export_text()
    assert "client: dev" in text and reason in text
    assert "smoke: 1 passed, 0 failed, 1 skipped" in text
