"""What a lab of systemd containers needs from the host's inotify limits, decided before creating anything."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.providers import hostlimits
from labctl.providers.hostlimits import INSTANCES_PER_HOST, WATCHES_PER_HOST, needs

DEBIAN = {"max_user_instances": 128, "max_user_watches": 192536}


def test_thirty_plain_hosts_need_more_than_debians_128_instances() -> None:
    [need] = needs(30, {"max_user_instances": 20, "max_user_watches": 100}, DEBIAN)
    assert need.sysctl == "fs.inotify.max_user_instances"
    assert need.needed == 20 + 30 * INSTANCES_PER_HOST + hostlimits.HEADROOM["max_user_instances"]
    assert need.target == 1024


def test_a_few_hosts_fit_and_nothing_to_start_needs_nothing() -> None:
    assert needs(5, {"max_user_instances": 20, "max_user_watches": 100}, DEBIAN) == []
    assert needs(0, {"max_user_instances": 500, "max_user_watches": 100}, DEBIAN) == []


def test_what_other_labs_hold_counts() -> None:
    # 12 hosts alone fit in 128; with 60 instances already in use they do not
    assert needs(9, {"max_user_instances": 0, "max_user_watches": 0}, DEBIAN) == []
    assert [n.key for n in needs(9, {"max_user_instances": 60, "max_user_watches": 0}, DEBIAN)] == [
        "max_user_instances"
    ]


def test_a_huge_lab_raises_past_the_default_target_and_watches_too() -> None:
    found = needs(3000, {"max_user_instances": 0, "max_user_watches": 0}, DEBIAN)
    by_key = {n.key: n for n in found}
    assert by_key["max_user_instances"].target == by_key["max_user_instances"].needed > 1024
    assert by_key["max_user_watches"].needed == 3000 * WATCHES_PER_HOST + hostlimits.HEADROOM["max_user_watches"]


def _fake_proc(root: Path) -> None:
    """Two processes of ours: one with two inotify instances (3 and 1 watches), one with none."""
    for pid, fds in {
        "101": {"3": "anon_inode:inotify", "4": "/dev/null", "5": "anon_inode:inotify"},
        "202": {},
    }.items():
        (root / pid / "fd").mkdir(parents=True)
        (root / pid / "fdinfo").mkdir()
        for fd, target in fds.items():
            os.symlink(target, root / pid / "fd" / fd)
            (root / pid / "fdinfo" / fd).write_text(
                "pos:\t0\n" + "inotify wd:1 ino:2 sdev:3 mask:4\n" * (3 if fd == "3" else 1)
            )
    (root / "self").mkdir()


def test_usage_counts_inotify_descriptors_and_their_watches(tmp_path: Path) -> None:
    _fake_proc(tmp_path)
    assert hostlimits.usage(tmp_path) == {"max_user_instances": 2, "max_user_watches": 4}
    assert hostlimits.usage(tmp_path, uid=os.geteuid() + 1) == {"max_user_instances": 0, "max_user_watches": 0}


def _sysctl(tmp_path: Path) -> Path:
    for key, value in DEBIAN.items():
        (tmp_path / key).write_text(f"{value}\n")
    return tmp_path


def test_ensure_raises_the_limit_and_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostlimits, "usage", lambda: {"max_user_instances": 40, "max_user_watches": 300})
    said: list[str] = []
    hostlimits.ensure_inotify(30, said.append, _sysctl(tmp_path))
    assert (tmp_path / "max_user_instances").read_text() == "1024\n"
    assert (tmp_path / "max_user_watches").read_text() == "192536\n"
    assert len(said) == 1 and "\n" not in said[0]
    assert said[0].startswith("raised fs.inotify.max_user_instances from 128 to 1024 (as root)")


def test_ensure_stops_naming_the_sysctl_and_value_when_it_cannot_raise(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hostlimits, "usage", lambda: {"max_user_instances": 40, "max_user_watches": 300})
    sysctl = _sysctl(tmp_path)

    def refuse(self: Path, *_a: object, **_k: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(Path, "write_text", refuse)
    with pytest.raises(LabError) as err:
        hostlimits.ensure_inotify(30, lambda _m: None, sysctl)
    assert "fs.inotify.max_user_instances is 128" in str(err.value)
    assert "sysctl -w fs.inotify.max_user_instances=1024" in str(err.value)
