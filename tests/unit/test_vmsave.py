"""Saving and restoring qemu VMs (labctl/providers/qemu/vmsave.py): the archive entry, what is set aside and
when, the pause around the copy, the flattened disk, and clear errors for a damaged or missing saved VM.
The guest is a fake runner and QMP a recorder; qemu-img is real, on scratch files."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from labctl.access.remote import Result
from labctl.errors import LabError
from labctl.providers.base import HostSpec
from labctl.providers.qemu import provider as qemu
from labctl.providers.qemu import qmp, vmsave
from labctl.providers.qemu.vmimage import VmImage

needs_qemu_img = pytest.mark.skipif(shutil.which("qemu-img") is None, reason="qemu-img (qemu-utils) not installed")


class FakeRunner:
    """Records the commands run in the guest (and their stdin); fails the ones named in fail."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        self.fail = fail

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        self.calls.append((host, command, stdin))
        return Result(command, 1 if command in self.fail else 0, "", "boom" if command in self.fail else "")

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        raise AssertionError("not used")

    def close(self) -> None:
        pass


def qcow2(path: Path, backing: Path | None = None) -> Path:
    cmd = ["qemu-img", "create", "-q", "-f", "qcow2"]
    cmd += ["-b", str(backing), "-F", "qcow2"] if backing else []
    subprocess.run([*cmd, str(path), "64M"], check=True)
    return path


def fake_image(directory: Path) -> VmImage:
    directory.mkdir(parents=True)
    qcow2(directory / "disk.qcow2")
    subprocess.run(["qemu-io", "-c", "write -P 0x5a 0 1M", str(directory / "disk.qcow2")], check=True,
                   capture_output=True)  # fmt: skip
    (directory / "vmlinuz").write_bytes(b"kernel")
    (directory / "initrd.img").write_bytes(b"initrd")
    (directory / "image.json").write_text("{}")
    return VmImage(directory, "t")


def test_entry_names_and_the_set_aside_commands() -> None:
    assert vmsave.entry_name("v1") == "vm-v1"
    assert vmsave.checked_entry("v1", "vm-v1") == "vm-v1"
    for bad in ("../vm-v1", "vm-v2", "/etc", "vm-v1/.."):
        with pytest.raises(LabError, match=r"'hosts\.v1\.file'.*Fix: save the lab again"):
            vmsave.checked_entry("v1", bad)
    assert vmsave.setaside_command("out") == "python3 - out"
    assert vmsave.setaside_command("out", secrets=True) == "python3 - out keep-secrets"
    assert vmsave.setaside_command("back", secrets=True) == "python3 - back"
    assert vmsave.COMPRESS[0] == "-c"  # the archive's disks are compressed


