"""Shell completion (argcomplete): verbs and options come from the parser; this adds lab names and
the host names of the lab the command line names (-f FILE / --name NAME, else the default lab).

A completer never fails loudly: a wrong topology file just completes nothing."""

from __future__ import annotations

import argparse
from typing import Any

from labctl.lifecycle import find
from labctl.state import all_labs, state_root


def lab_names(**_kwargs: Any) -> list[str]:
    """Labs that have state on this machine."""
    names = set(all_labs())
    root = state_root()
    if root.is_dir():
        names |= {p.name for p in root.iterdir() if p.is_dir()}
    return sorted(names)


def host_names(parsed_args: argparse.Namespace | None = None, **_kwargs: Any) -> list[str]:
    """The hosts of the lab named on the command line so far."""
    try:
        topo, _ = find.resolve(getattr(parsed_args, "file", None), getattr(parsed_args, "name", None))
    except Exception:  # completion must never print a traceback into the shell
        return []
    return list(topo.hosts) if topo is not None else []


def remote_paths(parsed_args: argparse.Namespace | None = None, **_kwargs: Any) -> list[str]:
    """For cp: `HOST:` of every host (local paths are the shell's own completion)."""
    return [f"{h}:" for h in host_names(parsed_args)]


def group_names(parsed_args: argparse.Namespace | None = None, **_kwargs: Any) -> list[str]:
    try:
        topo, _ = find.resolve(getattr(parsed_args, "file", None), getattr(parsed_args, "name", None))
    except Exception:
        return []
    return sorted(topo.group_hosts()) if topo is not None else []


def attach(parser: argparse.ArgumentParser) -> None:
    """Set the completers on every subcommand's --name, host/hosts/--host, --group and cp's operands."""
    by_dest = {"name": lab_names, "host": host_names, "hosts": host_names, "group": group_names}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                attach(sub)
            continue
        completer = by_dest.get(action.dest)
        if action.dest in ("src", "dst"):
            completer = remote_paths
        if completer is not None:
            action.completer = completer  # type: ignore[attr-defined]


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer the shell's completion request and exit, when this run is one (else return at once)."""
    import os

    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    attach(parser)
    argcomplete.autocomplete(parser)
