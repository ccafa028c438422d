"""Command-line arguments shared by labctl's verbs and its extensions (e.g. `labctl sdn`).

A module of its own so that extensions use them without importing cli.py (which imports them)."""

from __future__ import annotations

import argparse


def lab_args(parser: argparse.ArgumentParser) -> None:
    """-f/--file and --name: which lab a verb acts on (neither: the default lab)."""
    parser.add_argument("-f", "--file", metavar="LAB.yml", help="topology file (default: labs/default.yml)")
    parser.add_argument("--name", metavar="NAME", help="act on the lab of this name (from its state)")
