"""`labctl graph` on a NAT gateway: its port forwards (the host's vars, else the role's default)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from labctl.ui.graph import role_default

if TYPE_CHECKING:
    from labctl.topology import Topology


def notes(topo: Topology, host: str) -> dict[str, Any]:
    forwards = topo.hostvars(host).get("nat_gateway_forwards", role_default("nat_gateway", "nat_gateway_forwards"))
    return {"forwards": [dict(f) for f in forwards or []]}
