"""The base image: a Debian 12 root file system with systemd, built by debootstrap and imported
into podman. The tag carries a hash of the recipe, so a changed recipe builds a new image.

What every lab host installs (the common role's ``common_packages``) is in the image already, so a
cold converge of ``common`` finds them present. debootstrap downloads through the shared package
cache (labctl.pkgcache) when it runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from labctl import paths, pkgcache
from labctl.errors import LabError

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"


def common_packages(defaults: Path | None = None) -> tuple[str, ...]:
    """The common role's ``common_packages`` (plain names only), so the image has what every host gets."""
    path = defaults or paths.ROLES_DIR / "common" / "defaults" / "main.yml"
    try:
        names = (yaml.safe_load(path.read_text()) or {}).get("common_packages") or []
    except (OSError, yaml.YAMLError):
        return ()
    return tuple(n for n in names if isinstance(n, str) and n and "{" not in n)


BASE_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "python3",
    "python3-apt",
    "openssh-server",
    "sudo",
    "iproute2",
    "iputils-ping",
    "procps",
    "ca-certificates",
)
PACKAGES = tuple(dict.fromkeys((*BASE_PACKAGES, *common_packages())))
# Files written into the tree after debootstrap: path -> content.
FILES = {
    "etc/apt/sources.list": (
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb http://deb.debian.org/debian-security {SUITE}-security main\n"
    ),
    # Host keys are made per container at boot, never shared through the image.
    "etc/systemd/system/ssh.service.d/10-hostkeys.conf": (
        "[Service]\nExecStartPre=\nExecStartPre=/usr/bin/ssh-keygen -A\nExecStartPre=/usr/sbin/sshd -t\n"
    ),
    "etc/ssh/sshd_config.d/10-labctl.conf": (
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    ),
    "etc/hostname": "labctl\n",
}
REPOSITORY = "localhost/labctl/debian"
IMAGE_LABEL = "labctl.image"
# podman import --change instructions
CHANGES = ('CMD ["/sbin/init"]', "STOPSIGNAL SIGRTMIN+3", f"LABEL {IMAGE_LABEL}={SUITE}")


def recipe_hash() -> str:
    """A short hash of everything that shapes the image."""
    digest = hashlib.sha256()
    for part in (SUITE, MIRROR, *PACKAGES, *CHANGES, *sorted(f"{k}={v}" for k, v in FILES.items())):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:12]


def image_tag() -> str:
    return f"{REPOSITORY}:{SUITE}-{recipe_hash()}"


def image_exists(tag: str | None = None) -> bool:
    result = subprocess.run(["podman", "image", "exists", tag or image_tag()], capture_output=True, check=False)
    return result.returncode == 0


def _run(cmd: list[str], step: str, **kwargs: object) -> None:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-15:])
        raise LabError(
            f"Building the base image failed while {step} (exit {result.returncode}). "
            f"Check that Debian's mirror {MIRROR} is reachable and that debootstrap and podman "
            f"are installed (apt-get install debootstrap podman runc).\n{tail}"
        )


def build(progress: Callable[[str], None] = lambda _msg: None, force: bool = False) -> str:
    """Build the base image unless it exists; returns its tag."""
    tag = image_tag()
    if not force and image_exists(tag):
        progress(f"image {tag} is present")
        return tag
    for tool in ("debootstrap", "podman"):
        if shutil.which(tool) is None:
            raise LabError(f"'{tool}' is not installed: run apt-get install debootstrap podman runc.")
    env = dict(os.environ)
    if pkgcache.ensure(progress):
        env["http_proxy"] = pkgcache.proxy_url("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="labctl-rootfs-", dir="/var/tmp") as tmp:
        root = Path(tmp) / "rootfs"
        progress(f"debootstrap {SUITE} ({len(PACKAGES)} packages)")
        _run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(PACKAGES)}",
                SUITE,
                str(root),
                MIRROR,
            ],
            "running debootstrap",
            env=env,
        )
        progress("configuring the tree")
        for rel, content in FILES.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
        for key in (root / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        (root / "etc/machine-id").write_text("")
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        progress(f"importing as {tag}")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        _run(
            ["podman", "import", *(arg for change in CHANGES for arg in ("--change", change)), "-", tag],
            "importing the tree into podman",
            stdin=tar.stdout,
        )
        tar.wait()
    _remove_old_images(tag)
    return tag


KEEP_OTHERS = "24h"  # another recipe's image is kept this long: a second checkout of labctl may use it


def _remove_old_images(current: str) -> None:
    """Drop images of other recipes made more than KEEP_OTHERS ago and untagged leftovers of a forced
    rebuild, unless a container uses them. (Two checkouts of labctl on one machine, e.g. before and
    after a recipe change, would otherwise remove each other's image at every build.)"""
    listing = subprocess.run(
        [
            "podman",
            "images",
            "--filter",
            f"reference={REPOSITORY}",
            "--filter",
            f"until={KEEP_OTHERS}",
            "--format",
            "{{.Repository}}:{{.Tag}}",
        ],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    old = [ref for ref in listing if ref != current]
    if old:
        subprocess.run(["podman", "rmi", *old], capture_output=True, check=False)
    subprocess.run(
        ["podman", "image", "prune", "--force", "--filter", f"label={IMAGE_LABEL}"], capture_output=True, check=False
    )
