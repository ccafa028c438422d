"""`down` with a damaged or lost state, and a `down` stopped midway: run against a fake `podman` and
`iptables` first on PATH (they record their calls and never touch the machine), in a scratch state
root and a scratch runtime directory. Scratch siblings prove nothing else is removed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

LABCTL = str(Path(sys.executable).parent / "labctl")

FAKE_PODMAN = r"""#!PYTHON
import json, os, sys, time
world_path = os.environ["FAKE_WORLD"]
world = json.load(open(world_path))
args = sys.argv[1:]
with open(os.environ["FAKE_LOG"], "a") as log:
    log.write("podman " + " ".join(args) + "\n")
fail = os.environ.get("FAKE_FAIL", "")
if fail and " ".join(args).startswith(fail):
    sys.stderr.write("Error: fake failure of " + fail + "\n")
    sys.exit(125)
if os.environ.get("FAKE_SLOW", "") and " ".join(args).startswith(os.environ["FAKE_SLOW"]):
    time.sleep(60)
def label_filter():
    for i, a in enumerate(args):
        if a == "--filter":
            return args[i + 1].split("=", 1)[1]
    return None
def matches(c, flt):
    if flt is None:
        return True
    key, _, value = flt.partition("=")
    return key in c["Labels"] and (not value or c["Labels"][key] == value)
if args[:1] == ["ps"]:
    flt = label_filter()
    found = [c for c in world["containers"] if matches(c, flt)]
    if "-q" in args:
        print("\n".join(c["Id"] for c in found))
    else:
        print(json.dumps(found))
elif args[:1] == ["rm"]:
    ids = [a for a in args[1:] if not a.startswith("--") and a != "5"]
    world["containers"] = [c for c in world["containers"] if c["Id"] not in ids]
elif args[:2] == ["network", "ls"]:
    print(json.dumps(world["networks"]))
elif args[:2] == ["network", "rm"]:
    names = [a for a in args[2:] if not a.startswith("--")]
    world["networks"] = [n for n in world["networks"] if n["name"] not in names]
json.dump(world, open(world_path, "w"))
"""

FAKE_IPTABLES = r"""#!/bin/sh
echo "iptables $*" >> "$FAKE_LOG"
case "$*" in *" -S POSTROUTING"*) echo "-P POSTROUTING ACCEPT" ;; esac
exit 0
"""


def container(lab: str, host: str) -> dict:  # type: ignore[type-arg]
    return {"Id": f"id-{lab}-{host}", "State": "running", "Labels": {"labctl.lab": lab, "labctl.host": host}}


def network(lab: str, name: str, subnet: str) -> dict:  # type: ignore[type-arg]
    return {
        "name": f"labctl-{lab}-{name}",
        "network_interface": f"br-{name}",
        "subnets": [{"subnet": subnet}],
        "labels": {"labctl.lab": lab, "labctl.network": name},
    }


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[dict[str, str]]:
    """PATH with fake podman/iptables, a scratch state root and runtime dir, a world of two labs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "podman").write_text(FAKE_PODMAN.replace("PYTHON", sys.executable))
    (bin_dir / "iptables").write_text(FAKE_IPTABLES)
    for tool in ("podman", "iptables"):
        (bin_dir / tool).chmod(0o755)
    world = {
        "containers": [container("dmg", "h1"), container("dmg", "h2"), container("keep", "h1")],
        "networks": [network("dmg", "lab", "198.18.90.0/24"), network("keep", "lab", "198.18.91.0/24")],
    }
    (tmp_path / "world.json").write_text(json.dumps(world))
    # unix socket paths are short: the runtime root must be too (pytest's tmp_path is long)
    run_root = Path(tempfile.mkdtemp(prefix="lc-"))
    state_root = tmp_path / "state"
    for d in (state_root / "dmg", state_root / "keep", run_root / "0123456789"):
        d.mkdir(parents=True)
        (d / "precious").write_text("must survive\n")
    env = dict(
        os.environ,
        PATH=f"{bin_dir}:{os.environ['PATH']}",
        LABCTL_STATE_DIR=str(state_root),
        LABCTL_RUNTIME_DIR=str(run_root),
        FAKE_WORLD=str(tmp_path / "world.json"),
        FAKE_LOG=str(tmp_path / "calls.log"),
    )
    (tmp_path / "calls.log").write_text("")
    yield env
    shutil.rmtree(run_root)


def flat(text: str) -> str:
    """stderr with rich's line wrapping undone (it wraps at 80 columns when not on a terminal)."""
    return " ".join(text.split())


