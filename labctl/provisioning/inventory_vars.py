"""The Ansible variables a user keeps in the project's inventory/ directory, layered under the topology.

``inventory/group_vars/<group>.yml`` and ``inventory/host_vars/<host>.yml`` (or a directory of such
files, as Ansible allows) hold settings for every lab of this checkout, and plain Ansible reads them
beside ``inventory/example-static.yml``. labctl writes them into each lab's generated inventory, so
``ansible-playbook -i "$(labctl inventory)"`` sees them without any extra file.

Precedence: the topology file wins. A variable the topology sets for a host (in ``vars:``, its
groups' ``groups:`` entries or the host's ``vars:``) or that labctl sets (connection, ``labctl_*``)
is never taken from inventory/. Among inventory/ files the most specific wins, as in Ansible:
``group_vars/all`` < ``group_vars/<group>`` (groups by name) < ``host_vars/<host>``.
LABCTL_INVENTORY_DIR names another directory (default: ``inventory/`` of this checkout).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import paths, yamlload
from labctl.errors import LabError

SUFFIXES = ("", ".yml", ".yaml", ".json")  # the file names Ansible's host_group_vars plugin reads


@dataclass(frozen=True)
class InventoryVars:
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # group ("all" included) -> vars
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)  # host -> vars

    def for_host(self, host: str, groups: list[str]) -> dict[str, Any]:
        """What inventory/ gives a host of these groups: all, then its groups by name, then its own."""
        merged = dict(self.groups.get("all", {}))
        for group in sorted(set(groups) - {"all"}):
            merged.update(self.groups.get(group, {}))
        merged.update(self.hosts.get(host, {}))
        return merged


def inventory_dir() -> Path:
    return Path(os.environ.get("LABCTL_INVENTORY_DIR") or paths.INVENTORY_DIR)


def load(directory: Path | None = None) -> InventoryVars:
    """group_vars/ and host_vars/ of the directory (missing ones are empty)."""
    base = directory or inventory_dir()
    return InventoryVars(_load_kind(base / "group_vars"), _load_kind(base / "host_vars"))


def _load_kind(directory: Path) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not directory.is_dir():
        return out
    for entry in sorted(directory.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.is_dir():
            files = [f for f in sorted(entry.iterdir()) if f.is_file() and f.suffix in SUFFIXES[1:]]
            name = entry.name
        elif entry.suffix in SUFFIXES:
            files, name = [entry], entry.name.removesuffix(entry.suffix)
        else:
            continue
        for path in files:
            out.setdefault(name, {}).update(_read(path))
    return out


def _read(path: Path) -> dict[str, Any]:
    text = path.read_text()
    if text.startswith("$ANSIBLE_VAULT"):
        raise LabError(
            f"{path}: encrypted with ansible-vault; labctl cannot merge it into a lab's inventory. "
            "Fix: keep secrets in the topology file's vars or pass them with -e, and this file unencrypted."
        )
    data = yamlload.load(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise LabError(
            f"{path}: expected a mapping of variable names to values, got {type(data).__name__}. "
            "Fix: write one 'name: value' per line."
        )
    return {str(k): v for k, v in data.items()}
