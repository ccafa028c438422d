"""Pure logic of the zeromq smoke checks: which host serves, endpoints, command lines, report parsing, verdicts."""

from __future__ import annotations

import json
import shlex
from typing import Any

import pytest
from labctl.bundles.zeromq.checks import (
    endpoint,
    parse_reports,
    req_rep,
    script,
    server_and_client,
    shared_queue,
    sync_pub_sub,
)

from labctl.checks.base import CheckFailed, CheckSkipped, Context, Result
from tests.unit.conftest import FakeRunner, MakeCtx, lab_host_vars, role_fact

GROUPS = {"zeromq": ["a", "b"]}
ADDRESSES = {"a": {"lab": "198.18.61.10"}, "b": {"lab": "198.18.61.11"}}


def zfact(host: str, **role_vars: Any) -> dict[str, Any]:
    """The fact the zeromq role writes on host (of GROUPS/ADDRESSES) with these role variables."""
    return role_fact("zeromq", lab_host_vars(host, GROUPS, ADDRESSES), **role_vars)


@pytest.fixture
def lab(make_ctx: MakeCtx, runner: FakeRunner) -> Context:
    """Two zeromq hosts as the role leaves them by default."""
    runner.fact("a", "zeromq", zfact("a")).fact("b", "zeromq", zfact("b"))
    return make_ctx(GROUPS, ADDRESSES)


ACTIVE = ("systemctl is-active", "active\n")


def test_the_first_host_serves_by_default(lab: Context) -> None:
    assert server_and_client(lab) == ("a", "b")


def test_the_host_whose_fact_says_servers_serves(lab: Context, runner: FakeRunner) -> None:
    runner.fact("a", "zeromq", zfact("a", zeromq_servers_enabled=False))
    runner.fact("b", "zeromq", zfact("b", zeromq_servers_enabled=True))
    assert server_and_client(lab) == ("b", "a")


def test_single_host_runs_both_ends(make_ctx: MakeCtx, runner: FakeRunner) -> None:
    host_vars = lab_host_vars("solo", {"zeromq": ["solo"]}, {"solo": {"lab": "198.18.61.10"}})
    runner.fact("solo", "zeromq", role_fact("zeromq", host_vars))
    assert server_and_client(make_ctx({"zeromq": ["solo"]}, {"solo": {"lab": "198.18.61.10"}})) == ("solo", "solo")


def test_no_server_skips(lab: Context, runner: FakeRunner) -> None:
    runner.fact("a", "zeromq", zfact("a", zeromq_servers_enabled=False))
    with pytest.raises(CheckSkipped, match="zeromq_servers_enabled is false everywhere"):
        server_and_client(lab)


def test_a_host_without_the_role_fails_with_the_fix(lab: Context, runner: FakeRunner) -> None:
    del runner.facts[("b", "zeromq")]
    with pytest.raises(CheckFailed, match=r"role zeromq has not run on host b .*Fix: labctl provision"):
        server_and_client(lab)


def test_disabled_pattern_skips(lab: Context, runner: FakeRunner) -> None:
    runner.fact("a", "zeromq", zfact("a", zeromq_echo_enabled=False))
    with pytest.raises(CheckSkipped, match="zeromq_echo_enabled is false on a"):
        req_rep(lab)


def test_endpoint_uses_the_bind_address(lab: Context) -> None:
    assert endpoint(lab, "b", "a", 5555) == "tcp://198.18.61.10:5555"


def test_endpoint_of_a_wildcard_bind_is_reached_over_the_lab(lab: Context, runner: FakeRunner) -> None:
    runner.fact("a", "zeromq", zfact("a", zeromq_bind_address="*"))
    assert endpoint(lab, "b", "a", "5570") == "tcp://198.18.61.10:5570"
    assert endpoint(lab, "a", "a", 5570) == "tcp://127.0.0.1:5570"


