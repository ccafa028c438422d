"""Providers: one module per backend behind the interface in base.py, found through a registry.

A backend registers itself by name (``@register("podman")``), as containerlab's runtimes do; topology
validation reads ``provider_names()``, and the lab asks ``get_provider(name)`` for an instance. Nothing
outside this package knows what a host runs on."""

from __future__ import annotations

from collections.abc import Callable

from labctl.errors import LabError
from labctl.providers.base import HostInfo, HostSpec, NetworkSpec, Provider

__all__ = [
    "HostInfo",
    "HostSpec",
    "NetworkSpec",
    "Provider",
    "get_provider",
    "host_settings",
    "provider_names",
    "register",
    "teardown_order",
]

_REGISTRY: dict[str, Callable[[], Provider]] = {}


def register(name: str) -> Callable[[type], type]:
    """Class decorator: make a provider available under `name`."""

    def add(cls: type) -> type:
        if name in _REGISTRY:
            raise ValueError(f"provider {name!r} registered twice")
        _REGISTRY[name] = cls
        return cls

    return add


def provider_names() -> tuple[str, ...]:
    _load()
    return tuple(sorted(_REGISTRY))


def host_settings(name: str) -> frozenset[str]:
    """Per-host topology keys a provider reads besides the common ones (e.g. qemu: ``vm``)."""
    _load()
    return frozenset(getattr(_REGISTRY.get(name), "host_settings", frozenset()))


def teardown_order() -> tuple[str, ...]:
    """Provider names in the order `down` asks them: hosts that plug into another provider's
    networks (VM taps on podman bridges) go first, so the owner of the network tears it down last."""
    _load()
    return tuple(sorted(_REGISTRY, key=lambda n: (getattr(_REGISTRY[n], "teardown_rank", 0), n)))


def get_provider(name: str) -> Provider:
    _load()
    if name not in _REGISTRY:
        raise LabError(f"unknown provider {name!r}. Fix: use one of: {', '.join(sorted(_REGISTRY))}.")
    return _REGISTRY[name]()


def _load() -> None:
    """Import the backends (each registers itself on import)."""
    from labctl.providers import podman, qemu, static  # noqa: F401
