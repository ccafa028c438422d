"""Kept only until labctl/cli.py calls :func:`labctl.checks.bundles.add_cli_extensions` (which adds every
bundle's verbs, `labctl sdn` among them); delete then."""

from __future__ import annotations

from labctl.checks.bundles import add_cli_extensions as add_parser

__all__ = ["add_parser"]
