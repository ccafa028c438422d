"""The accelerator probe: KVM only with a vmx/svm CPU flag and a usable /dev/kvm, TCG otherwise."""

from __future__ import annotations

from pathlib import Path

from labctl.providers.qemu.accel import KVM_ARGS, TCG_ARGS, choose, cpu_flags, kvm_usable

INTEL = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr vmx sse2\n"
AMD = "processor\t: 0\nflags\t\t: fpu svm sse2 lm\n"
NONE = "processor\t: 0\nflags\t\t: fpu vme de pse tsc msr sse2 hypervisor\n"


def test_cpu_flags_are_read_from_the_flags_line() -> None:
    assert "vmx" in cpu_flags(INTEL)
    assert cpu_flags("no flags here") == set()


def test_kvm_when_the_cpu_has_vmx_or_svm_and_the_device_works() -> None:
    for cpuinfo, flag in ((INTEL, "vmx"), (AMD, "svm")):
        accel = choose(cpuinfo, (True, ""))
        assert accel.name == "kvm"
        assert accel.args == KVM_ARGS
        assert flag in accel.reason


def test_tcg_without_the_cpu_flag_even_with_a_dev_kvm() -> None:
    """kvm_pvm: /dev/kvm answers but the CPU has no hardware virtualization."""
    accel = choose(NONE, (True, ""))
    assert accel.name == "tcg"
    assert accel.args == TCG_ARGS
    assert "no vmx/svm" in accel.reason


def test_tcg_when_the_device_is_not_usable_says_why() -> None:
    accel = choose(INTEL, (False, "/dev/kvm: Permission denied"))
    assert accel.name == "tcg"
    assert "Permission denied" in accel.reason


def test_tcg_can_be_forced() -> None:
    assert choose(INTEL, (True, ""), forced="tcg").name == "tcg"


def test_a_missing_device_is_not_usable(tmp_path: Path) -> None:
    ok, why = kvm_usable(str(tmp_path / "kvm"))
    assert not ok
    assert "No such file" in why


def test_a_device_that_is_not_kvm_is_not_usable() -> None:
    ok, why = kvm_usable("/dev/null")
    assert not ok
    assert why
