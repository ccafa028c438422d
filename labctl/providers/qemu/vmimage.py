"""The VM image: the container base image's tree plus a kernel, as a qcow2 disk.

No cloud image is downloaded. A container of the base image (the same debootstrap tree) installs
Debian's cloud kernel with a small initrd (virtio modules only, lz4); its file system, seen through
``podman mount``, becomes an ext4 disk with ``mkfs.ext4 -d`` (no loop mount) and then a qcow2 file.
The kernel and initrd are copied beside it for direct kernel boot. Every VM gets a qcow2 overlay on
that disk. Like the container image, the name carries a hash of the recipe (the base recipe's hash
included), so a changed recipe builds a new image."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from labctl.errors import LabError
from labctl.providers import image
from labctl.providers.base import Say

PACKAGES = ("linux-image-cloud-amd64", "udev", "kmod", "lz4")
# A small initrd: only what finds the root disk (ext4 is built into the cloud kernel).
INITRAMFS_CONF = "MODULES=list\nCOMPRESS=lz4\nRESUME=none\n"
INITRAMFS_MODULES = ("virtio_pci", "virtio_blk")
DISK_SIZE = "8G"  # virtual size; the qcow2 file holds only what is used
# Files written into the tree for VMs: path -> content.
FILES = {
    "etc/fstab": "/dev/vda / ext4 rw,noatime 0 0\n",
    # The lab's first-boot files come as a systemd credential (tmpfiles.extra) at every boot.
    "etc/resolv.conf": "",
    # One ed25519 host key, made at first boot: no RSA key generation under emulation.
    "etc/systemd/system/ssh.service.d/10-hostkeys.conf": (
        "[Service]\nExecStartPre=\nExecStartPre=/bin/sh -c 'test -s /etc/ssh/ssh_host_ed25519_key"
        ' || ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key\'\n'
    ),
    "etc/ssh/sshd_config.d/20-labctl-vm.conf": "HostKey /etc/ssh/ssh_host_ed25519_key\n",
    # `labctl console` on a terminal lands in a root shell (the socket is root's, in the lab state).
    "etc/systemd/system/serial-getty@ttyS0.service.d/10-autologin.conf": (
        "[Service]\nExecStart=\nExecStart=-/sbin/agetty --autologin root --keep-baud 115200,57600,38400,9600 %I $TERM\n"
    ),
    # Nested virtualization is not offered to lab VMs: skip loading kvm under -cpu max.
    "etc/modprobe.d/labctl-vm.conf": "blacklist kvm_intel\nblacklist kvm_amd\n",
}
# Symlinks (path -> target): systemd-networkd configures the lab's addresses.
LINKS = {
    f"etc/systemd/system/{wants}/{unit}": f"/lib/systemd/system/{unit}"
    for wants, unit in (
        ("multi-user.target.wants", "systemd-networkd.service"),
        ("sockets.target.wants", "systemd-networkd.socket"),
    )
}
# Removed from the tree: no VGA console, no boot-time e2scrub.
REMOVE = (
    "etc/systemd/system/getty.target.wants/getty@tty1.service",
    "etc/systemd/system/multi-user.target.wants/e2scrub_reap.service",
)
NAME = "debian-vm"
TOOLS = {"podman": "podman", "mkfs.ext4": "e2fsprogs", "qemu-img": "qemu-utils"}


def recipe_hash() -> str:
    digest = hashlib.sha256()
    parts = (
        image.recipe_hash(),
        *PACKAGES,
        INITRAMFS_CONF,
        *INITRAMFS_MODULES,
        DISK_SIZE,
        *sorted(f"{k}={v}" for k, v in FILES.items()),
        *sorted(f"{k}->{v}" for k, v in LINKS.items()),
        *REMOVE,
    )
    for part in parts:
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:12]


def image_root() -> Path:
    """Where VM images live: $LABCTL_IMAGE_DIR, else /var/lib/labctl/images (root) or XDG data."""
    env = os.environ.get("LABCTL_IMAGE_DIR")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/labctl/images")
    xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(xdg) / "labctl" / "images"


@dataclass(frozen=True)
class VmImage:
    """A built (or to be built) VM image: a directory with the disk, kernel and initrd."""

    dir: Path
    tag: str

    @property
    def disk(self) -> Path:
        return self.dir / "disk.qcow2"

    @property
    def kernel(self) -> Path:
        return self.dir / "vmlinuz"

    @property
    def initrd(self) -> Path:
        return self.dir / "initrd.img"

    @property
    def manifest(self) -> Path:
        return self.dir / "image.json"

    def ready(self) -> bool:
        """Complete: the manifest is written last, after an atomic rename of the whole directory."""
        return self.manifest.is_file() and self.disk.is_file() and self.kernel.is_file() and self.initrd.is_file()


def current() -> VmImage:
    digest = recipe_hash()
    return VmImage(image_root() / f"{NAME}-{image.SUITE}-{digest}", f"{NAME}:{image.SUITE}-{digest}")


@contextlib.contextmanager
def _build_lock(root: Path, say: Say) -> Iterator[None]:
    """One build at a time on this machine (two labs coming up at once wait for one build)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".build.lock", "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            say("another labctl is building the VM image: waiting for it")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(cmd: list[str], step: str) -> str:
    return image.run_step(
        cmd,
        step,
        what="the VM image",
        tools="podman, e2fsprogs and qemu-utils are installed (./setup.sh installs them)",
    )


