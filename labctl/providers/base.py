"""The provider interface: how labctl gets hosts, whatever they run on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from labctl.access.remote import Runner

Say = Callable[[str], None]


@dataclass(frozen=True)
class HostSpec:
    """Everything a provider needs to create one host."""

    lab: str
    name: str
    networks: dict[str, str]  # network -> address, in order
    image: str | None = None  # None: the provider's own base image
    extra_hosts: dict[str, str] = field(default_factory=dict)  # name -> address for /etc/hosts
    address: str | None = None  # static hosts: where they are reached
    user: str = "root"
    options: dict[str, Any] = field(default_factory=dict)  # backend-specific settings from the topology
    # the lab's public key: a provider whose new hosts can take it at creation (key_at_create) gives it
    authorized_key: str = ""


@dataclass(frozen=True)
class NetworkSpec:
    lab: str
    name: str
    subnet: str


@dataclass(frozen=True)
class HostInfo:
    name: str
    state: str  # running | stopped | missing | static | ...
    id: str = ""
    details: dict[str, str] = field(default_factory=dict)  # e.g. accelerator, shown by status


class Provider(Protocol):
    """One small interface per backend (containerlab's runtimes are the model).

    Hosts are named by (lab, host); a provider finds its own resources again by the lab's label or
    state, so ``destroy_lab`` works without the topology."""

    name: str

    def prepare(self, hosts: list[HostSpec], say: Say) -> None:
        """Make ready what the hosts need before any is created (e.g. build the base image)."""
        ...

    def create_network(self, spec: NetworkSpec) -> None: ...

    def link_networks(self, lab: str, subnets: list[str]) -> None:
        """Let traffic between the lab's own networks pass unchanged (routing through lab hosts)."""
        ...

    def check_names(self, lab: str, hosts: list[str], networks: list[str]) -> None:
        """Raise LabError when a resource name the lab needs is held by another lab (before anything is made)."""
        ...

    def create(self, spec: HostSpec) -> bool | None:
        """Make the host; True when it is started too (else labctl calls start())."""
        ...

    def authorize(self, lab: str, host: str, pubkey: str) -> None:
        """Make pubkey (the text of a public key) the one root accepts on the running host, without SSH
        (so a lab whose state, and with it the key, was lost can be repaired)."""
        ...

    def console(self, lab: str, host: str, lines: int = 15) -> str:
        """The last lines of the host's console, for a host that exited."""
        ...

    def show_console(self, lab: str, host: str, interactive: bool) -> int:
        """`labctl console`: print the host's console log, or attach to the console when interactive."""
        ...

    def exit_code(self, lab: str, host: str) -> int | None: ...

    def start(self, lab: str, host: str) -> None: ...

    def stop(self, lab: str, host: str) -> None: ...

    def destroy(self, lab: str, host: str) -> None: ...

    def destroy_lab(self, lab: str) -> list[str]:
        """Remove every resource carrying the lab's label; returns what was removed."""
        ...

    def remains(self, lab: str) -> list[str]:
        """What of the lab this provider still has besides hosts and networks (said by an unfinished `down`)."""
        ...

    def labs(self) -> dict[str, dict[str, list[str]]]:
        """Every lab found by its labels alone (no state needed): lab -> {"hosts": [...], "networks": [...]}."""
        ...

    def reserved(self) -> list[tuple[str, str]]:
        """(what, subnet) on this machine that a lab must not overlap and that belongs to no lab."""
        ...

    def address(self, spec: HostSpec) -> str:
        """The address labctl reaches the host on (SSH)."""
        ...

    def image_info(self, hosts: list[HostSpec]) -> dict[str, str]:
        """What the hosts are built from, for the lock: {"tag", "recipe_hash", "id"} ({} when nothing)."""
        ...

    def export_hosts(
        self, lab: str, hosts: list[str], dest: Path, secrets: bool = False, runner: Runner | None = None
    ) -> dict[str, str]:
        """Save the hosts' file systems (container file systems, VM disks) into the directory dest, without
        private host keys, and without the secret files roles list in their facts unless secrets; returns
        host -> the file (relative to dest) that import_hosts reads back. runner runs commands on the lab's
        hosts over SSH, for a provider that has no way of its own into a running host (podman has exec)."""
        ...

    def import_hosts(self, lab: str, files: dict[str, str], src: Path) -> dict[str, str]:
        """Load what export_hosts wrote (host -> file under src) for lab; returns host -> the image a
        HostSpec names to create the host from it. destroy_lab removes these images with the lab."""
        ...

    def check_import(self, lab: str, files: dict[str, str], src: Path) -> None:
        """Refuse, before anything is made, what import_hosts would not take: the saved files are data (an
        archive may come from anyone), checked in full here (LabError naming the member and the fix)."""
        ...

    def undo_import(self, lab: str, images: dict[str, str]) -> None:
        """Remove what import_hosts made for lab (its return value), and nothing else: a failed restore
        calls it."""
        ...

    def list(self, lab: str, hosts: list[HostSpec] | None = None) -> dict[str, HostInfo]:
        """The state of the lab's hosts this provider has (hosts: those the topology gives it)."""
        ...

    def networks(self, lab: str | None = None) -> dict[str, dict[str, str]]:
        """Running networks: lab -> {network: subnet} (lab None: every lab)."""
        ...
