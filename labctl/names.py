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


def validate_lab_name(name: Any, where: str) -> str:
    """Return name if it is a valid lab name; else raise one LabError naming where it came from.

    where: the field it came from, e.g. "--name" or "lab.yml: field 'name'"."""
    if not is_lab_name(name):
        shown = "missing" if name is None else f"{name!r} is invalid"
        raise LabError(f"{where}: lab name {shown}. Fix: {LAB_NAME_RULE} (e.g. my-lab).")
    return str(name)
