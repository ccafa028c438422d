"""labctl status: the lab's hosts, groups, addresses and state (--host: one host's details; --all: every lab)."""

from __future__ import annotations

import argparse
from typing import Any

from labctl.checks import bundles
from labctl.cli.common import SubParsers, add_verb
from labctl.cli_args import lab_args
from labctl.errors import LabError
from labctl.lifecycle import find, status
from labctl.lifecycle.model import Lab
from labctl.netops import impair
from labctl.reproduce import locked
from labctl.topology import Topology
from labctl.ui import views

Rows = list[dict[str, Any]]


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "status", cmd_status, "show the lab's hosts, groups, addresses and state")
    lab_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--all", action="store_true", help="list every lab: by its state and by its labels")
    p.add_argument("--host", help="show only this host")


def _all_labs(json_out: bool) -> int:
    labs = status.all_lab_rows()
    if json_out:
        views.print_json({"labs": labs})
    else:
        views.labs_table(labs)
    return 0


def _lost_rows(name: str, topo: Topology | None, host: str | None) -> Rows:
    """A lab with containers but no state: its hosts as their labels tell."""
    rows = status.status_from_labels(name, topo)
    views.say(
        f"lab {name!r} has containers but no state (lost): 'labctl up -f LAB.yml' repairs it, "
        f"'labctl down --name {name}' removes it"
    )
    return [r for r in rows if r["name"] == host] if host else rows


def _lab_rows(target: Lab, host: str | None) -> tuple[Rows, dict[str, Any]]:
    """The hosts' rows (host: its one row, with its details and impairments); and, for the whole lab, its lock's
    status."""
    rows = status.status(target)
    if not host:
        return rows, locked.status(target, status.all_up(rows))
    target.require_host(host, "--host")
    rows = [r for r in rows if r["name"] == host]
    rows[0].update(status.host_details(target, host))
    rows[0]["impairments"] = impairments(target, host)
    return rows, {}


def _render(name: str, rows: Rows, reproduction: dict[str, Any], host: str | None) -> None:
    views.status_table(name, rows)
    if rows and host:
        bundles.show_details(host, rows[0])
    if rows and rows[0].get("impairments") and host:
        views.impairments_table(rows[0]["impairments"])
    if reproduction:
        views.reproduction_lines(reproduction)


def cmd_status(args: argparse.Namespace) -> int:
    if args.all:
        return _all_labs(args.json)
    topo, state = find.resolve(args.file, args.name)
    reproduction: dict[str, Any] = {}
    if topo is None or not state.exists():
        rows = _lost_rows(state.name, topo, args.host)
    else:
        rows, reproduction = _lab_rows(Lab(topo, state), args.host)
    if args.json:
        views.print_json({"lab": state.name, "hosts": rows, **({"reproduction": reproduction} if reproduction else {})})
    else:
        _render(state.name, rows, reproduction, args.host)
    return 0 if status.all_up(rows) else 1


def impairments(target: Lab, host: str) -> list[dict[str, object]]:
    """The impairments in force on a running host (none when it cannot be asked)."""
    conn = target.runner()
    try:
        return list(impair.show(conn, host))
    except LabError:
        return []
    finally:
        conn.close()
