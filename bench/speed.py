#!/usr/bin/env python3
"""Issue 13's figures, measured now and printed beside the values before the change.

Usage: .venv/bin/python bench/speed.py [lab] [scale] [mitogen] [smoke --name LAB]
           [--subnets 198.19.40.0/24 198.19.41.0/24 198.19.42.0/24] [--prefix sp] [--keep-cache]

  lab      the default lab (renamed <prefix>def, on the first two subnets): a cold `up --no-smoke`
           from an EMPTY package cache (a private apt-cacher-ng on port 3148), a warm re-`up` with
           nothing changed against a bare `ansible-playbook -i "$(labctl inventory)"` run, `smoke`,
           `down`, and a second cold `up --no-smoke` from the now filled cache.
  scale    30 plain hosts (lab <prefix>30, third subnet): created (per phase), `common` converged
           on all 30 through the shared cache, then 30 hosts download the same packages at once
           through it (apt checks every file's SHA256 against the signed index: a torn or mixed cache
           file fails the host).
  cache    30 fresh hosts update and download the same packages at once through an empty private
           cache, then again through the filled one (apt verifies every file).
  smoke    `labctl smoke --json` on the running lab --name (e.g. a default lab brought up by hand):
           the wall time, and each service's checks with their seconds (services run concurrently,
           the checks of one service in order, so the slowest service bounds the wall time).
  mitogen  on the running lab of `lab` (kept with --keep-lab): a bare warm ansible-playbook run with
           the linear strategy and with mitogen_linear, when mitogen is installed.

Every lab gets a private state directory and is removed at the end; each step's output goes to
bench/.logs/. Timings depend on the machine's load: the load average is printed with each figure."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LABCTL = str(Path(sys.executable).parent / "labctl")
PLAYBOOK = str(Path(sys.executable).parent / "ansible-playbook")
LOGS = ROOT / "bench" / ".logs"
BEFORE = {  # issue 13, measured on this machine kind before the change
    "cold": "converge 256 s of a 7 min 26 s fresh `setup.sh && up` (no cache: every cold up downloads it all)",
    "warm": "55 s quiet, 124 s loaded",
    "bare": "109 s (same run as the 124 s)",
    "ratio_warm": "1.14",
    "smoke": "44-51 s",
    "create30": "27 s",
    "common30": "286 s",
}


def load() -> str:
    return f"load {os.getloadavg()[0]:.1f}"


def step(name: str, env: dict[str, str], *cmd: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.monotonic()
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    seconds = time.monotonic() - start
    (LOGS / f"speed-{name}.log").write_text(
        f"$ {' '.join(cmd)}\nexit {result.returncode}\n{result.stdout}\n{result.stderr}"
    )
    return seconds, result


def show(
    figure: str, seconds: float, result: subprocess.CompletedProcess[str] | None, before: str, extra: str = ""
) -> None:
    rc = "" if result is None else f" (exit {result.returncode})"
    print(f"{figure:<44} {seconds:7.1f} s{rc:<10} before: {before}{extra}  [{load()}]", flush=True)


def default_lab(path: Path, name: str, outside: str, inside: str) -> None:
    text = (ROOT / "labs" / "default.yml").read_text()
    text = text.replace("name: default", f"name: {name}")
    text = text.replace("198.18.1.0/24", outside).replace("198.18.2.0/24", inside)
    path.write_text(text)


def plain_lab(path: Path, name: str, subnet: str, hosts: int) -> None:
    lines = ["---", "schema: 1", f"name: {name}", "networks:", f"  - {{name: lab, subnet: {subnet}}}", "hosts:"]
    lines += [f"  - {{name: h{i:02d}, groups: [], networks: [lab]}}" for i in range(1, hosts + 1)]
    path.write_text("\n".join(lines) + "\n")


def converge_line(stderr: str) -> str:
    said = " ".join(stderr.split())
    found = re.search(r"converge ([0-9.]+) s", said)
    return f" (converge phase {found.group(1)} s)" if found else ""


class PrivateCache:
    """An empty apt-cacher-ng of the bench's own (port 3148, a temporary cache directory)."""

    def __init__(self, tmp: Path, port: int = 3148) -> None:
        self.env = {"LABCTL_PKGCACHE_PORT": str(port), "LABCTL_PKGCACHE_DIR": str(tmp / "acng")}
        self.port = port

    def stop(self) -> None:
        pidfile = Path(f"/run/labctl-acng-{self.port}/pid")
        if pidfile.exists():
            with contextlib.suppress(ValueError, ProcessLookupError):
                os.kill(int(pidfile.read_text().strip()), signal.SIGTERM)


