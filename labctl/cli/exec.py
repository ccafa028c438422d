"""labctl exec: run a command on a host, or on --all / --group hosts in parallel, over SSH."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from labctl.access import hostexec, hostkeys, sshconfig
from labctl.cli.common import SubParsers, add_verb, checked_ssh, running, seconds
from labctl.cli_args import lab_args
from labctl.errors import LabError
from labctl.lifecycle import model
from labctl.ui import views

NO_HOST = "exec: the following arguments are required: host. Fix: labctl exec HOST -- CMD, or --all / --group GROUP."


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "exec", cmd_exec, "run a command on a host (or --all / --group) over SSH, as 'ssh HOST CMD'")
    lab_args(p)
    p.add_argument("--timeout", type=seconds, default=None, help="seconds before the command is stopped (exit 124)")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a TTY even when not both ends are terminals")
    p.add_argument("--all", action="store_true", help="every host of the lab, in parallel, lines prefixed by host")
    p.add_argument("--group", action="append", metavar="GROUP", help="every host of this group (repeatable)")
    p.add_argument("--json", action="store_true", help="with --all/--group: per-host exit code, stdout, stderr")
    p.add_argument("host", nargs="?")
    p.add_argument("command", nargs="*", help="-- COMMAND [ARGS...] (labctl's options go before '--')")


def cmd_exec(args: argparse.Namespace) -> int:
    if args.host is None and not args.all and not args.group:
        raise LabError(NO_HOST)
    target = running(args)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    hosts = exec_targets(target, args, command)
    if not command:
        raise LabError("exec: no command given. Fix: labctl exec HOST -- COMMAND [ARGS...].")
    if hosts is None:
        return _exec_one(target, args, command)
    return _exec_many(target, args, command, hosts)


def _exec_one(target: model.Lab, args: argparse.Namespace, command: list[str]) -> int:
    config = sshconfig.lab_config_file(target)
    target.require_host(args.host, "exec")
    tty = hostexec.want_tty(args.tty)
    rc = hostexec.run_one(hostexec.ssh_argv(config, args.host, command, tty), timeout=args.timeout)
    return checked_ssh(target, [args.host], rc)


def _exec_many(target: model.Lab, args: argparse.Namespace, command: list[str], hosts: list[str]) -> int:
    config = sshconfig.lab_config_file(target)
    argvs = {h: hostexec.ssh_argv(config, h, command, tty=False) for h in hosts}
    emit = None if args.json else hostexec.prefixed_printer(hosts)
    runs = hostexec.run_many(argvs, emit, timeout=args.timeout)
    for r in runs:
        if r.exit_code == hostexec.SSH_FAILED and hostkeys.says_mismatch(r.stderr):
            target.refuse_changed_key(r.host)
    if args.json:
        views.print_json({"lab": target.name, "command": command, "hosts": [asdict(r) for r in runs]})
    return 0 if all(r.exit_code == 0 for r in runs) else 1


def exec_targets(target: model.Lab, args: argparse.Namespace, command: list[str]) -> list[str] | None:
    """The hosts of --all/--group (None for one host); with those, HOST is the command's first word."""
    if not args.all and not args.group:
        if args.json:
            raise LabError("exec: --json goes with --all or --group. Fix: labctl exec --all --json -- CMD.")
        if args.host is None:
            raise LabError(NO_HOST)
        return None
    if args.all and args.group:
        raise LabError("exec: --all and --group do not go together (--all is every host). Fix: give one of them.")
    if args.host is not None:
        command.insert(0, args.host)
    if args.all:
        return list(target.topo.hosts)
    return group_hosts(target, args.group)


def group_hosts(target: model.Lab, wanted: list[str]) -> list[str]:
    """The hosts of these groups, each once, in the groups' order."""
    groups = target.topo.group_hosts()
    hosts: list[str] = []
    for group in wanted:
        if not groups:
            raise LabError(
                f"exec --group: lab {target.name!r} has no groups (no host lists any). "
                f"Fix: use --all or name a host, or give hosts 'groups:' in {target.topo.path}."
            )
        if group not in groups:
            raise LabError(
                f"exec --group: no host of lab {target.name!r} is in group {group!r}. "
                f"Fix: use one of: {', '.join(sorted(groups))}."
            )
        hosts += [h for h in groups[group] if h not in hosts]
    return hosts
