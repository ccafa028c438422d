"""Pure logic of the memcached smoke checks: parsing client output and proving the key spread."""

from __future__ import annotations

from labctl.smoke.base import Context, Result
from labctl.smoke.memcached import Endpoint, endpoints, parse_mem_test, parse_memcstat, verify_spread

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


class NoRunner:
    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        raise AssertionError("no commands in unit tests")

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        raise AssertionError("no files in unit tests")


def ctx(db_vars: dict) -> Context:
    return Context(
        lab="t",
        groups={"memcached": ["db"], "memcached_clients": ["dev"]},
        addresses={"db": {"lab": "198.18.60.10", "other": "198.18.61.10"}, "dev": {"lab": "198.18.60.11"}},
        hostvars={"db": db_vars, "dev": {}},
        runner=NoRunner(),
    )


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


def test_endpoints_default_two_instances_on_first_address() -> None:
    assert [str(e) for e in endpoints(ctx({}))] == ["198.18.60.10:11211", "198.18.60.10:11212"]


def test_endpoints_follow_topology_vars() -> None:
    eps = endpoints(
        ctx(
            {
                "memcached_listen_address": "198.18.61.10",
                "memcached_instances": [{"port": 11300}, {"port": 11301, "listen_address": "198.18.60.10"}],
            }
        )
    )
    assert [str(e) for e in eps] == ["198.18.61.10:11300", "198.18.60.10:11301"]
    # a templated value (not a literal address) falls back to the host's first address
    eps = endpoints(ctx({"memcached_listen_address": "{{ labctl_address }}"}))
    assert eps[0].address == "198.18.60.10"


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
