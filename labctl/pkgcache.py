"""The host-side package cache every lab host shares: apt-cacher-ng, run as a daemon on this machine.

Lab hosts send their apt downloads (archives and indexes) through it, so the Nth cold converge on a
machine fetches from the mirror only what no host fetched before. apt-cacher-ng is Debian's own
caching proxy: it serves many clients at once and keeps its cache consistent itself (files are
written under a temporary name and published when complete), which a shared bind-mounted
/var/cache/apt/archives could not do (apt holds an exclusive lock there for a whole install).

There is no systemd on the machines labctl runs on (a container, CI), so labctl starts the daemon
itself when it is installed and nothing answers on its port; it keeps running after labctl exits.
Without it (not installed, not starting) hosts download directly: the cache only makes things
faster, it is never needed."""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from labctl.errors import LabError, printable


# labctl's own port and cache directory, not the Debian package's (3142, /var/cache/apt-cacher-ng): where
# the package's service runs too (a machine with systemd), with its own settings, the two never share files
def _port_setting(text: str) -> tuple[int, str]:
    """LABCTL_PKGCACHE_PORT's port, and what is wrong with it ('' when nothing): checked when the cache
    is used (require_port), so a bad value stops only what needs the cache, never every verb."""
    try:
        port = int(text.strip())
    except ValueError:
        return 0, f"LABCTL_PKGCACHE_PORT={text!r} is not a port number"
    if not 1 <= port <= 65535:
        return 0, f"LABCTL_PKGCACHE_PORT={text!r} is not a port from 1 to 65535"
    return port, ""


PORT, PORT_PROBLEM = _port_setting(os.environ.get("LABCTL_PKGCACHE_PORT", "3149"))
DAEMON = "/usr/sbin/apt-cacher-ng"
SUPPORT_DIR = "/usr/lib/apt-cacher-ng"
CACHE_DIR = Path(os.environ.get("LABCTL_PKGCACHE_DIR", "/var/cache/labctl/apt-cacher-ng"))
# labctl's own configuration, run and log directories (per port: a bench may run a private, empty cache)
CONFIG_DIR = Path(f"/var/lib/labctl/apt-cacher-ng-{PORT}")
RUN_DIR = Path(f"/run/labctl-acng-{PORT}")
LOG_DIR = Path(f"/var/log/labctl-acng-{PORT}")
START_TIMEOUT = 10.0
Say = Callable[[str], None]


def require_port() -> int:
    """The cache's port; one LabError when LABCTL_PKGCACHE_PORT is not one."""
    if PORT_PROBLEM:
        raise LabError(
            f"{printable(PORT_PROBLEM)}: labctl's package cache listens there. "
            "Fix: set LABCTL_PKGCACHE_PORT to a free TCP port (3149 when unset), or LABCTL_PKGCACHE=off."
        )
    return PORT


def answering(host: str = "127.0.0.1", port: int = PORT, timeout: float = 1.0) -> bool:
    """True when an HTTP server on the port says it is apt-cacher-ng."""
    try:
        with socket.create_connection((host, port), timeout=timeout) as conn:
            conn.sendall(b"GET /acng-report.html HTTP/1.0\r\nHost: localhost\r\n\r\n")
            head = b""
            while len(head) < 8192:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return False
    return head.startswith(b"HTTP/") and b"apt-cacher" in head.lower()


def config() -> str:
    """labctl's configuration of the daemon (not the package's /etc/apt-cacher-ng, whose Debian
    remapping fetches from a fixed backend mirror): a plain caching proxy, so every file comes from
    the mirror the hosts name (common_apt_mirror) and is cached under that mirror's name. It listens
    on every address (the lab networks' bridges come and go)."""
    return "\n".join(
        [
            "# Written by labctl (labctl/pkgcache.py): the package cache its lab hosts share.",
            f"CacheDir: {CACHE_DIR}",
            f"LogDir: {LOG_DIR}",
            f"SupportDir: {SUPPORT_DIR}",
            f"Port: {PORT}",
            "BindAddress: 0.0.0.0",
            f"PidFile: {RUN_DIR / 'pid'}",
            f"SocketPath: {RUN_DIR / 'socket'}",
            "ReportPage: acng-report.html",
            "ExThreshold: 4",
            "",
        ]
    )


def command() -> list[str]:
    """The daemon's command line: labctl's configuration, daemonized."""
    return [DAEMON, "-c", str(CONFIG_DIR), "ForeGround:0"]


def enabled() -> bool:
    """True when hosts should use the cache: not turned off (LABCTL_PKGCACHE=off) and answering."""
    return os.environ.get("LABCTL_PKGCACHE") != "off" and bool(require_port()) and answering()


def ensure(say: Say = lambda _m: None) -> bool:
    """Make sure the cache answers on PORT; start the daemon when it is installed and not running.
    False (with one line said) when there is none: hosts then download directly."""
    if os.environ.get("LABCTL_PKGCACHE") == "off":
        return False
    require_port()
    if answering():
        return True
    if not Path(DAEMON).exists():
        say("package cache: apt-cacher-ng is not installed (setup.sh installs it); hosts download directly")
        return False
    for directory in (CONFIG_DIR, RUN_DIR, LOG_DIR, CACHE_DIR):
        directory.mkdir(parents=True, exist_ok=True)
    (CONFIG_DIR / "acng.conf").write_text(config())
    result = subprocess.run(
        command(), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if answering():
            say(f"package cache: started apt-cacher-ng on port {PORT} (cache {CACHE_DIR})")
            return True
        time.sleep(0.2)
    detail = (result.stderr or result.stdout).strip().splitlines()[-1:] or [f"exit {result.returncode}"]
    say(f"package cache: apt-cacher-ng did not start ({detail[0]}); hosts download directly")
    return False


def pid() -> int | None:
    """The daemon's process id, from its pid file."""
    try:
        return int((RUN_DIR / "pid").read_text().strip())
    except (OSError, ValueError):
        return None


def proxy_url(gateway: str) -> str:
    """What a lab host puts in Acquire::http::Proxy: the cache on its network's gateway (this machine)."""
    return f"http://{gateway}:{PORT}"
