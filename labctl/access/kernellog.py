"""Reading a lab host's kernel log, wherever its provider says it lands.

Hosts that share the machine's kernel (podman containers) write netfilter LOG lines into the
machine's ring buffer (``/dev/kmsg``, what ``dmesg`` shows), and only while the sysctl
``net.netfilter.nf_log_all_netns`` is 1 (else the kernel logs nothing for other network namespaces).
Hosts with a kernel of their own (VMs, static machines) keep it: ``journalctl -k`` (or ``dmesg``) on
the host itself. A provider says which with its class attribute ``kernel_log`` (:data:`MACHINE` or
:data:`OWN`, the default of labctl.providers.Provider), so a new provider needs nothing here.
"""

from __future__ import annotations

import errno
import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from labctl.access.remote import Result

if TYPE_CHECKING:
    from labctl.providers.base import Provider

MACHINE = "machine"  # the host's kernel is this machine's: read /dev/kmsg here
OWN = "own"  # the host has its own kernel: read its log on the host
KMSG = Path("/dev/kmsg")
NETNS_SYSCTL = Path("/proc/sys/net/netfilter/nf_log_all_netns")
_RECORD = re.compile(r"^\d+,\d+,\d+,[^;]*;(.*)$")


class KernelLogUnavailable(Exception):
    """The kernel log cannot be read (the reason says why and how to fix it)."""


def source(provider: Provider) -> str:
    """Where the kernel log of a provider's hosts is: MACHINE or OWN."""
    return str(provider.kernel_log)


def kmsg_messages(text: str) -> list[str]:
    """The messages of /dev/kmsg records ("PRI,SEQ,USEC,FLAGS;MESSAGE", continuation lines dropped)."""
    out = []
    for line in text.splitlines():
        m = _RECORD.match(line)
        if m:
            out.append(m.group(1))
    return out


def read_kmsg(path: Path = KMSG) -> str:
    """Every record of the kernel ring buffer still held, without waiting for new ones."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        raise KernelLogUnavailable(
            f"cannot read the kernel log {path} ({exc.strerror}); Fix: run labctl as root"
        ) from None
    chunks: list[bytes] = []
    try:
        while True:
            try:
                data = os.read(fd, 16384)  # /dev/kmsg gives one record per read
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # records overwritten while reading: go on with the next
                    continue
                if exc.errno == errno.EAGAIN:
                    break
                raise
            if not data:
                break
            chunks.append(data if data.endswith(b"\n") else data + b"\n")
    finally:
        os.close(fd)
    return b"".join(chunks).decode(errors="replace")


def netns_logging(path: Path = NETNS_SYSCTL) -> bool | None:
    """Whether the kernel logs netfilter LOG lines of other network namespaces (None: no such sysctl)."""
    try:
        return path.read_text().strip() == "1"
    except OSError:
        return None


def ensure_netns_logging(say: Callable[[str], None], path: Path = NETNS_SYSCTL) -> None:
    """Turn on net.netfilter.nf_log_all_netns (containers' LOG rules log nothing without it), or say why not."""
    if netns_logging(path) is not False:
        return
    try:
        path.write_text("1\n")
    except OSError as exc:
        say(
            f"net.netfilter.nf_log_all_netns is 0 and labctl cannot set it ({exc.strerror}): LOG rules in "
            "containers log nothing; as root: sysctl -w net.netfilter.nf_log_all_netns=1"
        )
        return
    say("set net.netfilter.nf_log_all_netns=1 (as root): LOG rules in the lab's containers reach the kernel log")


def machine_lines(needle: str, path: Path = KMSG, sysctl: Path = NETNS_SYSCTL) -> list[str]:
    """Lines of this machine's kernel log that contain needle."""
    lines = [m for m in kmsg_messages(read_kmsg(path)) if needle in m]
    if not lines and netns_logging(sysctl) is False:
        raise KernelLogUnavailable(
            "net.netfilter.nf_log_all_netns is 0: the kernel drops the LOG lines of containers; "
            "Fix: as root, sysctl -w net.netfilter.nf_log_all_netns=1 (labctl up sets it)"
        )
    return lines


def host_command(needle: str) -> str:
    """The command that prints a host's own kernel log lines containing needle."""
    q = shlex.quote(needle)
    return f"(journalctl -k -q --no-pager -o cat 2>/dev/null || dmesg) | grep -F -- {q} || true"


def host_lines(result: Result, needle: str) -> list[str]:
    if not result.ok:
        raise KernelLogUnavailable(f"cannot read the kernel log: {result.output.strip()[:300]}")
    return [line for line in result.stdout.splitlines() if needle in line]


def lines(provider: Provider, host: str, needle: str, run: Callable[[str, str], Result]) -> list[str]:
    """Lines containing needle in the kernel log of host, read where its provider says it lands."""
    if source(provider) == MACHINE:
        return machine_lines(needle)
    return host_lines(run(host, host_command(needle)), needle)
