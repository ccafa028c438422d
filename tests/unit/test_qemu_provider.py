"""The qemu provider's pure parts: sizes, memory preflight, the qemu command line, names, the image recipe."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.providers import host_settings, teardown_order
from labctl.providers.base import HostSpec
from labctl.providers.qemu import vmimage
from labctl.providers.qemu.accel import KVM_ARGS, TCG_ARGS, Accel
from labctl.providers.qemu.provider import (
    ID_PREFIX,
    VmConfig,
    check_memory,
    console_tail,
    mem_available_mb,
    options,
    qemu_argv,
)
from labctl.providers.qemu.vmconfig import Nic
from labctl.providers.qemu.vmnet import alias_lab, lab_alias, tap_name

NICS = [
    Nic("n1", "198.18.1.10", "198.18.1.0/24", "198.18.1.1", "02:4c:c6:12:01:0a", "lq123456789n0", "podman3"),
    Nic("n2", "198.18.2.10", "198.18.2.0/24", "198.18.2.1", "02:4c:c6:12:02:0a", "lq123456789n1", "podman4"),
]


def spec(**vm: object) -> HostSpec:
    return HostSpec(lab="l", name="v1", networks={"n1": "198.18.1.10"}, options=dict(vm))


def test_sizes_default_to_one_cpu_and_512_mib() -> None:
    assert options(spec()) == (1, 512, "")
    assert options(spec(cpus=2, memory=768, kernel_args="x=1")) == (2, 768, "x=1")


BAD_SIZES = [({"cpus": 0}, "cpus"), ({"memory": "1G"}, "memory"), ({"cpus": True}, "cpus")]


@pytest.mark.parametrize(("vm", "field"), BAD_SIZES)
def test_bad_sizes_name_the_field(vm: dict[str, object], field: str) -> None:
    with pytest.raises(LabError, match=rf"hosts\.v1\.vm\.{field}'.*Fix:"):
        options(spec(**vm))


def test_memory_preflight_names_the_vms_and_the_fix() -> None:
    check_memory({"v1": 512, "v2": 512}, 2000, "tcg")
    with pytest.raises(LabError) as info:
        check_memory({"v1": 512, "v2": 768}, 1000, "tcg")
    message = str(info.value)
    assert "2 VM(s)" in message and "v2 768 MiB" in message and "1000 MiB available" in message
    assert "Fix:" in message
    check_memory({}, 0, "tcg")


def test_mem_available_is_read_in_mib() -> None:
    assert mem_available_mb("MemTotal: 100 kB\nMemAvailable:    2097152 kB\n") == 2048


def cfg() -> VmConfig:
    return VmConfig("lab1", "v1", 2, 768, "loglevel=7", "/img", NICS, "d /root/.ssh 0700 root root -\n")


def test_qemu_argv_tcg() -> None:
    img = vmimage.VmImage(Path("/img"), "t")
    argv = qemu_argv(cfg(), Accel("tcg", "", TCG_ARGS), img)
    joined = " ".join(argv)
    assert "-accel tcg,thread=multi,tb-size=64 -cpu max" in joined
    assert "-smp 2 -m 768" in joined
    assert "-kernel /img/vmlinuz -initrd /img/initrd.img" in joined
    assert "systemd.hostname=v1" in argv[argv.index("-append") + 1]
    assert "loglevel=7" in argv[argv.index("-append") + 1]
    # one tap per network, with the address's MAC
    assert "tap,id=n0,ifname=lq123456789n0,script=no,downscript=no" in argv
    assert "virtio-net-pci,netdev=n1,mac=02:4c:c6:12:02:0a,romfile=" in argv
    # sockets, log and pidfile are relative: qemu runs in the VM's directory (short socket paths)
    assert "unix:qmp.sock,server=on,wait=off" in argv
    assert any(a.startswith("socket,id=serial0,path=console.sock,") and "logfile=console.log" in a for a in argv)
    assert argv[-3:] == ["-pidfile", "qemu.pid", "-daemonize"]
    assert f"{ID_PREFIX}lab1/v1" in argv


def test_qemu_argv_kvm() -> None:
    argv = qemu_argv(cfg(), Accel("kvm", "", KVM_ARGS), vmimage.VmImage(Path("/img"), "t"))
    assert " ".join(KVM_ARGS) in " ".join(argv)


def test_vm_config_round_trips(tmp_path: Path) -> None:
    cfg().save(tmp_path)
    assert VmConfig.load(tmp_path) == cfg()
    assert (tmp_path / "vm.json").stat().st_mode & 0o777 == 0o600


def test_console_tail_reads_from_the_offset(tmp_path: Path) -> None:
    (tmp_path / "console.log").write_bytes(b"old boot\r\n" + b"".join(b"line %d\r\n" % i for i in range(30)))
    tail = console_tail(tmp_path, offset=len(b"old boot\r\n"), lines=3)
    assert tail == "line 27\nline 28\nline 29"
    assert "old boot" not in console_tail(tmp_path, offset=10, lines=100)
    assert console_tail(tmp_path / "none") == "(no console output)"


def test_tap_names_fit_linux_and_differ_per_lab_host_and_network() -> None:
    names = {tap_name(lab, host, i) for lab in ("a", "a-b") for host in ("b-c", "c") for i in range(3)}
    assert len(names) == 12
    assert all(len(n) <= 15 for n in names)


def test_aliases_name_their_lab_exactly() -> None:
    text = lab_alias("lab-1", host="v1", net="n1")
    assert alias_lab(text) == "lab-1"
    assert alias_lab("labctl.lab=lab-12 host=v1") != "lab-1"
    assert alias_lab("something else") is None


def test_vms_are_torn_down_before_the_containers_whose_bridges_they_share() -> None:
    order = teardown_order()
    assert order.index("qemu") < order.index("podman")
    assert "vm" in host_settings("qemu")
    assert "vm" not in host_settings("podman")


def test_vm_image_name_follows_its_recipe_and_the_base_recipe(monkeypatch: pytest.MonkeyPatch) -> None:
    before = vmimage.current().tag
    monkeypatch.setattr(vmimage, "PACKAGES", (*vmimage.PACKAGES, "vim-tiny"))
    assert vmimage.current().tag != before
    monkeypatch.undo()
    monkeypatch.setattr(vmimage.image, "PACKAGES", (*vmimage.image.PACKAGES, "vim-tiny"))
    assert vmimage.current().tag != before


def test_vm_image_lives_under_labctl_image_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABCTL_IMAGE_DIR", str(tmp_path))
    img = vmimage.current()
    assert img.dir.parent == tmp_path
    assert not img.ready()


def test_customize_makes_a_vm_root(tmp_path: Path) -> None:
    wants = tmp_path / "etc/systemd/system/getty.target.wants"
    wants.mkdir(parents=True)
    (wants / "getty@tty1.service").symlink_to("/lib/systemd/system/getty@.service")
    (tmp_path / "etc/resolv.conf").symlink_to("../run/resolv.conf")
    vmimage.customize(tmp_path)
    assert (tmp_path / "etc/fstab").read_text().startswith("/dev/vda / ext4")
    assert not (wants / "getty@tty1.service").is_symlink()
    assert not (tmp_path / "etc/resolv.conf").is_symlink()
    link = tmp_path / "etc/systemd/system/multi-user.target.wants/systemd-networkd.service"
    assert str(link.readlink()) == "/lib/systemd/system/systemd-networkd.service"


def test_a_missing_qemu_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from labctl.providers.qemu.provider import QemuProvider

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(LabError) as info:
        QemuProvider().prepare([spec()], lambda _m: None)
    assert "qemu is not installed" in str(info.value) and "apt-get install qemu-system-x86" in str(info.value)
    assert "\n" not in str(info.value)


def test_a_vms_kernel_log_is_its_own() -> None:
    from labctl.access import kernellog
    from labctl.providers.qemu.provider import QemuProvider

    assert kernellog.source(QemuProvider()) == kernellog.OWN  # LOG lines: journalctl -k on the VM


def test_saving_vms_needs_the_labs_ssh_runner(tmp_path: Path) -> None:
    from labctl.errors import LabError
    from labctl.providers.qemu.provider import QemuProvider

    provider = QemuProvider()
    with pytest.raises(LabError, match=r"saving VMs needs SSH.*Fix:"):
        provider.export_hosts("vms", ["v1"], tmp_path)
    assert provider.image_info([]) == {}
    assert provider.host_kind == "vm"
