"""Commands on lab hosts through the system OpenSSH client, as `ssh host cmd` behaves.

One host: stdin, stdout and stderr are the caller's own (streamed, nothing buffered), the remote exit
code is kept, a TTY only when asked or when both ends are terminals. Many hosts: in parallel, each
output line prefixed with its host, or collected per host (for JSON)."""

from __future__ import annotations

import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

TIMED_OUT = 124
SSH_FAILED = 255  # ssh itself failed (could not connect, host key refused, ...)


def ssh_argv(config: Path, host: str, command: Sequence[str], tty: bool | None = None) -> list[str]:
    """The ssh command line: -tt when tty is True, -T when False, ssh's own choice when None."""
    argv = ["ssh", "-F", str(config)]
    if tty is True:
        argv.append("-tt")
    elif tty is False:
        argv.append("-T")
    argv.append(host)
    if command:
        argv += ["--", shlex.join(command)]
    return argv


def want_tty(force: bool, stdin: IO[str] | None = None, stdout: IO[str] | None = None) -> bool:
    """A TTY with -t, or when both our stdin and stdout are terminals (as ssh does)."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    return force or (stdin.isatty() and stdout.isatty())


def run_one(argv: list[str], timeout: float | None = None) -> int:
    """Run ssh with our own stdin/stdout/stderr; its exit code (124 after timeout seconds)."""
    proc = subprocess.Popen(argv)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        sys.stderr.write(f"labctl: timed out after {timeout:.0f} s\n")
        return TIMED_OUT
    except KeyboardInterrupt:
        proc.terminate()
        proc.wait()
        raise


@dataclass
class HostRun:
    host: str
    exit_code: int
    stdout: str
    stderr: str


Emit = Callable[[str, str, str], None]  # host, stream ("stdout"|"stderr"), line


def _pump(stream: IO[str], host: str, name: str, sink: list[str], emit: Emit | None) -> None:
    for line in stream:
        sink.append(line)
        if emit is not None:
            emit(host, name, line)


def run_collect(argv: list[str], host: str, emit: Emit | None = None, timeout: float | None = None) -> HostRun:
    """Run ssh with no stdin, reading its output line by line (handed to emit as it comes)."""
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, errors="replace"
    )
    out: list[str] = []
    err: list[str] = []
    assert proc.stdout is not None and proc.stderr is not None
    pumps = [
        threading.Thread(target=_pump, args=(proc.stdout, host, "stdout", out, emit), daemon=True),
        threading.Thread(target=_pump, args=(proc.stderr, host, "stderr", err, emit), daemon=True),
    ]
    for t in pumps:
        t.start()
    try:
        code = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        code = proc.wait()
        code = TIMED_OUT
        err.append(f"timed out after {timeout:.0f} s\n")
    for t in pumps:
        t.join()
    return HostRun(host, code, "".join(out), "".join(err))


def run_many(argvs: dict[str, list[str]], emit: Emit | None = None, timeout: float | None = None) -> list[HostRun]:
    """Run one ssh per host at once; results in the order of argvs."""
    if not argvs:
        return []
    with ThreadPoolExecutor(max_workers=min(16, len(argvs))) as pool:
        futures = {h: pool.submit(run_collect, argv, h, emit, timeout) for h, argv in argvs.items()}
        return [futures[h].result() for h in argvs]


def prefixed_printer(hosts: Sequence[str]) -> Emit:
    """An emit that writes `host | line` to stdout or stderr, one whole line at a time."""
    width = max((len(h) for h in hosts), default=0)
    lock = threading.Lock()

    def emit(host: str, stream: str, line: str) -> None:
        target = sys.stdout if stream == "stdout" else sys.stderr
        text = line if line.endswith("\n") else line + "\n"
        with lock:
            target.write(f"{host.ljust(width)} | {text}")
            target.flush()

    return emit
