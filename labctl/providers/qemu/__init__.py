"""The qemu provider: hosts are virtual machines (provider.py) plugged by taps into the lab's podman bridges
(vmnet, labctl.providers.bridge), booted from the VM image (vmimage) with a first-boot configuration
(vmconfig), driven over QMP (qmp), saved and restored by vmsave; accel picks KVM or TCG, console attaches."""

from labctl.providers.qemu.provider import QemuProvider

__all__ = ["QemuProvider"]
