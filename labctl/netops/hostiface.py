"""Which interface of a lab host a `HOST[:NETWORK|IFACE]` argument means (capture, impair).

A lab network is found on the host by the address the topology gave it there (``ip -o -4 addr``),
so the answer is the same for a container, a VM or a static host: nothing asks the provider."""

from __future__ import annotations

import re
from dataclasses import dataclass

from labctl.access.remote import Runner
from labctl.errors import LabError, printable
from labctl.lifecycle.model import Lab

IFACE = re.compile(r"^[A-Za-z0-9_.@-]{1,15}$")


@dataclass(frozen=True)
class Where:
    """A parsed HOST[:NETWORK|IFACE] argument."""

    host: str
    part: str | None  # the network or interface named, if any


def parse_target(text: str, verb: str) -> Where:
    host, sep, part = text.partition(":")
    if not host or (sep and not part):
        raise LabError(f"{verb}: {printable(text)!r} is not HOST[:NETWORK|IFACE]. Fix: e.g. {verb} gw:outside.")
    return Where(host, part or None)


def iface_of_address(ip_addr_output: str, address: str) -> str | None:
    """The interface holding an IPv4 address, from `ip -o -4 addr show` output."""
    for line in ip_addr_output.splitlines():
        words = line.split()
        if len(words) >= 4 and words[2] == "inet" and words[3].split("/")[0] == address:
            return words[1].split("@")[0]
    return None


def resolve(lab: Lab, runner: Runner, where: Where, verb: str, allow_any: bool = False) -> str:
    """The interface name on the host. No part: the host's first lab network (or `any` for a host on
    no lab network, when allow_any)."""
    lab.require_host(where.host, verb)
    host = lab.topo.hosts[where.host]
    part = where.part
    if part is None:
        if host.networks:
            part = host.networks[0]
        elif allow_any:
            return "any"
        else:
            raise LabError(
                f"{verb}: host {where.host!r} is on no lab network. Fix: name its interface: {verb} {where.host}:eth0."
            )
    if part in lab.topo.networks:
        if part not in host.addresses:
            raise LabError(
                f"{verb}: host {where.host!r} is not on network {part!r}. "
                f"Fix: use one of its networks ({', '.join(host.networks) or 'none'}) or an interface name."
            )
        address = host.addresses[part]
        res = runner.run(where.host, "ip -o -4 addr show", timeout=30)
        iface = iface_of_address(res.stdout, address) if res.ok else None
        if iface is None:
            raise LabError(
                f"{verb}: no interface of {where.host!r} holds its {part} address {address} ({res.output[:200]}). "
                f"Fix: check 'labctl exec {where.host} -- ip -4 addr' and the lab with 'labctl status'."
            )
        return iface
    if part == "any" and allow_any:
        return part
    if not IFACE.fullmatch(part):
        raise LabError(
            f"{verb}: {printable(part)!r} is neither a lab network nor an interface name. "
            f"Fix: use one of the lab's networks ({', '.join(lab.topo.networks) or 'none'}) "
            "or an interface such as eth0."
        )
    res = runner.run(where.host, f"ip -o link show dev {part}", timeout=30)
    if not res.ok:
        raise LabError(
            f"{verb}: host {where.host!r} has no interface {part!r}. "
            f"Fix: use one of the lab's networks or see 'labctl exec {where.host} -- ip -br link'."
        )
    return part
