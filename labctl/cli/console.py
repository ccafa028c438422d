"""labctl console: a host's console (a VM's serial console, interactive on a terminal)."""

from __future__ import annotations

import argparse
import sys

from labctl.cli.common import SubParsers, add_verb, running
from labctl.cli_args import lab_args


def add_parser(sub: SubParsers) -> None:
    p = add_verb(
        sub, "console", cmd_console, "show a host's console: a VM's serial console (interactive on a terminal)"
    )
    lab_args(p)
    p.add_argument("--log", action="store_true", help="print the console log even on a terminal")
    p.add_argument("host")


def cmd_console(args: argparse.Namespace) -> int:
    target = running(args)
    target.require_host(args.host, "console")
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.log
    return target.provider_for(args.host).show_console(target.name, args.host, interactive)
