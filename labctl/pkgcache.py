"""The host-side package cache every lab host shares: apt-cacher-ng, run as a daemon on this machine.

Lab hosts send their apt downloads (archives and indexes) through it, so the Nth cold converge on a
machine fetches from the mirror only what no host fetched before. apt-cacher-ng is Debian's own
caching proxy: it serves many clients at once and keeps its cache consistent itself (files are
written under a temporary name and published when complete), which a shared bind-mounted
/var/cache/apt/archives could not do (apt holds an exclusive lock there for a whole install).

There is no systemd on the machines labctl runs on (a container, CI), so labctl starts the daemon
itself when it is installed and nothing answers on its port; it keeps running after labctl exits.
Without it (not installed, not starting) hosts download directly: the cache only makes things
faster, it is never needed.

It is no open proxy: it listens on 127.0.0.1 and on the gateway addresses of the lab networks (the
podman bridges' own addresses on this machine), never on 0.0.0.0 or this machine's outside address,
and it has no report page (apt-cacher-ng's expire/delete/import forms live there). A bridge gets its
address only when its first host starts, so `ensure(listen=...)` runs after the hosts exist and
restarts the daemon (under a lock, so concurrent labctl processes restart it once) only when an
address a lab needs is missing from what it listens on; a daemon with any other configuration (an
older labctl's 0.0.0.0 one) is replaced."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

# labctl's own port and cache directory, not the Debian package's (3142, /var/cache/apt-cacher-ng): where
# the package's service runs too (a machine with systemd), with its own settings, the two never share files
PORT = int(os.environ.get("LABCTL_PKGCACHE_PORT", "3149"))
DAEMON = "/usr/sbin/apt-cacher-ng"
SUPPORT_DIR = "/usr/lib/apt-cacher-ng"
CACHE_DIR = Path(os.environ.get("LABCTL_PKGCACHE_DIR", "/var/cache/labctl/apt-cacher-ng"))
# labctl's own configuration, run and log directories (per port: a bench may run a private, empty cache)
CONFIG_DIR = Path(f"/var/lib/labctl/apt-cacher-ng-{PORT}")
RUN_DIR = Path(f"/run/labctl-acng-{PORT}")
LOG_DIR = Path(f"/var/log/labctl-acng-{PORT}")
START_TIMEOUT = 10.0
STOP_TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"
Say = Callable[[str], None]


def answering(host: str = LOOPBACK, port: int | None = None, timeout: float = 1.0) -> bool:
    """True when an HTTP server on the port says it is apt-cacher-ng (its usage page: labctl's daemon
    has no report page)."""
    try:
        with socket.create_connection((host, PORT if port is None else port), timeout=timeout) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            head = b""
            while len(head) < 8192:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                head += chunk
    except OSError:
        return False
    return head.startswith(b"HTTP/") and b"apt-cacher" in head.lower()


def config(binds: Iterable[str] = (LOOPBACK,)) -> str:
    """labctl's configuration of the daemon (not the package's /etc/apt-cacher-ng, whose Debian
    remapping fetches from a fixed backend mirror): a plain caching proxy, so every file comes from
    the mirror the hosts name (common_apt_mirror) and is cached under that mirror's name. It listens
    on 127.0.0.1 and the given addresses only, and has no ReportPage (no maintenance actions)."""
    return "\n".join(
        [
            "# Written by labctl (labctl/pkgcache.py): the package cache its lab hosts share.",
            f"CacheDir: {CACHE_DIR}",
            f"LogDir: {LOG_DIR}",
            f"SupportDir: {SUPPORT_DIR}",
            f"Port: {PORT}",
            f"BindAddress: {' '.join(bind_list(binds))}",
            f"PidFile: {RUN_DIR / 'pid'}",
            f"SocketPath: {RUN_DIR / 'socket'}",
            "ExThreshold: 4",
            "",
        ]
    )


def command() -> list[str]:
    """The daemon's command line: labctl's configuration, daemonized."""
    return [DAEMON, "-c", str(CONFIG_DIR), "ForeGround:0"]


def enabled() -> bool:
    """True when hosts should use the cache: not turned off (LABCTL_PKGCACHE=off) and answering."""
    return os.environ.get("LABCTL_PKGCACHE") != "off" and answering()


def bind_list(addresses: Iterable[str]) -> list[str]:
    """127.0.0.1 and the given IPv4 addresses, sorted, each once; never a wildcard or a name."""
    out = {LOOPBACK}
    for address in addresses:
        parsed = ipaddress.ip_address(address)
        if parsed.version != 4 or parsed.is_unspecified or parsed.is_multicast:
            raise ValueError(f"not a unicast IPv4 address for the package cache: {address!r}")
        out.add(str(parsed))
    return sorted(out, key=ipaddress.IPv4Address)


def configured_binds() -> list[str] | None:
    """The addresses labctl's configuration file says the daemon listens on; None when the file is
    missing or is not exactly what this labctl writes (an older labctl's, edited by hand)."""
    try:
        text = (CONFIG_DIR / "acng.conf").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("BindAddress: "):
            try:
                binds = bind_list(line.split(": ", 1)[1].split())
            except ValueError:
                return None
            return binds if text == config(binds) else None
    return None


def local_addresses() -> set[str]:
    """The IPv4 addresses this machine holds now (a bridge holds its gateway once a host is on it)."""
    try:
        out = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True, check=False).stdout
        links = json.loads(out or "[]")
    except (OSError, ValueError):
        return {LOOPBACK}
    found = {LOOPBACK}
    for link in links if isinstance(links, list) else []:
        for info in link.get("addr_info") or [] if isinstance(link, dict) else []:
            if isinstance(info, dict) and isinstance(info.get("local"), str):
                found.add(info["local"])
    return found


