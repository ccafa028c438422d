"""Per-lab state: atomic writes, the lock, the keypair."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.state import LabState, all_labs, write_atomic


@pytest.fixture(autouse=True)
def _state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))


def test_a_second_command_on_the_same_lab_is_refused() -> None:
    state = LabState("busy")
    with state.locked():
        with pytest.raises(LabError, match="Another labctl command is changing lab 'busy'"), LabState("busy").locked():
            pass
        with LabState("other").locked():
            pass


def test_state_round_trip_and_listing(tmp_path: Path) -> None:
    state = LabState("one")
    state.ensure_dir()
    state.write({"name": "one", "phase": "up"})
    assert state.read() == {"name": "one", "phase": "up"}
    assert state.state_file.stat().st_mode & 0o777 == 0o600
    assert list(all_labs()) == ["one"]
    assert not list(tmp_path.glob("one/.state.json.*"))


def test_damaged_state_is_a_clear_error() -> None:
    state = LabState("bad")
    state.ensure_dir()
    state.state_file.write_text("{not json")
    with pytest.raises(LabError, match="labctl down --name bad"):
        state.read()


def test_write_atomic_replaces_whole_files(tmp_path: Path) -> None:
    target = tmp_path / "f.txt"
    write_atomic(target, "old")
    write_atomic(target, "new", 0o600)
    assert target.read_text() == "new"
    assert target.stat().st_mode & 0o777 == 0o600


def test_keypair_is_private_and_made_once() -> None:
    state = LabState("keys")
    state.ensure_keypair()
    first = state.pubkey.read_text()
    state.ensure_keypair()
    assert state.pubkey.read_text() == first
    assert state.key.stat().st_mode & 0o777 == 0o600
