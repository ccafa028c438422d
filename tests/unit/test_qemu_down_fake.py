"""What the qemu provider deletes, proven with fakes before any real run: fake `ip` and `iptables`
first on PATH (they log their calls, touch nothing), a scratch /sys/class/net, a scratch state root,
and stand-in "qemu" processes this test starts itself (python, named qemu-system-x86_64, carrying a
lab's label). Scratch siblings and another lab's process prove that nothing else is touched."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.providers.qemu import provider as qemu
from labctl.providers.qemu import vmnet
from labctl.providers.qemu.provider import ID_PREFIX, QemuProvider, VmConfig
from labctl.providers.qemu.vmconfig import Nic

RULES = """\
-P POSTROUTING ACCEPT
-A POSTROUTING -s 198.18.120.0/24 ! -d 224.0.0.0/4 -m comment --comment labctl.vm=qa -j MASQUERADE
-A POSTROUTING -s 198.18.121.0/24 ! -d 224.0.0.0/4 -m comment --comment labctl.vm=qa-2 -j MASQUERADE
"""


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    log = tmp_path / "calls.log"
    (tmp_path / "rules").write_text(RULES)
    for tool, body in (
        ("ip", ""),
        ("iptables", f'case " $* " in *" -t nat -S "*) cat {tmp_path}/rules;; esac\n'),
    ):
        script = bindir / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> {log}\n{body}')
        script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    sysnet = tmp_path / "sys"
    for name, alias in {
        "lqaaa0n0": "labctl.lab=qa host=v1 net=n1",
        "lqbbb0n0": "labctl.lab=qa-2 host=v1 net=n1",
        "podman9": "labctl.lab=qa net=n1 kind=bridge",
        "eth0": "",
    }.items():
        (sysnet / name).mkdir(parents=True)
        (sysnet / name / "ifalias").write_text(alias + "\n")
    monkeypatch.setattr(vmnet, "SYS_NET", sysnet)
    (tmp_path / "sibling").mkdir()
    (tmp_path / "sibling" / "keep").write_text("x")
    return tmp_path


@pytest.fixture
def fake_vms() -> Iterator[dict[str, subprocess.Popen[bytes]]]:
    """Two stand-in qemu processes: lab qa's v1 and lab qa-2's v1."""
    procs = {
        lab: subprocess.Popen(
            ["qemu-system-x86_64", "-c", "import time; time.sleep(120)", "-fw_cfg", f"{ID_PREFIX}{lab}/v1"],
            executable=sys.executable,
        )
        for lab in ("qa", "qa-2")
    }
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(qemu.lab_processes()) < 2:
        time.sleep(0.05)
    yield procs
    for proc in procs.values():
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def make_vm_dir(lab: str, host: str) -> Path:
    directory = qemu.vm_dir(lab, host)
    directory.mkdir(parents=True)
    nic = Nic("n1", "198.18.120.10", "198.18.120.0/24", "198.18.120.1", "02:4c:c6:12:78:0a", "lqaaa0n0", "podman9")
    VmConfig(lab, host, 1, 512, "", "/img", [nic], "cred", pubkey="ssh-ed25519 OLD").save(directory)
    (directory / "disk.qcow2").write_text("disk")
    return directory


def test_destroy_lab_removes_only_its_own_vms_links_rules_and_state(
    scratch: Path, fake_vms: dict[str, subprocess.Popen[bytes]]
) -> None:
    directory = make_vm_dir("qa", "v1")
    other = make_vm_dir("qa-2", "v1")
    removed = QemuProvider().destroy_lab("qa")
    assert fake_vms["qa"].wait(timeout=15) is not None  # killed
    assert fake_vms["qa-2"].poll() is None  # the other lab's VM runs on
    calls = (scratch / "calls.log").read_text().splitlines()
    deletes = [c for c in calls if " delete " in c or " -D " in c]
    assert "ip link delete dev lqaaa0n0" in deletes
    assert not any("lqbbb0n0" in c or "eth0" in c for c in deletes)
    assert [c for c in deletes if "-D" in c] == [
        "iptables -w 5 -t nat -D POSTROUTING -s 198.18.120.0/24 ! -d 224.0.0.0/4 -m comment --comment "
        "labctl.vm=qa -j MASQUERADE"
    ]
    assert not directory.exists() and other.exists()
    assert (scratch / "sibling" / "keep").exists()
    assert any(r.startswith("vm v1 (pid") for r in removed) and "tap lqaaa0n0" in removed


@pytest.mark.parametrize("lab", ["", "../x", "qa_b", "-", "QA"])
def test_invalid_lab_names_delete_nothing(scratch: Path, lab: str) -> None:
    with pytest.raises(LabError, match="invalid lab name"):
        QemuProvider().destroy_lab(lab)
    with pytest.raises(LabError, match="invalid lab name"):
        QemuProvider().remains(lab)
    assert not (scratch / "calls.log").exists()


def test_an_unfinished_down_names_the_vms_taps_rules_and_disks(scratch: Path) -> None:
    make_vm_dir("qa", "v1")
    left = QemuProvider().remains("qa")
    assert "1 VM tap(s) (lqaaa0n0)" in left
    assert "1 bridge(s) labctl made (podman9)" in left
    assert "1 VM NAT rule(s) (comment labctl.vm=qa)" in left
    assert any(item.startswith("the disks and sockets of VM(s) v1 in ") for item in left)


def test_a_vm_keeps_its_key_and_takes_a_new_one_by_a_reboot(scratch: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = make_vm_dir("qa", "v1")
    cycles: list[str] = []
    provider = QemuProvider()
    monkeypatch.setattr(provider, "_pid", lambda lab, host: 4242)
    monkeypatch.setattr(provider, "stop", lambda lab, host: cycles.append(f"stop {host}"))
    monkeypatch.setattr(provider, "start", lambda lab, host: cycles.append(f"start {host}"))
    provider.authorize("qa", "v1", "ssh-ed25519 OLD\n")
    assert cycles == []  # the key it booted with: nothing to do
    provider.authorize("qa", "v1", "ssh-ed25519 NEW")
    assert cycles == ["stop v1", "start v1"]
    cfg = VmConfig.load(directory)
    assert cfg.pubkey == "ssh-ed25519 NEW"
    assert "/root/.ssh/authorized_keys" in cfg.credential  # rewritten at every boot by tmpfiles


def test_a_vm_whose_state_was_lost_must_be_recreated(scratch: Path, fake_vms: dict[str, object]) -> None:
    info = QemuProvider().list("qa")
    assert info["v1"].state == "running" and info["v1"].details["problem"] == "state lost"
    with pytest.raises(LabError) as caught:
        QemuProvider().authorize("qa", "v1", "ssh-ed25519 NEW")
    message = str(caught.value)
    assert "were lost with the lab's state directory" in message
    assert "Fix: recreate it: 'labctl down --name qa'" in message


def test_a_down_interrupted_among_the_vms_says_what_is_left_and_a_second_down_finishes(
    scratch: Path, fake_vms: dict[str, subprocess.Popen[bytes]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from labctl.errors import Interrupted
    from labctl.lifecycle import down

    bindir = scratch / "bin"
    (bindir / "podman").write_text('#!/bin/sh\necho "podman $*" >> ' + str(scratch / "calls.log") + '\necho "[]"\n')
    (bindir / "podman").chmod(0o755)
    # the fake ip removes a deleted link from the scratch /sys/class/net (and nothing else)
    (bindir / "ip").write_text(
        f'#!/bin/sh\necho "ip $*" >> {scratch}/calls.log\n'
        f'if [ "$1 $2 $3" = "link delete dev" ]; then rm -r "{scratch}/sys/$4"; fi\n'
    )
    make_vm_dir("qa", "v1")
    real_delete = vmnet.delete_link

    def interrupted(name: str) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(vmnet, "delete_link", interrupted)
    with pytest.raises(Interrupted) as caught:
        down.down("qa")
    message = str(caught.value)
    assert caught.value.exit_code == 130
    assert "'down' of lab 'qa' was interrupted" in message
    assert "1 VM tap(s) (lqaaa0n0)" in message and "disks and sockets of VM(s) v1" in message
    assert "Fix: run 'labctl down --name qa' again" in message
    assert fake_vms["qa"].wait(timeout=15) is not None  # the VM was stopped before the interruption

    monkeypatch.setattr(vmnet, "delete_link", real_delete)
    down.down("qa")
    # (the fake iptables keeps its listing: that the rule was deleted shows in its log)
    assert [r for r in QemuProvider().remains("qa") if "NAT rule" not in r] == []
    assert QemuProvider().list("qa") == {}
    calls = (scratch / "calls.log").read_text().splitlines()
    assert any(" -D POSTROUTING " in c and "labctl.vm=qa " in c for c in calls)
    assert (scratch / "sys" / "lqbbb0n0").exists() and fake_vms["qa-2"].poll() is None
    assert (scratch / "sibling" / "keep").exists()


def test_destroy_lab_removes_the_restored_vm_disks_of_its_lab_only(scratch: Path) -> None:
    """A restored lab's saved disks (vms/.images/<host>) go with the lab: nothing leaked, nothing else touched."""
    from labctl.providers.qemu import vmsave

    make_vm_dir("qa", "v1")
    make_vm_dir("qa-2", "v1")
    for lab in ("qa", "qa-2"):
        saved = qemu.vms_dir(lab) / vmsave.IMAGES / "v1"
        saved.mkdir(parents=True)
        (saved / "disk.qcow2").write_text("flattened")
    assert f"the restored VM disks in {qemu.vms_dir('qa') / vmsave.IMAGES}" in QemuProvider().remains("qa")
    removed = QemuProvider().destroy_lab("qa")
    assert "restored vm disk v1" in removed
    assert not qemu.vms_dir("qa").exists()
    assert (qemu.vms_dir("qa-2") / vmsave.IMAGES / "v1" / "disk.qcow2").exists()
    assert (scratch / "sibling" / "keep").exists()
    assert not [r for r in QemuProvider().remains("qa") if "disk" in r]
