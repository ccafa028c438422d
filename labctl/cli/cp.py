"""labctl cp: copy files to or from a host with scp."""

from __future__ import annotations

import argparse

from labctl.access import hostexec, sshconfig
from labctl.cli.common import SubParsers, add_verb, checked_ssh, running
from labctl.cli_args import lab_args
from labctl.errors import LabError


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "cp", cmd_cp, "copy files to or from a host with scp: SRC HOST:DST or HOST:SRC DST")
    lab_args(p)
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories")
    p.add_argument("src")
    p.add_argument("dst")


def cmd_cp(args: argparse.Namespace) -> int:
    target = running(args)
    for path in (args.src, args.dst):
        host, sep, _ = path.partition(":")
        if sep and "/" not in host:
            target.require_host(host, "cp")
    if ":" not in args.src.split("/")[0] and ":" not in args.dst.split("/")[0]:
        raise LabError("cp: neither side names a host. Fix: labctl cp SRC HOST:DST or labctl cp HOST:SRC DST.")
    config = sshconfig.lab_config_file(target)
    argv = ["scp", "-F", str(config), "-q", *(["-r"] if args.recursive else []), args.src, args.dst]
    hosts = [p.partition(":")[0] for p in (args.src, args.dst) if ":" in p.split("/")[0]]
    return checked_ssh(target, [h for h in hosts if h in target.topo.hosts], hostexec.run_one(argv))
