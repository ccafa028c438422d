"""The podman provider: hosts are systemd containers on the lab's podman bridges (provider.py); the
names and the bridges it shares with qemu are in labctl.providers.bridge."""

from labctl.providers.podman.provider import PodmanProvider

__all__ = ["PodmanProvider"]