@needs_qemu_img
def test_a_vm_is_saved_paused_with_its_keys_set_aside_and_its_disk_flattened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = fake_image(tmp_path / "image")
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()
    qcow2(vm_dir / "disk.qcow2", base.disk)
    events: list[str] = []
    monkeypatch.setattr(qmp, "command", lambda directory, execute, **_kw: events.append(f"qmp {execute}"))
    runner = FakeRunner()
    real_copy = shutil.copyfile

    def copy(src: object, dst: object) -> object:
        events.append(f"copy {Path(str(src)).name}")
        return real_copy(src, dst)  # type: ignore[arg-type]

    monkeypatch.setattr(shutil, "copyfile", copy)
    dest = tmp_path / "stage"
    dest.mkdir()
    vmsave.export_vm(runner, "v1", vm_dir, base, dest / "vm-v1", "SCRIPT", False, None)  # type: ignore[arg-type]
    vmsave.export_vm(runner, "v2", vm_dir, base, dest / "vm-v2", "SCRIPT", True, dest / "vm-v1")  # type: ignore[arg-type]

    commands = [(h, c) for h, c, _ in runner.calls]
    assert commands[:3] == [("v1", "python3 - out"), ("v1", "sync"), ("v1", "python3 - back")]
    assert commands[3] == ("v2", "python3 - out keep-secrets")
    assert all(stdin == "SCRIPT" for _h, c, stdin in runner.calls if c.startswith("python3"))
    assert events[:3] == ["qmp stop", "copy disk.qcow2", "qmp cont"]  # only the copy is paused
    saved = dest / "vm-v1"
    assert vmsave.missing_parts(saved) == []
    info = json.loads(subprocess.run(["qemu-img", "info", "--output", "json", str(saved / "disk.qcow2")],
                                     capture_output=True, text=True, check=True).stdout)  # fmt: skip
    assert "backing-filename" not in info  # flattened: the base image is not needed
    assert info["format-specific"]["data"]["compression-type"] == "zstd"
    assert not (saved / ".overlay.qcow2").exists()
    # the data of the base image is in the saved disk
    read = subprocess.run(["qemu-io", "-c", "read -P 0x5a 0 1M", str(saved / "disk.qcow2")],
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert read.returncode == 0 and "Pattern verification failed" not in read.stdout
    # the second VM of the same image shares the kernel (a hard link: tar stores it once)
    assert (dest / "vm-v2" / "vmlinuz").stat().st_ino == (saved / "vmlinuz").stat().st_ino


@needs_qemu_img
def test_the_keys_come_back_and_the_vm_continues_when_the_copy_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = fake_image(tmp_path / "image")
    vm_dir = tmp_path / "vm"
    vm_dir.mkdir()  # no disk.qcow2: the copy fails
    events: list[str] = []
    monkeypatch.setattr(qmp, "command", lambda directory, execute, **_kw: events.append(execute))
    runner = FakeRunner()
    with pytest.raises(FileNotFoundError):
        vmsave.export_vm(runner, "v1", vm_dir, base, tmp_path / "vm-v1", "S", False, None)  # type: ignore[arg-type]
    assert events == ["stop", "cont"]
    assert runner.calls[-1][1] == "python3 - back"


def test_a_failed_set_aside_stops_the_save_before_the_vm_is_paused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(qmp, "command", lambda *_a, **_kw: pytest.fail("paused"))
    runner = FakeRunner(fail=("python3 - out",))
    with pytest.raises(LabError, match=r"cannot set the host keys \(and secrets\) aside on VM 'v1': boom"):
        vmsave.export_vm(runner, "v1", tmp_path, VmImage(tmp_path, ""), tmp_path / "o", "S", False, None)  # type: ignore[arg-type]


def test_a_missing_or_incomplete_saved_vm_is_a_clear_error(tmp_path: Path) -> None:
    images = tmp_path / "images"
    with pytest.raises(LabError, match=r"VM 'v1' has no saved disk \(hosts/vm-v1/ is missing\).*Fix:"):
        vmsave.import_vm("v1", tmp_path / "vm-v1", images)
    saved = tmp_path / "vm-v1"
    saved.mkdir()
    (saved / "disk.qcow2").write_bytes(b"x")
    (saved / "initrd.img").write_bytes(b"")
    with pytest.raises(LabError, match=r"lacks vmlinuz, initrd.img, image.json\. Fix: save the lab again"):
        vmsave.import_vm("v1", saved, images)
    assert not images.exists()


@needs_qemu_img
def test_a_damaged_or_unflattened_saved_disk_is_a_clear_error(tmp_path: Path) -> None:
    saved = fake_image(tmp_path / "vm-v1")
    (saved.dir / "disk.qcow2").write_bytes(b"QFI\xfb" + b"\0" * 100)  # truncated qcow2 header
    with pytest.raises(LabError, match=r"the disk of VM 'v1' \(hosts/vm-v1/disk.qcow2\) is damaged: .*Fix:"):
        vmsave.import_vm("v1", saved.dir, tmp_path / "images")
    (saved.dir / "disk.qcow2").unlink()
    qcow2(saved.dir / "disk.qcow2", qcow2(tmp_path / "base.qcow2"))
    with pytest.raises(LabError, match=r"is damaged: it is not flattened"):
        vmsave.import_vm("v1", saved.dir, tmp_path / "images")


@needs_qemu_img
def test_a_sound_saved_vm_moves_into_the_labs_images(tmp_path: Path) -> None:
    saved = fake_image(tmp_path / "stage" / "vm-v1")
    img = vmsave.import_vm("v1", saved.dir, tmp_path / "vms" / vmsave.IMAGES)
    assert img.dir == tmp_path / "vms" / ".images" / "v1" and img.ready()
    assert not saved.dir.exists()


def test_a_restored_vm_is_made_from_its_saved_disk(tmp_path: Path) -> None:
    spec = HostSpec("lab", "v1", {"n1": "10.0.0.2"})
    assert qemu.saved_image(spec) is None  # the VM image
    assert qemu.saved_image(HostSpec("lab", "v1", {}, image="localhost/x:1")) is None  # a podman image
    saved = tmp_path / "v1"
    saved.mkdir()
    for name in ("disk.qcow2", "vmlinuz", "initrd.img", "image.json"):
        (saved / name).write_text("x")
    found = qemu.saved_image(HostSpec("lab", "v1", {}, image=str(saved)))
    assert found is not None and found.dir == saved
    (saved / "vmlinuz").unlink()
    with pytest.raises(LabError, match=r"saved disk .* is gone\. Fix: 'labctl down --name lab'.*up --from"):
        qemu.saved_image(HostSpec("lab", "v1", {}, image=str(saved)))