def test_script_runs_the_installed_file_under_timeout_with_options(lab: Context, runner: FakeRunner) -> None:
    runner.fact("b", "zeromq", zfact("b", zeromq_install_dir="/srv/zmq scripts"))
    cmd = script(lab, "b", "psenvsub.py", 20.5, connect="tcp://x:1", key="", idle_timeout=3)
    assert shlex.split(cmd) == [
        "timeout",
        "20",
        "python3",
        "/srv/zmq scripts/psenvsub.py",
        "--connect",
        "tcp://x:1",
        "--key",
        "",
        "--idle-timeout",
        "3",
    ]


def test_parse_reports_skips_noise() -> None:
    out = 'Traceback-ish line\n{"a": 1}\n{broken\n  {"b": 2}  \n'
    assert parse_reports(Result("x", 0, out, "")) == [{"a": 1}, {"b": 2}]


def test_req_rep_fails_when_a_reply_is_missing(lab: Context, runner: FakeRunner) -> None:
    bad = json.dumps({"sent": 50, "received": 49, "echoed": 49, "errors": ["request 49: no reply"]})
    runner.on(*ACTIVE).on("echo_client.py", bad, exited=1)
    with pytest.raises(CheckFailed, match="49/50"):
        req_rep(lab)


def test_req_rep_passes_and_runs_the_client_on_the_other_host(lab: Context, runner: FakeRunner) -> None:
    runner.on(*ACTIVE).on("echo_client.py", json.dumps({"received": 50, "echoed": 50, "seconds": 0.01}))
    assert req_rep(lab).startswith("50/50 echoed b -> tcp://198.18.61.10:5555")
    assert [h for h, cmd, _ in runner.calls if "echo_client.py" in cmd] == ["b"]


def test_req_rep_reports_an_inactive_unit(lab: Context, runner: FakeRunner) -> None:
    runner.on("systemctl is-active", "failed\n", exited=3).on("journalctl", "boom")
    with pytest.raises(CheckFailed, match="labctl-zmq-echo is failed"):
        req_rep(lab)


def sync_report(received: int, first: int | None, end: bool = True) -> str:
    last = None if first is None else first + received - 1
    return json.dumps({"received": received, "first": first, "last": last, "gaps": 0, "end": end})


GOOD = sync_report(10000, 0)


def test_sync_pub_sub_passes_when_every_subscriber_gets_all_from_seq_zero(lab: Context, runner: FakeRunner) -> None:
    runner.on(*ACTIVE).on("syncsub.py", f"{GOOD}\n{GOOD}\n")
    assert "2 subscribers" in sync_pub_sub(lab)


@pytest.mark.parametrize(
    ("reports", "problem"),
    [(f"{GOOD}\n{sync_report(9999, 1)}\n", "first 1"), (GOOD, "1 of 2 subscribers")],
)
def test_sync_pub_sub_fails_on_a_late_or_missing_subscriber(
    lab: Context, runner: FakeRunner, reports: str, problem: str
) -> None:
    runner.on(*ACTIVE).on("syncsub.py", reports)
    with pytest.raises(CheckFailed, match=problem):
        sync_pub_sub(lab)


def queue_clients(*workers: dict[str, int]) -> str:
    return "\n".join(
        json.dumps({"client": f"c{i}", "replies": 20, "workers": w, "errors": []}) for i, w in enumerate(workers)
    )


def test_shared_queue_passes_with_replies_from_several_workers(lab: Context, runner: FakeRunner) -> None:
    runner.on(*ACTIVE).on("rrclient.py", queue_clients({"w1": 10, "w2": 10}, {"w1": 10, "w2": 10}))
    assert "answered by 2 workers" in shared_queue(lab)


def test_shared_queue_fails_when_one_worker_answers_all(lab: Context, runner: FakeRunner) -> None:
    runner.on(*ACTIVE).on("rrclient.py", queue_clients({"w1": 20}, {"w1": 20}))
    with pytest.raises(CheckFailed, match="replies came from"):
        shared_queue(lab)
