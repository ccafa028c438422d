"""labctl logs: the journal of a host, or of one unit on it (-f follows)."""

from __future__ import annotations

import argparse

from labctl.access import hostexec, journal, sshconfig
from labctl.cli.common import SubParsers, add_verb, checked_ssh, lines, running
from labctl.cli_args import lab_args


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "logs", cmd_logs, "show the journal of a host, or of one unit on it (-f follows)")
    lab_args(p, short=False)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    p.add_argument("-n", "--lines", type=lines, default=None, help="only the last N entries")
    p.add_argument("host")
    p.add_argument("unit", nargs="?", help="a unit, a template (mongrel2 = mongrel2 and mongrel2@*) or a glob")


def cmd_logs(args: argparse.Namespace) -> int:
    target = running(args)
    target.require_host(args.host, "logs")
    config = sshconfig.lab_config_file(target)
    command = journal.command(args.unit, follow=args.follow, lines=args.lines)
    tty = hostexec.want_tty(False) if args.follow else False
    return checked_ssh(target, [args.host], hostexec.run_one(hostexec.ssh_argv(config, args.host, command, tty)))
