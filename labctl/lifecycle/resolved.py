"""The resolved lab: built once per command from the topology, inventory/ and the state, and read by every
output (inventory.yml, ssh_config, the Fabric runner, the checks' Context)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from labctl.access.connection import Connection


@dataclass(frozen=True)
class ResolvedHost:
    """One host as every output sees it."""

    name: str
    connection: Connection  # how labctl reaches it over SSH
    addresses: dict[str, str]  # network -> address (the SSH address alone for a host on no lab network)
    options: dict[str, Any]  # its provider's options from the topology
    variables: dict[str, Any]  # every variable it sees: lab-wide, its groups', inventory/'s, labctl's, its own


@dataclass(frozen=True)
class ResolvedLab:
    """Every host of a lab resolved, and the inventory document they were resolved into."""

    name: str
    hosts: dict[str, ResolvedHost]
    inventory: dict[str, Any]  # what inventory.yml holds (labctl.provisioning.inventory.document)
