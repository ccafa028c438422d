"""What the podman and qemu providers share: the names of a lab's resources and its podman bridges.

Names are labctl-<lab>_<host> / labctl-<lab>_<network>: lab, host and network names cannot hold
'_', so no two labs' names can meet (labctl-rb7-x-a1 was both lab rb7's host x-a1 and lab rb7-x's
host a1). Every resource carries the label labctl.lab=<lab>, so cleanup finds everything even when
the state file is lost. No podman argument or filter, and no iptables rule, is built from a lab
name that is empty or invalid (:func:`checked`).

The lab's networks are podman bridges whoever's hosts are on them: containers join them, VMs plug a tap
into them (:class:`Bridges`, used by both providers)."""

from __future__ import annotations

import json
import shlex
import subprocess
from pathlib import Path
from typing import Any

from labctl.errors import LabError
from labctl.names import is_host_name, is_lab_name
from labctl.netops import hostnet
from labctl.netops.hostnet import Reserved
from labctl.providers.base import NetworkSpec

LABEL = "labctl.lab"
SEPARATOR = "_"  # between the lab's name and its host's or network's: neither may contain it
# What must not go into a saved image or disk (private host keys; generated secrets unless kept) is set
# aside by this host-side program while the host's file system is saved, then put back.
SET_ASIDE = Path(__file__).parents[1] / "hostside" / "setaside.py"


def checked(lab: str) -> str:
    """The lab name, proven valid before it goes into a podman filter, label, name or iptables rule.

    An empty name would make podman's filter label=labctl.lab= match every lab's containers."""
    if not is_lab_name(lab):
        raise LabError(
            f"refusing to run podman or iptables for the invalid lab name {lab!r}. "
            "Fix: name the lab with 1-31 lower-case letters, digits and '-', starting with a letter."
        )
    return lab


def checked_part(name: str, what: str) -> str:
    """A host or network name, proven valid before it becomes part of a podman name."""
    if not is_host_name(name):
        raise LabError(
            f"refusing to run podman for the invalid {what} name {name!r}. "
            "Fix: use lower-case letters, digits and '-' (not at either end)."
        )
    return name


def container_name(lab: str, host: str) -> str:
    return f"labctl-{checked(lab)}{SEPARATOR}{checked_part(host, 'host')}"


def network_name(lab: str, network: str) -> str:
    return f"labctl-{checked(lab)}{SEPARATOR}{checked_part(network, 'network')}"


def label(lab: str) -> str:
    """The label every resource of the lab carries (labctl.lab=<lab>)."""
    return f"{LABEL}={checked(lab)}"


def mac_address(address: str) -> str:
    """A fixed, locally administered MAC per address: a restarted host keeps it, so peers' ARP caches
    stay right (podman would pick a new random MAC at every start)."""
    octets = [int(part) for part in address.split(".")]
    return "02:4c:" + ":".join(f"{o:02x}" for o in octets)


