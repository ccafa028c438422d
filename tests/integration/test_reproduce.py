"""Reproducing a lab, for real (podman, ansible-playbook, apt, pip), on one small lab (memcached + zeromq,
one host) that every step shares: lock → check → a Debian and a pip package changed by hand → check names
both → up --locked brings both back; a locked version no source has stops `up --locked` before it changes
anything; the lab rebuilt from nothing with `up --locked` runs exactly the lock (also versions apt would not
pick today); save → down → up --from with the lab's apt and pip pointed at a closed local port and apt lists
two days old → smoke green, converge with 0 changes and no list refresh, new host keys, still matches."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from .conftest import lab_containers, run

pytestmark = pytest.mark.integration

LAB = "it-repro"
RESTORED = "it-repro2"
TOPOLOGY = f"""---
schema: 1
name: {LAB}
networks:
  - {{name: lab, subnet: 198.18.150.0/24}}
hosts:
  - name: a
    groups: [memcached, memcached_clients, zeromq]
    networks: [lab]
    vars: {{common_extra_packages: [python3-pip]}}
"""
CLOSED = (
    'printf \'Acquire::http::Proxy "http://127.0.0.1:9";\\nAcquire::https::Proxy "http://127.0.0.1:9";\\n\''
    " > /etc/apt/apt.conf.d/99closed && printf '[global]\\nindex-url = http://127.0.0.1:9/simple\\n' > /etc/pip.conf"
)
# apt lists (and apt's update stamps) two days old: a converge that refreshed lists older than an hour would fail
AGE_LISTS = (
    "touch -d '2 days ago' /var/lib/apt/lists /var/lib/apt/lists/*"
    " && if [ -d /var/lib/apt/periodic ]; then find /var/lib/apt/periodic -exec touch -d '2 days ago' {} +; fi"
)
PIP_SIX = "1.15.0"  # a six the hand-change installs with pip over Debian's python3-six (1.16.0 on bookworm)


def installed(labenv: dict[str, str], where: list[str], package: str) -> str:
    return run("exec", *where, "a", "--", "dpkg-query", "-W", "-f", "${Version}", package, env=labenv).stdout.strip()


def other_version(labenv: dict[str, str], lab: Path, package: str) -> str:
    """A version of package the lab's sources offer that is not the installed one."""
    have = installed(labenv, ["-f", str(lab)], package)
    listing = run("exec", "-f", str(lab), "a", "--", "apt-cache", "madison", package, env=labenv).stdout
    versions = [line.split("|")[1].strip() for line in listing.splitlines() if "|" in line]
    others = [v for v in versions if v != have]
    if not others:
        pytest.skip(f"the mirror offers only one version of {package} ({have}): no drift can be made by hand")
    return others[0]


def python_version(labenv: dict[str, str], where: list[str], dist: str) -> str:
    """The version of dist that python3 on host a imports."""
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    return run("exec", *where, "a", "--", "python3", "-c", code, env=labenv).stdout.strip()


def pip_over_debian(labenv: dict[str, str], tmp_path: Path, dist: str, version: str) -> None:
    """Install dist==version with pip on host a over Debian's copy, from a wheel downloaded here (the lab's
    hosts do not trust this machine's way to PyPI)."""
    wheels = tmp_path / "wheels"
    download = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(wheels), f"{dist}=={version}"]
    subprocess.run(download, check=True)
    wheel = next(wheels.glob("*.whl"))
    subprocess.run(["podman", "cp", str(wheel), f"labctl-{LAB}_a:/tmp/{wheel.name}"], check=True)
    install = ["python3", "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--break-system-packages"]
    run("exec", "--name", LAB, "a", "--", *install, f"/tmp/{wheel.name}", env=labenv)


