"""Pure logic of the memcached smoke checks: parsing client output and proving the key spread."""

from __future__ import annotations

import json
from typing import Any

import pytest
from labctl.bundles.memcached.checks import (
    NOTEBOOK_OUTPUT,
    WORKDIR,
    Endpoint,
    _sasl,
    endpoints,
    expected_binds,
    notebook_program,
    parse_mem_test,
    parse_memcstat,
    service_status,
    stats_delta,
    verify_spread,
)

from labctl.checks.base import FACTS_DIR, CheckFailed, CheckSkipped, Context, Result
from tests.unit.conftest import FakeRunner, MakeCtx, lab_host_vars, role_fact

MEMCSTAT = """Server: 198.18.60.10 (11211)
\tpid: 556
\tversion: 1.6.18
\ttotal_items: 7
\tdelete_hits: 3
Server: 198.18.60.10 (11212)
\tpid: 588
\ttotal_items: 0
\tdelete_hits: 0
"""


GROUPS = {"memcached": ["db"], "memcached_clients": ["dev"]}
ADDRESSES = {"db": {"lab": "198.18.60.10", "other": "198.18.61.10"}, "dev": {"lab": "198.18.60.11"}}


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Context:
    return make_ctx(GROUPS, ADDRESSES)


def test_parse_memcstat() -> None:
    stats = parse_memcstat(MEMCSTAT)
    assert set(stats) == {"198.18.60.10:11211", "198.18.60.10:11212"}
    assert stats["198.18.60.10:11211"]["total_items"] == "7"
    assert stats["198.18.60.10:11212"]["pid"] == "588"


def test_parse_mem_test() -> None:
    out = "SERVER 10.0.0.1:11211 108\nSERVER 10.0.0.1:11212 92\nSET 200 0\nFETCH 199 1\nDELETE 200 0\n"
    servers, totals = parse_mem_test(out)
    assert servers == {"10.0.0.1:11211": 108, "10.0.0.1:11212": 92}
    assert totals == {"SET": (200, 0), "FETCH": (199, 1), "DELETE": (200, 0)}


def test_endpoints_are_the_instances_the_role_deployed(ctx: Context, runner: FakeRunner) -> None:
    instances = [{"port": 11300, "listen_address": "198.18.61.10"}, {"port": 11301}]
    host_vars = lab_host_vars("db", GROUPS, ADDRESSES)
    runner.fact("db", "memcached", role_fact("memcached", host_vars, memcached_instances=instances))
    eps = endpoints(ctx)
    assert [str(e) for e in eps] == ["198.18.61.10:11300", "198.18.60.10:11301"]
    assert {e.server for e in eps} == {"db"}


def test_endpoints_need_the_role_on_every_server(ctx: Context) -> None:
    with pytest.raises(CheckFailed, match="role memcached has not run on host db"):
        endpoints(ctx)


def _stats(total: int, deletes: int) -> dict[str, str]:
    return {"pid": "1", "total_items": str(total), "delete_hits": str(deletes)}


EPS = [Endpoint("db", "10.0.0.1", 11211), Endpoint("db", "10.0.0.1", 11212)]
BEFORE = {"10.0.0.1:11211": _stats(5, 1), "10.0.0.1:11212": _stats(0, 0)}


def test_verify_spread_accepts_matching_counters() -> None:
    after = {"10.0.0.1:11211": _stats(113, 109), "10.0.0.1:11212": _stats(92, 92)}
    per_server = {"10.0.0.1:11211": 108, "10.0.0.1:11212": 92}
    assert verify_spread(EPS, per_server, BEFORE, after, 200) == ""


def test_verify_spread_rejects_all_keys_on_one_instance() -> None:
    after = {"10.0.0.1:11211": _stats(205, 201), "10.0.0.1:11212": _stats(0, 0)}
    problem = verify_spread(EPS, {"10.0.0.1:11211": 200, "10.0.0.1:11212": 0}, BEFORE, after, 200)
    assert "11212 got no keys" in problem


def test_verify_spread_rejects_counters_that_disagree_with_the_client() -> None:
    after = {"10.0.0.1:11211": _stats(205, 201), "10.0.0.1:11212": _stats(0, 0)}
    problem = verify_spread(EPS, {"10.0.0.1:11211": 108, "10.0.0.1:11212": 92}, BEFORE, after, 200)
    assert "total_items grew by 200" in problem and "total_items grew by 0" in problem


