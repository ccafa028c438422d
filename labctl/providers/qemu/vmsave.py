"""Saving VMs into a lab archive and restoring them (`labctl save` / `labctl up --from` for qemu hosts).

Per VM the archive holds one directory, ``vm-<host>/``, laid out like a VM image (vmimage.VmImage):
``disk.qcow2`` is the VM's disk with its backing chain flattened (``qemu-img convert -c``, zstd), so the
target machine needs neither the VM base image nor any network; ``vmlinuz`` and ``initrd.img`` are what
the VM boots directly (hard links between VMs of the same image: tar stores them once); ``image.json``
says where it came from. A restored VM's disk is a new overlay backed by that flattened disk, which lives
in the lab's state (``vms/.images/<host>/``) and goes with the lab's VMs on ``down``.

What must not be saved (the private SSH host keys; the generated secrets roles list in their facts,
unless --with-secrets) is set aside by the very script containers use (providers/setaside.py), run in the
running VM over the lab's SSH runner (given to export_hosts by the provider contract): the files move to
the VM's /run (a tmpfs, not on the disk), the guest syncs, qemu is paused (QMP ``stop`` drains and
flushes its block I/O) while only the VM's small overlay file is copied, qemu continues, and the files go
back. Why over SSH rather than offline on the flattened image (debugfs): the set-aside logic then runs
unchanged where it was written to run (a live system: its globs, its facts), with no second copy of which
files to leave out, no ext4 journal to replay before editing a disk, and no extra round trip through an
8 GiB raw image. The VM keeps running; the flattening works on the copy after ``cont``.

A restored VM makes a new ed25519 host key at its first boot (the image's ssh.service drop-in does when
the key is missing, as containers' ssh.service does), and takes the new lab's key from its credential."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labctl.errors import LabError, printable
from labctl.providers.qemu import qmp
from labctl.providers.qemu.vmimage import VmImage

if TYPE_CHECKING:
    from labctl.access.remote import Runner

PREFIX = "vm-"  # an archive entry: vm-<host>/
IMAGES = ".images"  # under the lab's vms/ directory: restored disks (a host name never starts with '.')
COMPRESS = ("-c", "-o", "compression_type=zstd")  # zstd: about twice as fast as zlib, a little smaller
BOOT_FILES = ("vmlinuz", "initrd.img")


def entry_name(host: str) -> str:
    return f"{PREFIX}{host}"


def setaside_command(direction: str, secrets: bool = False) -> str:
    """The command that runs the set-aside script (given on stdin) in a VM: out [keep-secrets] | back."""
    if direction not in ("out", "back"):
        raise ValueError(direction)
    return "python3 - out keep-secrets" if direction == "out" and secrets else f"python3 - {direction}"


def checked_entry(host: str, entry: str, archive: str = "the saved lab") -> str:
    """The archive entry of a VM, proven a plain directory name of this host (nothing outside the stage)."""
    if entry != entry_name(host):
        raise LabError(
            f"{archive}: field 'hosts.{host}.file' of its manifest is {entry!r}, expected {entry_name(host)!r} "
            "for a qemu VM. Fix: save the lab again with 'labctl save -o FILE'."
        )
    return entry


def missing_parts(directory: Path) -> list[str]:
    """What a saved VM directory lacks of disk.qcow2, vmlinuz, initrd.img and image.json."""
    img = VmImage(directory, "")
    wanted = (img.disk, img.kernel, img.initrd, img.manifest)
    return [p.name for p in wanted if not p.is_file() or p.stat().st_size == 0]


QEMU_IMG_TIMEOUT = 120  # seconds for qemu-img info/check of one saved disk
QCOW2_MAGIC = b"QFI\xfb"
EXT_BACKING_FORMAT, EXT_DATA_FILE, EXT_CRYPTO = 0xE2792ACA, 0x44415441, 0x0537BE77
INCOMPAT_DATA_FILE = 1 << 2  # incompatible feature bit: the guest data lives in an external file
MAX_HEADER_EXTENSIONS = 64


def _header_problem(head: bytes) -> str:
    """What in a qcow2 header refers to anything outside the file (a backing file, an external data file,
    an encryption key), read from the bytes alone: qemu-img is never made to open such a file."""
    if len(head) < 72 or head[:4] != QCOW2_MAGIC:
        return "it is not a qcow2 image (a raw or other format disk is never used)"
    version = int.from_bytes(head[4:8], "big")
    if int.from_bytes(head[8:16], "big") or int.from_bytes(head[16:20], "big"):
        return "it is not flattened (it names a backing file)"
    if int.from_bytes(head[32:36], "big"):
        return "it is encrypted (it needs a key from outside the archive)"
    if version < 3:
        return ""
    if len(head) < 104:
        return "its qcow2 header is cut short"
    if int.from_bytes(head[72:80], "big") & INCOMPAT_DATA_FILE:
        return "it keeps its data in an external data file, outside the archive"
    offset = int.from_bytes(head[100:104], "big")
    for _ in range(MAX_HEADER_EXTENSIONS):
        if offset + 8 > len(head):
            return ""
        kind, length = (
            int.from_bytes(head[offset : offset + 4], "big"),
            int.from_bytes(head[offset + 4 : offset + 8], "big"),
        )
        if kind == 0:
            return ""
        if kind in (EXT_BACKING_FORMAT, EXT_DATA_FILE, EXT_CRYPTO):
            return "its qcow2 header names a backing format, data file or encryption: a reference outside the archive"
        offset += 8 + (length + 7) // 8 * 8
    return ""


def _info_problem(data: dict[str, Any]) -> str:
    """What qemu-img info reports that a self-contained qcow2 must not have."""
    if data.get("format") != "qcow2":
        return f"its format is {str(data.get('format'))[:40]!r}, not qcow2"
    for key in ("backing-filename", "full-backing-filename", "backing-filename-format", "backing-image"):
        if data.get(key):
            return f"it is not flattened (it needs {str(data[key])[:200]})"
    specific = (data.get("format-specific") or {}).get("data") or {}
    if specific.get("data-file") or specific.get("data-file-raw") or data.get("encrypted"):
        return "it keeps its data in an external data file (or is encrypted), outside the archive"
    children = [c for c in data.get("children") or [] if isinstance(c, dict) and c.get("name") != "file"]
    if children:
        return "it refers to other images (" + ", ".join(str(c.get("name"))[:40] for c in children) + ")"
    return ""


def _qemu_img(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            ["qemu-img", *args], capture_output=True, text=True, check=False, timeout=QEMU_IMG_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return subprocess.CompletedProcess(args, 124, "", f"qemu-img took more than {QEMU_IMG_TIMEOUT} s")


def check_disk(host: str, disk: Path, archive: str = "the saved lab") -> None:
    """A saved disk is data: it must be a sound, self-contained qcow2 (flattened: no backing file, no
    external data file, no encryption, nothing else it refers to). Its header is read first (so qemu-img
    never opens a file the disk names), then qemu-img info (as JSON) and check, each in bounded time."""

    def damaged(why: str) -> LabError:
        return LabError(
            printable(
                f"{archive}: the disk of VM {host!r} (hosts/{entry_name(host)}/disk.qcow2) is damaged: {why}. "
                "Fix: save the lab again with 'labctl save -o FILE' and copy the whole archive (a restore uses only "
                "a self-contained qcow2)."
            )
        )

    try:
        with disk.open("rb") as handle:
            head = handle.read(65536)
    except OSError as exc:
        raise damaged(f"it cannot be read ({exc.strerror})") from None
    problem = _header_problem(head)
    if problem:
        raise damaged(problem)
    info = _qemu_img(["info", "--output", "json", str(disk)])
    if info.returncode != 0:
        raise damaged(info.stderr.strip().splitlines()[-1] if info.stderr.strip() else "qemu-img cannot read it")
    try:
        data = json.loads(info.stdout)
    except ValueError:
        raise damaged("qemu-img info gave no JSON") from None
    problem = _info_problem(data if isinstance(data, dict) else {})
    if problem:
        raise damaged(problem)
    check = _qemu_img(["check", "-q", "-f", "qcow2", str(disk)])
    if check.returncode != 0:
        raise damaged((check.stdout + check.stderr).strip().splitlines()[0] if check.stdout + check.stderr else "")


def check_saved(host: str, saved: Path, archive: str = "the saved lab") -> None:
    """A VM's saved directory complete and its disk self-contained (before anything is moved or made)."""
    if not saved.is_dir():
        raise LabError(
            f"{archive}: VM {host!r} has no saved disk (hosts/{entry_name(host)}/ is missing). "
            "Fix: save the lab again with 'labctl save -o FILE' and copy the whole archive."
        )
    missing = missing_parts(saved)
    if missing:
        raise LabError(
            f"{archive}: the saved VM {host!r} (hosts/{entry_name(host)}/) lacks {', '.join(missing)}. "
            "Fix: save the lab again with 'labctl save -o FILE' and copy the whole archive."
        )
    check_disk(host, saved / "disk.qcow2", archive)


