"""What labctl's verbs share: the parser class with labctl's error style, argument types, output files,
the running lab a verb acts on, and ssh's exit code."""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from labctl.access import hostexec
from labctl.errors import LabError
from labctl.lifecycle import find, model

# Verbs that take a command for a host: labctl's own options may come anywhere before '--'.
COMMAND_VERBS = ("exec", "ssh", "capture")

SubParsers: TypeAlias = "argparse._SubParsersAction[Any]"
Handler: TypeAlias = Callable[[argparse.Namespace], int]


class Parser(argparse.ArgumentParser):
    """argparse with labctl's error style: one paragraph naming the problem and the fix, exit 2."""

    def error(self, message: str) -> NoReturn:
        verb = self.prog.removeprefix("labctl").strip()
        fix = f"see '{self.prog} --help'"
        if verb in COMMAND_VERBS and ("unrecognized arguments" in message or "before '--'" in message):
            fix = f"put the host's command after '--': labctl {verb} HOST [-f LAB.yml] -- COMMAND [ARGS...]"
            if verb == "capture":
                fix = "put the capture filter after '--': labctl capture HOST[:NETWORK] [-w FILE] -- tcp port 80"
        where = f"{verb}: " if verb else ""
        self.exit(2, f"labctl: error: {where}{message}. Fix: {fix}.\n")


def add_verb(sub: SubParsers, name: str, fn: Handler, help_: str) -> argparse.ArgumentParser:
    """A verb's sub-parser, its help also its description, calling fn."""
    p = sub.add_parser(name, help=help_, description=help_)
    p.set_defaults(fn=fn)
    return p


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of packets above 0, got {text!r}")
    return value


MAX_LINES = 1_000_000


def lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 0 < value <= MAX_LINES:
        raise argparse.ArgumentTypeError(f"expected a whole number of entries from 1 to {MAX_LINES}, got {text!r}")
    return value


def output_file(path: str, verb: str) -> None:
    """Refuse an output file labctl could not write, before any work (or connection) is done."""
    target = Path(path)
    if target.is_dir():
        raise LabError(f"{verb} {path!r}: is a directory. Fix: name a file in it, e.g. {target / 'out'}.")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise LabError(
            f"{verb} {path!r}: the directory {str(parent)!r} is missing. Fix: create it, or name another file."
        )


def write_output(path: str, text: str, verb: str) -> None:
    output_file(path, verb)
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError as exc:
        raise LabError(f"{verb} {path!r}: cannot write it ({exc.strerror}). Fix: name a file you can write.") from None


def running(args: argparse.Namespace) -> model.Lab:
    """The running lab of -f/--name (an error naming the fix when it is not up)."""
    topo, state = find.resolve(args.file, args.name)
    return find.require(topo, state)


def checked_ssh(target: model.Lab, hosts: list[str], rc: int) -> int:
    """ssh's exit code, unless ssh could not connect because a host's key is not the one learnt: that error."""
    if rc == hostexec.SSH_FAILED:
        for host in hosts:
            target.refuse_changed_key(host)
    return rc
