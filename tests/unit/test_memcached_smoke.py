"""Pure logic of the memcached smoke checks: parsing client output and proving the key spread."""

from __future__ import annotations

import pytest

from labctl.smoke.base import CheckFailed, CheckSkipped, Context
from labctl.smoke.memcached import Endpoint, _sasl, endpoints, parse_mem_test, parse_memcstat, verify_spread
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
