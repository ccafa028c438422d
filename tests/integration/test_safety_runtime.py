"""Lost and damaged state, scale, hosts that exit during start, subnets taken on the host, and child
processes that die with labctl: real podman, real ansible-playbook (subnets 198.18.80-99.x)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.providers import image

from .conftest import LABCTL, lab_containers, lab_networks, run, write_lab

pytestmark = pytest.mark.integration

INOTIFY = Path("/proc/sys/fs/inotify/max_user_instances")


def flat(text: str) -> str:
    """stderr with rich's line wrapping undone (it wraps at 80 columns when not on a terminal)."""
    return " ".join(text.split())


def test_lost_state_is_repaired_by_up(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write_lab(tmp_path, "it-lost", "198.18.80.0/24")
    state_dir = Path(labenv["LABCTL_STATE_DIR"]) / "it-lost"
    try:
        run("up", "-f", str(lab), "--no-provision", env=labenv)
        ids = sorted(c["Id"] for c in lab_containers("it-lost"))
        old_key = (state_dir / "id_ed25519.pub").read_text()
        shutil.rmtree(state_dir)

        # found by its labels alone
        listed = json.loads(run("status", "--all", "--json", env=labenv).stdout)["labs"]
        row = next(r for r in listed if r["name"] == "it-lost")
        assert (row["phase"], row["containers"]) == ("no state", 2)
        status = run("status", "--name", "it-lost", "--json", env=labenv)
        assert [(h["name"], h["state"]) for h in json.loads(status.stdout)["hosts"]] == [
            ("h1", "running"),
            ("h2", "running"),
        ]
        assert "no state (lost)" in flat(status.stderr)

        again = run("up", "-f", str(lab), "--no-smoke", env=labenv)
        assert "the lab's state was lost" in flat(again.stderr) and "2 existing host(s)" in flat(again.stderr)
        assert "converge ok" in flat(again.stderr)
        assert sorted(c["Id"] for c in lab_containers("it-lost")) == ids
        new_key = (state_dir / "id_ed25519.pub").read_text()
        assert new_key != old_key
        for host in ("h1", "h2"):
            assert run("exec", "-f", str(lab), host, "--", "hostname", env=labenv).stdout.strip() == host
            keys = run("exec", "-f", str(lab), host, "--", "cat", "/root/.ssh/authorized_keys", env=labenv).stdout
            assert keys == new_key
        # a restart keeps the key (it lives in the host, not in a mount of the state directory)
        run("restart", "-f", str(lab), "h1", env=labenv)
        assert run("exec", "-f", str(lab), "h1", "--", "hostname", env=labenv).stdout.strip() == "h1"
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert lab_containers("it-lost") == [] and lab_networks("it-lost") == []


def test_truncated_state_is_listed_damaged_and_down_still_works(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write_lab(tmp_path, "it-trunc", "198.18.81.0/24", hosts=1)
    state_file = Path(labenv["LABCTL_STATE_DIR"]) / "it-trunc" / "state.json"
    control_dir = None
    try:
        run("up", "-f", str(lab), "--no-provision", env=labenv)
        control = Path(json.loads(run("inventory", "-f", str(lab), "--json", env=labenv).stdout)["ansible_cfg"])
        control_dir = Path(control.read_text().split("control_path_dir = ")[1].split()[0])
        assert control_dir.parent == Path("/run/labctl") and control_dir.stat().st_mode & 0o777 == 0o700
        state_file.write_text(state_file.read_text()[:40])

        listed = json.loads(run("status", "--all", "--json", env=labenv).stdout)["labs"]
        row = next(r for r in listed if r["name"] == "it-trunc")
        assert row["phase"] == "damaged" and "down --name it-trunc" in row["problem"]
        table = run("status", "--all", env=labenv).stdout
        assert "it-trunc" in table and "damaged" in table

        run("down", "--name", "it-trunc", env=labenv)
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert lab_containers("it-trunc") == [] and lab_networks("it-trunc") == []
    assert not state_file.parent.exists()
    assert control_dir is not None and not control_dir.exists()


def test_down_stopped_midway_says_what_is_left_and_a_second_down_finishes(
    tmp_path: Path, labenv: dict[str, str]
) -> None:
    lab = write_lab(tmp_path, "it-half", "198.18.82.0/24", hosts=1)
    # podman as usual, except that removing networks fails once
    wrapper = tmp_path / "bin"
    wrapper.mkdir()
    real = subprocess.run(["sh", "-c", "command -v podman"], capture_output=True, text=True, check=True).stdout.strip()
    (wrapper / "podman").write_text(
        f'#!/bin/sh\nif [ "$1 $2" = "network rm" ]; then echo "Error: refused for the test" >&2; exit 125; fi\n'
        f'exec {real} "$@"\n'
    )
    (wrapper / "podman").chmod(0o755)
    failing = dict(labenv, PATH=f"{wrapper}:{labenv['PATH']}")
    try:
        run("up", "-f", str(lab), "--no-provision", env=labenv)
        res = run("down", "--name", "it-half", env=failing, check=False)
        assert res.returncode == 2
        assert "'down' of lab 'it-half' stopped" in flat(res.stderr)
        assert "Left: 1 network(s) (lab)" in flat(res.stderr)
        assert "run 'labctl down --name it-half' again" in flat(res.stderr)
        assert lab_containers("it-half") == [] and lab_networks("it-half") == ["labctl-it-half_lab"]
        run("down", "--name", "it-half", env=labenv)
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert lab_networks("it-half") == []


@pytest.fixture
def inotify_128() -> Iterator[None]:
    """fs.inotify.max_user_instances at Debian's 128 for the test (under the shared lock), restored after."""
    if not os.access(INOTIFY, os.W_OK):
        pytest.skip("cannot write fs.inotify.max_user_instances here (not root, or /proc/sys read-only)")
    previous = INOTIFY.read_text()
    INOTIFY.write_text("128\n")
    try:
        yield
    finally:
        INOTIFY.write_text(previous)


def test_thirty_hosts_from_an_inotify_limit_of_128(tmp_path: Path, labenv: dict[str, str], inotify_128: None) -> None:
    lab = write_lab(tmp_path, "it-thirty", "198.18.83.0/24", hosts=30)
    try:
        res = run("up", "-f", str(lab), "--no-provision", env=labenv)
        assert "raised fs.inotify.max_user_instances from 128 to 1024 (as root)" in flat(res.stderr)
        assert int(INOTIFY.read_text()) == 1024
        containers = lab_containers("it-thirty")
        assert len(containers) == 30 and {c["State"] for c in containers} == {"running"}
        for host in ("h1", "h30"):
            assert run("exec", "-f", str(lab), host, "--", "hostname", env=labenv).stdout.strip() == host
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert lab_containers("it-thirty") == []


def test_a_host_that_exits_during_start_is_named_with_its_console(tmp_path: Path, labenv: dict[str, str]) -> None:
    tag = "localhost/labctl-test/exits:1"
    recipe = tmp_path / "Containerfile"
    recipe.write_text(
        f'FROM {image.image_tag()}\nCMD ["/bin/sh", "-c", "echo booting; echo it-exit: cannot go on >&2; exit 3"]\n'
    )
    lab = tmp_path / "exits.yml"
    lab.write_text(
        f"schema: 1\nname: it-exit\nimage: {tag}\n"
        "networks: [{name: lab, subnet: 198.18.84.0/24}]\nhosts: [{name: quitter, networks: [lab]}]\n"
    )
    try:
        subprocess.run(["podman", "build", "-q", "-t", tag, "-f", str(recipe), str(tmp_path)], check=True)
        res = run("up", "-f", str(lab), "--no-provision", env=labenv, check=False)
        assert res.returncode == 2
        assert "host 'quitter' exited during start (exit code 3)" in flat(res.stderr)
        assert "it-exit: cannot go on" in flat(res.stderr)
        assert "did not answer within" not in flat(res.stderr)
        assert "Traceback" not in flat(res.stderr)
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
        subprocess.run(["podman", "rmi", "--force", tag], capture_output=True, check=False)
    assert lab_containers("it-exit") == []


@pytest.fixture
def host_route() -> Iterator[str]:
    """A route of the host's own to 198.18.86.0/24 (a blackhole: no interface needed), removed after."""
    subprocess.run(["ip", "route", "add", "blackhole", "198.18.86.0/24"], check=True)
    try:
        yield "198.18.86.0/24"
    finally:
        subprocess.run(["ip", "route", "del", "blackhole", "198.18.86.0/24"], check=True)


def test_subnets_taken_on_the_host_are_refused_before_anything_is_made(
    tmp_path: Path, labenv: dict[str, str], host_route: str
) -> None:
    for subnet, what in (
        ("10.88.0.0/24", "overlaps podman network 'podman', which labctl did not create (10.88.0.0/16)"),
        ("198.18.86.128/25", f"overlaps the host's route to {host_route} ({host_route})"),
    ):
        lab = write_lab(tmp_path, "it-taken", subnet, hosts=1)
        res = run("up", "-f", str(lab), "--no-provision", env=labenv, check=False)
        assert res.returncode == 2, res.stderr
        assert f"field 'networks.lab.subnet': {subnet} {what}" in flat(res.stderr)
        assert "Fix: pick a subnet" in flat(res.stderr)
        assert lab_containers("it-taken") == [] and lab_networks("it-taken") == []
        assert not (Path(labenv["LABCTL_STATE_DIR"]) / "it-taken").exists()


def _ansible_of(state_dir: Path) -> list[int]:
    """ansible-playbook processes (and their workers) that run against this state directory's lab."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if b"ansible-playbook" in cmdline and f"ANSIBLE_CONFIG={state_dir}/".encode() in environ:
            pids.append(int(entry.name))
    return pids


def _results_seen(state_dir: Path) -> bool:
    return any('"event": "result"' in f.read_text() for f in (state_dir / "logs").glob("converge-*.events"))


def test_sigkill_of_up_during_converge_leaves_no_ansible_playbook(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write_lab(tmp_path, "it-kill", "198.18.85.0/24", hosts=1)
    state_dir = Path(labenv["LABCTL_STATE_DIR"]) / "it-kill"
    container = "labctl-it-kill_h1"
    try:
        run("up", "-f", str(lab), "--no-provision", env=labenv)
        proc = subprocess.Popen(
            [LABCTL, "up", "-f", str(lab), "--no-smoke"],
            env=labenv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not _results_seen(state_dir) and proc.poll() is None:
            time.sleep(0.1)
        assert _ansible_of(state_dir) and _results_seen(state_dir), "no converge under way"
        # freeze the host: a converge left running would now hang on it (for 45 s and more),
        # so only killing it ends it within the wait below
        subprocess.run(["podman", "pause", container], check=True, capture_output=True)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 20  # gone in about a second
        while time.monotonic() < deadline and _ansible_of(state_dir):
            time.sleep(0.2)
        assert _ansible_of(state_dir) == []
    finally:
        subprocess.run(["podman", "unpause", container], check=False, capture_output=True)
        run("down", "-f", str(lab), env=labenv, check=False)
    assert lab_containers("it-kill") == []
