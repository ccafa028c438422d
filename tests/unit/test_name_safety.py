"""A lab name can never reach outside the lab: not a path outside the state root, not a podman filter.

The CLI runs as a subprocess inside a scratch directory only: LABCTL_STATE_DIR in tmp_path, fake
`podman` and `iptables` first on PATH that only record their calls, and every "absolute path" a
scratch directory. On labctl before this test, `down --name ..` removed the whole scratch directory,
`--name a/../other-lab` another lab's state, an absolute name the scratch directory it named, and
`--name ''` with a file asked podman for label=labctl.lab= (every lab)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from labctl import names
from labctl.errors import LabError
from labctl.providers import HostSpec, NetworkSpec, bridge
from labctl.providers.podman import provider as podman
from labctl.state import LabState, remove_inside_root

FAKE = '#!/bin/sh\nprintf "%s %s\\n" "$(basename "$0")" "$*" >> "$FAKE_CALLS"\n'
LAB_FILE = (
    "schema: 1\nname: sn-ok\nnetworks: [{name: lan, subnet: 198.18.79.0/24}]\nhosts: [{name: h1, networks: [lan]}]\n"
)


class Scratch:
    """A scratch world: a state root with two other labs, files beside it, an absolute target."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.calls = root / "calls.log"
        self.bin = root / "fakebin"
        self.bin.mkdir()
        for tool in ("podman", "iptables"):
            (self.bin / tool).write_text(FAKE)
            (self.bin / tool).chmod(0o755)
        for lab in ("other-lab", "a"):
            (self.state / lab).mkdir(parents=True)
            (self.state / lab / "id_ed25519").write_text("secret\n")
            (self.state / lab / "state.json").write_text(json.dumps({"name": lab, "phase": "up"}))
            (self.state / f".{lab}.lock").write_text("")
        (root / "beside.txt").write_text("beside the state root\n")
        self.absolute = root / "abs-target"
        self.absolute.mkdir()
        (self.absolute / "keep.txt").write_text("keep\n")
        self.lab_file = root / "lab.yml"
        self.lab_file.write_text(LAB_FILE)
        self.before = self.listing()

    def listing(self) -> list[str]:
        return sorted(str(p.relative_to(self.root)) for p in self.root.rglob("*") if p.name != "calls.log")

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        env = dict(
            os.environ,
            PATH=f"{self.bin}:{os.environ['PATH']}",
            LABCTL_STATE_DIR=str(self.state),
            FAKE_CALLS=str(self.calls),
        )
        return subprocess.run(
            [sys.executable, "-m", "labctl.cli", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=self.root,
            check=False,
            timeout=300,
            stdin=subprocess.DEVNULL,
        )

    def recorded(self) -> list[str]:
        return self.calls.read_text().splitlines() if self.calls.exists() else []


@pytest.fixture
def scratch(tmp_path: Path) -> Scratch:
    return Scratch(tmp_path)


def _bad_names(s: Scratch) -> list[list[str]]:
    lab = str(s.lab_file)
    return [
        ["down", "--name", ".."],
        ["down", "--name", ""],
        ["down", "--name", "a/../other-lab"],
        ["down", "--name", str(s.absolute)],
        ["down", "--name", "."],
        ["down", "--name", "other-lab/"],
        ["down", "--name", "other-lab/.."],
        ["down", "-f", lab, "--name", ""],
        ["down", "-f", lab, "--name", ".."],
        ["up", "-f", lab, "--name", "Bad_Name.x", "--no-provision"],
        ["up", "-f", lab, "--name", "", "--no-provision"],
        ["up", "-f", lab, "--name", str(s.absolute), "--no-provision"],
        ["status", "--name", ".."],
        ["exec", "--name", "..", "h1", "--", "true"],
        ["restart", "--name", "a/../other-lab"],
    ]


CASES = [
    "down ..",
    "down ''",
    "down a/../other-lab",
    "down ABSOLUTE",
    "down .",
    "down other-lab/",
    "down other-lab/..",
    "down -f ''",
    "down -f ..",
    "up Bad_Name.x",
    "up ''",
    "up ABSOLUTE",
    "status ..",
    "exec ..",
    "restart a/../other-lab",
]


@pytest.mark.parametrize("case", range(len(CASES)), ids=CASES)
def test_a_bad_name_is_refused_and_deletes_nothing(scratch: Scratch, case: int) -> None:
    argv = _bad_names(scratch)[case]
    res = scratch.run(*argv)
    assert res.returncode == 2, (argv, res.returncode, res.stderr)
    assert "Traceback" not in res.stderr
    message = res.stderr.strip()
    assert len(message.splitlines()) == 1, message
    assert "--name: lab name" in message and "Fix:" in message, message
    assert scratch.recorded() == [], "podman or iptables was called for an invalid name"
    assert scratch.listing() == scratch.before  # nothing removed, nothing created
    assert (scratch.state / "other-lab" / "id_ed25519").read_text() == "secret\n"
    assert (scratch.absolute / "keep.txt").exists() and (scratch.root / "beside.txt").exists()


def test_the_fakes_record_what_a_valid_down_runs(scratch: Scratch) -> None:
    """The control for the test above: the same set-up sees the calls and removes exactly one lab."""
    res = scratch.run("down", "--name", "other-lab")
    assert res.returncode == 0, res.stderr
    calls = scratch.recorded()
    assert "iptables -w 5 -t nat -S POSTROUTING" in calls
    assert "podman ps -a -q --filter label=labctl.lab=other-lab" in calls
    assert not (scratch.state / "other-lab").exists()
    assert (scratch.state / "a" / "state.json").exists()
    assert (scratch.root / "beside.txt").exists() and (scratch.absolute / "keep.txt").exists()


def test_one_validation_for_every_source() -> None:
    for good in ("a", "rb7-x", "a" * 31):
        assert names.validate_lab_name(good, "--name") == good
    for bad in ("", ".", "..", "a/../b", "/abs", "A", "Bad_Name.x", "a" * 32, "x\n", "1a", "-a", None, 7):
        with pytest.raises(LabError, match=r"^--name: lab name .* Fix: use 1-31 characters"):
            names.validate_lab_name(bad, "--name")
        with pytest.raises(LabError):
            LabState(bad)  # type: ignore[arg-type]


def test_removal_stays_inside_the_state_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "state"
    (root / "lab").mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    monkeypatch.setenv("LABCTL_STATE_DIR", str(root))
    for path in (root, root / "..", root / "lab" / ".." / "..", outside, root / "lab" / ".."):
        with pytest.raises(LabError, match="refusing to remove"):
            remove_inside_root(path)
    # a symlink in the state root that leads outside is refused, and so is a path through it
    (root / "evil").symlink_to(outside)
    for path in (root / "evil", root / "evil" / "keep.txt"):
        with pytest.raises(LabError, match="refusing to remove"):
            remove_inside_root(path)
    assert (root / "evil").is_symlink() and (outside / "keep.txt").exists()
    # a symlink to another lab's state: the link goes, never what it points to
    (root / "other").mkdir()
    (root / "alias").symlink_to(root / "other")
    assert remove_inside_root(root / "alias")
    assert not (root / "alias").is_symlink() and (root / "other").is_dir()
    assert remove_inside_root(root / "lab") and not (root / "lab").exists()
    assert not remove_inside_root(root / "gone")


def test_the_podman_provider_builds_nothing_from_a_bad_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no podman, no iptables: running either would say so
    provider = podman.PodmanProvider()
    subnets = ["198.18.79.0/25", "198.18.79.128/25"]
    for bad in ("", "..", "a/b", "x\n", "Bad_Name"):
        calls: list[tuple[str, tuple[object, ...]]] = [
            ("destroy_lab", (bad,)),
            ("list", (bad,)),
            ("link_networks", (bad, subnets)),
            ("destroy", (bad, "h1")),
            ("start", (bad, "h1")),
            ("check_names", (bad, ["h1"], ["lan"])),
            ("create_network", (NetworkSpec(bad, "lan", subnets[0]),)),
            ("create", (HostSpec(bad, "h1", "img", {"lan": "198.18.79.10"}),)),
        ]
        for method, args in calls:
            with pytest.raises(LabError, match="refusing to run podman or iptables for the invalid lab name"):
                getattr(provider, method)(*args)
    with pytest.raises(LabError, match="invalid host name"):
        provider.destroy("ok", "")


def test_resource_names_of_two_labs_never_meet() -> None:
    """Lab rb7 + host x-a1 and lab rb7-x + host a1 were both labctl-rb7-x-a1."""
    assert podman.container_name("rb7", "x-a1") == "labctl-rb7_x-a1"
    assert podman.container_name("rb7-x", "a1") == "labctl-rb7-x_a1"
    assert podman.network_name("rb7", "x-lan") != podman.network_name("rb7-x", "lan")


def _fake_podman(monkeypatch: pytest.MonkeyPatch, containers: list[dict], networks: list[dict]) -> None:  # type: ignore[type-arg]
    def fake(*args: str, **_kw: object) -> subprocess.CompletedProcess[str]:
        assert args[:4] == ("ps", "-a", "--format", "json"), args
        return subprocess.CompletedProcess(["podman", *args], 0, json.dumps(containers), "")

    monkeypatch.setattr(bridge, "podman", fake)
    monkeypatch.setattr(bridge, "network_list", lambda: networks)


def test_a_name_held_by_another_lab_is_refused_naming_both(monkeypatch: pytest.MonkeyPatch) -> None:
    theirs = {"Names": ["labctl-rb7_h1"], "Labels": {"labctl.lab": "other", "labctl.host": "h1"}}
    _fake_podman(monkeypatch, [theirs], [])
    with pytest.raises(LabError, match=r"lab 'rb7' needs the podman container name 'labctl-rb7_h1', .* lab 'other'"):
        podman.PodmanProvider().check_names("rb7", ["h1"], ["lan"])
    _fake_podman(monkeypatch, [], [{"name": "labctl-rb7_lan", "labels": {}}])
    with pytest.raises(LabError, match=r"network name 'labctl-rb7_lan', which already belongs to no labctl lab"):
        podman.PodmanProvider().check_names("rb7", ["h1"], ["lan"])
    ours = {"Names": ["labctl-rb7_h1"], "Labels": {"labctl.lab": "rb7", "labctl.host": "h1"}}
    _fake_podman(
        monkeypatch,
        [ours],
        [{"name": "labctl-rb7_lan", "labels": {"labctl.lab": "rb7", "labctl.network": "lan"}}],
    )
    podman.PodmanProvider().check_names("rb7", ["h1", "h2"], ["lan"])
    old = {"Names": ["labctl-rb7-h1"], "Labels": {"labctl.lab": "rb7", "labctl.host": "h1"}}
    _fake_podman(monkeypatch, [old], [])
    with pytest.raises(LabError, match=r"named by an older labctl .* 'labctl down --name rb7'"):
        podman.PodmanProvider().check_names("rb7", ["h1"], ["lan"])
