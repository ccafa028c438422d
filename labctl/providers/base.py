"""The provider interface: how labctl gets hosts, whatever they run on.

:class:`Provider` is a real base class: it supplies a default for every method and attribute, so a backend
overrides only what differs (containerlab's ``default_node.go`` is the model). The defaults describe hosts
that already exist and that labctl neither makes nor removes (what :mod:`labctl.providers.static` is).

Asking a provider what it can do: read its attributes, never probe with ``getattr``.

- ``provider.reads_host_keys``: True when ``provider.host_keys(lab, host)`` returns the host's public SSH
  host keys (text, as ``/etc/ssh/ssh_host_*_key.pub``) learnt without an SSH connection. False (the
  default): the provider has no such way; ``host_keys`` returns ``""`` (nothing learnt) and the caller
  trusts on first use (``ssh-keyscan``).
- ``provider.key_at_create(spec)``: True when ``create(spec)`` already put ``spec.authorized_key`` into the
  host (no ``authorize`` needed after it). Default: False.
- ``provider.package_proxies(specs)``: host -> the URL of the shared package cache as that host reaches it.
  Default: ``{}`` (no host of this provider uses the cache).
- ``provider.host_kind``: what a saved lab's manifest calls the hosts (default ``"container"``).
- ``provider.kernel_log``: where the hosts' kernel log is, ``"machine"`` or ``"own"`` (the default)
  (:data:`labctl.access.kernellog.MACHINE` / ``OWN``).
- ``provider.teardown_rank``: `down` asks providers in ascending rank (default 0; qemu -1: VMs plug taps
  into podman's bridges, so they go first).
- ``provider.host_settings``: the per-host topology keys the provider reads besides the common ones (its
  host options, validated by ``parse_host_options``). Default: none.
- ``provider.needs_networks``: True (the default) when each host must be on a lab network; the static
  provider's hosts exist already and may be on none.
- ``state in UP_STATES`` / ``HostState(state).is_up``: a host that answers (running, or static: always there).
"""

from __future__ import annotations

import builtins
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.errors import LabError

if TYPE_CHECKING:
    from labctl.access.remote import Runner

Say = Callable[[str], None]
# how a topology error is made: fail(where, problem, fix) -> LabError ("<file>: field 'where': problem. Fix: fix.")
Fail = Callable[[str, str, str], LabError]


class HostState(enum.StrEnum):
    """What a provider says of one of its hosts (a StrEnum: it compares equal to its text)."""

    RUNNING = "running"
    STATIC = "static"  # an existing host labctl does not manage: always there
    STOPPED = "stopped"  # podman's exited and created are said as stopped
    MISSING = "missing"  # in the topology, but no provider has it (status)
    PAUSED = "paused"  # podman's other container states, said as podman says them
    STOPPING = "stopping"
    REMOVING = "removing"
    CONFIGURED = "configured"
    INITIALIZED = "initialized"
    UNKNOWN = "unknown"

    @property
    def is_up(self) -> bool:
        """The host answers (or, static, is assumed to)."""
        return self in UP_STATES

    @classmethod
    def of(cls, text: str) -> HostState:
        """The state named text; UNKNOWN for a text no provider says."""
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN


UP_STATES: frozenset[HostState] = frozenset({HostState.RUNNING, HostState.STATIC})


