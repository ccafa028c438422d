"""labctl provision: converge a running lab with playbooks/site.yml."""

from __future__ import annotations

import argparse

from labctl.cli.common import SubParsers, add_verb, running
from labctl.cli_args import lab_args
from labctl.lifecycle import up
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(sub, "provision", cmd_provision, "converge a running lab with playbooks/site.yml")
    lab_args(p)


def cmd_provision(args: argparse.Namespace) -> int:
    target = running(args)
    progress = views.ConvergeProgress()
    with progress.shown():
        report = up.up(target, say=views.say, converge=True, progress=progress, force="provision")
    if report.converge is None:
        return 0
    views.converge_summary(report.converge)
    return 0 if report.converge.ok else 1
