"""The SSH ControlPath directory: root-only, short enough for a unix socket, removed only inside its root."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.access import control_dir
from labctl.errors import LabError
from labctl.provisioning import inventory
from labctl.state import LabState


@pytest.fixture
def run_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    root = Path(tempfile.mkdtemp(prefix="lc-")) / "labctl"
    monkeypatch.setenv("LABCTL_RUNTIME_DIR", str(root))
    yield root
    shutil.rmtree(root.parent)


def test_as_root_the_control_path_is_under_run_labctl_not_tmp(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("LABCTL_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    path = control_dir.control_path_dir(LabState("cp"))
    assert path.parent == Path("/run/labctl")
    assert len(path.name) == 10
    # the longest socket ssh makes there (<dir>/<40 hex>.<16 chars>) fits in sun_path
    assert len(str(path)) + 1 + 40 + 17 < 108
    cfg = inventory.render_cfg(LabState("cp"))
    assert f"control_path_dir = {path}\n" in cfg
    assert "/tmp" not in cfg.split("control_path_dir = ")[1]


def test_each_state_dir_gets_its_own_control_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "a"))
    first = control_dir.control_path_dir(LabState("cp"))
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "b"))
    assert control_dir.control_path_dir(LabState("cp")) != first
    assert control_dir.control_path_dir(LabState("other")) != control_dir.control_path_dir(LabState("cp"))


def test_not_root_uses_the_users_runtime_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("LABCTL_RUNTIME_DIR", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert control_dir.control_path_dir(LabState("cp")).parent == Path("/run/user/1000/labctl")


def test_the_control_dir_is_made_0700_and_removed(run_root: Path) -> None:
    state = LabState("cp")
    path = control_dir.ensure_control_dir(state)
    assert path.parent == run_root
    assert (run_root.stat().st_mode & 0o777, path.stat().st_mode & 0o777) == (0o700, 0o700)
    (path / "socket-stand-in").write_text("")
    sibling = run_root / "abcdef0123"
    sibling.mkdir()
    assert control_dir.remove_control_dir(state)
    assert not path.exists() and sibling.exists()
    assert not control_dir.remove_control_dir(state)


def test_a_too_long_runtime_dir_is_a_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    monkeypatch.setenv("LABCTL_RUNTIME_DIR", "/tmp/" + "x" * 60)
    with pytest.raises(LabError, match="Fix: set LABCTL_RUNTIME_DIR to a shorter path"):
        control_dir.control_path_dir(LabState("cp"))


def test_a_planted_symlink_is_neither_used_nor_followed_on_removal(run_root: Path, tmp_path: Path) -> None:
    state = LabState("cp")
    run_root.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("keep")
    control_dir.control_path_dir(state).symlink_to(victim)
    with pytest.raises(LabError, match="is not a directory owned by this user"):
        control_dir.ensure_control_dir(state)
    with pytest.raises(LabError, match="refusing to remove"):
        control_dir.remove_control_dir(state)
    assert (victim / "precious").read_text() == "keep"


def test_a_root_dir_others_can_enter_is_made_private(run_root: Path) -> None:
    run_root.mkdir(mode=0o755)
    os.chmod(run_root, 0o777)
    control_dir.ensure_control_dir(LabState("cp"))
    assert run_root.stat().st_mode & 0o777 == 0o700
