"""The provider interface: how labctl gets hosts, whatever they run on."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class HostSpec:
    """Everything a provider needs to create one host."""

    lab: str
    name: str
    image: str
    networks: dict[str, str]  # network -> address, in order
    extra_hosts: dict[str, str] = field(default_factory=dict)  # name -> address for /etc/hosts
    pubkey: str = ""  # path of the public key to authorize for root
    address: str | None = None  # static hosts
    user: str = "root"


@dataclass(frozen=True)
class NetworkSpec:
    lab: str
    name: str
    subnet: str


@dataclass(frozen=True)
class HostInfo:
    name: str
    state: str  # running | stopped | missing | ...
    id: str = ""


class Provider(Protocol):
    """One small interface per backend (containerlab's runtimes are the model)."""

    name: str

    def create_network(self, spec: NetworkSpec) -> None: ...

    def link_networks(self, lab: str, subnets: list[str]) -> None:
        """Let traffic between the lab's own networks pass unchanged (routing through lab hosts)."""
        ...

    def create(self, spec: HostSpec) -> None: ...

    def start(self, lab: str, host: str) -> None: ...

    def stop(self, lab: str, host: str) -> None: ...

    def destroy(self, lab: str, host: str) -> None: ...

    def destroy_lab(self, lab: str) -> list[str]:
        """Remove every resource carrying the lab's label; returns what was removed."""
        ...

    def address(self, lab: str, host: str) -> str | None: ...

    def list(self, lab: str) -> dict[str, HostInfo]: ...

    def networks(self, lab: str | None = None) -> dict[str, dict[str, str]]:
        """Running networks: lab -> {network: subnet} (lab None: every lab)."""
        ...
