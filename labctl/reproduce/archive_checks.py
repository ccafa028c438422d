"""What a saved lab's topology may hold when it comes from an archive (`labctl up --from ARCHIVE`).

An archive is data, not a program (docs/ARCHITECTURE.md, "Trust model"): it may come from anyone, and
its topology.yml becomes the restored lab's inventory. So, on top of the validation every topology file
passes (labctl/topology.py), an archive's topology may hold, unless the user gives --trust:

- no variable, anywhere, whose name starts with ``ansible_`` (how Ansible connects, as whom, with which
  interpreter: ``ansible_connection: local`` would run the playbook on this machine as root) or
  ``labctl_`` (labctl's own inventory variables);
- no template expression (``{{``, ``{%``, ``{#``) in any key or value, at any depth: Ansible renders them
  on this machine (``lookup('pipe', ...)`` runs a command here).

The walk is iterative and bounded (a YAML alias bomb is a few lines that name a huge tree): too many
values or too deep a nesting is refused too."""

from __future__ import annotations

from collections import deque
from typing import Any

from labctl.errors import LabError, printable

MEMBER = "topology.yml"
FORBIDDEN_PREFIXES = ("ansible_", "labctl_")
TEMPLATE_MARKS = ("{{", "{%", "{#")
MAX_VALUES = 200_000  # keys and values visited (aliases count each time they are reached)
MAX_DEPTH = 64
TRUST_ALLOWS = (
    "--trust restores the archive's topology as it is, like a topology file you wrote: its ansible_*/labctl_* "
    "variables and template expressions then run with your rights on this machine (ansible_connection: local, "
    "lookup('pipe', ...)); give it only for an archive you made yourself"
)


def _refuse(archive: str, where: str, problem: str, fix: str) -> LabError:
    return LabError(printable(f"{archive}: member {MEMBER!r}, field {where!r}: {problem}. Fix: {fix}"))


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _has_template(text: str) -> bool:
    return any(mark in text for mark in TEMPLATE_MARKS)


def _check_key(archive: str, where: str, key: Any) -> None:
    text = str(key)
    if text.startswith(FORBIDDEN_PREFIXES):
        raise _refuse(
            archive,
            where,
            f"a saved lab may not set {text!r} (variables named ansible_* or labctl_* change how Ansible connects "
            "to, escalates on or treats the hosts, e.g. ansible_connection: local runs on this machine)",
            f"remove that variable from the archive's topology.yml; or, if you wrote this archive yourself, "
            f"restore it with 'labctl up --from ARCHIVE --trust' ({TRUST_ALLOWS}).",
        )
    if _has_template(text):
        raise _template(archive, where)


def _template(archive: str, where: str) -> LabError:
    return _refuse(
        archive,
        where,
        "a saved lab may not hold a template expression ('{{', '{%' or '{#': Ansible would render it on this "
        "machine, e.g. lookup('pipe', ...) runs a command here)",
        "remove the expression from the archive's topology.yml (write the value out); or, if you wrote this "
        f"archive yourself, restore it with 'labctl up --from ARCHIVE --trust' ({TRUST_ALLOWS}).",
    )


def check(raw: Any, archive: str, trust: bool = False) -> None:
    """Refuse (LabError naming the member, the field path and the fix) what an archive's topology may not
    hold; with trust, only the size bounds apply."""
    stack: deque[tuple[Any, str, int]] = deque([(raw, "", 0)])
    seen = 0
    while stack:
        value, where, depth = stack.popleft()  # in file order: the first bad field is named
        seen += 1
        if seen > MAX_VALUES or depth > MAX_DEPTH:
            raise _refuse(
                archive,
                where or "(top)",
                f"it holds more than {MAX_VALUES} values or nests deeper than {MAX_DEPTH} levels (YAML aliases that "
                "expand into a huge tree?)",
                "save the lab again with 'labctl save -o FILE'; a topology needs no such size.",
            )
        if isinstance(value, dict):
            for key, item in value.items():
                at = _join(where, key)
                if not trust:
                    _check_key(archive, at, key)
                stack.append((item, at, depth + 1))
        elif isinstance(value, list):
            stack.extend((item, f"{where}[{i}]", depth + 1) for i, item in enumerate(value))
        elif isinstance(value, str) and not trust and _has_template(value):
            raise _template(archive, where)
