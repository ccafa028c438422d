"""Commands on lab hosts over SSH, with Fabric (one cached connection per host)."""

from __future__ import annotations

import io
import shlex
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fabric import Connection
from invoke.exceptions import CommandTimedOut, ThreadException
from paramiko.client import RejectPolicy
from paramiko.ssh_exception import BadHostKeyException, NoValidConnectionsError, SSHException

from labctl.errors import LabError


@dataclass(frozen=True)
class Result:
    """What a command run on a host gave back."""

    command: str
    exited: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exited == 0

    @property
    def output(self) -> str:
        return (self.stdout + ("\n" + self.stderr if self.stderr else "")).strip()


class Runner(Protocol):
    """Runs commands on lab hosts (Fabric over SSH in real use)."""

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result: ...

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None: ...

    def close(self) -> None:
        """Close every connection (a runner may be reused after, reconnecting)."""
        ...


@dataclass(frozen=True)
class Target:
    host: str
    address: str
    user: str
    key: str
    known_hosts: str = ""  # the lab's known_hosts: the only host keys accepted (none accepted when empty)
    changed_key: str = ""  # the error to give when the host's key is not the one there (hostkeys.changed)


def checked_connection(t: Target) -> Connection:
    """A Fabric connection that accepts only the host key in the lab's known_hosts: paramiko's RejectPolicy,
    no ~/.ssh/known_hosts, no AutoAdd."""
    conn = Connection(
        t.address,
        user=t.user,
        connect_timeout=10,
        connect_kwargs={"key_filename": t.key, "look_for_keys": False, "allow_agent": False},
    )
    conn.client.get_host_keys().clear()
    conn.client.set_missing_host_key_policy(RejectPolicy())
    if t.known_hosts and Path(t.known_hosts).exists():
        conn.client.load_host_keys(t.known_hosts)
    return conn


def _key_error(t: Target, exc: SSHException) -> LabError:
    if isinstance(exc, BadHostKeyException):
        return LabError(t.changed_key or f"host {t.host!r}: its SSH host key changed ({exc}). Fix: re-create the host.")
    return LabError(
        f"host {t.host!r} ({t.address}) has no SSH host key in the lab's known_hosts {t.known_hosts or '(none)'}, "
        f"so labctl does not connect. Fix: run 'labctl up' for the lab (it learns the keys of its hosts)."
    )


def _is_key_problem(exc: BaseException) -> bool:
    return isinstance(exc, BadHostKeyException) or (
        isinstance(exc, SSHException) and "not found in known_hosts" in str(exc)
    )


class FabricRunner:
    """Runs commands on lab hosts over SSH; implements Runner."""

    def __init__(self, targets: dict[str, Target]) -> None:
        self.targets = targets
        self._conns: dict[str, Connection] = {}
        self._lock = threading.Lock()

    def _conn(self, host: str) -> Connection:
        if host not in self.targets:
            raise LabError(f"no host named {host!r} in this lab. Fix: use one of: {', '.join(self.targets)}.")
        with self._lock:
            if host not in self._conns:
                self._conns[host] = checked_connection(self.targets[host])
            return self._conns[host]

    def _unreachable(self, host: str, exc: BaseException, what: str, fix: str) -> LabError:
        if isinstance(exc, SSHException) and _is_key_problem(exc):
            return _key_error(self.targets[host], exc)
        return LabError(f"cannot {what} host {host!r} over SSH ({exc}). Fix: {fix}")

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        conn = self._conn(host)
        remote_cmd = command
        if stdin is not None:
            # invoke feeds a non-tty stream byte by byte; a file on the host is much faster
            path = f"/tmp/.labctl-stdin-{uuid.uuid4().hex}"
            self.put_text(host, stdin, path, 0o600)
            remote_cmd = f"(\n{command}\n) < {path}; rc=$?; rm -f {path}; exit $rc"
        try:
            res = conn.run(remote_cmd, hide=True, warn=True, timeout=timeout, in_stream=False)
        except CommandTimedOut as exc:
            return Result(command, 124, exc.result.stdout, exc.result.stderr + f"\n(timed out after {timeout:.0f} s)")
        except (NoValidConnectionsError, SSHException, OSError, ThreadException) as exc:
            raise self._unreachable(
                host, _cause(exc), "reach", "check 'labctl status'; a stopped host comes back with 'labctl up'."
            ) from None
        return Result(command, res.exited, res.stdout, res.stderr)

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        conn = self._conn(host)
        try:
            conn.put(io.BytesIO(text.encode()), remote=path)
            conn.run(f"chmod {mode:o} {shlex.quote(path)}", hide=True)
        except (NoValidConnectionsError, SSHException, OSError, ThreadException) as exc:
            raise self._unreachable(host, _cause(exc), f"copy {path} to", "check 'labctl status'.") from None

    def fork(self) -> FabricRunner:
        """A runner to the same hosts on connections of its own (for another thread)."""
        return FabricRunner(self.targets)

    def close(self) -> None:
        for conn in self._conns.values():
            conn.close()
        self._conns.clear()


def _cause(exc: BaseException) -> BaseException:
    """The SSH error inside invoke's ThreadException (a put or run in a worker thread), else exc."""
    if isinstance(exc, ThreadException):
        for info in exc.exceptions:
            if isinstance(info.value, SSHException):
                return info.value
    return exc


def wait_for_ssh(address: str, timeout: float = 60.0, port: int = 22, alive: Callable[[], bool] = lambda: True) -> bool:
    """Wait until the host's SSH server sends its banner; False after timeout seconds, or as soon as
    alive() says the host is gone (a container that exited during start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        try:
            with socket.create_connection((address, port), timeout=2) as sock:
                sock.settimeout(2)
                if sock.recv(4).startswith(b"SSH-"):
                    return True
        except OSError:
            pass
        time.sleep(0.3)
    return False
