"""Host kernel limits a lab of systemd containers needs, checked before anything is created.

Every systemd container holds inotify instances of its own (systemd, dbus-daemon, systemd-logind),
and rootful containers count against root's fs.inotify.max_user_instances (128 on Debian): past
about 16 containers, systemd exits at boot with "Failed to create control group inotify object".
Measured on Debian 12 with the base image: 7 instances and 28 watches per running container,
more while it boots (its forked helpers hold copies). The figures below leave room for that."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabError

INSTANCES_PER_HOST = 10
WATCHES_PER_HOST = 200
HEADROOM = {"max_user_instances": 32, "max_user_watches": 8192}
PER_HOST = {"max_user_instances": INSTANCES_PER_HOST, "max_user_watches": WATCHES_PER_HOST}
# When a limit is too low, raise it to at least this (setup.sh persists the same values).
RAISE_TO = {"max_user_instances": 1024, "max_user_watches": 524288}
SYSCTL_DIR = Path("/proc/sys/fs/inotify")


@dataclass(frozen=True)
class Need:
    key: str  # max_user_instances | max_user_watches
    limit: int  # the limit in force
    in_use: int  # what this user's processes hold now
    hosts: int  # hosts about to start
    needed: int

    @property
    def sysctl(self) -> str:
        return f"fs.inotify.{self.key}"

    @property
    def target(self) -> int:
        return max(self.needed, RAISE_TO[self.key])


def needs(hosts: int, in_use: dict[str, int], limits: dict[str, int]) -> list[Need]:
    """The inotify limits that are too low for `hosts` more systemd containers (pure)."""
    out: list[Need] = []
    if hosts <= 0:
        return out
    for key, per_host in PER_HOST.items():
        needed = in_use.get(key, 0) + hosts * per_host + HEADROOM[key]
        if needed > limits[key]:
            out.append(Need(key, limits[key], in_use.get(key, 0), hosts, needed))
    return out


def usage(proc: Path = Path("/proc"), uid: int | None = None) -> dict[str, int]:
    """inotify instances and watches held by this user's processes (an upper bound: a descriptor
    shared by a forked child is counted twice)."""
    uid = os.geteuid() if uid is None else uid
    instances = watches = 0
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if entry.stat().st_uid != uid:
                continue
            fds = list((entry / "fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) != "anon_inode:inotify":
                    continue
                instances += 1
                info = (entry / "fdinfo" / fd.name).read_text()
            except OSError:
                continue
            watches += info.count("inotify wd:")
    return {"max_user_instances": instances, "max_user_watches": watches}


def limits(sysctl_dir: Path = SYSCTL_DIR) -> dict[str, int]:
    return {key: int((sysctl_dir / key).read_text()) for key in PER_HOST}


def ensure_inotify(hosts: int, say: Callable[[str], None], sysctl_dir: Path = SYSCTL_DIR) -> None:
    """Raise the inotify limits `hosts` more systemd containers need, or stop naming the sysctl and value."""
    if hosts <= 0 or not sysctl_dir.is_dir():
        return
    for need in needs(hosts, usage(), limits(sysctl_dir)):
        why = (
            f"{need.hosts} host(s) to start need about {need.needed} "
            f"({PER_HOST[need.key]} each, {need.in_use} in use, {HEADROOM[need.key]} spare)"
        )
        try:
            (sysctl_dir / need.key).write_text(f"{need.target}\n")
        except OSError as exc:
            raise LabError(
                f"{need.sysctl} is {need.limit}, too low: {why}, and labctl cannot raise it ({exc.strerror}); "
                f"systemd in the containers would fail with 'Too many open files'. Fix: as root, run "
                f"'sysctl -w {need.sysctl}={need.target}' (setup.sh keeps it in /etc/sysctl.d/60-labctl.conf)."
            ) from None
        say(f"raised {need.sysctl} from {need.limit} to {need.target} (as root): {why}")
