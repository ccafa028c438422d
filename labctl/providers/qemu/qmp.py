"""A small QMP client (QEMU's JSON control protocol) over the VM's unix socket.

Sockets live in the lab's state directory, whose path may pass the 108 bytes a unix socket path
may have; the socket is reached as /proc/self/fd/<dir fd>/<name>, which is always short."""

from __future__ import annotations

import contextlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from labctl.errors import LabError


@contextlib.contextmanager
def unix_connect(directory: Path, name: str, timeout: float = 5.0) -> Iterator[socket.socket]:
    """Connect to directory/name, however long the directory's path."""
    dirfd = os.open(directory, os.O_PATH | os.O_DIRECTORY)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(f"/proc/self/fd/{dirfd}/{name}")
        yield sock
    finally:
        sock.close()
        os.close(dirfd)


class Qmp:
    """One QMP session: the greeting, qmp_capabilities, then commands."""

    def __init__(self, sock: socket.socket) -> None:
        self._file = sock.makefile("rw", encoding="utf-8")
        self._read()  # greeting
        self.command("qmp_capabilities")

    def _read(self) -> dict[str, Any]:
        line = self._file.readline()
        if not line:
            raise LabError("QMP: qemu closed the control socket")
        return json.loads(line)  # type: ignore[no-any-return]

    def command(self, execute: str, **arguments: Any) -> Any:
        message: dict[str, Any] = {"execute": execute}
        if arguments:
            message["arguments"] = arguments
        self._file.write(json.dumps(message) + "\n")
        self._file.flush()
        while True:
            reply = self._read()
            if "event" in reply:
                continue
            if "error" in reply:
                raise LabError(f"QMP {execute}: {reply['error'].get('desc', reply['error'])}")
            return reply.get("return")


def command(directory: Path, execute: str, name: str = "qmp.sock", timeout: float = 5.0, **arguments: Any) -> Any:
    """Send one command to the VM whose QMP socket is directory/name."""
    with unix_connect(directory, name, timeout) as sock:
        return Qmp(sock).command(execute, **arguments)