def bench_lab(args: argparse.Namespace, tmp: Path) -> None:
    name = f"{args.prefix}def"
    lab = tmp / f"{name}.yml"
    default_lab(lab, name, args.subnets[0], args.subnets[1])
    cache = PrivateCache(tmp)
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp / "state"), **cache.env)
    subprocess.run([LABCTL, "down", "--name", name], capture_output=True, env=env, check=False)
    try:
        s, r = step("cold1", env, LABCTL, "up", "-f", str(lab), "--no-smoke")
        first = s
        show("cold up --no-smoke, empty cache", s, r, BEFORE["cold"], converge_line(r.stderr))
        s, r = step("warm", env, LABCTL, "up", "-f", str(lab), "--no-smoke")
        warm = s
        ran = "no ansible-playbook" if "ansible-playbook not run" in r.stderr else "ansible-playbook ran"
        show("warm up --no-smoke, nothing changed", s, r, BEFORE["warm"], f" ({ran})")
        inv = subprocess.run([LABCTL, "inventory", "-f", str(lab)], capture_output=True, text=True, env=env, check=True)
        s, r = step("bare", env, PLAYBOOK, "-i", inv.stdout.strip(), "playbooks/site.yml")
        show("bare ansible-playbook, same lab", s, r, BEFORE["bare"])
        print(
            f"{'ratio warm up / bare ansible-playbook':<44} {warm / s:7.2f}             before: "
            f"{BEFORE['ratio_warm']}  goal <= 0.15",
            flush=True,
        )
        s, r = step("smoke", env, LABCTL, "smoke", "-f", str(lab))
        show("smoke, default lab", s, r, BEFORE["smoke"], "  goal <= 20 s")
        if "mitogen" in args.what:
            bench_mitogen(env, inv.stdout.strip())
        s, r = step("down1", env, LABCTL, "down", "-f", str(lab))
        s, r = step("cold2", env, LABCTL, "up", "-f", str(lab), "--no-smoke")
        show("second cold up --no-smoke, filled cache", s, r, "as the first", converge_line(r.stderr))
        print(
            f"{'ratio second cold up / first':<44} {s / first:7.2f}             before: ~1.0 (no cache)  goal <= 0.45",
            flush=True,
        )
    finally:
        subprocess.run([LABCTL, "down", "--name", name], capture_output=True, env=env, check=False)
        cache.stop()


def bench_mitogen(env: dict[str, str], inventory: str) -> None:
    try:
        import ansible_mitogen  # type: ignore[import-not-found]
    except ImportError:
        print("mitogen: not installed (pip install mitogen); not measured", flush=True)
        return
    plugins = str(Path(ansible_mitogen.__file__).parent / "plugins" / "strategy")
    s, r = step("bare-linear", env, PLAYBOOK, "-i", inventory, "playbooks/site.yml")
    show("warm bare ansible-playbook, linear", s, r, BEFORE["bare"])
    menv = dict(env, ANSIBLE_STRATEGY_PLUGINS=plugins, ANSIBLE_STRATEGY="mitogen_linear")
    s2, r2 = step("bare-mitogen", menv, PLAYBOOK, "-i", inventory, "playbooks/site.yml")
    show("warm bare ansible-playbook, mitogen_linear", s2, r2, f"linear {s:.1f} s this run")


DOWNLOAD = "memcached libzmq5 libmemcached11 swig"  # not in the base image: fetched through the cache


def bench_scale(args: argparse.Namespace, tmp: Path, hosts: int = 30) -> None:
    name = f"{args.prefix}{hosts}"
    lab = tmp / f"{name}.yml"
    plain_lab(lab, name, args.subnets[2], hosts)
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp / "state"))
    subprocess.run([LABCTL, "down", "--name", name], capture_output=True, env=env, check=False)
    try:
        s, r = step(f"create{hosts}", env, LABCTL, "up", "-f", str(lab), "--no-provision")
        said = " ".join(r.stderr.split())
        phases = re.search(r"hosts phases: (.*?) »", said + " »")
        show(f"{hosts} hosts created (up --no-provision)", s, r, BEFORE["create30"], "  goal <= 15 s")
        print(f"    phases: {phases.group(1) if phases else '?'}", flush=True)
        s, r = step(f"common{hosts}", env, LABCTL, "up", "-f", str(lab), "--no-smoke")
        show(
            f"common on {hosts} fresh hosts (up --no-smoke)",
            s,
            r,
            BEFORE["common30"],
            converge_line(r.stderr) + "  goal <= 60 s",
        )
        cmd = (
            "rm -f /var/cache/apt/archives/*.deb && "
            f"apt-get install -y -q --download-only --reinstall {DOWNLOAD} >/dev/null && "
            "ls /var/cache/apt/archives/*.deb | wc -l"
        )
        s, r = step(f"download{hosts}", env, LABCTL, "exec", "-f", str(lab), "--all", "--json", "--", "sh", "-c", cmd)
        rows = json.loads(r.stdout or '{"hosts": []}')["hosts"]
        ok = [h for h in rows if h["exit_code"] == 0]
        debs = {h["stdout"].strip() for h in ok}
        show(
            f"{hosts} hosts download at once via the cache",
            s,
            r,
            "no shared cache",
            f"  {len(ok)}/{len(rows)} hosts ok, .deb files per host {sorted(debs)} (apt checked each SHA256)",
        )
    finally:
        subprocess.run([LABCTL, "down", "--name", name], capture_output=True, env=env, check=False)


