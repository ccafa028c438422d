"""Pure logic of the zeromq smoke checks: which host serves, endpoints, report parsing, verdicts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from labctl.smoke.base import CheckFailed, CheckSkipped, Context, Result
from labctl.smoke.zeromq import endpoint, parse_reports, req_rep, server_and_client, shared_queue, sync_pub_sub


class CannedRunner:
    """Answers commands from a list of (substring, stdout, exit) rules; records what ran."""

    def __init__(self, rules: list[tuple[str, str, int]]) -> None:
        self.rules = rules
        self.ran: list[tuple[str, str]] = []

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        self.ran.append((host, command))
        for needle, stdout, exited in self.rules:
            if needle in command:
                return Result(command, exited, stdout, "")
        raise AssertionError(f"unexpected command on {host}: {command}")

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        raise AssertionError("no files in unit tests")


def ctx(
    hostvars: dict[str, dict[str, Any]] | None = None, runner: Any = None, hosts: tuple[str, ...] = ("a", "b")
) -> Context:
    addresses = {h: {"lab": f"198.18.61.{10 + i}"} for i, h in enumerate(hosts)}
    hv = {h: {"labctl_address": addresses[h]["lab"]} for h in hosts}
    for h, extra in (hostvars or {}).items():
        hv[h].update(extra)
    return Context("t", {"zeromq": list(hosts)}, addresses, hv, runner or CannedRunner([]))


def test_first_host_serves_by_default() -> None:
    assert server_and_client(ctx()) == ("a", "b")


def test_servers_enabled_moves_the_servers() -> None:
    c = ctx({"a": {"zeromq_servers_enabled": False}, "b": {"zeromq_servers_enabled": "true"}})
    assert server_and_client(c) == ("b", "a")


def test_templated_default_counts_as_unset() -> None:
    c = ctx({"a": {"zeromq_servers_enabled": "{{ inventory_hostname == groups['zeromq'][0] }}"}})
    assert server_and_client(c) == ("a", "b")


def test_single_host_runs_both_ends() -> None:
    assert server_and_client(ctx(hosts=("solo",))) == ("solo", "solo")


def test_no_server_skips() -> None:
    with pytest.raises(CheckSkipped):
        server_and_client(ctx({"a": {"zeromq_servers_enabled": False}}))


def test_endpoint_uses_bind_address_or_reach_for_wildcard() -> None:
    assert endpoint(ctx(), "b", "a", 5555) == "tcp://198.18.61.10:5555"
    wild = ctx({"a": {"zeromq_bind_address": "*"}})
    assert endpoint(wild, "b", "a", "5570") == "tcp://198.18.61.10:5570"
    assert endpoint(wild, "a", "a", 5570) == "tcp://127.0.0.1:5570"


def test_parse_reports_skips_noise() -> None:
    out = 'Traceback-ish line\n{"a": 1}\n{broken\n  {"b": 2}  \n'
    assert parse_reports(Result("x", 0, out, "")) == [{"a": 1}, {"b": 2}]


ACTIVE = ("systemctl is-active", "active\n", 0)


def test_req_rep_fails_when_a_reply_is_missing() -> None:
    bad = json.dumps({"sent": 50, "received": 49, "echoed": 49, "errors": ["request 49: no reply"]})
    with pytest.raises(CheckFailed, match="49/50"):
        req_rep(ctx(runner=CannedRunner([ACTIVE, ("echo_client.py", bad, 1)])))


def test_req_rep_passes_and_runs_the_client_on_the_other_host() -> None:
    runner = CannedRunner([ACTIVE, ("echo_client.py", json.dumps({"received": 50, "echoed": 50, "seconds": 0.01}), 0)])
    assert req_rep(ctx(runner=runner)).startswith("50/50 echoed b -> tcp://198.18.61.10:5555")
    assert [h for h, cmd in runner.ran if "echo_client.py" in cmd] == ["b"]


def test_req_rep_reports_an_inactive_unit() -> None:
    runner = CannedRunner([("systemctl is-active", "failed\n", 3), ("journalctl", "boom", 0)])
    with pytest.raises(CheckFailed, match="labctl-zmq-echo is failed"):
        req_rep(ctx(runner=runner))


def sync_report(received: int, first: int | None, end: bool = True) -> str:
    last = None if first is None else first + received - 1
    return json.dumps({"received": received, "first": first, "last": last, "gaps": 0, "end": end})


def test_sync_pub_sub_needs_every_subscriber_from_seq_zero() -> None:
    good = sync_report(10000, 0)
    runner = CannedRunner([ACTIVE, ("syncsub.py", f"{good}\n{good}\n", 0)])
    assert "2 subscribers" in sync_pub_sub(ctx(runner=runner))
    late = sync_report(9999, 1)
    with pytest.raises(CheckFailed, match="first 1"):
        sync_pub_sub(ctx(runner=CannedRunner([ACTIVE, ("syncsub.py", f"{good}\n{late}\n", 0)])))
    with pytest.raises(CheckFailed, match="1 of 2 subscribers"):
        sync_pub_sub(ctx(runner=CannedRunner([ACTIVE, ("syncsub.py", good, 0)])))


def test_shared_queue_needs_replies_from_several_workers() -> None:
    def client(name: str, workers: dict[str, int]) -> str:
        return json.dumps({"client": name, "replies": 20, "workers": workers, "errors": []})

    spread = client("c1", {"w1": 10, "w2": 10}) + "\n" + client("c2", {"w1": 10, "w2": 10})
    assert "answered by 2 workers" in shared_queue(ctx(runner=CannedRunner([ACTIVE, ("rrclient.py", spread, 0)])))
    one = client("c1", {"w1": 20}) + "\n" + client("c2", {"w1": 20})
    with pytest.raises(CheckFailed, match="replies came from"):
        shared_queue(ctx(runner=CannedRunner([ACTIVE, ("rrclient.py", one, 0)])))
