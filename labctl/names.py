"""The one validation of lab names, whatever they come from (a topology file, --name, a state dir).

A lab name becomes a directory under the state root, a podman label and filter value, an
iptables comment and part of every container and network name; only names that pass here may
reach any of those."""

from __future__ import annotations

import re
from typing import Any

from labctl.errors import LabError

LAB_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")  # also the rule for network names
HOST_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
LAB_NAME_RULE = "use 1-31 characters: lower-case letters, digits and '-', starting with a letter"


def is_lab_name(name: Any) -> bool:
    return isinstance(name, str) and LAB_NAME.fullmatch(name) is not None


def is_host_name(name: Any) -> bool:
    return isinstance(name, str) and HOST_NAME.fullmatch(name) is not None


def boolean_words(value: bool) -> str:
    """What a user wrote for YAML to read this boolean (YAML 1.1: yes/no, on/off, true/false unquoted)."""
    return "yes, true or on" if value else "no, false or off"


def described(value: Any) -> str:
    """A value for an error message; a boolean says which words YAML reads as it, and to quote them."""
    if isinstance(value, bool):
        return f"{value!r} (YAML reads an unquoted {boolean_words(value)} as a boolean: quote the name, e.g. 'yes')"
    return repr(value)


def validate_lab_name(name: Any, where: str) -> str:
    """Return name if it is a valid lab name; else raise one LabError naming where it came from.

    where: the field it came from, e.g. "--name" or "lab.yml: field 'name'"."""
    if not is_lab_name(name):
        shown = "missing" if name is None else f"{described(name)} is invalid"
        raise LabError(f"{where}: lab name {shown}. Fix: {LAB_NAME_RULE} (e.g. my-lab).")
    return str(name)
