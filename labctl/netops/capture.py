"""Packet capture on a lab host: tcpdump there (installed on demand), the pcap streamed back over SSH.

The host runs tcpdump in the background and a watcher on the SSH session's stdin: when labctl closes
it (Ctrl-C, --seconds, labctl exiting) the watcher stops tcpdump with SIGINT, so tcpdump flushes and
the pcap ends cleanly. Bytes go straight from ssh to the file or to labctl's own stdout (nothing is
decoded), so `labctl capture gw:outside -w - | wireshark -k -i -` works. Provider-neutral: only
`sh`, `ip` and apt-get on the host."""

from __future__ import annotations

import contextlib
import shlex
import signal
import struct
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Any

from labctl import procs

INSTALL = (
    "if ! command -v tcpdump >/dev/null 2>&1; then"
    " echo 'labctl: installing tcpdump on {host}' >&2;"
    " (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tcpdump) >/dev/null 2>&1"
    " || {{ echo 'labctl: could not install tcpdump on {host} (apt-get failed); install it there' >&2; exit 127; }};"
    " fi"
)


def remote_script(host: str, iface: str, pcap: bool, count: int | None, bpf: Sequence[str]) -> str:
    """The sh program run on the host: install tcpdump if missing, capture until the count is reached
    or the session's stdin closes."""
    argv = ["tcpdump", "-i", iface, "-n", "--immediate-mode"]
    argv += ["-U", "-w", "-"] if pcap else ["-l"]
    if count is not None:
        argv += ["-c", str(count)]
    argv += list(bpf)
    return "\n".join(
        [
            INSTALL.format(host=host),
            "exec 3<&0",
            f"{shlex.join(argv)} </dev/null &",
            "pid=$!",
            '( cat <&3 >/dev/null 2>&1; kill -INT "$pid" 2>/dev/null ) >/dev/null 2>&1 &',
            "exec 3<&-",
            'wait "$pid"',
        ]
    )


def run(ssh_argv: list[str], out: IO[bytes] | int | None, seconds: float | None = None) -> int:
    """Run the capture; stop it cleanly after `seconds`, on Ctrl-C, or when labctl dies. ssh runs in
    its own process group (a terminal's Ctrl-C reaches labctl only, which then closes the session's
    stdin) and dies with labctl."""
    proc = procs.popen(ssh_argv, stdin=subprocess.PIPE, stdout=out)
    previous = _stop_on_signals()
    try:
        try:
            return proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            pass
        except KeyboardInterrupt:
            pass
        _close(proc)
        try:
            return _wait_quietly(proc, 30)
        except subprocess.TimeoutExpired:
            procs.stop(proc, grace=5)
            return 130
    finally:
        _close(proc)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _stop_on_signals() -> dict[int, Any]:
    """SIGINT and SIGTERM end the capture cleanly (also when started with SIGINT ignored, as a shell's
    background job is); the old handlers, to put back."""

    def interrupt(_sig: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous[sig] = signal.getsignal(sig)
        signal.signal(sig, interrupt)
    return previous


def _close(proc: subprocess.Popen[bytes]) -> None:
    if proc.stdin is not None and not proc.stdin.closed:
        with contextlib.suppress(OSError):
            proc.stdin.close()


def _wait_quietly(proc: subprocess.Popen[bytes], timeout: float) -> int:
    """Wait for the capture to end after its stdin closed; a second Ctrl-C stops waiting."""
    try:
        code = proc.wait(timeout=timeout)
    except KeyboardInterrupt:
        procs.stop(proc, grace=5)
        return 130
    # tcpdump stopped by SIGINT exits 0; ssh reports what the remote shell returned
    return code


def count_packets(path: Path) -> int | None:
    """Packets in a pcap file (None when it is not one: e.g. empty, or another format)."""
    data = path.read_bytes()
    if len(data) < 24:
        return None
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        endian = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        endian = ">"
    else:
        return None
    offset, packets = 24, 0
    while offset + 16 <= len(data):
        (incl_len,) = struct.unpack_from(endian + "I", data, offset + 8)
        if offset + 16 + incl_len > len(data):
            break  # a record cut short (the capture was killed mid-write)
        offset += 16 + incl_len
        packets += 1
    return packets
