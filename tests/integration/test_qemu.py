"""VMs with real qemu (TCG on machines without hardware virtualization): a mixed lab of two VMs and a
container (one lab shared by the assertions: exec, ping matrix by name, status, a new lab key, restart,
console, save → down → up --from with the package sources closed, down), Ctrl-C while a VM boots, and a
VM that fails to boot."""

from __future__ import annotations

import json
import signal
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from .conftest import LABCTL, lab_containers, lab_networks, require_tool, run
from .test_reproduce import CLOSED

require_tool("qemu-system-x86_64", "qemu-system-x86 qemu-utils")

pytestmark = pytest.mark.integration

SYS_NET = Path("/sys/class/net")
HOST_KEY = "/etc/ssh/ssh_host_ed25519_key.pub"


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / f"{name}.yml"
    path.write_text(text)
    return path


def qemu_processes(lab: str) -> list[int]:
    """qemu processes labctl started for this lab (they carry opt/labctl/id=<lab>/<host>)."""
    marker = f"name=opt/labctl/id,string={lab}/".encode()
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"qemu-system" in args[0] and any(a.startswith(marker) for a in args):
            pids.append(int(proc.name))
    return pids


def lab_links(lab: str) -> list[str]:
    out = []
    for link in SYS_NET.iterdir():
        try:
            alias = (link / "ifalias").read_text().split()
        except OSError:
            continue
        if alias and alias[0] == f"labctl.lab={lab}":
            out.append(link.name)
    return out


def vm_rules(lab: str, subnet: str) -> list[str]:
    lines = []
    for table in ("nat", "filter"):
        out = subprocess.run(["iptables", "-t", table, "-S"], capture_output=True, text=True, check=True).stdout
        lines += [line for line in out.splitlines() if f"labctl.vm={lab}" in line or f"labctl.lab={lab}" in line]
    return lines


def bridge_of(lab: str, network: str) -> str:
    out = subprocess.run(
        ["podman", "network", "inspect", f"labctl-{lab}_{network}"], capture_output=True, text=True, check=True
    ).stdout
    return str(json.loads(out)[0]["network_interface"])


def assert_nothing_left(lab: str, subnet: str, state: Path, bridges: list[str]) -> None:
    assert qemu_processes(lab) == []
    assert lab_links(lab) == []
    assert [b for b in bridges if (SYS_NET / b).exists()] == []
    assert vm_rules(lab, subnet) == []
    assert lab_containers(lab) == []
    assert lab_networks(lab) == []
    assert not state.exists()


REKEY = (
    "rm -f /etc/ssh/ssh_host_ed25519_key*; ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key; "
    "systemctl restart ssh"
)


def served_key(address: str) -> str:
    """The ed25519 host key the SSH server at address serves (type and base64)."""
    out = subprocess.run(["ssh-keyscan", "-T", "10", "-t", "ed25519", address], capture_output=True, text=True).stdout
    return " ".join(out.split()[1:3])


def qemu_cmdlines(lab: str) -> list[str]:
    return [(Path("/proc") / str(pid) / "cmdline").read_text().replace("\0", " ") for pid in qemu_processes(lab)]


MIXED = """\
schema: 1
name: it-vm
provider: qemu
networks: [{name: n1, subnet: 198.18.120.0/24}]
hosts:
  - {name: v1, networks: [n1]}
  - {name: v2, networks: [n1], vm: {cpus: 1, memory: 768}}
  - {name: c1, networks: [n1], provider: podman}
"""


