#!/usr/bin/env python3
"""VMs side by side with containers: time to SSH and memory, for 1 host and for 3 in parallel.

    .venv/bin/python bench/vm.py [--runs N] [--all-vm-default-lab] [--prefix bench] [--subnets A,B,C]

For each case a lab of N hosts on one network is brought up with ``labctl up --no-provision``
(which returns once SSH answers on every host); the figure is the "hosts" phase of its timings
(create + boot + SSH). Memory: each VM's qemu RSS once SSH answers and again 30 s later (free page
reporting hands freed guest pages back); each container's memory as podman stats reports it.
``--all-vm-default-lab`` also brings the whole default lab up as VMs (every role, smoke) and prints
its cold up time. Labs are named bench-* (--prefix), on 198.18.127.0/24..198.18.129.0/24 (--subnets:
three /24s, e.g. when other labs use those), with a private state directory; each is removed after its
run. Run it on a quiet machine: figures are wall-clock.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LABCTL = str(ROOT / ".venv" / "bin" / "labctl")
SUBNETS = ["198.18.127.0/24", "198.18.128.0/24", "198.18.129.0/24"]
PREFIX = ["bench"]


def labctl(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LABCTL, *args], capture_output=True, text=True, env=env, check=False, timeout=3600)


def timings(stderr: str) -> dict[str, float]:
    text = " ".join(stderr.split())
    match = re.search(r"timings: (.*?)(?:$| »)", text)
    return {k: float(v) for k, v in re.findall(r"(\w+) ([\d.]+) s", match.group(1))} if match else {}


def qemu_rss_mb(lab: str) -> list[float]:
    marker = f"name=opt/labctl/id,string={lab}/".encode()
    out = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            if b"qemu-system" in args[0] and any(a.startswith(marker) for a in args):
                status = (proc / "status").read_text()
                out.append(int(re.search(r"VmRSS:\s+(\d+)", status).group(1)) / 1024)  # type: ignore[union-attr]
        except (OSError, AttributeError):
            continue
    return out


def container_mem_mb(lab: str) -> list[float]:
    ids = subprocess.run(
        ["podman", "ps", "-q", "--filter", f"label=labctl.lab={lab}"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    if not ids:
        return []
    stats = subprocess.run(
        ["podman", "stats", "--no-stream", "--format", "json", *ids], capture_output=True, text=True, check=False
    )
    out = []
    for item in json.loads(stats.stdout or "[]"):
        usage = str(item.get("mem_usage", "")).split("/")[0].strip()
        match = re.match(r"([\d.]+)([kMG]?B)", usage)
        if match:
            out.append(float(match.group(1)) * {"kB": 1 / 1000, "B": 1e-6, "MB": 1, "GB": 1000}[match.group(2)])
    return out


def write_lab(directory: Path, name: str, provider: str, count: int) -> Path:
    hosts = "\n".join(f"  - {{name: h{i}, networks: [n1]}}" for i in range(1, count + 1))
    text = f"schema: 1\nname: {name}\nprovider: {provider}\n"
    text += f"networks: [{{name: n1, subnet: {SUBNETS[0]}}}]\nhosts:\n{hosts}\n"
    path = directory / f"{name}.yml"
    path.write_text(text)
    return path


def case(directory: Path, env: dict[str, str], provider: str, count: int) -> dict[str, object]:
    name = f"{PREFIX[0]}-{'vm' if provider == 'qemu' else 'ct'}{count}"
    lab = write_lab(directory, name, provider, count)
    labctl("down", "-f", str(lab), env=env)
    started = time.monotonic()
    up = labctl("up", "-f", str(lab), "--no-provision", env=env)
    wall = time.monotonic() - started
    row: dict[str, object] = {"case": f"{count} x {provider}", "ok": up.returncode == 0, "up_s": round(wall, 1)}
    row["hosts_s"] = timings(up.stderr).get("hosts")
    if up.returncode != 0:
        row["error"] = up.stderr.strip()[-400:]
    elif provider == "qemu":
        row["rss_mb_at_ssh"] = [round(x) for x in qemu_rss_mb(name)]
        time.sleep(30)
        row["rss_mb_30s_later"] = [round(x) for x in qemu_rss_mb(name)]
    else:
        row["mem_mb"] = [round(x, 1) for x in container_mem_mb(name)]
    labctl("down", "-f", str(lab), env=env)
    return row


def all_vm_default_lab(directory: Path, env: dict[str, str]) -> dict[str, object]:
    text = (ROOT / "labs" / "default.yml").read_text()
    name = f"{PREFIX[0]}-allvm"
    text = text.replace("name: default", f"name: {name}").replace("provider: podman", "provider: qemu")
    text = text.replace("198.18.1.0/24", SUBNETS[1]).replace("198.18.2.0/24", SUBNETS[2])
    lab = directory / f"{name}.yml"
    lab.write_text(text)
    labctl("down", "-f", str(lab), env=env)
    started = time.monotonic()
    up = labctl("up", "-f", str(lab), env=env)
    row: dict[str, object] = {"case": "default lab, 6 VMs, cold up + smoke", "exit": up.returncode}
    row["wall_s"] = round(time.monotonic() - started, 1)
    row["timings"] = timings(up.stderr)
    row["rss_mb"] = [round(x) for x in qemu_rss_mb(name)]
    labctl("down", "-f", str(lab), env=env)
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1, help="repeat each case (median printed)")
    parser.add_argument("--all-vm-default-lab", action="store_true", help="also the whole default lab as VMs")
    parser.add_argument("--prefix", default="bench", help="lab name prefix (default bench)")
    parser.add_argument("--subnets", default=",".join(SUBNETS), help="three /24 subnets, comma-separated")
    args = parser.parse_args()
    PREFIX[0] = args.prefix
    SUBNETS[:] = args.subnets.split(",")
    if len(SUBNETS) != 3:
        parser.error("--subnets: give three subnets, comma-separated")
    with tempfile.TemporaryDirectory(prefix="labctl-bench-") as tmp:
        env = dict(os.environ, LABCTL_STATE_DIR=str(Path(tmp) / "state"))
        print(f"load average before: {os.getloadavg()[0]:.1f}  (cpus: {os.cpu_count()})", flush=True)
        for provider, count in (("podman", 1), ("qemu", 1), ("podman", 3), ("qemu", 3)):
            rows = [case(Path(tmp), env, provider, count) for _ in range(args.runs)]
            hosts = [r["hosts_s"] for r in rows if isinstance(r.get("hosts_s"), float)]
            best = dict(rows[-1])
            if hosts:
                best["hosts_s_median"] = round(statistics.median(hosts), 1)  # type: ignore[arg-type]
            print(json.dumps(best), flush=True)
        if args.all_vm_default_lab:
            print(json.dumps(all_vm_default_lab(Path(tmp), env)), flush=True)
        print(f"load average after: {os.getloadavg()[0]:.1f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
