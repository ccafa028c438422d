"""Resource names with real podman: labs whose names used to meet live side by side, a name another
lab holds is refused before anything is created, and exec takes labctl's options after the host."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .conftest import lab_containers, lab_networks, podman_json, run

pytestmark = pytest.mark.integration


def _lab(tmp_path: Path, name: str, host: str, network: str, subnet: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(
        f"schema: 1\nname: {name}\nnetworks: [{{name: {network}, subnet: {subnet}}}]\n"
        f"hosts: [{{name: {host}, networks: [{network}]}}]\n"
    )
    return path


def test_labs_whose_names_used_to_collide_live_side_by_side(tmp_path: Path, labenv: dict[str, str]) -> None:
    """Lab it-rb7 + host x-a1 and lab it-rb7-x + host a1 were both container labctl-it-rb7-x-a1 (and
    network x-lan / lan both labctl-it-rb7-x-lan): the second lab reused the first one's network."""
    first = _lab(tmp_path, "it-rb7", "x-a1", "x-lan", "198.18.70.0/24")
    second = _lab(tmp_path, "it-rb7-x", "a1", "lan", "198.18.71.0/24")
    try:
        run("up", "-f", str(first), "--no-provision", env=labenv)
        run("up", "-f", str(second), "--no-provision", env=labenv)
        assert [c["Names"] for c in lab_containers("it-rb7")] == [["labctl-it-rb7_x-a1"]]
        assert [c["Names"] for c in lab_containers("it-rb7-x")] == [["labctl-it-rb7-x_a1"]]
        assert lab_networks("it-rb7") == ["labctl-it-rb7_x-lan"]
        assert lab_networks("it-rb7-x") == ["labctl-it-rb7-x_lan"]
        # labctl's options after the host: each command reaches its own lab, not the default one
        assert run("exec", "x-a1", "-f", str(first), "--", "hostname", env=labenv).stdout.strip() == "x-a1"
        assert run("exec", "a1", "--name", "it-rb7-x", "--", "hostname", env=labenv).stdout.strip() == "a1"
        timed = run("exec", "a1", "--timeout", "60", "-f", str(second), "--", "getent", "hosts", "a1", env=labenv)
        assert timed.stdout.split()[0] == "198.18.71.10"
        run("down", "--name", "it-rb7", env=labenv)
        assert lab_containers("it-rb7") == [] and lab_networks("it-rb7") == []
        assert [c["State"] for c in lab_containers("it-rb7-x")] == ["running"]
        assert run("exec", "a1", "-f", str(second), "--", "true", env=labenv).returncode == 0
    finally:
        run("down", "-f", str(first), env=labenv, check=False)
        run("down", "-f", str(second), env=labenv, check=False)
    assert lab_containers("it-rb7-x") == [] and lab_networks("it-rb7-x") == []


def test_a_name_another_lab_holds_is_refused_before_anything_is_made(tmp_path: Path, labenv: dict[str, str]) -> None:
    squatted = "labctl-it-clash_lan"  # the name lab it-clash's network 'lan' needs, held by lab it-squat
    subprocess.run(
        [
            "podman",
            "network",
            "create",
            "--subnet",
            "198.18.72.0/24",
            "--label",
            "labctl.lab=it-squat",
            squatted,
        ],
        check=True,
        capture_output=True,
    )
    clash = _lab(tmp_path, "it-clash", "h1", "lan", "198.18.73.0/24")
    try:
        res = run("up", "-f", str(clash), "--no-provision", env=labenv, check=False)
        assert res.returncode == 2, res.stderr
        assert "Traceback" not in res.stderr
        assert (
            "lab 'it-clash' needs the podman network name 'labctl-it-clash_lan', which already belongs to lab "
            "'it-squat'. Fix: rename one of the labs, or take lab 'it-squat' down first" in res.stderr
        )
        assert lab_containers("it-clash") == [] and lab_networks("it-clash") == []
        assert not (Path(labenv["LABCTL_STATE_DIR"]) / "it-clash").exists()
        assert [n["name"] for n in podman_json("network", "ls") if n["name"] == squatted] == [squatted]
    finally:
        run("down", "-f", str(clash), env=labenv, check=False)
        subprocess.run(["podman", "network", "rm", squatted], check=False, capture_output=True)
