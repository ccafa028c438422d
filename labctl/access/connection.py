"""How labctl reaches one host: the one answer every SSH user reads (the inventory's ansible_* variables,
ssh_config, the Fabric runner of checks and exec)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from labctl.state import LabState
from labctl.topology import Topology


@dataclass(frozen=True)
class Connection:
    """Where and as whom labctl reaches a host over SSH, and the only host keys it accepts."""

    host: str
    address: str  # where labctl reaches it (its provider says)
    user: str
    key: str  # the private key file: the host's own (static hosts) or the lab's
    known_hosts: str  # the lab's known_hosts file: the only host keys accepted
    jump: str | None = None  # the host ssh goes through first (none yet: every host is reached directly)


def connection_for(topo: Topology, state: LabState, host: str, address: str) -> Connection:
    """The host's one Connection: the host's own key when the topology names one, else the lab's."""
    h = topo.hosts[host]
    key = str(Path(h.key).expanduser()) if h.key else str(state.key)
    return Connection(host, address, h.user, key, str(state.known_hosts))
