"""labctl up: create or reconcile the lab's hosts, converge them, run the smoke checks (also --locked, --from)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

from labctl.cli.common import SubParsers, add_verb
from labctl.cli.lockcmd import show_check
from labctl.cli.smoke import run_smoke
from labctl.cli_args import lab_args
from labctl.errors import LabError
from labctl.lifecycle import find, model, up
from labctl.reproduce import archive, locked
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "up", cmd_up, "create or reconcile the lab's hosts, converge them, run the smoke checks")
    lab_args(p)
    p.add_argument("--no-provision", action="store_true", help="only create and start the hosts")
    p.add_argument(
        "--force", action="store_true", help="converge every role on every host, changed or not (as provision)"
    )
    p.add_argument("--no-smoke", action="store_true", help="skip the smoke checks at the end")
    p.add_argument("--locked", action="store_true", help="install exactly the versions of LAB.lock (beside LAB.yml)")
    p.add_argument("--from", dest="from_archive", metavar="ARCHIVE", help="restore a lab saved with 'labctl save'")
    p.add_argument(
        "--trust",
        action="store_true",
        help="with --from: take the archive's topology as your own (its ansible_*/labctl_* variables and template "
        "expressions then run on this machine with your rights); only for an archive you made",
    )


Target = tuple[model.Lab, dict[str, Any], Path | None]


def _restored(args: argparse.Namespace) -> Target:
    """The lab restored from --from ARCHIVE; up.up's options (none) and the lock it is checked with (none)."""
    if args.file or args.locked:
        raise LabError("up --from restores a saved lab as it was: -f and --locked do not go with it. Fix: drop.")
    t0 = time.monotonic()
    target, manifest = archive.restore(Path(args.from_archive), args.name, say=views.say, trust=args.trust)
    views.say(
        f"lab {target.name}: restored {len(target.topo.hosts)} hosts of lab {manifest['lab']!r} in "
        f"{time.monotonic() - t0:.1f} s (no package source used)"
    )
    return target, {}, None


def _from_topology(args: argparse.Namespace) -> Target:
    """The lab of -f/--name; up.up's options (--locked: the lock's) and the lock it is checked with."""
    found, state = find.resolve(args.file, args.name)
    if found is None:
        raise LabError(
            f"lab {state.name!r} has no state to read its topology from. Fix: name its file: labctl up -f LAB.yml."
        )
    target = model.Lab(found)
    if args.locked:
        options, lock_file = locked.up_options(target, views.say)
        return target, options, lock_file
    return target, {"unlock": True}, None


def _say_hosts(topo: Any) -> None:
    counts: dict[str, int] = {}
    for host in topo.hosts.values():
        counts[host.provider] = counts.get(host.provider, 0) + 1
    on = ", ".join(f"{n} on {p}" for p, n in counts.items())
    views.say(f"lab {topo.name}: {len(topo.hosts)} hosts, {on} ({topo.path})")


def _say_hosts_report(report: Any) -> None:
    if not report.created and not report.started and not report.removed and not report.repaired:
        views.say("hosts: all present and running, nothing recreated")
    if report.phases:
        views.say("hosts phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items()))


def _checks(args: argparse.Namespace, topo: Any, lock_file: Path | None, report: Any) -> int:
    """The lock check (up --locked) and the smoke checks after a converge; their exit code."""
    rc = 0
    if lock_file is not None and report.converge is not None:
        t0 = time.monotonic()
        rc = show_check(locked.check(model.Lab(topo), lock_file), topo.name, json_out=False)
        report.timings["lock check"] = time.monotonic() - t0
    if not args.no_smoke and not args.no_provision:
        t0 = time.monotonic()
        rc = run_smoke(model.Lab(topo), None, json_out=False) or rc
        report.timings["smoke"] = time.monotonic() - t0
    return rc


def cmd_up(args: argparse.Namespace) -> int:
    if args.trust and not args.from_archive:
        raise LabError(
            "up --trust only goes with --from ARCHIVE (a topology file you name is trusted already). Fix: drop --trust."
        )
    target, options, lock_file = _restored(args) if args.from_archive else _from_topology(args)
    topo = target.topo
    progress = views.ConvergeProgress()
    _say_hosts(topo)
    try:
        with progress.shown():
            report = up.up(
                target,
                say=views.say,
                converge=not args.no_provision,
                progress=progress,
                force="up --force" if args.force else "",
                **options,
            )
    except KeyboardInterrupt:
        views.err.print(
            f"[red]interrupted[/]: lab {topo.name!r} may be half-created; "
            f"'labctl down --name {topo.name}' removes all of it."
        )
        return 130
    _say_hosts_report(report)
    if report.converge is not None:
        views.converge_summary(report.converge)
        if not report.converge.ok:
            views.timings(report.timings)
            return 1
    rc = _checks(args, topo, lock_file, report)
    views.timings(report.timings)
    return rc
