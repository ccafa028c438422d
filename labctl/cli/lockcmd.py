"""labctl lock (write LAB.lock, or --check it) and labctl save (the running lab into one archive)."""

from __future__ import annotations

import argparse
from pathlib import Path

from labctl.cli.common import SubParsers, add_verb, running
from labctl.cli_args import lab_args
from labctl.reproduce import archive, locked
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "lock", cmd_lock, "write LAB.lock (exact package versions of the running lab), or --check it")
    lab_args(p)
    p.add_argument("--check", action="store_true", help="compare the running lab with its lock: exit 1 on drift")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add_verb(sub, "save", cmd_save, "save the running lab (topology, lock, host file systems) into one archive")
    lab_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the archive to write (tar)")
    p.add_argument("--with-secrets", action="store_true", help="include generated secrets (the archive is 0600)")


def show_check(report: locked.CheckReport, name: str, json_out: bool) -> int:
    """Render a lock check (JSON, one line, or the drift table); 1 on drift."""
    if json_out:
        views.print_json(report.to_json(name))
    elif report.ok:
        views.say(f"lab {name} matches its lock {report.lock_file}", wrap=False)
    else:
        views.drift_table(name, report)
    return 0 if report.ok else 1


def cmd_lock(args: argparse.Namespace) -> int:
    target = running(args)
    if args.check:
        return show_check(locked.check(target), target.name, args.json)
    path, written = locked.write(target)
    if args.json:
        views.print_json({"lab": target.name, "lock": str(path), **written.to_dict()})
    else:
        counts = ", ".join(
            f"{h} {len(v.debian)} deb/{sum(len(d) for d in v.python.values())} py" for h, v in written.hosts.items()
        )
        views.say(f"wrote {path} ({counts})")
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    target = running(args)
    report = archive.save(target, Path(args.output), with_secrets=args.with_secrets, say=views.say)
    views.say(f"saved lab {target.name} to {report.path}: {report.size / 2**20:.0f} MiB in {report.seconds:.1f} s")
    if report.with_secrets:
        views.say(f"{report.path} holds the lab's generated secrets: it is 0600, keep it private")
    return 0
