"""Command-line arguments shared by labctl's verbs and its extensions (e.g. `labctl sdn`).

A module of its own (outside the labctl.cli package) so that extensions use them without importing
labctl.cli, which imports every verb and the extensions."""

from __future__ import annotations

import argparse


def lab_args(parser: argparse.ArgumentParser, short: bool = True) -> None:
    """-f/--file and --name: which lab a verb acts on (neither: the default lab). short=False leaves
    out -f (for `logs`, where -f follows, as journalctl -f)."""
    flags = ["-f", "--file"] if short else ["--file"]
    parser.add_argument(*flags, metavar="LAB.yml", help="topology file (default: labs/default.yml)")
    parser.add_argument("--name", metavar="NAME", help="act on the lab of this name (from its state)")
