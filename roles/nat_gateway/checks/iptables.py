"""Reading iptables rule listings (``iptables -S`` / ``-v -S`` output): pure parsing, no I/O.

Used by the nat_gateway smoke checks and by ``labctl status --host`` (a gateway's forwards)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# prefix of the comment on every rule the nat_gateway role owns
COMMENT = "labctl nat_gateway"


def option(spec: str, *flags: str) -> str | None:
    """The value of the first of flags present in a rule spec (quotes removed), else None."""
    for flag in flags:
        m = re.search(rf"(?:^|\s){re.escape(flag)} (\"[^\"]*\"|\S+)", spec)
        if m:
            return m.group(1).strip('"')
    return None


def forwards_from_rules(text: str) -> list[dict[str, Any]]:
    """Every DNAT rule of ``iptables -t nat -S`` as a forward (the name from the role's comment)."""
    out = []
    for line in text.splitlines():
        if not line.startswith("-A ") or "-j DNAT" not in line:
            continue
        dest = option(line, "--to-destination") or ""
        to_address, _, to_port = dest.partition(":")
        port = option(line, "--dport", "--destination-port")
        protocol = option(line, "-p", "--protocol")
        comment = option(line, "--comment") or ""
        name = comment[len(f"{COMMENT} forward ") :] if comment.startswith(f"{COMMENT} forward ") else None
        address = option(line, "-d", "--destination")
        out.append(
            {
                "name": name or f"{protocol}/{port}",
                "protocol": protocol,
                "address": address.removesuffix("/32") if address else None,
                "port": int(port) if port else None,
                "to_host": None,
                "to_address": to_address or None,
                "to_port": int(to_port) if to_port else (int(port) if port else None),
            }
        )
    return out


@dataclass(frozen=True)
class Rule:
    chain: str
    spec: str  # the rule without "-A CHAIN" and without its counters
    packets: int
    bytes: int

    def comment(self) -> str | None:
        return option(self.spec, "--comment")


_COUNTED = re.compile(r"^-A (\S+)(.*?) -c (\d+) (\d+)(.*)$")


def parse_counted_rules(text: str) -> list[Rule]:
    """Rules with counters from ``iptables -v -S [CHAIN]`` (lines like ``-A C -p tcp -c 12 720 -j X``)."""
    rules = []
    for line in text.splitlines():
        m = _COUNTED.match(line.strip())
        if m:
            spec = (m.group(2) + m.group(5)).strip()
            rules.append(Rule(m.group(1), spec, int(m.group(3)), int(m.group(4))))
    return rules
