"""labctl smoke: run the smoke checks against a running lab."""

from __future__ import annotations

import argparse
from dataclasses import asdict

from labctl.checks.context import context_for
from labctl.checks.runner import run_checks
from labctl.cli.common import SubParsers, add_verb, running
from labctl.cli_args import lab_args
from labctl.lifecycle import model
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "smoke", cmd_smoke, "run the smoke checks against a running lab")
    lab_args(p)
    p.add_argument("--only", action="append", metavar="SERVICE", help="only this service (repeatable)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")


def run_smoke(target: model.Lab, only: list[str] | None, json_out: bool) -> int:
    """Run the checks (only: these services), render them (a table, or JSON); 1 when one failed."""
    ctx = context_for(target)
    try:
        results = run_checks(ctx, only, on_result=views.smoke_line, user_checks=target.topo.checks)
    finally:
        ctx.runner.close()
    if json_out:
        views.print_json({"lab": target.name, "checks": [asdict(r) for r in results]})
    else:
        views.smoke_table(results)
    return 0 if all(r.ok for r in results) else 1


def cmd_smoke(args: argparse.Namespace) -> int:
    return run_smoke(running(args), args.only, args.json)
