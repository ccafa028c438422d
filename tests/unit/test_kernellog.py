"""Where a host's kernel log is read: the machine's /dev/kmsg for hosts sharing its kernel, the host's
own journal otherwise (the provider says which)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.access import kernellog
from labctl.access.remote import Result
from labctl.checks.base import CheckSkipped
from labctl.providers import Provider
from labctl.providers.podman.provider import PodmanProvider
from labctl.providers.static import StaticProvider
from tests.unit.conftest import FakeRunner, MakeCtx

LINE = "s3a blocked packets : IN=eth1 OUT=eth0 SRC=198.19.2.11 DST=198.19.1.11 PROTO=TCP DPT=2323 SYN"
KMSG = (
    "6,8714,18408563331,-;systemd-journald[39]: Received client request to flush runtime journal.\n"
    f"4,8716,18867183064,-;{LINE}\n"
    " SUBSYSTEM=net\n"  # a continuation line (key=value), not a message
    f"4,8717,18867183999,-;{LINE.replace('s3a', 'other')}\n"
)


def test_kmsg_records_give_their_messages() -> None:
    assert kernellog.kmsg_messages(KMSG) == [
        "systemd-journald[39]: Received client request to flush runtime journal.",
        LINE,
        LINE.replace("s3a", "other"),
    ]


def test_machine_lines_keep_this_labs_lines_only(tmp_path: Path) -> None:
    kmsg, sysctl = tmp_path / "kmsg", tmp_path / "nf_log_all_netns"
    kmsg.write_text(KMSG)
    sysctl.write_text("1\n")
    assert kernellog.machine_lines("s3a blocked packets : ", kmsg, sysctl) == [LINE]


def test_nothing_logged_because_the_kernel_drops_container_lines(tmp_path: Path) -> None:
    kmsg, sysctl = tmp_path / "kmsg", tmp_path / "nf_log_all_netns"
    kmsg.write_text(KMSG)
    sysctl.write_text("0\n")
    with pytest.raises(kernellog.KernelLogUnavailable, match="nf_log_all_netns is 0"):
        kernellog.machine_lines("nosuch prefix", kmsg, sysctl)


def test_unreadable_kmsg_says_why(tmp_path: Path) -> None:
    with pytest.raises(kernellog.KernelLogUnavailable, match="cannot read the kernel log"):
        kernellog.read_kmsg(tmp_path / "missing")


def test_ensure_netns_logging_turns_it_on(tmp_path: Path) -> None:
    sysctl = tmp_path / "nf_log_all_netns"
    sysctl.write_text("0\n")
    said: list[str] = []
    kernellog.ensure_netns_logging(said.append, sysctl)
    assert sysctl.read_text() == "1\n" and "nf_log_all_netns=1" in said[0]
    kernellog.ensure_netns_logging(said.append, sysctl)
    assert len(said) == 1  # already on: nothing to say


def test_providers_say_where_the_log_lands() -> None:
    assert kernellog.source(PodmanProvider()) == kernellog.MACHINE
    assert kernellog.source(StaticProvider()) == kernellog.OWN
    assert kernellog.source(Provider()) == kernellog.OWN  # a provider that says nothing (the base class default)


def test_own_kernel_log_is_read_on_the_host() -> None:
    ran: list[tuple[str, str]] = []

    def run(host: str, command: str) -> Result:
        ran.append((host, command))
        return Result(command, 0, f"noise\n{LINE}\n", "")

    assert kernellog.lines(Provider(), "gw", "s3a blocked packets : ", run) == [LINE]
    assert ran[0][0] == "gw" and "journalctl -k" in ran[0][1] and "grep -F -- 's3a blocked packets : '" in ran[0][1]


def test_context_reads_the_hosts_own_log_without_a_reader(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    runner.on("journalctl -k", LINE + "\n")
    ctx = make_ctx({}, {"gw": {"lab": "198.19.2.10"}})
    assert ctx.kernel_log("gw", "s3a blocked") == [LINE]
    runner.rules.clear()
    runner.on("journalctl -k", "", exited=1)
    with pytest.raises(CheckSkipped, match="gw: cannot read the kernel log"):
        ctx.kernel_log("gw", "s3a blocked")
