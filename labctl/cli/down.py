"""labctl down: remove every container, network, key and state file of the lab."""

from __future__ import annotations

import argparse

from labctl.cli.common import SubParsers, add_verb
from labctl.cli_args import lab_args
from labctl.lifecycle import down, find
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "down", cmd_down, "remove every container, network, key and state file of the lab")
    lab_args(p)


def cmd_down(args: argparse.Namespace) -> int:
    if args.name is not None and args.file is None:
        name = args.name  # validated by down.down before anything is touched
    else:
        topo, _ = find.resolve(args.file, args.name)
        assert topo is not None
        name = topo.name
    removed = down.down(name, say=views.say)
    views.say(f"lab {name} removed ({len(removed)} resources, state deleted)")
    return 0