def _guest(runner: Runner, host: str, command: str, what: str, stdin: str | None = None) -> None:
    result = runner.run(host, command, timeout=120, stdin=stdin)
    if not result.ok:
        raise LabError(f"save: cannot {what} on VM {host!r}: {result.output}. Fix: check it with 'labctl status'.")


@contextlib.contextmanager
def paused(vm_dir: Path) -> Iterator[None]:
    """The VM paused (QMP stop: in-flight I/O drained, qemu's caches flushed to the disk file), then continued."""
    qmp.command(vm_dir, "stop")
    try:
        yield
    finally:
        qmp.command(vm_dir, "cont")


def flatten(overlay: Path, out: Path) -> None:
    """One self-contained compressed qcow2 from a disk and its whole backing chain."""
    result = subprocess.run(
        ["qemu-img", "convert", "-q", *COMPRESS, "-O", "qcow2", str(overlay), str(out)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(f"save: qemu-img could not flatten {overlay.name}: {result.stderr.strip()}")


def export_vm(
    runner: Runner, host: str, vm_dir: Path, image: VmImage, out: Path, script: str, secrets: bool, shared: Path | None
) -> None:
    """Write one running VM into the directory out (see the module's docstring for how and why)."""
    out.mkdir()
    snapshot = out / ".overlay.qcow2"
    _guest(runner, host, setaside_command("out", secrets), "set the host keys (and secrets) aside", stdin=script)
    try:
        _guest(runner, host, "sync", "sync the disk")
        with paused(vm_dir):
            shutil.copyfile(vm_dir / "disk.qcow2", snapshot)
    finally:
        back = runner.run(host, setaside_command("back"), timeout=120, stdin=script)
    if not back.ok:
        raise LabError(
            f"save: VM {host!r} did not get its host keys back: {back.output}. Fix: 'labctl restart {host}'."
        )
    flatten(snapshot, out / "disk.qcow2")
    snapshot.unlink()
    for name in BOOT_FILES:
        if shared is not None and (shared / name).is_file():
            os.link(shared / name, out / name)  # the same kernel once in the archive
        else:
            shutil.copyfile(image.dir / name, out / name)
    meta = {"tag": f"saved:{host}", "from_image": str(image.dir.name), "saved": time.time()}
    (out / "image.json").write_text(json.dumps(meta, indent=2) + "\n")


def import_vm(host: str, saved: Path, images: Path, archive: str = "the saved lab") -> VmImage:
    """Check a VM's saved directory and move it into images/<host>; returns it as a VM image."""
    check_saved(host, saved, archive)
    images.mkdir(parents=True, exist_ok=True, mode=0o700)
    target = images / host
    shutil.move(str(saved), str(target))
    return VmImage(target, f"saved:{host}")
