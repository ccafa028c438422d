"""Providers: one module per backend behind the interface in base.py."""

from __future__ import annotations

from labctl.errors import LabError
from labctl.providers.base import HostInfo, HostSpec, NetworkSpec, Provider
from labctl.providers.podman import PodmanProvider
from labctl.providers.static import StaticProvider

__all__ = ["HostInfo", "HostSpec", "NetworkSpec", "Provider", "get_provider"]


def get_provider(name: str) -> Provider:
    if name == "podman":
        return PodmanProvider()
    if name == "static":
        return StaticProvider()
    raise LabError(f"unknown provider {name!r}. Fix: use 'podman' or 'static'.")
