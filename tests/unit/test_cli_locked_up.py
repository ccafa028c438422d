"""`up --locked` before the hosts are touched (labctl.reproduce.locked.up_options, which `labctl up --locked`
passes to lab.up): the lock's text, the lock checked with afterwards, a note when the topology changed, a lock
that lacks a host refused, and the availability check run before converging."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl.errors import LabError
from labctl.lifecycle.model import Lab
from labctl.reproduce import locked, lockfile
from labctl.topology import parse


def _lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hosts: tuple[str, ...]) -> Lab:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    raw: dict[str, Any] = {
        "name": "rp",
        "networks": [{"name": "lab", "subnet": "198.19.100.0/24"}],
        "hosts": [{"name": h, "groups": [], "networks": ["lab"]} for h in hosts],
    }
    path = tmp_path / "rp.yml"
    path.write_text(yaml.safe_dump(raw))
    return Lab(parse(raw, path))


def _lock(target: Lab, hosts: tuple[str, ...], sha: str | None = None) -> Path:
    held = lockfile.Lock(
        lab="rp",
        topology_sha256=sha or lockfile.topology_hash(locked.topology_raw(target)),
        image={"tag": "localhost/labctl/debian:bookworm-1", "recipe_hash": "1", "id": "sha"},
        project={"version": "0.1.0", "commit": "c0ffee", "dirty": False},
        hosts={h: lockfile.HostLock(debian={"memcached": "1.6.18-1"}, python={}, origins={}) for h in hosts},
        created="2026-11-26T00:00:00Z",
    )
    path = lockfile.lock_path(target.topo.path)
    path.write_text(held.dumps())
    return path


def test_up_locked_passes_the_lock_and_checks_that_its_versions_are_offered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _lab(tmp_path, monkeypatch, ("db",))
    path = _lock(target, ("db",))
    said: list[str] = []
    options, lock_file = locked.up_options(target, said.append)
    assert lock_file == path == tmp_path / "rp.lock"
    assert options["lock_text"] == path.read_text()
    assert set(options) == {"lock_text", "before_converge"}
    assert said == []  # the topology is the one locked: no note

    seen: list[Any] = []

    def offered(running: Lab, held: lockfile.Lock) -> tuple[list[locked.Unavailable], list[str]]:
        seen.append((running, sorted(held.hosts)))
        return [], ["db: 1 package(s) come from example.org, a source a role adds"]

    monkeypatch.setattr(locked, "unavailable", offered)
    options["before_converge"](target)
    assert seen == [(target, ["db"])]
    assert said[-1] == "not checked: db: 1 package(s) come from example.org, a source a role adds"

    gone = [locked.Unavailable("db", "memcached", "1.6.18-1")]
    monkeypatch.setattr(locked, "unavailable", lambda _lab, _held: (gone, []))
    with pytest.raises(LabError) as err:
        options["before_converge"](target)
    assert "1 locked package version(s) are offered by no apt source" in str(err.value)
    assert "db: memcached=1.6.18-1" in str(err.value) and "Fix:" in str(err.value)


def test_up_locked_notes_a_changed_topology_and_refuses_a_lock_without_a_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = _lab(tmp_path, monkeypatch, ("db", "web"))
    _lock(target, ("db", "web"), sha="a" * 64)
    said: list[str] = []
    locked.up_options(target, said.append)
    assert said == [f"note: {target.topo.path} changed since rp.lock was written (its hosts are all locked)"]

    _lock(target, ("db",))
    with pytest.raises(LabError) as err:
        locked.up_options(target, said.append)
    assert "the lock has no host web of lab 'rp'" in str(err.value) and "Fix:" in str(err.value)
