"""The roles' extensions, found by discovery (see :mod:`labctl.bundles`): the core names no role.

- :func:`host_details` — what ``labctl status --host`` adds for one host (each bundle of a group the
  host is in: ``checks/status.py`` ``details(lab, host)``);
- :func:`show_details` — prints those details (each bundle's ``show(host, details)``);
- :func:`graph_notes` — what ``labctl graph`` draws for one host (``checks/graph.py`` ``notes(topo, host)``);
- :func:`add_cli_extensions` — the roles' own verbs (``checks/cli.py`` ``add_parser(sub)``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from labctl import bundles

if TYPE_CHECKING:
    from labctl.lifecycle.model import Lab
    from labctl.topology import Topology


def _groups_of(topo: Topology, host: str) -> set[str]:
    return {group for group, hosts in topo.group_hosts().items() if host in hosts}


def host_details(lab: Lab, host: str) -> dict[str, Any]:
    """What `status --host` adds for one host: every bundle's details for the groups the host is in
    (e.g. the port forwards in force on a NAT gateway)."""
    groups = _groups_of(lab.topo, host)
    out: dict[str, Any] = {}
    for role, module in bundles.extensions("status").items():
        if role in groups:
            out.update(module.details(lab, host))
    return out


def show_details(host: str, details: dict[str, Any]) -> None:
    """Print what :func:`host_details` found, each bundle its own part."""
    for module in bundles.extensions("status").values():
        module.show(host, details)


def graph_notes(topo: Topology, host: str) -> dict[str, Any]:
    """What the graph draws for one host, from each bundle of the groups the host is in."""
    groups = _groups_of(topo, host)
    out: dict[str, Any] = {}
    for role, module in bundles.extensions("graph").items():
        if role in groups:
            out.update(module.notes(topo, host))
    return out


def add_cli_extensions(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add the verbs of every bundle that has a ``checks/cli.py`` (e.g. ``labctl sdn``)."""
    for module in bundles.extensions("cli").values():
        module.add_parser(sub)
