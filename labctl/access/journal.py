"""The journalctl command line behind `labctl logs` and smoke's pointers to it: pure, no I/O."""

from __future__ import annotations

import shlex


def unit_patterns(unit: str) -> list[str]:
    """journalctl -u patterns for a unit name: a bare name also matches its template instances
    (``mongrel2`` -> ``mongrel2.service`` and ``mongrel2@*``); a name with a suffix, '@' or a glob is kept."""
    if any(c in unit for c in ".@*?["):
        return [unit]
    return [unit, f"{unit}@*"]


def command(unit: str | None = None, follow: bool = False, lines: int | None = None) -> list[str]:
    argv = ["journalctl", "--no-pager", "-o", "short-iso"]
    for pattern in unit_patterns(unit) if unit else []:
        argv += ["-u", pattern]
    if lines is not None:
        argv += ["-n", str(lines)]
    if follow:
        argv.append("-f")
        if lines is None:
            argv += ["-n", "20"]
    return argv


def logs_hint(host: str, unit: str | None = None, lab_args: str = "") -> str:
    """The `labctl logs` command a user runs to read a host's (or a unit's) journal."""
    parts = ["labctl", "logs", *shlex.split(lab_args), host, *([unit] if unit else [])]
    return shlex.join(parts)