def bench_cache(args: argparse.Namespace, tmp: Path, hosts: int = 30) -> None:
    """hosts fresh hosts fetch the same indexes and packages at once through an EMPTY private cache
    (concurrent misses of the same files), then again (all hits). apt checks every index against the
    signed Release file and every .deb's SHA256 against the index: a torn or mixed file fails a host."""
    name = f"{args.prefix}c{hosts}"
    lab = tmp / f"{name}.yml"
    plain_lab(lab, name, args.subnets[2], hosts)
    cache = PrivateCache(tmp)
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp / "state"), LABCTL_PKGCACHE="off")
    subprocess.run([LABCTL, "down", "--name", name], capture_output=True, env=env, check=False)
    try:
        step(f"cache-up{hosts}", env, LABCTL, "up", "-f", str(lab), "--no-provision")
        subprocess.run(
            [sys.executable, "-c", "from labctl.providers import pkgcache; pkgcache.ensure(print)"],
            env=dict(os.environ, **cache.env),
            check=True,
        )
        gateway = args.subnets[2].rsplit(".", 1)[0] + ".1"
        proxy = f"-o Acquire::http::Proxy=http://{gateway}:{cache.port}"
        cmd = (
            "rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb && "
            f"apt-get {proxy} -q update >/dev/null && "
            f"apt-get {proxy} install -y -q --download-only {DOWNLOAD} >/dev/null && "
            "ls /var/cache/apt/archives/*.deb | wc -l"
        )
        for wave in ("empty cache", "filled cache"):
            s, r = step(
                f"cache-{wave.split()[0]}",
                env,
                LABCTL,
                "exec",
                "-f",
                str(lab),
                "--all",
                "--json",
                "--",
                "sh",
                "-c",
                cmd,
            )
            rows = json.loads(r.stdout or '{"hosts": []}')["hosts"]
            ok = [h for h in rows if h["exit_code"] == 0]
            debs = sorted({h["stdout"].strip() for h in ok})
            show(
                f"{hosts} hosts update+download at once, {wave}",
                s,
                r,
                "every host from the mirror",
                f"  {len(ok)}/{len(rows)} ok, .debs per host {debs}",
            )
    finally:
        subprocess.run([LABCTL, "down", "--name", name], capture_output=True, env=env, check=False)
        cache.stop()


def bench_smoke(args: argparse.Namespace) -> None:
    if not args.name:
        print("smoke: needs --name LAB (a running lab)", flush=True)
        return
    s, r = step("smoke-running", dict(os.environ), LABCTL, "smoke", "--name", args.name, "--json")
    show(f"smoke, lab {args.name}", s, r, BEFORE["smoke"], "  goal <= 20 s")
    checks = json.loads(r.stdout or '{"checks": []}')["checks"]
    services: dict[str, list[dict[str, object]]] = {}
    for c in checks:
        services.setdefault(str(c["service"]), []).append(c)
    for service, rows in sorted(services.items(), key=lambda kv: -sum(float(str(c["seconds"])) for c in kv[1])):
        total = sum(float(str(c["seconds"])) for c in rows)
        bad = [c for c in rows if c["status"] not in ("passed", "skipped")]
        each = ", ".join(f"{c['check']} {float(str(c['seconds'])):.1f}" for c in rows)
        print(f"    {service:<16} {total:5.1f} s{' FAILED ' + str(len(bad)) if bad else ''}: {each}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "what", nargs="*", default=["lab", "scale"], choices=["lab", "scale", "cache", "mitogen", "smoke"]
    )
    parser.add_argument("--name", default="", help="smoke: the running lab to check")
    parser.add_argument("--subnets", nargs=3, default=["198.19.40.0/24", "198.19.41.0/24", "198.19.42.0/24"])
    parser.add_argument("--prefix", default="sp", help="lab name prefix")
    args = parser.parse_args()
    LOGS.mkdir(exist_ok=True)
    if shutil.which("podman") is None:
        print("podman is not installed: run ./setup.sh first")
        return 2
    with tempfile.TemporaryDirectory(prefix="labctl-speed-") as tmp:
        if "lab" in args.what or "mitogen" in args.what:
            bench_lab(args, Path(tmp))
        if "scale" in args.what:
            bench_scale(args, Path(tmp))
        if "cache" in args.what:
            bench_cache(args, Path(tmp))
        if "smoke" in args.what:
            bench_smoke(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
