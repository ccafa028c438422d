"""An interactive serial console: the terminal in raw mode, bridged to a unix socket; Ctrl-] leaves."""

from __future__ import annotations

import os
import select
import sys
import termios
import tty
from pathlib import Path

from labctl.providers.qemu.qmp import unix_connect

ESCAPE = b"\x1d"  # Ctrl-]


def attach(directory: Path, name: str, host: str) -> int:
    stdin, stdout = sys.stdin.fileno(), sys.stdout.fileno()
    with unix_connect(directory, name) as sock:
        sock.settimeout(None)
        sys.stderr.write(f"connected to {host}'s serial console; Ctrl-] leaves\r\n")
        sys.stderr.flush()
        saved = termios.tcgetattr(stdin)
        tty.setraw(stdin)
        try:
            sock.sendall(b"\r")  # a fresh prompt
            while True:
                ready, _, _ = select.select([sock, stdin], [], [])
                if sock in ready:
                    data = sock.recv(4096)
                    if not data:
                        break
                    os.write(stdout, data)
                if stdin in ready:
                    data = os.read(stdin, 1024)
                    if not data or ESCAPE in data:
                        sock.sendall(data.split(ESCAPE, 1)[0])
                        break
                    sock.sendall(data)
        finally:
            termios.tcsetattr(stdin, termios.TCSADRAIN, saved)
    sys.stderr.write("\r\nconsole closed\n")
    return 0
