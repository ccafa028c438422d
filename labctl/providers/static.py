"""Static provider: hosts that already exist (an address, a user and a key in the topology file).

labctl never creates or removes them; it only reaches them over SSH."""

from __future__ import annotations

from labctl.providers.base import HostInfo, HostSpec, NetworkSpec


class StaticProvider:
    name = "static"

    def __init__(self) -> None:
        self._hosts: dict[str, dict[str, str]] = {}

    def create_network(self, spec: NetworkSpec) -> None:
        return None

    def link_networks(self, lab: str, subnets: list[str]) -> None:
        return None

    def create(self, spec: HostSpec) -> None:
        self._hosts.setdefault(spec.lab, {})[spec.name] = spec.address or ""

    def start(self, lab: str, host: str) -> None:
        return None

    def stop(self, lab: str, host: str) -> None:
        return None

    def destroy(self, lab: str, host: str) -> None:
        self._hosts.get(lab, {}).pop(host, None)

    def destroy_lab(self, lab: str) -> list[str]:
        self._hosts.pop(lab, None)
        return []

    def address(self, lab: str, host: str) -> str | None:
        return self._hosts.get(lab, {}).get(host)

    def list(self, lab: str) -> dict[str, HostInfo]:
        return {h: HostInfo(h, "running") for h in self._hosts.get(lab, {})}

    def networks(self, lab: str | None = None) -> dict[str, dict[str, str]]:
        return {}
