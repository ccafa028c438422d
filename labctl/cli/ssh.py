"""labctl ssh (an interactive session), ssh-config (an OpenSSH config for the lab) and forget-key."""

from __future__ import annotations

import argparse
import os
import sys

from labctl.access import sshconfig
from labctl.cli.common import SubParsers, add_verb, running
from labctl.cli_args import lab_args
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "ssh", cmd_ssh, "open an interactive SSH session on a host")
    lab_args(p)
    p.add_argument("host")
    p.add_argument("command", nargs="*", help="optional: -- COMMAND [ARGS...] (labctl's options go before '--')")

    p = add_verb(sub, "ssh-config", cmd_ssh_config, "print an OpenSSH config for the lab's hosts (ssh/scp/rsync -F)")
    lab_args(p)
    p.add_argument("--path", action="store_true", help="write it to the lab's state and print the file's path")
    p.add_argument("host", nargs="?", help="only this host")

    p = add_verb(sub, "forget-key", cmd_forget_key, "forget a host's SSH host key (one that changed on purpose)")
    lab_args(p)
    p.add_argument("host")


def cmd_ssh(args: argparse.Namespace) -> int:
    target = running(args)
    target.require_host(args.host, "ssh")
    config = sshconfig.lab_config_file(target)
    os.execvp("ssh", ["ssh", "-F", str(config), args.host, *args.command])
    return 0  # not reached


def cmd_ssh_config(args: argparse.Namespace) -> int:
    target = running(args)
    if args.host:
        target.require_host(args.host, "ssh-config")
    if args.path:
        print(sshconfig.lab_config_file(target))
        return 0
    hosts = [h for h in sshconfig.lab_hosts(target) if not args.host or h.name == args.host]
    sys.stdout.write(sshconfig.render(hosts, str(target.state.known_hosts)))
    return 0


def cmd_forget_key(args: argparse.Namespace) -> int:
    """Drop a host's SSH host key from the lab's known_hosts: the next connection learns it again (from the
    provider for podman and qemu hosts; trust on first use for static ones)."""
    target = running(args)
    target.require_host(args.host, "forget-key")
    if target.forget_host_key(args.host):
        views.say(
            f"forgot the SSH host key of {args.host!r} (lab {target.name!r}); the next connection learns it again"
        )
    else:
        views.say(f"the lab's known_hosts holds no key of {args.host!r}: nothing to forget")
    return 0
