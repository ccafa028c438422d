"""`labctl graph` on an SDN controller: its slices (the host's vars, else the role's default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labctl.ui.graph import role_default

if TYPE_CHECKING:
    from labctl.topology import Topology


def notes(topo: Topology, host: str) -> dict[str, Any]:
    slices = topo.hostvars(host).get("sdn_controller_slices", role_default("sdn_controller", "sdn_controller_slices"))
    return {"slices": [dict(s) for s in slices or []]}
