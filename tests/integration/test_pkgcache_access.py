"""The package cache is no open proxy (issue 21 item 8), with real podman and a private apt-cacher-ng
on its own port (the machine's shared one on 3149 is never touched): it listens on 127.0.0.1 and the
lab bridge's gateway only, a host on a podman network that is not a lab's is refused (at its own
gateway and at the lab's: the port's iptables chain admits the lab's subnet only), and a lab host
downloads through it."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from labctl.providers import pkgcache
from labctl.providers.podman.provider import ULIMITS

from .conftest import podman_json, run

pytestmark = pytest.mark.integration

PORT = 23204  # below 32768: apt-cacher-ng 3.7.4 cannot bind higher ports
LAB = "ts-pcache"
SUBNET, GATEWAY = "198.18.204.0/24", "198.18.204.1"
FOREIGN, FOREIGN_SUBNET, FOREIGN_GATEWAY = "ts-pcache-foreign", "198.18.205.0/24", "198.18.205.1"
RELEASE = "http://deb.debian.org/debian/dists/bookworm/Release"


def _listeners() -> list[str]:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{PORT}"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[3] for line in out.splitlines())


def _outside_address() -> str:
    """This machine's address on its default route's interface."""
    out = subprocess.run(["ip", "-4", "route", "get", "192.0.2.200"], capture_output=True, text=True, check=True)
    words = out.stdout.split()
    return words[words.index("src") + 1]


def _stop_private_daemon() -> None:
    pid_file = Path(f"/run/labctl-acng-{PORT}/pid")
    try:
        pid = int(pid_file.read_text().strip())
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
    except (OSError, ValueError):
        return
    if comm == "apt-cacher-ng":
        os.kill(pid, signal.SIGTERM)
        for _ in range(100):
            if not Path(f"/proc/{pid}").exists():
                break
            time.sleep(0.1)


@pytest.fixture
def cache_env(tmp_path: Path, labenv: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    env = dict(labenv, LABCTL_PKGCACHE_PORT=str(PORT), LABCTL_PKGCACHE_DIR=str(tmp_path / "acng"))
    env.pop("LABCTL_PKGCACHE", None)
    yield env
    _stop_private_daemon()
    monkeypatch.setattr(pkgcache, "PORT", PORT)  # this test's chain, never the shared cache's
    pkgcache.remove_filter()  # proven against a fake iptables first: tests/unit/test_pkgcache.py
    assert subprocess.run(["iptables", "-S", pkgcache.chain()], capture_output=True).returncode != 0
    for directory in (
        f"/var/lib/labctl/apt-cacher-ng-{PORT}",
        f"/run/labctl-acng-{PORT}",
        f"/var/log/labctl-acng-{PORT}",
    ):
        shutil.rmtree(directory, ignore_errors=True)  # this test's private daemon's, by its own port


def _curl(*prefix: str, proxy: str) -> str:
    """The HTTP status of a GET of the mirror's Release file through ``proxy`` ("000": refused)."""
    cmd = [*prefix, "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "60", "-x", proxy, RELEASE]
    return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout.strip()


def test_the_cache_answers_lab_hosts_only(tmp_path: Path, cache_env: dict[str, str]) -> None:
    topo = tmp_path / f"{LAB}.yml"
    topo.write_text(
        f"schema: 1\nname: {LAB}\nnetworks: [{{name: lan, subnet: {SUBNET}}}]\nhosts: [{{name: h1, networks: [lan]}}]\n"
    )
    image = next(i for i in podman_json("images") if any("labctl/debian" in n for n in i.get("Names") or []))
    subprocess.run(
        ["podman", "network", "create", "--subnet", FOREIGN_SUBNET, FOREIGN], check=True, capture_output=True
    )
    try:
        run("up", "-f", str(topo), "--no-provision", env=cache_env)
        # the lab's inventory names the cache on its gateway; it listens there and on 127.0.0.1, on no
        # wildcard and not on this machine's outside address
        state = Path(cache_env["LABCTL_STATE_DIR"]) / LAB
        inv = yaml.safe_load((state / "inventory.yml").read_text())
        assert inv["all"]["hosts"]["h1"]["labctl_package_proxy"] == f"http://{GATEWAY}:{PORT}"
        # (other labs running on this machine have their gateways too)
        lab_gateways = {
            sub["gateway"]
            for net in podman_json("network", "ls")
            if (net.get("labels") or {}).get("labctl.lab")
            for sub in net.get("subnets") or []
            if sub.get("gateway")
        }
        listening = _listeners()
        assert {f"127.0.0.1:{PORT}", f"{GATEWAY}:{PORT}"} <= set(listening)
        assert all(a.rsplit(":", 1)[0] in lab_gateways | {"127.0.0.1"} for a in listening), listening
        assert f"0.0.0.0:{PORT}" not in listening and f"{_outside_address()}:{PORT}" not in listening
        # a lab host downloads through it
        got = run("exec", "h1", "--name", LAB, "--", "curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                  "--max-time", "60", "-x", f"http://{GATEWAY}:{PORT}", RELEASE, env=cache_env)  # fmt: skip
        assert got.stdout.strip() == "200"
        # this machine's outside address: refused
        assert _curl(proxy=f"http://{_outside_address()}:{PORT}") == "000"
        # a container on a podman network that is not a lab's, at its own gateway: refused
        limits = [arg for limit in ULIMITS for arg in ("--ulimit", limit)]
        foreign = ["podman", "run", "--rm", "--runtime", "runc", *limits, "--network", FOREIGN]
        foreign += ["--entrypoint", "", image["Id"]]
        assert _curl(*foreign, proxy=f"http://{FOREIGN_GATEWAY}:{PORT}") == "000"
        # ... and at the lab's gateway (Linux delivers it to any local address): reset by the filter
        assert _curl(*foreign, proxy=f"http://{GATEWAY}:{PORT}") == "000"
    finally:
        run("down", "--name", LAB, env=cache_env, check=False)
        subprocess.run(["podman", "network", "rm", FOREIGN], check=False, capture_output=True)


def test_a_host_downloads_directly_when_the_cache_does_not_answer(tmp_path: Path, cache_env: dict[str, str]) -> None:
    """The common role writes the apt proxy only when the cache answers the host; a proxy that does
    not answer (here: the topology names a port nothing listens on) leaves apt downloading directly."""
    topo = tmp_path / f"{LAB}.yml"
    base = (
        f"schema: 1\nname: {LAB}\nnetworks: [{{name: lan, subnet: {SUBNET}}}]\nhosts: [{{name: h1, networks: [lan]}}]\n"
    )
    topo.write_text(base)
    proxy_file = "/etc/apt/apt.conf.d/01labctl-proxy"
    try:
        run("up", "-f", str(topo), env=cache_env)
        got = run("exec", "h1", "--name", LAB, "--", "cat", proxy_file, env=cache_env).stdout
        assert f'"http://{GATEWAY}:{PORT}"' in got
        assert run("exec", "h1", "--name", LAB, "--", "apt-get", "-q", "update", env=cache_env).returncode == 0
        topo.write_text(base + f"vars: {{common_apt_proxy: 'http://{GATEWAY}:{PORT + 1}'}}\n")
        run("provision", "-f", str(topo), env=cache_env)
        gone = run("exec", "h1", "--name", LAB, "--", "test", "-e", proxy_file, env=cache_env, check=False)
        assert gone.returncode == 1
        assert run("exec", "h1", "--name", LAB, "--", "apt-get", "-q", "update", env=cache_env).returncode == 0
    finally:
        run("down", "--name", LAB, env=cache_env, check=False)