@pytest.mark.parametrize(
    ("password", "expect"),
    [("S3cret", ("memcached", "S3cret")), ("{{ lookup('env', 'MC_PW') }}", None), (None, None)],
)
def test_sasl_credentials_come_from_the_fact_and_a_literal_password(
    make_ctx: MakeCtx, runner: FakeRunner, password: str | None, expect: tuple[str, str] | None
) -> None:
    hostvars = {"db": {"memcached_sasl_password": password}} if password else {}
    ctx = make_ctx(GROUPS, ADDRESSES, hostvars)
    host_vars = lab_host_vars("db", GROUPS, ADDRESSES)
    runner.fact("db", "memcached", role_fact("memcached", host_vars, memcached_sasl_enabled=True))
    if expect:
        assert _sasl(ctx) == expect
    else:
        with pytest.raises(CheckSkipped, match="memcached_sasl_password is not a literal"):
            _sasl(ctx)


def test_sasl_off_needs_no_password(ctx: Context, runner: FakeRunner) -> None:
    runner.fact("db", "memcached", role_fact("memcached", lab_host_vars("db", GROUPS, ADDRESSES)))
    assert _sasl(ctx) is None


def _binds(ctx: Context, runner: FakeRunner, **role_vars: Any) -> list[set[str]]:
    """The sockets the check expects, from the fact the role writes with these settings."""
    runner.fact("db", "memcached", role_fact("memcached", lab_host_vars("db", GROUPS, ADDRESSES), **role_vars))
    ctx._facts.clear()
    return [expected_binds(ep) for ep in endpoints(ctx)]


def test_expected_binds_add_localhost_unless_already_local(ctx: Context, runner: FakeRunner) -> None:
    assert _binds(ctx, runner) == [
        {"198.18.60.10:11211", "127.0.0.1:11211"},
        {"198.18.60.10:11212", "127.0.0.1:11212"},
    ]
    assert _binds(ctx, runner, memcached_listen_localhost=False) == [{"198.18.60.10:11211"}, {"198.18.60.10:11212"}]
    local = [{"port": 11211, "listen_address": "127.0.0.1"}]
    assert _binds(ctx, runner, memcached_instances=local) == [{"127.0.0.1:11211"}]
    assert expected_binds(Endpoint("db", "10.0.0.1", 11211)) == {"10.0.0.1:11211"}


class NotebookHost:
    """A memcached host as the notebook-program check sees it: localhost instances counting what they get."""

    def __init__(
        self, localhost: bool = True, output: list[str] | None = None, status_rc: int = 0, **role_vars: Any
    ) -> None:
        self.localhost = localhost
        hostvars = lab_host_vars("db", {"memcached": ["db"]}, {"db": {"lab": "198.18.60.10"}})
        self.fact = role_fact("memcached", hostvars, **role_vars)
        self.output = NOTEBOOK_OUTPUT if output is None else output
        self.status_rc = status_rc
        self.runs = 0
        self.commands: list[str] = []
        self.files: dict[str, str] = {}

    def stats(self) -> dict[str, dict[str, str]]:
        if not self.localhost:
            return {ep: {"error": "ConnectionRefusedError: [Errno 111] Connection refused"} for ep in LOCAL}
        # key1 and key3 on 11211, key2 on 11212 (3 saves + 3 re-sets, 3 hits, 3 deletes in all)
        n = self.runs
        return {
            LOCAL[0]: {"pid": "1", "cmd_set": str(4 * n), "get_hits": str(2 * n), "delete_hits": str(2 * n)},
            LOCAL[1]: {"pid": "2", "cmd_set": str(2 * n), "get_hits": str(n), "delete_hits": str(n)},
        }

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        self.commands.append(command)
        if command == f"cat {FACTS_DIR}/memcached.fact":
            return Result(command, 0, json.dumps(self.fact), "")
        if command.startswith("python3 - "):
            return Result(command, 0, json.dumps(self.stats()), "")
        if command.endswith("./mem_test2"):
            self.runs += 1
            return Result(command, 0, "\n".join(self.output) + "\n", "")
        if command == "command -v service":
            return Result(command, 0, "/usr/sbin/service\n", "")
        if command == "service memcached status":
            active = "active (exited)" if self.status_rc == 0 else "inactive (dead)"
            return Result(command, self.status_rc, f"● memcached.service\n     Active: {active}\n", "")
        if command.startswith("systemctl is-active memcached@"):
            return Result(command, 0, "active\n", "")
        if command.startswith("systemctl show -p Wants"):
            return Result(command, 0, "memcached@11212.service memcached@11211.service\n", "")
        return Result(command, 0, "", "")

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        self.files[path] = text


