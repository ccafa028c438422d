"""What a lab looks like now: its hosts' states, every lab on this machine, one host's details."""

from __future__ import annotations

import contextlib
from typing import Any

from labctl.checks import bundles
from labctl.errors import LabError
from labctl.lifecycle.find import require
from labctl.lifecycle.model import Lab
from labctl.providers import UP_STATES, HostInfo, get_provider, provider_names
from labctl.state import LabState, all_labs, state_root
from labctl.topology import Topology


def status(lab: Lab) -> list[dict[str, Any]]:
    live = lab.live()
    rows = []
    for host in lab.topo.hosts.values():
        info = live.get(host.name)
        addresses = dict(host.addresses) or ({"ssh": host.address} if host.address else {})
        row: dict[str, Any] = {
            "name": host.name,
            "groups": list(host.groups),
            "addresses": addresses,
            "state": info.state if info else "missing",
            "provider": host.provider,
        }
        if info and info.details:
            row.update(info.details)
        rows.append(row)
    return rows


def all_up(rows: list[dict[str, Any]]) -> bool:
    """True when every host of a status listing is running (or a static host)."""
    return all(r["state"] in UP_STATES for r in rows)


def all_lab_rows() -> list[dict[str, Any]]:
    """Every lab, found by its state and by its labels: a lab with containers but no state, or with a
    damaged state file, is listed with its problem, never hidden."""
    labs = all_labs()
    found: dict[str, dict[str, list[str]]] = {}
    for provider_name in provider_names():
        try:
            for name, res in get_provider(provider_name).labs().items():
                entry = found.setdefault(name, {"hosts": [], "networks": []})
                entry["hosts"] += res["hosts"]
                entry["networks"] += res["networks"]
        except LabError:  # e.g. podman is not installed: what the state says still shows
            continue
    rows = []
    for name in sorted(set(labs) | set(found)):
        data = labs.get(name)
        problem = ""
        if data is None:
            phase = "no state"
            problem = (
                f"no state in {state_root()} (lost, or kept under another LABCTL_STATE_DIR); "
                f"'labctl up -f LAB.yml' repairs it, 'labctl down --name {name}' removes it"
            )
        elif data.get("phase") == "damaged":
            phase = "damaged"
            problem = f"its state file is damaged; 'labctl down --name {name}' removes the lab"
        else:
            phase = str(data.get("phase"))
        rows.append(
            {
                "name": name,
                "phase": phase,
                "containers": len(found.get(name, {}).get("hosts", [])),
                "topology_file": (data or {}).get("topology_file"),
                "problem": problem,
            }
        )
    return rows


def status_from_labels(name: str, topo: Topology | None) -> list[dict[str, Any]]:
    """Status of a lab that has no state: its hosts, found by their labels."""
    live: dict[str, HostInfo] = {}
    for provider_name in provider_names():
        with contextlib.suppress(LabError):
            live.update(get_provider(provider_name).list(name))
    if not live:
        require(None, LabState(name))
    if topo is not None:
        return status(Lab(topo))
    return [{"name": h, "groups": [], "addresses": {}, "state": i.state} for h, i in sorted(live.items())]


def host_details(lab: Lab, host: str) -> dict[str, Any]:
    """What `status --host` adds for one host: what each role's bundle says of it (e.g. a NAT gateway's
    port forwards)."""
    return bundles.host_details(lab, host)
