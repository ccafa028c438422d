"""Which variables are secrets, and where a lab's own configuration sets them.

A variable is secret when its role says so: its option in the role's ``meta/argument_specs.yml`` has
``no_log: true`` (ansible-core then masks it in argument validation too). labctl keeps no list of its
own: :func:`secret_names` reads every role's specs. A secret the user wrote (the topology file's
``vars``, ``groups``, a host's ``vars``; ``inventory/group_vars``, ``inventory/host_vars``) makes
``labctl save`` without ``--with-secrets`` refuse, before it reads any host: the archive (0644) carries
the topology, and a restore without the value could not converge either. Values are never shown."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from labctl import paths, yamlload
from labctl.errors import LabError
from labctl.provisioning import inventory_vars
from labctl.provisioning.inventory_vars import InventoryVars
from labctl.topology import Topology


def secret_names(roles_dir: Path | None = None) -> frozenset[str]:
    """Every variable a role's argument specs mark ``no_log: true`` (a variable one of whose
    suboptions is marked counts as a whole)."""
    return _secret_names(roles_dir or paths.ROLES_DIR)


@functools.lru_cache(maxsize=4)
def _secret_names(roles_dir: Path) -> frozenset[str]:
    names: set[str] = set()
    for spec in sorted(roles_dir.glob("*/meta/argument_specs.yml")):
        data = yamlload.load(spec.read_text(), str(spec)) or {}
        entries = data.get("argument_specs") if isinstance(data, dict) else None
        for entry in (entries or {}).values():
            if isinstance(entry, dict):
                names.update(n for n, option in (entry.get("options") or {}).items() if _marked(option))
    return frozenset(names)


def _marked(option: Any) -> bool:
    """True when the option, or any of its suboptions, is no_log."""
    if not isinstance(option, dict):
        return False
    if option.get("no_log") is True:
        return True
    return any(_marked(sub) for sub in (option.get("options") or {}).values())


def written(topo: Topology, user: InventoryVars, inventory: Path, names: frozenset[str]) -> list[str]:
    """Where the topology and inventory/ set a secret variable for this lab's hosts: topology fields
    (``vars.X``, ``groups.G.X``, ``hosts.H.vars.X``) and inventory files (``X in DIR/group_vars/G``)."""
    found = _in(topo.vars, names, "vars.{}")
    for group, values in topo.groups.items():
        found += _in(values, names, f"groups.{group}.{{}}")
    for spec in topo.hosts.values():
        found += _in(spec.vars, names, f"hosts.{spec.name}.vars.{{}}")
    groups = {"all", *(g for spec in topo.hosts.values() for g in spec.groups)}
    for group in sorted(groups & set(user.groups)):
        found += _in(user.groups[group], names, f"{{}} in {inventory}/group_vars/{group}")
    for host in sorted(set(topo.hosts) & set(user.hosts)):
        found += _in(user.hosts[host], names, f"{{}} in {inventory}/host_vars/{host}")
    return found


def _in(values: Mapping[str, Any], names: frozenset[str], where: str) -> list[str]:
    return [where.format(name) for name in sorted(set(values) & names)]


def require_choice(topo: Topology, with_secrets: bool) -> None:
    """Refuse to save a lab whose topology or inventory/ sets a secret variable without --with-secrets,
    naming each place (never a value)."""
    if with_secrets:
        return
    found = written(topo, inventory_vars.load(), inventory_vars.inventory_dir(), secret_names())
    if found:
        raise LabError(
            f"save: lab {topo.name!r} sets secret variables (their roles mark them no_log in "
            f"meta/argument_specs.yml): {', '.join(found)}. An archive without --with-secrets is 0644 and "
            "carries the topology, and a restore without them could not converge. Fix: save it with "
            "--with-secrets (the archive is then 0600: keep it private), or remove them from the lab's "
            "configuration first."
        )