def mapping(value: Any, where: str, fail: Fail) -> dict[str, Any]:
    """A topology field that must be a mapping (None: empty)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise fail(where, f"expected a mapping, got {type(value).__name__}", "write it as key: value pairs")
    return value


def check_keys(data: dict[str, Any], where: str, allowed: set[str] | frozenset[str], fail: Fail) -> None:
    """Refuse a key of data (a topology mapping at where) that is not allowed."""
    for key in data:
        if key not in allowed:
            raise fail(
                f"{where}.{key}" if where else key,
                "unknown field",
                f"remove it or use one of: {', '.join(sorted(allowed))}",
            )


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
    state: HostState  # a plain str is taken too and made a HostState
    id: str = ""
    details: dict[str, str] = field(default_factory=dict)  # e.g. accelerator, shown by status

    def __post_init__(self) -> None:
        if not isinstance(self.state, HostState):
            object.__setattr__(self, "state", HostState.of(str(self.state)))


class Provider:
    """One small interface per backend (containerlab's runtimes are the model), with a default for everything.

    Hosts are named by (lab, host); a provider finds its own resources again by the lab's label or
    state, so ``destroy_lab`` works without the topology. See the module's text for the capabilities."""

    name: ClassVar[str] = "provider"
    host_kind: ClassVar[str] = "container"
    kernel_log: ClassVar[str] = "own"  # kernellog.OWN (MACHINE: "machine")
    teardown_rank: ClassVar[int] = 0
    host_settings: ClassVar[frozenset[str]] = frozenset()
    reads_host_keys: ClassVar[bool] = False
    needs_networks: ClassVar[bool] = True

    # -- the topology: a provider's own host options ------------------------------------------------------
    @classmethod
    def parse_host_options(cls, item: dict[str, Any], where: str, fail: Fail) -> dict[str, Any]:
        """Validate the host's options this provider reads (``host_settings``, present in item, the host's
        mapping in the topology; where: ``hosts.<name>``) and return them as fields of ``topology.Host``
        (e.g. ``{"vm": {...}}``). Default: no options, nothing to return."""
        return {}

    @classmethod
    def refuse_host_options(cls, item: dict[str, Any], provider: str, where: str, fail: Fail) -> None:
        """Raise the error for a host of another provider (provider) whose mapping (item, at where) gives
        one of this provider's ``host_settings``. Default: the first such key, in sorted order."""
        for key in sorted(cls.host_settings):
            if key in item:
                raise fail(f"{where}.{key}", f"'{key}' is only for hosts of provider {cls.name}", "remove it")

    # -- lab-wide -----------------------------------------------------------------------------------------
    def prepare(self, hosts: builtins.list[HostSpec], say: Say) -> None:
        """Make ready what the hosts need before any is created (e.g. build the base image)."""
        return None

    def create_network(self, spec: NetworkSpec) -> None:
        return None

    def link_networks(self, lab: str, subnets: builtins.list[str]) -> None:
        """Let traffic between the lab's own networks pass unchanged (routing through lab hosts)."""
        return None

    def check_names(self, lab: str, hosts: builtins.list[str], networks: builtins.list[str]) -> None:
        """Raise LabError when a resource name the lab needs is held by another lab (before anything is made)."""
        return None

    def destroy_lab(self, lab: str) -> builtins.list[str]:
        """Remove every resource carrying the lab's label; returns what was removed."""
        return []

    def remains(self, lab: str) -> builtins.list[str]:
        """What of the lab this provider still has besides hosts and networks (said by an unfinished `down`)."""
        return []

    def labs(self) -> dict[str, dict[str, builtins.list[str]]]:
        """Every lab found by its labels alone (no state needed): lab -> {"hosts": [...], "networks": [...]}."""
        return {}

    def reserved(self) -> builtins.list[tuple[str, str]]:
        """(what, subnet) on this machine that a lab must not overlap and that belongs to no lab."""
        return []

    def image_info(self, hosts: builtins.list[HostSpec]) -> dict[str, str]:
        """What the hosts are built from, for the lock: {"tag", "recipe_hash", "id"} ({} when nothing)."""
        return {}

    def package_proxies(self, specs: builtins.list[HostSpec]) -> dict[str, str]:
        """Host -> the URL of the shared package cache as the host reaches it ({}: none uses it)."""
        return {}

    def list(self, lab: str, hosts: builtins.list[HostSpec] | None = None) -> dict[str, HostInfo]:
        """The state of the lab's hosts this provider has (hosts: those the topology gives it)."""
        return {}

    def networks(self, lab: str | None = None) -> dict[str, dict[str, str]]:
        """Running networks: lab -> {network: subnet} (lab None: every lab)."""
        return {}

    # -- one host -----------------------------------------------------------------------------------------
    def key_at_create(self, spec: HostSpec) -> bool:
        """True when create(spec) puts spec.authorized_key into the host itself (no authorize() after it)."""
        return False

    def create(self, spec: HostSpec) -> bool | None:
        """Make the host; True when it is started too (else labctl calls start())."""
        return None

    def authorize(self, lab: str, host: str, pubkey: str) -> None:
        """Make pubkey (the text of a public key) the one root accepts on the running host, without SSH
        (so a lab whose state, and with it the key, was lost can be repaired). Default: nothing (hosts
        labctl does not make have keys of their own)."""
        return None

    def host_keys(self, lab: str, host: str) -> str:
        """The host's public SSH host keys, learnt without SSH, when ``reads_host_keys`` (else ``""``)."""
        return ""

    def address(self, spec: HostSpec) -> str:
        """The address labctl reaches the host on (SSH): the one the topology gives, else its first network's."""
        return spec.address or next(iter(spec.networks.values()), "")

    def console(self, lab: str, host: str, lines: int = 15) -> str:
        """The last lines of the host's console, for a host that exited."""
        return ""

    def show_console(self, lab: str, host: str, interactive: bool) -> int:
        """`labctl console`: print the host's console log, or attach to the console when interactive."""
        raise LabError(
            f"console: {host!r} is a {self.name} host; labctl has no console of it. Fix: use 'labctl ssh {host}'."
        )

    def exit_code(self, lab: str, host: str) -> int | None:
        return None

    def start(self, lab: str, host: str) -> None:
        return None

    def stop(self, lab: str, host: str) -> None:
        return None

    def destroy(self, lab: str, host: str) -> None:
        return None

    # -- saving and restoring -----------------------------------------------------------------------------
    def export_hosts(
        self,
        lab: str,
        hosts: builtins.list[str],
        dest: Path,
        secrets: bool = False,
        runner: Runner | None = None,
    ) -> dict[str, str]:
        """Save the hosts' file systems (container file systems, VM disks) into the directory dest, without
        private host keys, and without the secret files roles list in their facts unless secrets; returns
        host -> the file (relative to dest) that import_hosts reads back. runner runs commands on the lab's
        hosts over SSH, for a provider that has no way of its own into a running host (podman has exec)."""
        raise LabError(
            f"lab {lab!r}: {self.name} hosts ({', '.join(hosts)}) cannot be saved: labctl does not own their "
            "disks. Fix: save a lab whose hosts labctl creates (podman), or image those machines with your own "
            "tools."
        )

    def check_import(self, lab: str, files: dict[str, str], src: Path) -> None:
        """Refuse, before anything is made, what import_hosts would not take: the saved files are data (an
        archive may come from anyone), checked in full here (LabError naming the member and the fix)."""
        raise LabError(f"lab {lab!r}: {self.name} hosts cannot be restored from an archive. Fix: use podman hosts.")

    def import_hosts(self, lab: str, files: dict[str, str], src: Path) -> dict[str, str]:
        """Load what export_hosts wrote (host -> file under src) for lab; returns host -> the image a
        HostSpec names to create the host from it. destroy_lab removes these images with the lab."""
        self.check_import(lab, files, src)
        return {}

    def undo_import(self, lab: str, images: dict[str, str]) -> None:
        """Remove what import_hosts made for lab (its return value), and nothing else: a failed restore
        calls it."""
        return None


REGISTRY: dict[str, type[Provider]] = {}


def register(name: str) -> Callable[[type[Provider]], type[Provider]]:
    """Class decorator: make a provider (a subclass of Provider) available under `name`."""

    def add(cls: type[Provider]) -> type[Provider]:
        if name in REGISTRY:
            raise ValueError(f"provider {name!r} registered twice")
        if not issubclass(cls, Provider):
            raise TypeError(f"provider {name!r}: {cls.__name__} is no subclass of labctl.providers.Provider")
        REGISTRY[name] = cls
        return cls

    return add
