# PYTHON_ARGCOMPLETE_OK
"""labctl's command line: parse, call, render. One module per verb (or small family of verbs), each with its
`add_parser(sub)` and its handler; the work happens in labctl.lifecycle and friends.

    up.py         up                          lockcmd.py    lock, save
    provision.py  provision                   smoke.py      smoke
    status.py     status                      exec.py       exec
    ssh.py        ssh, ssh-config, forget-key cp.py         cp
    logs.py       logs                        netops.py     capture, impair
    graph.py      graph                       restart.py    restart
    console.py    console                     inventory.py  inventory
    down.py       down                        image.py      image build
    common.py     the parser class, argument types, output files, the running lab"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from labctl.cli import (
    console,
    cp,
    down,
    exec,
    graph,
    image,
    inventory,
    lockcmd,
    logs,
    netops,
    provision,
    restart,
    smoke,
    ssh,
    status,
    up,
)
from labctl.cli.common import COMMAND_VERBS, Parser, SubParsers
from labctl.errors import LabError
from labctl.ui import completion, views

# In the order `labctl --help` lists them.
VERB_MODULES = (
    up,
    lockcmd,
    provision,
    smoke,
    status,
    exec,
    ssh,
    cp,
    logs,
    netops,
    graph,
    restart,
    console,
    inventory,
    down,
    image,
)

__all__ = ["build_parser", "main", "parse_args"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="labctl", description="Build a systems lab from a topology file, provision, smoke-test, tear down."
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for module in VERB_MODULES:
        module.add_parser(sub)
    _add_extensions(sub)
    return parser


def _add_extensions(sub: SubParsers) -> None:
    """Verbs that belong to one role, found in the roles' bundles (e.g. labctl sdn)."""
    from labctl.checks.bundles import add_cli_extensions

    add_cli_extensions(sub)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse labctl's command line. For exec and ssh everything after the first '--' is the host's
    command, and labctl's options (-f, --name, --timeout) may come anywhere before it, also after
    the host: `labctl exec HOST -f LAB.yml -- CMD` acts on LAB.yml's lab, never on the default one."""
    parser = build_parser()
    completion.autocomplete(parser)
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in COMMAND_VERBS:
        return parser.parse_args(words)
    verb, rest, command = words[0], words[1:], None
    if "--" in rest:
        cut = rest.index("--")
        rest, command = rest[:cut], rest[cut + 1 :]
    sub = _verb_parser(parser, verb)
    args = sub.parse_intermixed_args(rest)
    if command is not None:
        if args.command:
            sub.error(f"{' '.join(args.command)!r} comes before '--', where only labctl's options and the host go")
        args.command = command
    args.verb = verb
    return args


def _verb_parser(parser: argparse.ArgumentParser, verb: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[verb]  # type: ignore[no-any-return]
    raise KeyError(verb)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return int(args.fn(args))
    except LabError as exc:
        views.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        views.err.print("[red]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