def test_mixed_lab_of_vms_and_a_container(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write(tmp_path, "it-vm", MIXED)
    state = Path(labenv["LABCTL_STATE_DIR"]) / "it-vm"
    bridges: list[str] = []
    try:
        up = run("up", "-f", str(lab), "--no-provision", env=labenv)
        assert "VMs run on " in up.stderr
        bridges.append(bridge_of("it-vm", "n1"))
        virt = {
            h: run("exec", "-f", str(lab), h, "--", "systemd-detect-virt", env=labenv, check=False)
            for h in ("v1", "v2", "c1")
        }
        assert virt["v1"].stdout.strip() in ("qemu", "kvm"), virt["v1"]
        assert virt["v2"].stdout.strip() in ("qemu", "kvm")
        assert virt["c1"].stdout.strip() == "podman"
        # one L2 segment, the lab's addresses, names resolve everywhere
        for src in ("v1", "v2", "c1"):
            for dst in ("v1", "v2", "c1"):
                if src != dst:
                    ping = run("exec", "-f", str(lab), src, "--", "ping", "-c1", "-W5", dst, env=labenv, check=False)
                    assert ping.returncode == 0, f"{src} -> {dst}: {ping.stdout}{ping.stderr}"
        assert run("exec", "-f", str(lab), "v2", "--", "hostname", env=labenv).stdout.strip() == "v2"
        mem = run("exec", "-f", str(lab), "v2", "--", "grep", "MemTotal", "/proc/meminfo", env=labenv).stdout
        assert 700_000 < int(mem.split()[1]) <= 768 * 1024

        status = json.loads(run("status", "-f", str(lab), "--json", env=labenv).stdout)
        rows = {h["name"]: h for h in status["hosts"]}
        assert rows["v1"]["provider"] == "qemu" and rows["v1"]["state"] == "running"
        assert rows["v1"]["accelerator"] in ("tcg", "kvm")
        assert rows["c1"]["provider"] == "podman" and "accelerator" not in rows["c1"]
        table = run("status", "-f", str(lab), env=labenv).stdout
        assert "qemu (" in table and "podman" in table
        # each VM serves the host key labctl made on this machine and put in its first-boot credential, and
        # the lab's known_hosts held it before the VM ever answered
        addresses = {h: rows[h]["addresses"]["n1"] for h in ("v1", "v2", "c1")}
        for vm in ("v1", "v2"):
            made = " ".join((state / "vms" / vm / "ssh_host_ed25519_key.pub").read_text().split()[:2])
            assert served_key(addresses[vm]) == made
            assert f"{addresses[vm]} {made}" in (state / "known_hosts").read_text().splitlines()
        assert "ssh_host_ed25519_key" not in " ".join(qemu_cmdlines("it-vm"))  # no private key in /proc

        # the lab's key is lost: `up` gives every host the new one (a VM by a reboot with a new credential)
        state_key = state / "id_ed25519"
        state_key.unlink()
        (state / "id_ed25519.pub").unlink()
        again = run("up", "-f", str(lab), "--no-provision", env=labenv)
        assert "putting the new key into 3 existing host(s)" in " ".join(again.stderr.split())
        for host in ("v1", "v2", "c1"):
            assert run("exec", "-f", str(lab), host, "--", "hostname", env=labenv).stdout.strip() == host

        boot_id = "cat /proc/sys/kernel/random/boot_id"
        before = run("exec", "-f", str(lab), "v1", "--", "sh", "-c", boot_id, env=labenv).stdout
        # a key changed inside the VM is refused, with the fix: a restart writes labctl's key back
        run("exec", "-f", str(lab), "v1", "--", "sh", "-c", REKEY, env=labenv)
        refused = run("exec", "-f", str(lab), "v1", "--", "true", env=labenv, check=False)
        assert refused.returncode == 2 and "its SSH host key changed since labctl learnt it" in refused.stderr
        assert "Fix: restart the VM: 'labctl restart --name it-vm v1'" in refused.stderr
        run("restart", "-f", str(lab), "v1", env=labenv)
        after = run("exec", "-f", str(lab), "v1", "--", "sh", "-c", boot_id, env=labenv).stdout
        assert before != after  # a real reboot
        made = " ".join((state / "vms/v1/ssh_host_ed25519_key.pub").read_text().split()[:2])
        assert served_key(addresses["v1"]) == made  # the credential wrote labctl's key back at boot
        assert run("exec", "-f", str(lab), "c1", "--", "ping", "-c1", "-W5", "v1", env=labenv).returncode == 0

        console = run("console", "-f", str(lab), "v1", env=labenv).stdout  # not a terminal: the log
        assert "v1 login:" in console or "root@v1" in console
        assert len(qemu_processes("it-vm")) == 2

        # save → down → up --from with the package sources closed: the VMs come back from the archive alone
        run("exec", "-f", str(lab), "--all", "--", "sh", "-c", CLOSED, env=labenv)
        run("exec", "-f", str(lab), "v2", "--", "sh", "-c", "echo kept > /root/marker", env=labenv)
        old_key = run("exec", "-f", str(lab), "v1", "--", "cat", HOST_KEY, env=labenv).stdout
        before = run("exec", "-f", str(lab), "v1", "--", "sh", "-c", boot_id, env=labenv).stdout
        saved = tmp_path / "lab.tar"
        run("save", "-f", str(lab), "-o", str(saved), env=labenv)
        # the VM ran on through the save (paused only while its overlay was copied), its host key back
        assert run("exec", "-f", str(lab), "v1", "--", "sh", "-c", boot_id, env=labenv).stdout == before
        assert run("exec", "-f", str(lab), "v1", "--", "cat", HOST_KEY, env=labenv).stdout == old_key
        with tarfile.open(saved) as tar:
            names = set(tar.getnames())
            manifest = yaml.safe_load(tar.extractfile("manifest.yml").read())  # type: ignore[union-attr]
        assert {h: e["kind"] for h, e in manifest["hosts"].items()} == {"v1": "vm", "v2": "vm", "c1": "container"}
        for host in ("v1", "v2"):
            assert {f"hosts/vm-{host}/{f}" for f in ("disk.qcow2", "vmlinuz", "initrd.img")} <= names
        assert not [n for n in names if "id_ed25519" in n or n.startswith("secrets")]
        run("down", "-f", str(lab), env=labenv)
        assert_nothing_left("it-vm", "198.18.120.0/24", state, bridges)
        bridges.clear()  # podman may give the freed bridge name to another lab's network meanwhile

        run("up", "--from", str(saved), "--no-provision", env=labenv)
        bridges.append(bridge_of("it-vm", "n1"))
        r = ["--name", "it-vm"]
        assert run("exec", *r, "v1", "--", "systemd-detect-virt", env=labenv, check=False).stdout.strip() in (
            "qemu",
            "kvm",
        )
        for src, dst in (("v1", "v2"), ("v2", "c1"), ("c1", "v1")):
            assert run("exec", *r, src, "--", "ping", "-c1", "-W5", dst, env=labenv, check=False).returncode == 0
        assert run("exec", *r, "v2", "--", "cat", "/root/marker", env=labenv).stdout.strip() == "kept"
        new_key = run("exec", *r, "v1", "--", "cat", HOST_KEY, env=labenv).stdout
        assert new_key not in ("", old_key)  # a new host key, made here for the restored VM and learnt
        assert " ".join(new_key.split()[:2]) in (state / "known_hosts").read_text()
        update = run("exec", *r, "v2", "--", "apt-get", "update", env=labenv, check=False)
        assert "127.0.0.1:9" in update.stdout + update.stderr  # the sources really were closed
        # the restored VMs boot their saved disk and kernel, kept in the lab's state (not the VM image)
        info = subprocess.run(["qemu-img", "info", "-U", "--output", "json", str(state / "vms" / "v1" / "disk.qcow2")],
                              capture_output=True, text=True, check=True).stdout  # fmt: skip
        assert json.loads(info)["backing-filename"] == str(state / "vms" / ".images" / "v1" / "disk.qcow2")
        assert len(qemu_processes("it-vm")) == 2
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert_nothing_left("it-vm", "198.18.120.0/24", state, bridges)


def test_ctrl_c_while_vms_boot_then_down(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write(
        tmp_path,
        "it-vm-int",
        "schema: 1\nname: it-vm-int\nprovider: qemu\nnetworks: [{name: n1, subnet: 198.18.121.0/24}]\n"
        "hosts: [{name: v1, networks: [n1]}]\n",
    )
    state = Path(labenv["LABCTL_STATE_DIR"]) / "it-vm-int"
    proc = subprocess.Popen([LABCTL, "up", "-f", str(lab)], env=labenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    bridges: list[str] = []
    try:
        deadline = time.monotonic() + 300  # the VM image may be built first
        while time.monotonic() < deadline and not qemu_processes("it-vm-int"):
            time.sleep(0.2)
        assert qemu_processes("it-vm-int"), "up started no VM within 300 s"
        bridges.append(bridge_of("it-vm-int", "n1"))
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)  # at once, not after the boot
        assert proc.returncode == 130, err
        assert b"labctl down --name it-vm-int" in err
    finally:
        if proc.poll() is None:
            proc.kill()
    run("down", "--name", "it-vm-int", env=labenv)
    assert_nothing_left("it-vm-int", "198.18.121.0/24", state, bridges)


def test_a_vm_that_fails_to_boot_is_named_with_its_console(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write(
        tmp_path,
        "it-vm-fail",
        "schema: 1\nname: it-vm-fail\nprovider: qemu\nnetworks: [{name: n1, subnet: 198.18.122.0/24}]\n"
        "hosts: [{name: v1, networks: [n1], vm: {kernel_args: init=/bin/false}}]\n",
    )
    state = Path(labenv["LABCTL_STATE_DIR"]) / "it-vm-fail"
    try:
        res = run("up", "-f", str(lab), env=labenv, check=False)
        assert res.returncode == 2, res.stdout + res.stderr
        assert "v1: VM 'v1' failed to boot (kernel panic)" in res.stderr
        assert "Its console ends with:" in res.stderr and "Attempted to kill init" in res.stderr
        assert "Traceback" not in res.stderr
        assert qemu_processes("it-vm-fail") == []  # a panicked VM is not left spinning
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert_nothing_left("it-vm-fail", "198.18.122.0/24", state, [])
