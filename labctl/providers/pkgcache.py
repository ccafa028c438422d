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
and it has no report page (apt-cacher-ng's expire/delete/import forms live there). Linux delivers a
packet for any local address whatever interface it came in on, so binding alone would let a host of
another podman network (or a neighbour routing to a gateway address) in: an iptables chain on the
port (LABCTL-ACNG-<port>) admits each lab gateway only from its own subnet, and 127.0.0.1 from this
machine, and resets every other connection. A bridge gets its
address only when its first host starts, so `ensure(listen=...)` runs after the hosts exist and
restarts the daemon (under a lock, so concurrent labctl processes restart it once) only when an
address a lab needs is missing from what it listens on; a daemon with any other configuration (an
older labctl's 0.0.0.0 one) is replaced."""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
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
STOP_TIMEOUT = 10.0
LOOPBACK = "127.0.0.1"
Say = Callable[[str], None]


def require_port() -> int:
    """The cache's port; one LabError when LABCTL_PKGCACHE_PORT is not one."""
    if PORT_PROBLEM:
        raise LabError(
            f"{printable(PORT_PROBLEM)}: labctl's package cache listens there. "
            "Fix: set LABCTL_PKGCACHE_PORT to a free TCP port (3149 when unset), or LABCTL_PKGCACHE=off."
        )
    return PORT


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
    return os.environ.get("LABCTL_PKGCACHE") != "off" and bool(require_port()) and answering()


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
    return found if comm == Path(DAEMON).name[:15] and _alive(found) else None


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


def chain() -> str:
    """The iptables chain (filter table) that admits lab hosts only to the cache on PORT."""
    return f"LABCTL-ACNG-{PORT}"


def _jump() -> list[str]:
    return ["INPUT", "-p", "tcp", "--dport", str(PORT), "-j", chain()]


def filter_rules(networks: Mapping[str, str]) -> list[list[str]]:
    """The chain's rules: 127.0.0.1 from this machine, each lab gateway from its own subnet only
    (gateway -> subnet), every other connection to the port reset."""
    rules = [["-d", LOOPBACK, "-s", "127.0.0.0/8", "-j", "RETURN"]]
    for gateway in bind_list(networks):
        if gateway != LOOPBACK:
            subnet = ipaddress.ip_network(networks[gateway], strict=False)
            rules.append(["-d", gateway, "-s", str(subnet), "-j", "RETURN"])
    return [*rules, ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"]]


def _iptables(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["iptables", "-w", "5", *args], capture_output=True, text=True, check=False)


def apply_filter(networks: Mapping[str, str], say: Say) -> bool:
    """(Re)write labctl's chain for PORT and jump to it from INPUT (once). Only that chain and that
    one jump rule are ever touched. False (said) when iptables is missing or refuses."""
    if shutil.which("iptables") is None:
        say("package cache: iptables is not installed: the cache is filtered by its addresses only")
        return False
    _iptables("-N", chain())  # exists already: fine
    steps = [["-F", chain()], *(["-A", chain(), *rule] for rule in filter_rules(networks))]
    if _iptables("-C", *_jump()).returncode != 0:
        steps.append(["-I", *_jump()])
    for step in steps:
        result = _iptables(*step)
        if result.returncode != 0:
            say(f"package cache: iptables {' '.join(step)} failed ({result.stderr.strip()}); filtered by address only")
            return False
    return True


def remove_filter() -> None:
    """Remove labctl's chain for PORT and its jump rule (nothing else)."""
    for _ in range(5):  # the jump is inserted once; a few in case two processes raced
        if _iptables("-C", *_jump()).returncode != 0 or _iptables("-D", *_jump()).returncode != 0:
            break
    _iptables("-F", chain())
    _iptables("-X", chain())


def ensure(say: Say = lambda _m: None, listen: Mapping[str, str] | None = None) -> bool:
    """Make sure labctl's cache answers on PORT, on 127.0.0.1 and every lab gateway in ``listen``
    (gateway -> its network's subnet), admitting each gateway's own subnet only; start it when it is
    installed and not running, restart it when it lacks an address or runs another configuration, and
    rewrite its filter when a gateway is new to it. False (with one line said) when there is none:
    hosts then download directly."""
    if os.environ.get("LABCTL_PKGCACHE") == "off":
        return False
    require_port()
    with _locked():
        present = local_addresses()
        wanted = set(bind_list(listen or {})) & present  # an address not (yet) here cannot be bound
        admitted = admitted_networks()
        merged = {g: n for g, n in {**admitted, **(listen or {})}.items() if g in present}
        daemon = ours()
        binds = configured_binds() if daemon else None
        if daemon and binds is not None and wanted <= set(binds) and answering():
            if merged != admitted:
                _filter(merged, say)
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
        with _signals_deferred():  # a Ctrl-C between stop and start would leave every lab without its cache
            if daemon:
                stop(daemon)
            _filter(merged, say)
            return _start(sorted(wanted | (set(binds or ()) & present)), say)


@contextmanager
def _signals_deferred() -> Iterator[None]:
    """SIGINT and SIGTERM wait until the block is done, then take effect (main thread only: signal
    handlers can be set nowhere else)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    got: list[int] = []
    kinds = (signal.SIGINT, signal.SIGTERM)
    before = {kind: signal.signal(kind, lambda number, _frame: got.append(number)) for kind in kinds}
    try:
        yield
    finally:
        for kind, handler in before.items():
            signal.signal(kind, handler)
        for number in got:
            signal.raise_signal(number)


def admitted_networks() -> dict[str, str]:
    """Gateway -> subnet the filter admits now (labctl's record in RUN_DIR; gone at reboot like the rules)."""
    try:
        data = json.loads((RUN_DIR / "filter.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _filter(networks: dict[str, str], say: Say) -> None:
    if apply_filter(networks, say):
        (RUN_DIR / "filter.json").write_text(json.dumps(networks, sort_keys=True))


def stop(daemon: int) -> None:
    """End labctl's daemon (its pid, never a name) and wait until it is gone."""
    try:
        os.kill(daemon, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + STOP_TIMEOUT
    while _alive(daemon) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(daemon):
        os.kill(daemon, signal.SIGKILL)


def _alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting for its parent counts as gone)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


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