def world(env: dict[str, str]) -> dict:  # type: ignore[type-arg]
    return json.loads(Path(env["FAKE_WORLD"]).read_text())  # type: ignore[no-any-return]


def calls(env: dict[str, str]) -> list[str]:
    return Path(env["FAKE_LOG"]).read_text().splitlines()


def labctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([LABCTL, *args], capture_output=True, text=True, env=env, check=False, timeout=120)


def control_dir(env: dict[str, str], lab: str) -> Path:
    """The lab's control socket directory, as labctl computes it for this environment."""
    code = (
        "from labctl.access import control_dir; from labctl.state import LabState; "
        "print(control_dir.control_path_dir(LabState(%r)))"
    )
    out = subprocess.run([sys.executable, "-c", code % lab], capture_output=True, text=True, env=env, check=True)
    return Path(out.stdout.strip())


def test_down_with_a_truncated_state_file_works_from_labels(fake: dict[str, str]) -> None:
    state_root = Path(fake["LABCTL_STATE_DIR"])
    (state_root / "dmg" / "state.json").write_text('{"name": "dmg", "phase": "up", "provi')
    cdir = control_dir(fake, "dmg")
    cdir.mkdir()
    listed = json.loads(labctl(fake, "status", "--all", "--json").stdout)["labs"]
    # (the qemu provider lists the machine's real VMs by their process labels: other labs may show)
    assert {r["name"]: r["phase"] for r in listed if r["name"] in ("dmg", "keep")} == {
        "dmg": "damaged",
        "keep": "no state",
    }

    res = labctl(fake, "down", "--name", "dmg")
    assert res.returncode == 0, res.stderr
    assert "podman ps -a -q --filter label=labctl.lab=dmg" in calls(fake)
    assert not any("labctl.lab=keep" in c or c.endswith("label=labctl.lab=") for c in calls(fake))
    assert [c["Id"] for c in world(fake)["containers"]] == ["id-keep-h1"]
    assert [n["name"] for n in world(fake)["networks"]] == ["labctl-keep-lab"]
    assert not (state_root / "dmg").exists() and not cdir.exists()
    # scratch siblings survive: the other lab's state, the runtime root and what else is in it
    assert (state_root / "keep" / "precious").read_text() == "must survive\n"
    assert (Path(fake["LABCTL_RUNTIME_DIR"]) / "0123456789" / "precious").exists()


def test_down_with_no_state_at_all_removes_the_labelled_resources(fake: dict[str, str]) -> None:
    res = labctl(fake, "down", "--name", "keep")
    assert res.returncode == 0, res.stderr
    assert [c["Id"] for c in world(fake)["containers"]] == ["id-dmg-h1", "id-dmg-h2"]
    assert (Path(fake["LABCTL_STATE_DIR"]) / "dmg" / "precious").exists()


def test_down_that_fails_midway_says_what_is_left_and_to_run_it_again(fake: dict[str, str]) -> None:
    env = dict(fake, FAKE_FAIL="network rm")
    res = labctl(env, "down", "--name", "dmg")
    assert res.returncode == 2
    assert "'down' of lab 'dmg' stopped: podman failed to remove the networks of lab 'dmg'" in flat(res.stderr)
    assert "Left: 1 network(s) (lab)" in flat(res.stderr)
    assert f"the state directory {Path(fake['LABCTL_STATE_DIR']) / 'dmg'}" in flat(res.stderr)
    assert "run 'labctl down --name dmg' again" in flat(res.stderr)
    assert "Traceback" not in res.stderr
    again = labctl(fake, "down", "--name", "dmg")
    assert again.returncode == 0, again.stderr
    assert [n["name"] for n in world(fake)["networks"]] == ["labctl-keep-lab"]


def test_down_interrupted_by_ctrl_c_says_what_is_left(fake: dict[str, str]) -> None:
    env = dict(fake, FAKE_SLOW="rm")
    proc = subprocess.Popen(
        [LABCTL, "down", "--name", "dmg"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any(c.startswith("podman rm") for c in calls(fake)):
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "'down' of lab 'dmg' was interrupted" in flat(err)
    assert "Left: 2 host(s) (h1, h2); 1 network(s) (lab)" in flat(err)
    assert "run 'labctl down --name dmg' again" in flat(err)
    assert labctl(fake, "down", "--name", "dmg").returncode == 0
    assert [c["Id"] for c in world(fake)["containers"]] == ["id-keep-h1"]