def podman(
    *args: str, check: bool = True, what: str = "", stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run podman; LabError (naming what was meant) when it fails and check."""
    try:
        result = subprocess.run(["podman", *args], capture_output=True, text=True, check=False, input=stdin)
    except FileNotFoundError:
        raise LabError("podman is not installed. Fix: apt-get install podman runc.") from None
    if check and result.returncode != 0:
        raise LabError(
            f"podman failed {what or 'podman ' + ' '.join(args[:2])}: {result.stderr.strip() or result.stdout.strip()}"
        )
    return result


def network_list() -> list[dict[str, Any]]:
    """Every podman network (podman network ls, as JSON)."""
    return json.loads(podman("network", "ls", "--format", "json").stdout or "[]")  # type: ignore[no-any-return]


def iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run iptables on the nat table."""
    try:
        result = subprocess.run(
            ["iptables", "-w", "5", "-t", "nat", *args], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        raise LabError("iptables is not installed on this machine. Fix: apt-get install iptables.") from None
    if check and result.returncode != 0:
        raise LabError(f"iptables -t nat {' '.join(args)} failed: {result.stderr.strip()}")
    return result


Found = tuple[str, str, dict[str, str]]  # (kind "container" | "network", podman name, labels)


def _holders() -> list[Found]:
    """Every container's and network's name on this machine, with its labels."""
    found: list[Found] = []
    for item in json.loads(podman("ps", "-a", "--format", "json").stdout or "[]"):
        found += [("container", name, item.get("Labels") or {}) for name in item.get("Names") or []]
    found += [("network", net["name"], net.get("labels") or {}) for net in network_list()]
    return found


def _taken(lab: str, kind: str, name: str, owner: str | None) -> LabError:
    theirs = f"lab {owner!r}" if owner else "no labctl lab (no label labctl.lab)"
    fix = (
        f"rename one of the labs, or take lab {owner!r} down first (labctl down --name {owner})"
        if owner
        else f"remove or rename that {kind} (podman {'network ' if kind == 'network' else ''}rm {name}) "
        "if nothing needs it, or rename this lab"
    )
    return LabError(
        f"lab {lab!r} needs the podman {kind} name {name!r}, which already belongs to {theirs}. Fix: {fix}."
    )


def check_names(lab: str, hosts: list[str], networks: list[str]) -> None:
    """Refuse, before anything is created, when a name this lab needs is another lab's (or no lab's),
    or when the lab's own resources carry names of an older labctl (labctl-<lab>-<host>)."""
    wanted = {("container", container_name(lab, h)): h for h in hosts}
    wanted |= {("network", network_name(lab, n)): n for n in networks}
    for kind, name, labels in _holders():
        owner, part = labels.get(LABEL), labels.get("labctl.host" if kind == "container" else "labctl.network")
        if (kind, name) in wanted and (owner != lab or part != wanted[(kind, name)]):
            raise _taken(lab, kind, name, owner)
        if owner == lab and (kind, name) not in wanted and not name.startswith(f"labctl-{lab}{SEPARATOR}"):
            raise LabError(
                f"lab {lab!r} has the {kind} {name!r}, named by an older labctl (labctl-<lab>-<host>). "
                f"Fix: run 'labctl down --name {lab}', then bring the lab up again."
            )


class Bridges:
    """A lab's networks as podman bridges, with the iptables rules that let routed traffic between them pass."""

    def create_network(self, spec: NetworkSpec) -> None:
        name = network_name(spec.lab, spec.name)
        if podman("network", "exists", name, check=False).returncode == 0:
            return
        podman(
            "network",
            "create",
            "--subnet",
            spec.subnet,
            "--label",
            label(spec.lab),
            "--label",
            f"labctl.network={spec.name}",
            name,
            what=f"to create network {spec.name!r} ({spec.subnet})",
        )

    def link_networks(self, lab: str, subnets: list[str]) -> None:
        """Let traffic between a lab's own networks pass the host unchanged.

        With bridge-nf-call-iptables on, frames bridged between containers pass the host's nat table,
        where netavark masquerades anything leaving a network's subnet: a packet routed by a lab
        gateway container would reach the next hop from the host's bridge address. An ACCEPT
        before netavark's rules, for each pair of the lab's subnets, keeps the lab's addresses."""
        for src in subnets:
            for dst in subnets:
                if src == dst:
                    continue
                rule = ["POSTROUTING", "-s", src, "-d", dst, "-m", "comment", "--comment", label(lab), "-j", "ACCEPT"]
                if iptables("-C", *rule, check=False).returncode != 0:
                    iptables("-I", *rule)

    def unlink_networks(self, lab: str) -> None:
        """Remove the rules link_networks added for the lab."""
        mark = label(lab)
        for line in iptables("-S", "POSTROUTING").stdout.splitlines():
            if f'--comment "{mark}"' in line or f"--comment {mark} " in line:
                iptables("-D", *shlex.split(line)[1:], check=False)

    def check_names(self, lab: str, hosts: list[str], networks: list[str]) -> None:
        check_names(lab, hosts, networks)

    def reserved(self) -> list[Reserved]:
        """Subnets on this host that are not a labctl lab's: other podman networks, host routes."""
        return hostnet.foreign(network_list(), hostnet.host_routes(), LABEL)

    def networks(self, lab: str | None = None) -> dict[str, dict[str, str]]:
        """The labs' podman networks: lab -> {network: subnet} (lab None: every lab)."""
        out: dict[str, dict[str, str]] = {}
        for net in network_list():
            labels = net.get("labels") or {}
            owner = labels.get(LABEL)
            if owner is None or (lab is not None and owner != lab):
                continue
            subnets = net.get("subnets") or []
            if subnets:
                out.setdefault(owner, {})[labels.get("labctl.network", net["name"])] = subnets[0]["subnet"]
        return out
