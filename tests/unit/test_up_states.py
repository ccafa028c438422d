"""`lab.up`'s state machine with a fake provider and a fake converge: the phases it records in
state.json, which hosts it records converged, what it repairs, the `unlock` of a locked lab, and the
lab's mutex (pure logic: no podman, no SSH, no ansible-playbook)."""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.errors import LabError
from labctl.lifecycle import converge as converge_mod
from labctl.lifecycle import up as up_mod
from labctl.lifecycle.model import Lab
from labctl.lifecycle.up import UpReport
from labctl.provisioning.ansible_run import Failure, PlaybookRun
from labctl.state import LabState
from labctl.topology import parse
from tests.unit.test_lock import sample
from tests.unit.test_reconcile import RAW, FakeProvider

HOSTS = ["a", "b", "c"]
HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIEsPxbnrmTMeXo3ln2uK+Yx9cbTDs3JsstwzRpyOL5Yv"


class UpProvider(FakeProvider):
    reads_host_keys = True  # host_keys below answers, as podman's and qemu's do

    def check_names(self, lab: str, hosts: list[str], networks: list[str]) -> None:
        return None

    def host_keys(self, lab: str, host: str) -> str:
        """The host's public key as a provider reads it (no SSH, no ssh-keyscan)."""
        return HOST_KEY


class FakeConverge:
    """Stands in for ansible-playbook: fails the hosts in `fail`, records the runs."""

    def __init__(self) -> None:
        self.fail: set[str] = set()
        self.runs: list[Path] = []

    def __call__(self, state: LabState, book: Path, **_kw: Any) -> PlaybookRun:
        self.runs.append(book)
        failures = [Failure(h, "a task", "it failed") for h in sorted(self.fail)]
        return PlaybookRun(2 if failures else 0, state.dir / "converge.log", failures)


class Scene:
    """One lab "rc" (hosts a, b, c) on a fake provider, its state under tmp_path, every phase it saves."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: dict[str, str]) -> None:
        monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
        # SSH control sockets want a short directory (tmp_path is too long); removed by the fixture below
        monkeypatch.setenv("LABCTL_RUNTIME_DIR", os.environ["_UP_STATES_RUN"])
        monkeypatch.setattr(up_mod, "wait_for_ssh", lambda *_a, **_kw: True)
        self.converge = FakeConverge()
        monkeypatch.setattr(converge_mod, "run_playbook", self.converge)
        self.provider = UpProvider(existing)
        self.file = tmp_path / "rc.yml"
        self.file.write_text(yaml.safe_dump(RAW))
        self.phases: list[str] = []
        self.monkeypatch = monkeypatch
        write = LabState.write

        def recording(state: LabState, data: dict[str, Any]) -> None:
            if not self.phases or self.phases[-1] != data.get("phase"):
                self.phases.append(str(data.get("phase")))
            write(state, data)

        monkeypatch.setattr(LabState, "write", recording)

    def lab(self) -> Lab:
        """A new Lab object of the same lab (as a new labctl command makes), on the same fake provider."""
        lab = Lab(parse(RAW, self.file))
        self.monkeypatch.setattr(lab, "backend", lambda _name: self.provider)
        return lab

    def up(self, **kw: Any) -> UpReport:
        self.phases.clear()
        return up_mod.up(self.lab(), **kw)

    def state(self) -> dict[str, Any]:
        return LabState("rc").read()


@pytest.fixture(autouse=True)
def short_run_dir(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    parent = Path(tempfile.mkdtemp(prefix="lc-"))
    monkeypatch.setenv("_UP_STATES_RUN", str(parent / "labctl"))
    yield
    shutil.rmtree(parent)


@pytest.fixture
def scene(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Scene:
    return Scene(tmp_path, monkeypatch, {})


def test_a_new_lab_goes_creating_then_up_and_records_every_host_converged(scene: Scene) -> None:
    report = scene.up()
    assert scene.phases == ["creating", "up"]
    assert scene.state()["phase"] == "up"
    assert sorted(scene.state()["converged"]) == HOSTS
    assert report.created == HOSTS and report.repaired == []
    assert report.converge is not None and report.converge.ok and len(scene.converge.runs) == 1


def test_a_second_up_with_nothing_changed_runs_no_playbook(scene: Scene) -> None:
    """The hosts recorded converged are what lets the second up skip ansible-playbook."""
    scene.up()
    report = scene.up()
    assert report.converge is None and report.todo == {}
    assert len(scene.converge.runs) == 1
    assert scene.state()["phase"] == "up"


def test_a_failed_converge_leaves_phase_failed_and_the_failed_host_not_converged(scene: Scene) -> None:
    scene.converge.fail = {"b"}
    report = scene.up()
    assert report.converge is not None and not report.converge.ok
    assert scene.phases == ["creating", "failed"]
    assert scene.state()["phase"] == "failed"
    assert sorted(scene.state()["converged"]) == ["a", "c"]
    # the next up runs again for the failed host only, and ends up
    scene.converge.fail = set()
    again = scene.up()
    assert set(again.todo) == {"b"}
    assert scene.state()["phase"] == "up" and sorted(scene.state()["converged"]) == HOSTS


def test_a_lab_whose_state_was_lost_has_its_existing_hosts_repaired(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No key in the state but hosts a and b exist: a new key is made and put into a and b through the provider."""
    scene = Scene(tmp_path, monkeypatch, {"a": "running", "b": "stopped"})
    report = scene.up()
    assert report.repaired == ["a", "b"]
    assert report.created == ["c"] and report.started == ["b"]
    authorized = [h for call, h in scene.provider.calls if call == "authorize"]
    assert sorted(authorized) == HOSTS  # c: the fake takes no key at creation
    # the key exists now: a second up repairs nothing
    scene.provider.calls.clear()
    assert scene.up().repaired == []
    assert [h for call, h in scene.provider.calls if call == "authorize"] == []


def _pins_of_a() -> Any:
    inventory = yaml.safe_load(LabState("rc").inventory.read_text())
    return inventory["all"]["hosts"]["a"].get("common_apt_pins")


def test_unlock_takes_a_locked_lab_off_its_lock(scene: Scene) -> None:
    held = dataclasses.replace(sample(), lab="rc", hosts={"a": sample().hosts["db"]})
    scene.up(lock_text=held.dumps())
    assert scene.state()["locked"] is True and _pins_of_a()["memcached"] == "1.6.18-1"
    scene.up(converge=False)  # neither lock_text nor unlock (a provision): the lab stays held
    assert scene.state()["locked"] is True and _pins_of_a()["memcached"] == "1.6.18-1"
    scene.up(unlock=True, converge=False)  # a plain up
    assert scene.state()["locked"] is False and _pins_of_a() is None


def test_up_releases_the_lab_lock_after_success_failure_and_error(scene: Scene) -> None:
    scene.up()
    with LabState("rc").locked():  # taken again in the same process: up let it go
        pass
    scene.converge.fail = {"a"}
    scene.up(force="provision")
    with LabState("rc").locked():
        pass

    def refuse(_lab: Lab) -> None:
        raise LabError("the locked versions are gone. Fix: nothing.")

    with pytest.raises(LabError, match="locked versions are gone"):
        scene.up(before_converge=refuse)
    assert scene.state()["phase"] == "failed"  # as it was before this up
    with LabState("rc").locked():
        pass


def test_up_refuses_while_another_command_holds_the_lab(scene: Scene) -> None:
    scene.up()
    with LabState("rc").locked(), pytest.raises(LabError, match="Another labctl command is changing lab 'rc'"):
        scene.up()
    assert scene.state()["phase"] == "up"
