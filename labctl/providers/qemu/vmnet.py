"""VM networking on the host: a lab network's bridge, one tap per (VM, network), NAT for VM-only networks.

A lab network is a podman network; its bridge (``network_interface``) is where containers' veths
and VMs' taps meet on one L2 segment. netavark makes that bridge, its gateway address and its NAT
rules when a container starts on the network, and reuses a bridge that already exists. A network
with VMs only has no container, so labctl makes the bridge itself (same name, the gateway address)
and adds the NAT/forward rules netavark would (tagged ``labctl.vm=<lab>``).

Every link labctl makes carries an alias ``labctl.lab=<lab> ...``, so ``down`` finds taps and
bridges even without the lab's state. Names of taps fit Linux's 15 characters: ``lq`` + a hash of
(lab, host) + the network's index."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabError

SYS_NET = Path("/sys/class/net")
COMMENT = "labctl.vm"


@dataclass(frozen=True)
class Bridge:
    name: str
    subnet: str
    gateway: str

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


def _run(cmd: list[str], what: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise LabError(f"'{cmd[0]}' is not installed. Fix: apt-get install iproute2 iptables.") from None
    if check and result.returncode != 0:
        raise LabError(f"{' '.join(cmd[:4])} failed {what}: {result.stderr.strip() or result.stdout.strip()}")
    return result


def tap_name(lab: str, host: str, index: int) -> str:
    digest = hashlib.sha1(f"{lab}/{host}".encode()).hexdigest()[:9]
    return f"lq{digest}n{index}"


def lab_alias(lab: str, **fields: str) -> str:
    return " ".join([f"labctl.lab={lab}", *(f"{k}={v}" for k, v in fields.items())])


def alias_lab(alias: str) -> str | None:
    """The lab named by an alias labctl wrote (None for any other alias)."""
    first = alias.split(" ", 1)[0]
    return first.removeprefix("labctl.lab=") if first.startswith("labctl.lab=") else None


def inspect(podman_network: str) -> Bridge:
    """The bridge, subnet and gateway podman gave a network."""
    result = _run(["podman", "network", "inspect", podman_network], f"to read network {podman_network!r}")
    data = json.loads(result.stdout)[0]
    subnet = (data.get("subnets") or [{}])[0]
    if not data.get("network_interface") or not subnet.get("gateway"):
        raise LabError(
            f"podman network {podman_network!r} has no bridge or gateway (driver {data.get('driver')!r}). "
            "Fix: run 'labctl down' and 'labctl up' again so labctl recreates it."
        )
    return Bridge(str(data["network_interface"]), str(subnet["subnet"]), str(subnet["gateway"]))


def exists(link: str) -> bool:
    return (SYS_NET / link).exists()


def alias(link: str) -> str:
    try:
        return (SYS_NET / link / "ifalias").read_text().strip()
    except OSError:
        return ""


def members(bridge: str) -> list[str]:
    try:
        return sorted(p.name for p in (SYS_NET / bridge / "brif").iterdir())
    except OSError:
        return []


def master(link: str) -> str | None:
    path = SYS_NET / link / "master"
    return path.resolve().name if path.exists() else None


def ensure_bridge(bridge: Bridge, lab: str, network: str) -> None:
    """Make the network's bridge with its gateway address when no container made it yet."""
    if not exists(bridge.name):
        result = _run(["ip", "link", "add", bridge.name, "type", "bridge"], "to create a bridge", check=False)
        if result.returncode != 0 and not exists(bridge.name):  # lost a race with netavark: fine
            raise LabError(f"cannot create bridge {bridge.name!r}: {result.stderr.strip()}")
        if result.returncode == 0:
            _run(["ip", "link", "set", "dev", bridge.name, "alias", lab_alias(lab, net=network, kind="bridge")], "")
    cidr = f"{bridge.gateway}/{bridge.prefix}"
    have = _run(["ip", "-o", "-4", "addr", "show", "dev", bridge.name], "to read the bridge's addresses").stdout
    if f" {cidr} " not in have:
        _run(["ip", "addr", "add", cidr, "dev", bridge.name], f"to give bridge {bridge.name} its gateway address")
    _run(["ip", "link", "set", "dev", bridge.name, "up"], f"to bring bridge {bridge.name} up")


def create_tap(name: str, bridge: str, tap_alias: str) -> None:
    if exists(name):
        delete_link(name)
    _run(["ip", "tuntap", "add", "dev", name, "mode", "tap"], f"to create tap {name}")
    _run(["ip", "link", "set", "dev", name, "alias", tap_alias], f"to label tap {name}")
    _run(["ip", "link", "set", "dev", name, "master", bridge, "up"], f"to attach tap {name} to {bridge}")


def delete_link(name: str) -> bool:
    if not exists(name):
        return False
    _run(["ip", "link", "delete", "dev", name], f"to remove {name}", check=False)
    return True


def lab_links(lab: str) -> dict[str, str]:
    """Links labctl made for this lab (taps and bridges): name -> alias."""
    out = {}
    for path in sorted(SYS_NET.iterdir()) if SYS_NET.is_dir() else []:
        text = alias(path.name)
        if alias_lab(text) == lab:
            out[path.name] = text
    return out


def remove_if_unused(bridge: str) -> bool:
    """Remove a bridge nothing is attached to any more (a container's veth keeps it for netavark)."""
    if exists(bridge) and not members(bridge):
        return delete_link(bridge)
    return False


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return _run(["iptables", "-w", "5", *args], "(iptables)", check=check)


def _rules(lab: str, subnet: str) -> list[tuple[str, list[str]]]:
    tag = ["-m", "comment", "--comment", f"{COMMENT}={lab}"]
    return [
        ("nat", ["POSTROUTING", "-s", subnet, "-d", subnet, *tag, "-j", "RETURN"]),
        ("nat", ["POSTROUTING", "-s", subnet, "!", "-d", "224.0.0.0/4", *tag, "-j", "MASQUERADE"]),
        ("filter", ["FORWARD", "-s", subnet, *tag, "-j", "ACCEPT"]),
        ("filter", ["FORWARD", "-d", subnet, *tag, "-j", "ACCEPT"]),
    ]


def add_nat(lab: str, subnet: str) -> None:
    """What netavark does for a network with containers, for VM-only networks: the VMs reach out."""
    for table, rule in _rules(lab, subnet):
        if _iptables("-t", table, "-C", *rule, check=False).returncode != 0:
            _iptables("-t", table, "-A", *rule)
    forward = Path("/proc/sys/net/ipv4/ip_forward")
    if forward.exists() and forward.read_text().strip() != "1":
        forward.write_text("1\n")


def nat_rules(lab: str) -> list[tuple[str, list[str]]]:
    """The rules add_nat made for this lab: (table, rule words without -A)."""
    if not lab:
        raise LabError("refusing to match VM NAT rules of an empty lab name. Fix: name the lab.")
    found = []
    marker = f"{COMMENT}={lab}"
    for table, chain in (("nat", "POSTROUTING"), ("filter", "FORWARD")):
        for line in _iptables("-t", table, "-S", chain, check=False).stdout.splitlines():
            words = shlex.split(line)
            if "--comment" in words and words[words.index("--comment") + 1] == marker:
                found.append((table, words[1:]))
    return found


def remove_nat(lab: str) -> int:
    removed = 0
    for table, words in nat_rules(lab):
        _iptables("-t", table, "-D", *words, check=False)
        removed += 1
    return removed
