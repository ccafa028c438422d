"""Providers: one package or module per backend, each a subclass of base.Provider, found through a registry.

A backend registers itself by name (``@register("podman")``), as containerlab's runtimes do; topology
validation reads ``provider_names()`` and ``provider_class(name)`` (each provider validates its own host
options), and the lab asks ``get_provider(name)`` for an instance. Nothing outside this package knows what
a host runs on. The backends are imported on first use of the registry (so importing this package, e.g.
from the topology, imports no backend)."""

from __future__ import annotations

from labctl.errors import LabError
from labctl.providers.base import REGISTRY, UP_STATES, HostInfo, HostSpec, HostState, NetworkSpec, Provider, register

__all__ = [
    "UP_STATES",
    "HostInfo",
    "HostSpec",
    "HostState",
    "NetworkSpec",
    "Provider",
    "get_provider",
    "host_settings",
    "provider_class",
    "provider_names",
    "register",
    "teardown_order",
]


def provider_names() -> tuple[str, ...]:
    _load()
    return tuple(sorted(REGISTRY))


def provider_class(name: str) -> type[Provider]:
    """The class registered as name (its class attributes are the provider's capabilities)."""
    _load()
    if name not in REGISTRY:
        raise LabError(f"unknown provider {name!r}. Fix: use one of: {', '.join(sorted(REGISTRY))}.")
    return REGISTRY[name]


def host_settings(name: str) -> frozenset[str]:
    """Per-host topology keys a provider reads besides the common ones (e.g. qemu: ``vm``); none for an
    unknown name."""
    _load()
    cls = REGISTRY.get(name)
    return cls.host_settings if cls is not None else frozenset()


def teardown_order() -> tuple[str, ...]:
    """Provider names in the order `down` asks them: hosts that plug into another provider's
    networks (VM taps on podman bridges) go first, so the owner of the network tears it down last."""
    _load()
    return tuple(sorted(REGISTRY, key=lambda n: (REGISTRY[n].teardown_rank, n)))


def get_provider(name: str) -> Provider:
    return provider_class(name)()


def _load() -> None:
    """Import the backends (each registers itself on import)."""
    from labctl.providers import static  # noqa: F401
    from labctl.providers.podman import provider as _podman  # noqa: F401
    from labctl.providers.qemu import provider as _qemu  # noqa: F401