def test_lock_drift_locked_fresh_save_restore_offline(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = tmp_path / f"{LAB}.yml"
    lab.write_text(TOPOLOGY)
    lock_file = tmp_path / f"{LAB}.lock"
    f = ["-f", str(lab)]
    try:
        run("up", "--no-smoke", *f, env=labenv)  # the restored lab's smoke checks are the ones that matter

        # lock, and a running lab that matches it
        run("lock", *f, env=labenv)
        written = yaml.safe_load(lock_file.read_text())
        assert written["schema"] == 1 and written["lab"] == LAB
        assert written["image"]["id"] and written["image"]["recipe_hash"]
        assert written["hosts"]["a"]["debian"]["memcached"] and written["hosts"]["a"]["debian"]["libzmq3-dev"]
        assert written["hosts"]["a"]["python"]["system"]["pyzmq"]
        assert set(written["hosts"]["a"]["roles"]) >= {"memcached", "zeromq"}
        assert run("lock", "--check", *f, env=labenv).returncode == 0

        # a Debian package and a Python package changed by hand: --check exits 1 naming host, package,
        # locked → running
        locked_tz = written["hosts"]["a"]["debian"]["tzdata"]
        other = other_version(labenv, lab, "tzdata")
        downgrade = ["apt-get", "install", "-y", "-q", "--allow-downgrades", f"tzdata={other}"]
        run("exec", *f, "a", "--", *downgrade, env=labenv)
        locked_six = written["hosts"]["a"]["python"]["system"]["six"]
        assert locked_six != PIP_SIX
        pip_over_debian(labenv, tmp_path, "six", PIP_SIX)
        assert python_version(labenv, f, "six") == PIP_SIX
        drifted = run("lock", "--check", *f, env=labenv, check=False)
        assert drifted.returncode == 1, drifted.stdout + drifted.stderr
        assert f"a: debian tzdata: {locked_tz} → {other}" in drifted.stdout
        assert f"a: python:system six: {locked_six} → {PIP_SIX}" in drifted.stdout
        report = json.loads(run("lock", "--check", "--json", *f, env=labenv, check=False).stdout)
        assert report["matches"] is False
        assert {"host": "a", "kind": "debian", "package": "tzdata", "locked": locked_tz, "running": other} in (
            report["drift"]
        )
        status = json.loads(run("status", *f, "--json", env=labenv).stdout)["reproduction"]
        assert status["drifted"] is True and status["locked"] is False

        # a locked version no source offers: up --locked stops before converging, naming it
        bad = tmp_path / "bad"
        bad.mkdir()
        (bad / f"{LAB}.yml").write_text(TOPOLOGY)
        gone = yaml.safe_load(lock_file.read_text())
        gone["hosts"]["a"]["debian"]["memcached"] = "0.0-gone1"
        (bad / f"{LAB}.lock").write_text(yaml.safe_dump(gone))
        refused = run("up", "--locked", "-f", str(bad / f"{LAB}.yml"), env=labenv, check=False)
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "a: memcached=0.0-gone1" in refused.stderr and "changed nothing" in refused.stderr
        assert "play:" not in refused.stdout + refused.stderr  # no playbook ran
        assert installed(labenv, f, "tzdata") == other  # nothing was changed

        # up --locked brings both locked versions back, and says the lab matches its lock
        relocked = run("up", "--locked", "--no-smoke", *f, env=labenv)
        assert f"matches its lock {lock_file}" in relocked.stdout + relocked.stderr
        assert installed(labenv, f, "tzdata") == locked_tz
        assert python_version(labenv, f, "six") == locked_six
        assert run("lock", "--check", *f, env=labenv).returncode == 0

        # the lab rebuilt from nothing with --locked runs exactly the lock, also where it holds versions apt
        # would not pick today: tzdata (in the base image: moved to it) and curl + libcurl4 (installed by
        # common: installed at it)
        older = {"tzdata": other_version(labenv, lab, "tzdata"), "curl": other_version(labenv, lab, "curl")}
        older["libcurl4"] = older["curl"]  # curl depends on libcurl4 of its own version
        data = yaml.safe_load(lock_file.read_text())
        data["hosts"]["a"]["debian"].update(older)
        lock_file.write_text(yaml.safe_dump(data))
        run("down", *f, env=labenv)
        assert lab_containers(LAB) == []
        fresh = run("up", "--locked", "--no-smoke", *f, env=labenv)
        assert f"matches its lock {lock_file}" in fresh.stdout + fresh.stderr
        assert {p: installed(labenv, f, p) for p in older} == older
        assert run("lock", "--check", *f, env=labenv).returncode == 0
        assert json.loads(run("status", *f, "--json", env=labenv).stdout)["reproduction"]["locked"] is True

        # package sources made unreachable, apt lists aged, then save → down → restore under a new name
        run("exec", *f, "--all", "--", "sh", "-c", f"{CLOSED} && {AGE_LISTS}", env=labenv)
        old_key = run("exec", *f, "a", "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub", env=labenv).stdout
        saved = tmp_path / "lab.tar"
        out = run("save", *f, "-o", str(saved), env=labenv)
        assert f"saved lab {LAB}" in out.stdout + out.stderr
        assert saved.stat().st_mode & 0o777 == 0o644
        with tarfile.open(saved) as tar:
            names = tar.getnames()
            manifest = yaml.safe_load(tar.extractfile("manifest.yml").read())  # type: ignore[union-attr]
        assert {"manifest.yml", "topology.yml", "lab.lock"} <= set(names)
        assert not [n for n in names if "id_ed25519" in n or n.startswith("secrets")]
        assert manifest["secrets"] is False and manifest["locked"] is True
        run("down", *f, env=labenv)
        assert lab_containers(LAB) == []

        restored = run("up", "--from", str(saved), "--name", RESTORED, env=labenv)
        text = restored.stdout + restored.stderr
        assert "converge ok:" in text and ", 0 changes" in text, text
        assert "0 failed" in text  # the smoke checks ran and passed (a failure exits non-zero too)
        r = ["--name", RESTORED]
        # no role refreshed the two-day-old lists; the sources really are closed; new host keys; still matches
        lists_age = run("exec", *r, "a", "--", "stat", "-c", "%Y", "/var/lib/apt/lists", env=labenv).stdout
        assert time.time() - int(lists_age) > 86400
        update = run("exec", *r, "a", "--", "apt-get", "update", env=labenv, check=False)
        assert "127.0.0.1:9" in update.stdout + update.stderr
        assert run("exec", *r, "a", "--", "cat", "/etc/ssh/ssh_host_ed25519_key.pub", env=labenv).stdout != old_key
        assert run("lock", "--check", *r, env=labenv).returncode == 0
        info = json.loads(run("status", *r, "--json", env=labenv).stdout)
        assert [(h["name"], h["addresses"]) for h in info["hosts"]] == [("a", {"lab": "198.18.150.10"})]
        assert info["reproduction"]["restored"]["from_lab"] == LAB
        assert info["reproduction"]["locked"] is True and info["reproduction"]["drifted"] is False
    finally:
        run("down", "--name", LAB, env=labenv, check=False)
        run("down", "--name", RESTORED, env=labenv, check=False)
    assert lab_containers(RESTORED) == []
