"""labctl restart: stop and start hosts (all by default), as a reboot would."""

from __future__ import annotations

import argparse

from labctl.cli.common import SubParsers, add_verb, running
from labctl.cli_args import lab_args
from labctl.lifecycle import up
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "restart", cmd_restart, "stop and start hosts (all by default), as a reboot would")
    lab_args(p)
    p.add_argument("hosts", nargs="*", metavar="HOST")


def cmd_restart(args: argparse.Namespace) -> int:
    target = running(args)
    up.restart(target, args.hosts or list(target.topo.hosts), say=views.say)
    return 0
