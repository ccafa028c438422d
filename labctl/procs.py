"""Child processes that die with labctl: their own process group, and a parent-death signal.

A SIGKILLed labctl runs no cleanup code, so the kernel has to do it: PR_SET_PDEATHSIG makes the
child receive SIGTERM when labctl dies (ansible-playbook forwards it to its workers and exits)."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
from collections.abc import Callable
from typing import Any

PR_SET_PDEATHSIG = 1


def _prctl() -> Callable[..., int] | None:
    """libc's prctl, looked up before any fork (the child only calls it)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_PRCTL = _prctl()


def die_with_parent(sig: int = signal.SIGTERM) -> Callable[[], None]:
    """A preexec_fn: deliver `sig` to the child when the process that started it dies."""
    parent = os.getpid()
    prctl = _PRCTL

    def preexec() -> None:
        if prctl is not None:
            prctl(PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # labctl died between fork and prctl
            os.kill(os.getpid(), sig)

    return preexec


def popen(cmd: list[str], **kwargs: Any) -> subprocess.Popen[Any]:
    """Start a long-running child in its own process group that dies with labctl."""
    return subprocess.Popen(cmd, process_group=0, preexec_fn=die_with_parent(), **kwargs)


def stop(proc: subprocess.Popen[Any], grace: float = 20.0) -> None:
    """SIGTERM the child's process group, SIGKILL it if it is still there after `grace` seconds."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
