"""Locks of running labs: collect one from the hosts, compare a lab with its lock, and check before
`up --locked` that every locked version can still be installed.

The format lives in labctl.reproduce.lockfile; the program run on each host in labctl/hostside/hostinfo.py."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from labctl import paths
from labctl.access.remote import FabricRunner
from labctl.errors import LabError
from labctl.lifecycle.model import Lab
from labctl.lifecycle.parallel import in_parallel
from labctl.reproduce import lockfile
from labctl.state import write_atomic
from labctl.topology import read_raw

HOSTINFO = Path(__file__).parents[1] / "hostside" / "hostinfo.py"
COLLECT_TIMEOUT = 300.0


def project_info(root: Path = paths.PROJECT_DIR) -> dict[str, Any]:
    """labctl's version and, in a git checkout, the commit and whether the tree has changes."""
    info: dict[str, Any] = {"version": metadata.version("labctl")}
    try:
        git = ["git", "-C", str(root)]
        head = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=False)
        if head.returncode == 0:
            dirty = subprocess.run(
                [*git, "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                check=False,
            )
            info["commit"] = head.stdout.strip()
            info["dirty"] = bool(dirty.stdout.strip())
    except FileNotFoundError:
        pass
    return info


def topology_raw(lab: Lab) -> dict[str, Any]:
    path = lab.topo.path
    if path.exists():
        raw = read_raw(path)
        if isinstance(raw, dict):
            return raw
    return dict(lab.state.read().get("topology") or {})


def _run_hostinfo(conn: FabricRunner, host: str, *args: str) -> dict[str, Any]:
    result = conn.run(host, f"python3 - {' '.join(args)}", timeout=COLLECT_TIMEOUT, stdin=HOSTINFO.read_text())
    if not result.ok:
        raise LabError(
            f"reading the installed packages of host {host!r} failed (exit {result.exited}): {result.output[-800:]}. "
            f"Fix: check the host with 'labctl exec {host} -- dpkg-query -W'."
        )
    try:
        data = json.loads(result.stdout)
    except json.JSONDecodeError:
        raise LabError(f"host {host!r} answered the package listing with no JSON: {result.stdout[:300]!r}") from None
    if not isinstance(data, dict):
        raise LabError(f"host {host!r} answered the package listing with {type(data).__name__}, not a mapping")
    return data


def collect_hosts(lab: Lab) -> dict[str, lockfile.HostLock]:
    """What every host of the running lab has installed, read over SSH in parallel."""
    conn = lab.runner()
    found: dict[str, lockfile.HostLock] = {}

    def one(host: str) -> None:
        data = _run_hostinfo(conn, host, "collect")
        found[host] = lockfile.HostLock(
            debian=data.get("debian") or {},
            python=data.get("python") or {},
            origins=data.get("origins") or {},
            sources=data.get("sources") or [],
            roles=data.get("roles") or {},
        )

    try:
        in_parallel(one, list(lab.topo.hosts))
    finally:
        conn.close()
    return {h: found[h] for h in lab.topo.hosts}


def image_info(lab: Lab) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, specs in lab.providers().items():
        for key, value in lab.backend(name).image_info(specs).items():
            out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def collect(lab: Lab) -> lockfile.Lock:
    """The lock of a running lab."""
    return lockfile.Lock(
        lab=lab.name,
        topology_sha256=lockfile.topology_hash(topology_raw(lab)),
        image=image_info(lab),
        project=project_info(),
        hosts=collect_hosts(lab),
        created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def write(lab: Lab, path: Path | None = None) -> tuple[Path, lockfile.Lock]:
    """Write the running lab's lock beside its topology file (or to path)."""
    found = collect(lab)
    target = path or lockfile.lock_path(lab.topo.path)
    write_atomic(target, found.dumps())
    return target, found


@dataclass
class CheckReport:
    lock_file: Path
    drift: list[lockfile.Drift]

    @property
    def ok(self) -> bool:
        return not self.drift

    def to_json(self, lab: str) -> dict[str, Any]:
        return {
            "lab": lab,
            "lock": str(self.lock_file),
            "matches": self.ok,
            "drift": [d.__dict__ for d in self.drift],
        }


def check(lab: Lab, path: Path | None = None) -> CheckReport:
    """Compare the running lab with its lock."""
    target = path or lab_lock_file(lab)
    locked = lockfile.read(target)
    running = collect_hosts(lab)
    return CheckReport(target, lockfile.diff(locked, running, lockfile.topology_hash(topology_raw(lab))))


def lab_lock_file(lab: Lab) -> Path:
    """The lock a lab is compared with: LAB.lock beside its topology file, else the copy its state keeps
    (a restored lab's, whose topology lives in the state; or the one `up --locked` was given)."""
    beside = lockfile.lock_path(lab.topo.path)
    return beside if beside.exists() or not lab.lock_copy.exists() else lab.lock_copy


@dataclass(frozen=True)
class Unavailable:
    host: str
    package: str
    version: str


def unavailable(lab: Lab, locked: lockfile.Lock) -> tuple[list[Unavailable], list[str]]:
    """Locked Debian versions that no apt source configured on the host offers (after apt-get update) and
    that dpkg does not have; second: notes on packages from sources a role adds later (not checkable yet)."""
    conn = lab.runner()
    missing: list[Unavailable] = []
    notes: list[str] = []

    def one(host: str) -> None:
        want = locked.hosts[host]
        conn.put_text(host, json.dumps({"debian": want.debian, "origins": want.origins}), "/tmp/.labctl-locked.json")
        data = _run_hostinfo(conn, host, "available", "/tmp/.labctl-locked.json")
        conn.run(host, "rm -f /tmp/.labctl-locked.json")
        missing.extend(Unavailable(host, p, v) for p, v in sorted((data.get("missing") or {}).items()))
        elsewhere = data.get("elsewhere") or {}
        if elsewhere:
            sites = sorted({o.split(" ")[0] for o in elsewhere.values()})
            notes.append(f"{host}: {len(elsewhere)} package(s) come from {', '.join(sites)}, a source a role adds")

    try:
        in_parallel(one, [h for h in lab.topo.hosts if h in locked.hosts])
    finally:
        conn.close()
    return sorted(missing, key=lambda u: (u.host, u.package)), notes


def require_hosts(lab: Lab, locked: lockfile.Lock, lock_file: Path) -> None:
    """Every host of the topology must be in the lock."""
    absent = [h for h in lab.topo.hosts if h not in locked.hosts]
    if absent:
        raise LabError(
            f"{lock_file}: the lock has no host {', '.join(absent)} of lab {lab.name!r} (it was written for a "
            "different topology). Fix: bring the lab up without --locked and write a new lock with 'labctl lock'."
        )


def unavailable_error(lock_file: Path, missing: list[Unavailable]) -> LabError:
    lines = "\n".join(f"    {u.host}: {u.package}={u.version}" for u in missing[:60])
    more = f"\n    ... and {len(missing) - 60} more" if len(missing) > 60 else ""
    return LabError(
        f"{lock_file}: {len(missing)} locked package version(s) are offered by no apt source the hosts have "
        f"configured, so 'up --locked' changed nothing:\n{lines}{more}\n"
        "Fix: point the hosts at a mirror that still has them (e.g. common_apt_mirror: "
        "http://snapshot.debian.org/archive/debian/<date>/ in the topology's vars), restore a saved lab "
        "with 'labctl up --from lab.tar', or write a new lock with 'labctl lock'."
    )


def status(lab: Lab, hosts_up: bool) -> dict[str, Any]:
    """What `status` says of a lab's lock: whether it is locked (`up --locked`), restored (from which
    archive), and, when a lock exists and every host runs, whether the lab drifted from it."""
    data = lab.state.read() if lab.state.exists() else {}
    lock_file = lab_lock_file(lab)
    out: dict[str, Any] = {
        "locked": bool(data.get("locked")),
        "restored": data.get("restored"),
        "lock": str(lock_file) if lock_file.exists() else None,
        "drifted": None,
        "drift": [],
    }
    if lock_file.exists() and hosts_up:
        report = check(lab, lock_file)
        out["drifted"] = not report.ok
        out["drift"] = [d.line() for d in report.drift]
    return out


def up_options(lab: Lab, say: Callable[[str], None]) -> tuple[dict[str, Any], Path]:
    """What `up --locked` passes to lab.up: the lock's text and the availability check run before converging;
    and the lock's path. Refuses a lock that misses a host of the topology; says when the topology changed."""
    lock_file = lockfile.lock_path(lab.topo.path)
    held = lockfile.read(lock_file)
    require_hosts(lab, held, lock_file)
    if held.topology_sha256 != lockfile.topology_hash(topology_raw(lab)):
        say(f"note: {lab.topo.path} changed since {lock_file.name} was written (its hosts are all locked)")

    def available(running: Lab) -> None:
        say("checking that every locked version is offered by the hosts' apt sources (apt-get update)")
        missing, notes = unavailable(running, held)
        for note in notes:
            say(f"not checked: {note}")
        if missing:
            raise unavailable_error(lock_file, missing)

    return {"lock_text": lock_file.read_text(), "before_converge": available}, lock_file