LOCAL = ["127.0.0.1:11211", "127.0.0.1:11212"]


def notebook_ctx(host: NotebookHost) -> Context:
    return Context(
        lab="t",
        groups={"memcached": ["db"]},
        addresses={"db": {"lab": "198.18.60.10"}},
        hostvars={"db": {}},
        runner=host,
    )


def test_notebook_program_builds_with_the_notebooks_line_and_counts_on_localhost() -> None:
    host = NotebookHost()
    message = notebook_program(notebook_ctx(host))
    assert "db" in message
    assert f"cd {WORKDIR} && gcc -o mem_test2 mem_test2.c -lmemcached -lpthread" in host.commands
    source = host.files[f"{WORKDIR}/mem_test2.c"]
    assert 'memcached_server_list_append(NULL, "localhost", 11211, &rc)' in source
    assert 'memcached_server_list_append(servers, "localhost", 11212, &rc)' in source


def test_notebook_program_fails_without_localhost_instances() -> None:
    """Today's instances listen on the lab address only: nothing answers on localhost."""
    with pytest.raises(CheckFailed, match=r"no memcached answers on 127\.0\.0\.1:11211"):
        notebook_program(notebook_ctx(NotebookHost(localhost=False)))


def test_notebook_program_fails_on_other_output() -> None:
    with pytest.raises(CheckFailed, match="printed something else"):
        notebook_program(notebook_ctx(NotebookHost(output=NOTEBOOK_OUTPUT[:3])))


def test_notebook_program_skips_other_ports() -> None:
    with pytest.raises(CheckSkipped, match="localhost:11211 and :11212"):
        notebook_program(notebook_ctx(NotebookHost(memcached_instances=[{"port": 11300}])))


def test_notebook_program_skips_without_localhost() -> None:
    with pytest.raises(CheckSkipped, match=r"on localhost: \[\] \(memcached_listen_localhost: False\)"):
        notebook_program(notebook_ctx(NotebookHost(memcached_listen_localhost=False)))


def test_stats_delta_sums_instances() -> None:
    before = {"a": {"cmd_set": "1"}, "b": {"cmd_set": "5"}}
    after = {"a": {"cmd_set": "5"}, "b": {"cmd_set": "7"}}
    assert stats_delta(before, after, "cmd_set") == 6


def test_service_status_passes_when_the_group_is_active() -> None:
    host = NotebookHost()
    assert service_status(notebook_ctx(host)) is None
    # it looked at every instance unit, the grouping service and what the service wants
    assert [c for c in host.commands if c.startswith("systemctl is-active")] == [
        "systemctl is-active memcached@11211.service",
        "systemctl is-active memcached@11212.service",
    ]
    assert "service memcached status" in host.commands
    assert "systemctl show -p Wants --value memcached.service" in host.commands


def test_service_status_fails_on_a_dead_memcached_service() -> None:
    with pytest.raises(CheckFailed, match="does not report memcached running"):
        service_status(notebook_ctx(NotebookHost(status_rc=3)))


def test_mem_test2_fetches_may_come_back_in_any_order_but_nothing_else_may_differ() -> None:
    from labctl.bundles.memcached.checks import NOTEBOOK_OUTPUT, same_as_notebook

    out = NOTEBOOK_OUTPUT
    as_served = [*out[:3], out[4], out[5], out[3], *out[6:]]
    assert same_as_notebook(list(NOTEBOOK_OUTPUT)) and same_as_notebook(as_served)
    assert not same_as_notebook(NOTEBOOK_OUTPUT[:-1])
    assert not same_as_notebook([*out[:5], "Fetch key:key3 data:other", *out[6:]])
    assert not same_as_notebook([NOTEBOOK_OUTPUT[1], NOTEBOOK_OUTPUT[0], *NOTEBOOK_OUTPUT[2:]])
