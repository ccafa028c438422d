"""The base image: a Debian 12 root file system with systemd, built by debootstrap and imported
into podman. The tag carries a hash of the recipe, so a changed recipe builds a new image.

What every lab host installs (the common role's ``common_packages``) is in the image already, so a
cold converge of ``common`` finds them present. debootstrap downloads through the shared package
cache (labctl.providers.pkgcache) when it runs."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from labctl import paths, yamlload
from labctl.errors import LabError
from labctl.providers import pkgcache

SUITE = "bookworm"
MIRROR = "http://deb.debian.org/debian"


def common_packages(defaults: Path | None = None) -> tuple[str, ...]:
    """The common role's ``common_packages`` (plain names only), so the image has what every host gets."""
    path = defaults or paths.ROLES_DIR / "common" / "defaults" / "main.yml"
    try:
        names = (yamlload.load(path.read_text(), str(path)) or {}).get("common_packages") or []
    except (OSError, LabError):
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
# A new host's first boot: the lab's public key, given in its environment, becomes root's key (so labctl
# needs no `podman exec` per host); a key already there (put in later by `labctl up`) is kept.
KEY_ENV = "LABCTL_AUTHORIZED_KEY"
FIRST_KEY = f"""#!/bin/sh
# Written by labctl's image recipe (labctl/providers/image.py).
[ -s /root/.ssh/authorized_keys ] && exit 0
key=$(tr '\\0' '\\n' < /proc/1/environ | sed -n 's/^{KEY_ENV}=//p')
[ -n "$key" ] || exit 0
install -d -m 700 /root/.ssh
umask 077
printf '%s\\n' "$key" > /root/.ssh/authorized_keys
"""
# Files written into the tree after debootstrap: path -> content.
FILES = {
    "etc/apt/sources.list": (
        f"deb {MIRROR} {SUITE} main\n"
        f"deb {MIRROR} {SUITE}-updates main\n"
        f"deb http://deb.debian.org/debian-security {SUITE}-security main\n"
    ),
    # Host keys are made per container at boot, never shared through the image.
    "etc/systemd/system/ssh.service.d/10-hostkeys.conf": (
        # one ed25519 key (an RSA key costs seconds of CPU per host at boot, 30 hosts at once)
        "[Service]\nExecStartPre=\n"
        "ExecStartPre=/bin/sh -c 'test -e /etc/ssh/ssh_host_ed25519_key || "
        '/usr/bin/ssh-keygen -q -t ed25519 -N "" -f /etc/ssh/ssh_host_ed25519_key\'\n'
        "ExecStartPre=/usr/sbin/sshd -t\n"
        "ExecStartPre=/bin/sh /usr/local/sbin/labctl-first-key\n"
    ),
    "usr/local/sbin/labctl-first-key": FIRST_KEY,
    "etc/ssh/sshd_config.d/05-labctl-hostkey.conf": "HostKey /etc/ssh/ssh_host_ed25519_key\n",
    "etc/ssh/sshd_config.d/10-labctl.conf": (
        "PermitRootLogin prohibit-password\nPasswordAuthentication no\nUseDNS no\n"
    ),
    "etc/hostname": "labctl\n",
}
# Units that do nothing useful in a container but cost boot time (e2scrub, kernel modules and file
# systems the host owns) or take apt's lock during a converge (apt-daily): masked.
MASKED = (
    "e2scrub_reap.service",
    "e2scrub_all.timer",
    "apt-daily.timer",
    "apt-daily-upgrade.timer",
    "dpkg-db-backup.timer",
    "modprobe@.service",
    "systemd-modules-load.service",
    "dev-hugepages.mount",
    "sys-kernel-debug.mount",
    "sys-kernel-tracing.mount",
    "sys-kernel-config.mount",
    "sys-fs-fuse-connections.mount",
)
REPOSITORY = "localhost/labctl/debian"
IMAGE_LABEL = "labctl.image"
# podman import --change instructions
CHANGES = ('CMD ["/sbin/init"]', "STOPSIGNAL SIGRTMIN+3", f"LABEL {IMAGE_LABEL}={SUITE}")


def recipe_hash() -> str:
    """A short hash of everything that shapes the image."""
    digest = hashlib.sha256()
    for part in (SUITE, MIRROR, *PACKAGES, *CHANGES, *sorted(f"{k}={v}" for k, v in FILES.items()), *MASKED):
        digest.update(part.encode() + b"\0")
    return digest.hexdigest()[:12]


def image_tag() -> str:
    return f"{REPOSITORY}:{SUITE}-{recipe_hash()}"


def image_exists(tag: str | None = None) -> bool:
    result = subprocess.run(["podman", "image", "exists", tag or image_tag()], capture_output=True, check=False)
    return result.returncode == 0


BASE_TOOLS = "debootstrap and podman are installed (apt-get install debootstrap podman runc)"


def run_step(cmd: list[str], step: str, what: str = "the base image", tools: str = BASE_TOOLS, **kwargs: object) -> str:
    """Run one step of an image build; on failure, a LabError naming the step, the mirror, the tools the
    build needs and the tail of the step's output. Returns its stdout."""
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    if result.returncode != 0:
        tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-15:])
        raise LabError(
            f"Building {what} failed while {step} (exit {result.returncode}). "
            f"Check that Debian's mirror {MIRROR} is reachable and that {tools}.\n{tail}"
        )
    return str(result.stdout)


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
        run_step(
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
        for unit in MASKED:
            link = root / "etc/systemd/system" / unit
            link.unlink(missing_ok=True)
            link.symlink_to("/dev/null")
        for key in (root / "etc/ssh").glob("ssh_host_*"):
            key.unlink()
        (root / "etc/machine-id").write_text("")
        shutil.rmtree(root / "var/cache/apt/archives", ignore_errors=True)
        (root / "var/cache/apt/archives/partial").mkdir(parents=True, exist_ok=True)
        progress(f"importing as {tag}")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        run_step(
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