def _script() -> str:
    """What runs inside the build container: the kernel with a small initrd."""
    return "\n".join(
        [
            "set -e",
            "export DEBIAN_FRONTEND=noninteractive",
            "mkdir -p /etc/initramfs-tools/conf.d",
            f"cat > /etc/initramfs-tools/conf.d/labctl.conf <<'EOF'\n{INITRAMFS_CONF}EOF",
            f"printf '%s\\n' {' '.join(INITRAMFS_MODULES)} >> /etc/initramfs-tools/modules",
            "apt-get update -qq",
            f"apt-get install -y -qq --no-install-recommends {' '.join(PACKAGES)}",
            "apt-get clean",
        ]
    )


def customize(root: Path) -> None:
    """Make a mounted copy of the base tree a VM's root (files, links, removals)."""
    for rel, content in FILES.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink():
            path.unlink()
        path.write_text(content)
    for rel, target in LINKS.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target)
    for rel in REMOVE:
        path = root / rel
        if path.is_symlink() or path.is_file():
            path.unlink()


def _one(root: Path, pattern: str) -> Path:
    found = sorted((root / "boot").glob(pattern))
    if len(found) != 1:
        raise LabError(
            f"Building the VM image: expected one /boot/{pattern} in the tree, found {len(found)}. "
            "Fix: run 'labctl image build --vm --force'."
        )
    return found[0]


def in_use(img: VmImage) -> bool:
    """Whether a running qemu uses this image (its disk is then the backing file of an overlay)."""
    needle = str(img.dir).encode()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if needle in (proc / "cmdline").read_bytes():
                return True
        except OSError:
            continue
    return False


def build(say: Say = lambda _m: None, force: bool = False) -> VmImage:
    """Build the VM image unless it exists; returns it."""
    img = current()
    if not force and img.ready():
        say(f"VM image {img.tag} is present")
        return img
    for tool, package in TOOLS.items():
        if shutil.which(tool) is None:
            raise LabError(f"'{tool}' is not installed. Fix: apt-get install {package} (or run ./setup.sh).")
    base = image.build(progress=say)
    with _build_lock(img.dir.parent, say):
        if img.ready() and not force:
            return img
        if img.ready() and in_use(img):
            raise LabError(
                f"VM image {img.tag} is in use by running VMs: a rebuild would pull their disk's base away. "
                "Fix: 'labctl down' the labs with VMs first."
            )
        _build_into(img, base, say)
    return img


def _build_into(img: VmImage, base: str, say: Say) -> None:
    t0 = time.monotonic()
    tmp = img.dir.parent / f".{img.dir.name}.build-{os.getpid()}"
    container = f"labctl-vmbuild-{img.dir.name.rsplit('-', 1)[-1]}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    mounted = False
    try:
        say(f"VM image: installing {', '.join(PACKAGES)} into a container of {base}")
        create = ["podman", "create", "--name", container, "--runtime", "runc", "--network", "host"]
        create += ["--ulimit", "nofile=16384:16384", "--ulimit", "nproc=32768:32768"]
        _run([*create, base, "sh", "-c", _script()], "creating the build container")
        _run(["podman", "start", "--attach", container], "installing the kernel (apt-get)")
        root = Path(_run(["podman", "mount", container], "mounting the build container").strip())
        mounted = True
        customize(root)
        shutil.copyfile(_one(root, "vmlinuz-*"), tmp / "vmlinuz")
        shutil.copyfile(_one(root, "initrd.img-*"), tmp / "initrd.img")
        kernel = _one(root, "vmlinuz-*").name.removeprefix("vmlinuz-")
        say(f"VM image: mkfs.ext4 -d and qemu-img convert ({DISK_SIZE} disk, kernel {kernel})")
        raw = tmp / "disk.raw"
        _run(["mkfs.ext4", "-q", "-F", "-L", "labctl-root", "-d", str(root), str(raw), DISK_SIZE], "running mkfs.ext4")
        _run(["qemu-img", "convert", "-O", "qcow2", str(raw), str(tmp / "disk.qcow2")], "converting to qcow2")
        raw.unlink()
        manifest = {"tag": img.tag, "base": base, "kernel": kernel, "built": time.time()}
        (tmp / "image.json").write_text(json.dumps(manifest, indent=2) + "\n")
        if img.dir.exists():
            shutil.rmtree(img.dir)
        tmp.rename(img.dir)
        say(f"VM image {img.tag} built in {time.monotonic() - t0:.0f} s")
    finally:
        if mounted:
            subprocess.run(["podman", "umount", container], capture_output=True, check=False)
        subprocess.run(["podman", "rm", "--force", container], capture_output=True, check=False)
        shutil.rmtree(tmp, ignore_errors=True)