def ours() -> int | None:
    """The pid of labctl's daemon on PORT when it runs (pid file in RUN_DIR, process apt-cacher-ng)."""
    found = pid()
    if found is None or found <= 1:
        return None
    try:
        comm = Path(f"/proc/{found}/comm").read_text().strip()
    except OSError:
        return None
    return found if comm == Path(DAEMON).name[:15] else None


@contextmanager
def _locked() -> Iterator[None]:
    """One labctl process at a time decides whether to (re)start the daemon on PORT."""
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    with open(RUN_DIR / "lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure(say: Say = lambda _m: None, listen: Iterable[str] = ()) -> bool:
    """Make sure labctl's cache answers on PORT, on 127.0.0.1 and every address in ``listen`` (lab
    gateways); start it when it is installed and not running, restart it when it lacks an address or
    runs another configuration. False (with one line said) when there is none: hosts then download
    directly."""
    if os.environ.get("LABCTL_PKGCACHE") == "off":
        return False
    with _locked():
        wanted = set(bind_list(listen)) & local_addresses()  # an address not (yet) here cannot be bound
        daemon = ours()
        binds = configured_binds() if daemon else None
        if daemon and binds is not None and wanted <= set(binds) and answering():
            return True
        if daemon is None and answering():
            say(
                f"package cache: port {PORT} answers but is not labctl's apt-cacher-ng (no pid in {RUN_DIR}); "
                "hosts download directly"
            )
            return False
        if not Path(DAEMON).exists():
            say("package cache: apt-cacher-ng is not installed (setup.sh installs it); hosts download directly")
            return False
        if daemon:
            stop(daemon)
        return _start(sorted(wanted | (set(binds or ()) & local_addresses())), say)


def stop(daemon: int) -> None:
    """End labctl's daemon (its pid, never a name) and wait until it is gone."""
    try:
        os.kill(daemon, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while Path(f"/proc/{daemon}").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    if Path(f"/proc/{daemon}").exists():
        os.kill(daemon, signal.SIGKILL)


def _start(binds: list[str], say: Say) -> bool:
    for directory in (CONFIG_DIR, RUN_DIR, LOG_DIR, CACHE_DIR):
        directory.mkdir(parents=True, exist_ok=True)
    (CONFIG_DIR / "acng.conf").write_text(config(binds))
    result = subprocess.run(
        command(), capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL, start_new_session=True
    )
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if answering():
            where = ", ".join(bind_list(binds))
            say(f"package cache: started apt-cacher-ng on {where} port {PORT} (cache {CACHE_DIR})")
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
