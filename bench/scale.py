#!/usr/bin/env python3
"""Time labs of plain hosts (no roles) from nothing to SSH-ready: `labctl up --no-provision`, then `down`.

Usage: .venv/bin/python bench/scale.py [--hosts 30 60] [--subnet 198.18.96.0/24] [--prefix scale]
Prints one line per lab size: seconds for up and down, and what the running hosts held of the
host's inotify instances/watches and memory (the figures behind labctl.providers.hostlimits). Each lab gets a
private state directory and is removed at the end; the output of each step goes to bench/.logs/."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from labctl.providers import hostlimits

LABCTL = str(Path(sys.executable).parent / "labctl")
LOGS = Path(__file__).resolve().parent / ".logs"


def topology(name: str, subnet: str, hosts: int) -> str:
    lines = ["---", "schema: 1", f"name: {name}", "networks:", f"  - {{name: lab, subnet: {subnet}}}", "hosts:"]
    lines += [f"  - {{name: h{i:02d}, groups: [], networks: [lab]}}" for i in range(1, hosts + 1)]
    return "\n".join(lines) + "\n"


def mem_available_mib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 1024
    return 0.0


def step(name: str, env: dict[str, str], *args: str) -> tuple[float, int, str]:
    start = time.monotonic()
    result = subprocess.run([LABCTL, *args], capture_output=True, text=True, env=env, check=False)
    seconds = time.monotonic() - start
    (LOGS / f"scale-{name}.log").write_text(result.stdout + result.stderr)
    return seconds, result.returncode, result.stderr


def bench(hosts: int, subnet: str, prefix: str) -> str:
    name = f"{prefix}{hosts}"
    with tempfile.TemporaryDirectory(prefix="labctl-scale-") as tmp:
        lab = Path(tmp) / f"{name}.yml"
        lab.write_text(topology(name, subnet, hosts))
        env = dict(os.environ, LABCTL_STATE_DIR=str(Path(tmp) / "state"))
        subprocess.run([LABCTL, "down", "--name", name], capture_output=True, env=env, check=False)
        load = os.getloadavg()[0]
        before, mem_before = hostlimits.usage(), mem_available_mib()
        up_s, up_rc, up_err = step(f"{name}-up", env, "up", "-f", str(lab), "--no-provision")
        after, mem_after = hostlimits.usage(), mem_available_mib()
        down_s, down_rc, _ = step(f"{name}-down", env, "down", "--name", name)
    hosts_phase = re.search(r"hosts ([0-9.]+) s", up_err)
    said = [" ".join(part.split()) for part in up_err.split("»")]  # undo rich's wrapping at 80 columns
    raised = [part for part in said if part.startswith("raised fs.inotify")]
    inst = after["max_user_instances"] - before["max_user_instances"]
    watches = after["max_user_watches"] - before["max_user_watches"]
    line = (
        f"{hosts:3d} hosts: up --no-provision {up_s:6.1f} s (exit {up_rc}; hosts phase "
        f"{hosts_phase.group(1) if hosts_phase else '?'} s), down {down_s:5.1f} s (exit {down_rc}); "
        f"inotify +{inst} instances ({inst / hosts:.1f}/host), +{watches} watches ({watches / hosts:.1f}/host); "
        f"memory {(mem_before - mem_after) / hosts:.0f} MiB/host; load average before {load:.1f}"
    )
    return line + "".join(f"\n      {r}" for r in raised)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, nargs="+", default=[30, 60])
    parser.add_argument("--subnet", default="198.18.96.0/24", help="the labs' one network (one lab at a time)")
    parser.add_argument("--prefix", default="scale", help="lab name prefix; the lab is <prefix><hosts>")
    args = parser.parse_args()
    LOGS.mkdir(exist_ok=True)
    for hosts in args.hosts:
        print(bench(hosts, args.subnet, args.prefix), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
