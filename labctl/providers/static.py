"""Static provider: hosts that already exist (an address, a user and a key in the topology file).

labctl never creates or removes them; it only reaches them over SSH."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from labctl.errors import LabError
from labctl.lifecycle import kernellog
from labctl.providers import register
from labctl.providers.base import HostInfo, HostSpec, NetworkSpec, Say

if TYPE_CHECKING:
    from labctl.access.remote import Runner


@register("static")
class StaticProvider:
    name = "static"
    kernel_log = kernellog.OWN  # a machine of its own: journalctl -k on it

    def prepare(self, hosts: list[HostSpec], say: Say) -> None:
        return None

    def create_network(self, spec: NetworkSpec) -> None:
        return None

    def link_networks(self, lab: str, subnets: list[str]) -> None:
        return None

    def check_names(self, lab: str, hosts: list[str], networks: list[str]) -> None:
        return None  # labctl names nothing on existing hosts

    def create(self, spec: HostSpec) -> None:
        return None

    def authorize(self, lab: str, host: str, pubkey: str) -> None:
        return None  # static hosts have keys of their own

    def console(self, lab: str, host: str, lines: int = 15) -> str:
        return ""

    def show_console(self, lab: str, host: str, interactive: bool) -> int:
        raise LabError(
            f"console: {host!r} is a static host; labctl has no console of it. Fix: use 'labctl ssh {host}'."
        )

    def exit_code(self, lab: str, host: str) -> int | None:
        return None

    def start(self, lab: str, host: str) -> None:
        return None

    def stop(self, lab: str, host: str) -> None:
        return None

    def destroy(self, lab: str, host: str) -> None:
        return None

    def destroy_lab(self, lab: str) -> list[str]:
        return []

    def remains(self, lab: str) -> list[str]:
        return []  # hosts and networks are all there is

    def labs(self) -> dict[str, dict[str, list[str]]]:
        return {}  # nothing of a static lab carries a label

    def reserved(self) -> list[tuple[str, str]]:
        return []

    def address(self, spec: HostSpec) -> str:
        return spec.address or ""

    def image_info(self, hosts: list[HostSpec]) -> dict[str, str]:
        return {}

    def export_hosts(
        self, lab: str, hosts: list[str], dest: Path, secrets: bool = False, runner: Runner | None = None
    ) -> dict[str, str]:
        raise LabError(
            f"lab {lab!r}: static hosts ({', '.join(hosts)}) cannot be saved: labctl does not own their disks. "
            "Fix: save a lab whose hosts labctl creates (podman), or image those machines with your own tools."
        )

    def check_import(self, lab: str, files: dict[str, str], src: Path) -> None:
        raise LabError(f"lab {lab!r}: static hosts cannot be restored from an archive. Fix: use podman hosts.")

    def import_hosts(self, lab: str, files: dict[str, str], src: Path) -> dict[str, str]:
        self.check_import(lab, files, src)
        return {}

    def undo_import(self, lab: str, images: dict[str, str]) -> None:
        return None  # nothing is ever imported

    def list(self, lab: str, hosts: list[HostSpec] | None = None) -> dict[str, HostInfo]:
        """Static hosts are always there: labctl does not manage their life."""
        return {h.name: HostInfo(h.name, "static") for h in hosts or []}

    def networks(self, lab: str | None = None) -> dict[str, dict[str, str]]:
        return {}
