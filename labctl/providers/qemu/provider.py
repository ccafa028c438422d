"""QEMU provider: every host is a virtual machine (KVM where the CPU has it, TCG otherwise).

A VM boots the VM image's kernel directly (``-kernel``/``-initrd``, root on virtio) from a qcow2
overlay of the image's disk. The host has no systemd as PID 1, so qemu runs daemonized, with its
pidfile, QMP socket, serial console (socket + log) and disk in the lab's state directory
(``vms/<host>/``); ``stop`` asks for an ACPI power-down over QMP and kills after a bounded wait.
Each VM has one tap per network on that network's podman bridge (see vmnet), so VMs and
containers share L2 segments and addresses. First-boot configuration: see vmconfig.

Every qemu process carries ``-fw_cfg name=opt/labctl/id,string=<lab>/<host>`` (its label), is named
``labctl-<lab>_<host>`` like a container, and every link carries an alias naming the lab:
``destroy_lab`` finds them all even when the state is gone. Lab and host names are proven valid
(``bridge.checked``) before they go into any command, path, rule or process match.

The lab's SSH key goes in at first boot, in the credential. A new key (the lab's key was lost and
``up`` made another) reaches a VM by a reboot with a new credential (tmpfiles rewrites
authorized_keys at every boot). A VM whose own state (disk overlay, sockets) was lost with the lab's
state directory cannot be repaired: ``authorize`` says it must be recreated.

The VM's SSH host key is made here at create (``ssh_host_ed25519_key`` in the VM's directory, 0600) and
written by the credential at every boot: labctl knows it before the VM answers (``host_keys``), and a key
changed inside the VM is put back by a restart. The credential therefore reaches qemu as a 0600 file
(``credential.smbios``), not on its command line (readable by every user in /proc)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from labctl.access import kernellog
from labctl.errors import LabError
from labctl.providers.base import (
    Fail,
    HostInfo,
    HostSpec,
    HostState,
    NetworkSpec,
    Provider,
    Say,
    check_keys,
    mapping,
    register,
)
from labctl.providers.bridge import SET_ASIDE, Bridges, checked, container_name, mac_address, network_name
from labctl.providers.qemu import qmp, vmimage, vmnet, vmsave
from labctl.providers.qemu.accel import Accel, detect
from labctl.providers.qemu.vmconfig import Nic, first_boot, kernel_cmdline, nameservers, smbios_structure
from labctl.state import LabState, remove_inside_root, write_atomic

if TYPE_CHECKING:
    from labctl.access.remote import Runner

QEMU = "qemu-system-x86_64"
QBOOT = Path("/usr/share/qemu/qboot.rom")  # minimal firmware for direct kernel boot: faster than SeaBIOS
DEFAULT_CPUS = 1
DEFAULT_MEMORY = 512  # MiB
MIN_MEMORY = 256
OVERHEAD_MB = {"tcg": 110, "kvm": 40}  # qemu itself (+ the TCG translation cache) per VM
BOOT_TIMEOUT = {"tcg": 420.0, "kvm": 120.0}
STOP_TIMEOUT = 30.0
PANIC = "Kernel panic - not syncing"
ID_PREFIX = "name=opt/labctl/id,string="
CREDENTIAL_FILE = "credential.smbios"  # the first-boot credential as qemu reads it (holds the private host key)
HOST_KEY_FILE = "ssh_host_ed25519_key"  # the VM's SSH host key, made on this machine (+ .pub)


def make_host_key(directory: Path, lab: str, host: str) -> None:
    """Generate the VM's ed25519 host key pair into its directory (0600), once."""
    key = directory / HOST_KEY_FILE
    if key.exists() and key.with_suffix(".pub").exists():
        return
    for path in (key, key.with_suffix(".pub")):
        path.unlink(missing_ok=True)
    result = subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{host}", "-f", str(key)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise LabError(
            f"ssh-keygen could not make VM {host!r}'s host key: {result.stderr.strip()}. Fix: install openssh-client."
        )
    os.chmod(key, 0o600)


def host_key(directory: Path) -> tuple[str, str] | None:
    """The VM's host key pair (private, public text) from its directory; None for a VM made by an older labctl."""
    key = directory / HOST_KEY_FILE
    try:
        return key.read_text(), key.with_suffix(".pub").read_text()
    except FileNotFoundError:
        return None


def vms_dir(lab: str) -> Path:
    return LabState(checked(lab)).dir / "vms"


def vm_dir(lab: str, host: str) -> Path:
    container_name(lab, host)  # proves both names valid: the host part of the path is a plain name
    return vms_dir(lab) / host


def boot_timeout(text: str | None, default: float) -> float:
    """LABCTL_VM_BOOT_TIMEOUT's seconds (default when unset); one LabError when it is no number above 0."""
    if text is None or text == "":
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise LabError(
            f"LABCTL_VM_BOOT_TIMEOUT={text!r} is not a number of seconds above 0. "
            f"Fix: set it to the seconds a VM may take to boot (e.g. {default:g}), or unset it."
        )
    return value


@dataclass
class VmConfig:
    """What a VM is made of; written at create, read by every start."""

    lab: str
    host: str
    cpus: int
    memory: int
    kernel_args: str
    image: str  # the VM image directory its disk is an overlay of
    nics: list[Nic] = field(default_factory=list)
    credential: str = ""  # tmpfiles.extra content
    accelerator: str = ""  # set at each start
    pubkey: str = ""  # the lab key the credential holds
    servers: list[str] = field(default_factory=list)  # resolvers the credential names
    extra_hosts: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, directory: Path) -> VmConfig:
        data = json.loads((directory / "vm.json").read_text())
        data["nics"] = [Nic(**n) for n in data.get("nics", [])]
        return cls(**data)

    def save(self, directory: Path) -> None:
        write_atomic(directory / "vm.json", json.dumps(asdict(self), indent=2) + "\n", 0o600)


def options(spec: HostSpec) -> tuple[int, int, str]:
    """cpus, memory (MiB) and extra kernel arguments from the host's `vm:` settings, checked."""
    where = f"hosts.{spec.name}.vm"
    opts = spec.options or {}
    cpus, memory, extra = (
        opts.get("cpus", DEFAULT_CPUS),
        opts.get("memory", DEFAULT_MEMORY),
        opts.get("kernel_args", ""),
    )
    if not isinstance(cpus, int) or isinstance(cpus, bool) or not 1 <= cpus <= 64:
        raise LabError(f"field '{where}.cpus': expected a whole number of vCPUs from 1 to 64. Fix: e.g. cpus: 1.")
    if not isinstance(memory, int) or isinstance(memory, bool) or memory < MIN_MEMORY:
        raise LabError(
            f"field '{where}.memory': expected MiB as a whole number, at least {MIN_MEMORY}. Fix: e.g. memory: 512."
        )
    if not isinstance(extra, str):
        raise LabError(f"field '{where}.kernel_args': expected a string. Fix: e.g. kernel_args: 'loglevel=7'.")
    return cpus, memory, extra


def saved_image(spec: HostSpec) -> vmimage.VmImage | None:
    """The saved disk a restored VM is made from (its HostSpec's image: the directory import_hosts
    returned), or None for a VM of the VM image."""
    if not spec.image or not spec.image.startswith("/"):
        return None
    img = vmimage.VmImage(Path(spec.image), f"{spec.image} (the saved disk of VM {spec.name!r})")
    if not img.ready():
        raise LabError(
            f"VM {spec.name!r}: its saved disk {spec.image} is gone. Fix: 'labctl down --name {spec.lab}', "
            "then restore the lab again with 'labctl up --from ARCHIVE'."
        )
    return img


def mem_available_mb(meminfo: str) -> int:
    for line in meminfo.splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) // 1024
    return 0


def check_memory(needs: dict[str, int], available: int, accel: str) -> None:
    """Preflight: the VMs about to start must fit in the host's available memory."""
    overhead = OVERHEAD_MB.get(accel, 100)
    total = sum(mb + overhead for mb in needs.values())
    if needs and total > available:
        each = ", ".join(f"{h} {mb} MiB" for h, mb in needs.items())
        raise LabError(
            f"not enough memory for {len(needs)} VM(s): they need {total} MiB ({each}, plus {overhead} MiB of "
            f"qemu per VM) and this host has {available} MiB available. Fix: lower 'vm: {{memory: ...}}' of "
            "some hosts, run fewer VMs (provider: podman for some hosts), or free memory."
        )


def qemu_argv(cfg: VmConfig, accel: Accel, img: vmimage.VmImage) -> list[str]:
    """The qemu command line of a VM (run with the VM's directory as working directory)."""
    argv = [QEMU, "-name", f"guest={container_name(cfg.lab, cfg.host)},process=qemu-{cfg.host}"[:200]]
    argv += ["-machine", "pc", *accel.args, "-smp", str(cfg.cpus), "-m", str(cfg.memory)]
    argv += ["-nodefaults", "-no-user-config", "-vga", "none", "-display", "none"]
    if QBOOT.exists():
        argv += ["-bios", str(QBOOT)]
    argv += ["-kernel", str(img.kernel), "-initrd", str(img.initrd)]
    argv += ["-append", kernel_cmdline(cfg.host, cfg.kernel_args)]
    argv += ["-drive", "file=disk.qcow2,if=virtio,format=qcow2,discard=unmap"]
    for i, nic in enumerate(cfg.nics):
        argv += ["-netdev", f"tap,id=n{i},ifname={nic.tap},script=no,downscript=no"]
        argv += ["-device", f"virtio-net-pci,netdev=n{i},mac={nic.mac},romfile="]
    argv += ["-chardev", "socket,id=serial0,path=console.sock,server=on,wait=off,logfile=console.log,logappend=on"]
    argv += ["-serial", "chardev:serial0", "-qmp", "unix:qmp.sock,server=on,wait=off"]
    argv += ["-smbios", f"file={CREDENTIAL_FILE}"]
    argv += ["-fw_cfg", f"{ID_PREFIX}{checked(cfg.lab)}/{cfg.host}"]
    argv += ["-device", "virtio-balloon-pci,free-page-reporting=on", "-device", "virtio-rng-pci"]
    argv += ["-pidfile", "qemu.pid", "-daemonize"]
    return argv


def _cmdline(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace").split("\0")
    except OSError:
        return []


def _vm_id(pid: int) -> str | None:
    """lab/host of a labctl qemu process (None for any other process)."""
    args = _cmdline(pid)
    if not args or "qemu-system" not in Path(args[0]).name:
        return None
    for arg in args:
        if arg.startswith(ID_PREFIX):
            return arg.removeprefix(ID_PREFIX)
    return None


def lab_processes(lab: str | None = None) -> dict[int, str]:
    """Running labctl qemu processes of a lab (None: of every lab): pid -> host (lab/host for every lab)."""
    if lab is not None:
        checked(lab)
    out = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            vm = _vm_id(int(proc.name))
            if vm and lab is None:
                out[int(proc.name)] = vm
            elif vm and vm.split("/", 1)[0] == lab:
                out[int(proc.name)] = vm.split("/", 1)[1]
    return out


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _wait_exit(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)
    return not _alive(pid)


def _kill(pid: int) -> None:
    """SIGTERM (qemu quits at once), then SIGKILL if it lingers."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, 5.0):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)


def console_tail(directory: Path, offset: int = 0, lines: int = 15) -> str:
    try:
        with open(directory / "console.log", "rb") as handle:
            handle.seek(offset)
            text = handle.read().decode(errors="replace")
    except OSError:
        return "(no console output)"
    text = text.replace("\r", "")
    tail = [line for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(tail) if tail else "(no console output)"


def _ssh_banner(address: str) -> bool:
    try:
        with socket.create_connection((address, 22), timeout=2) as sock:
            sock.settimeout(3)
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@register("qemu")
class QemuProvider(Provider):
    name = "qemu"
    host_kind = "vm"  # what the manifest of a saved lab says its hosts are
    teardown_rank = -1  # down: VMs (and their taps) go before the containers on the same bridges
    host_settings: ClassVar[frozenset[str]] = frozenset({"vm"})
    kernel_log = kernellog.OWN  # a kernel of its own: netfilter LOG lines land in the VM's journal
    reads_host_keys = True  # labctl made the key at create and wrote it into the VM's credential

    @classmethod
    def parse_host_options(cls, item: dict[str, Any], where: str, fail: Fail) -> dict[str, Any]:
        """`vm: {cpus, memory, kernel_args}`: the VM's sizes."""
        if "vm" not in item:
            return {}
        where = f"{where}.vm"
        vm = mapping(item["vm"], where, fail)
        check_keys(vm, where, {"cpus", "memory", "kernel_args"}, fail)
        cpus, memory = vm.get("cpus", 1), vm.get("memory", 512)
        if not isinstance(cpus, int) or isinstance(cpus, bool) or not 1 <= cpus <= 64:
            raise fail(f"{where}.cpus", f"{cpus!r} is not a number of vCPUs", "give a whole number from 1 to 64")
        if not isinstance(memory, int) or isinstance(memory, bool) or not 256 <= memory <= 1048576:
            raise fail(f"{where}.memory", f"{memory!r} is not a memory size", "give MiB as a whole number, >= 256")
        if not isinstance(vm.get("kernel_args", ""), str):
            raise fail(f"{where}.kernel_args", "expected a string", "write extra kernel arguments as one string")
        return {"vm": dict(vm)}

    @classmethod
    def refuse_host_options(cls, item: dict[str, Any], provider: str, where: str, fail: Fail) -> None:
        if "vm" in item:
            raise fail(
                f"{where}.vm",
                f"provider {provider!r} runs no virtual machines",
                "remove 'vm:' or give the host 'provider: qemu'",
            )

    def __init__(self) -> None:
        self._bridges = Bridges()

    # -- lab-wide -------------------------------------------------------------------------------
    def prepare(self, hosts: list[HostSpec], say: Say) -> None:
        """Check qemu and memory, say which accelerator VMs get and why, build the VM image if missing."""
        if not hosts:
            return
        if shutil.which(QEMU) is None:
            raise LabError(
                f"qemu is not installed ({QEMU} not found). "
                "Fix: apt-get install qemu-system-x86 qemu-utils (./setup.sh does)."
            )
        sizes = {spec.name: options(spec) for spec in hosts}
        accel = detect()
        boot_timeout(os.environ.get("LABCTL_VM_BOOT_TIMEOUT"), BOOT_TIMEOUT[accel.name])  # checked before any VM
        say(f"VMs run on {accel.name.upper()}: {accel.reason}")
        running = {h for h, info in self.list(hosts[0].lab).items() if info.state == HostState.RUNNING}
        needs = {h: mem for h, (_cpus, mem, _args) in sizes.items() if h not in running}
        check_memory(needs, mem_available_mb(Path("/proc/meminfo").read_text()), accel.name)
        if any(saved_image(spec) is None for spec in hosts):  # restored VMs boot their own saved disk
            vmimage.build(say)

    def create_network(self, spec: NetworkSpec) -> None:
        """The podman network (as for containers), its bridge, and NAT for when no container is on it."""
        self._bridges.create_network(spec)
        bridge = vmnet.inspect(network_name(spec.lab, spec.name))
        vmnet.ensure_bridge(bridge, spec.lab, spec.name)
        vmnet.add_nat(spec.lab, bridge.subnet)

    def link_networks(self, lab: str, subnets: list[str]) -> None:
        self._bridges.link_networks(lab, subnets)

    def networks(self, lab: str | None = None) -> dict[str, dict[str, str]]:
        return self._bridges.networks(lab)

    # -- one host -------------------------------------------------------------------------------
    def create(self, spec: HostSpec) -> None:
        cpus, memory, extra = options(spec)
        img = saved_image(spec) or vmimage.current()
        if not img.ready():
            raise LabError(f"the VM image {img.tag} is missing. Fix: run 'labctl image build --vm'.")
        directory = vm_dir(spec.lab, spec.name)
        if directory.exists():
            self.destroy(spec.lab, spec.name)
        directory.mkdir(parents=True, mode=0o700)
        result = subprocess.run(
            [
                "qemu-img",
                "create",
                "-q",
                "-f",
                "qcow2",
                "-b",
                str(img.disk),
                "-F",
                "qcow2",
                str(directory / "disk.qcow2"),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LabError(f"qemu-img could not make the disk of VM {spec.name!r}: {result.stderr.strip()}")
        nics = []
        for index, (net, addr) in enumerate(spec.networks.items()):
            bridge = vmnet.inspect(network_name(spec.lab, net))
            tap = vmnet.tap_name(spec.lab, spec.name, index)
            nics.append(Nic(net, addr, bridge.subnet, bridge.gateway, mac_address(addr), tap, bridge.name))
            self._plug(spec.lab, spec.name, nics[-1])
        # As for containers: the network's gateway first (podman's DNS there knows the lab's
        # containers, even those added later; without a container nothing listens and the resolver
        # moves on at once), then the host's own resolvers.
        upstream = nameservers(_read("/etc/resolv.conf"), []) or nameservers(
            _read("/run/systemd/resolve/resolv.conf"), []
        )
        servers = [nics[0].gateway, *upstream][:3]
        pubkey = _read(str(LabState(spec.lab).pubkey))
        make_host_key(directory, spec.lab, spec.name)
        credential = first_boot(spec.name, nics, spec.extra_hosts, pubkey, servers, host_key(directory))
        cfg = VmConfig(spec.lab, spec.name, cpus, memory, extra, str(img.dir), nics, credential)
        cfg.pubkey, cfg.servers, cfg.extra_hosts = pubkey, servers, dict(spec.extra_hosts)
        cfg.save(directory)

    def authorize(self, lab: str, host: str, pubkey: str) -> None:
        """Make pubkey the key root accepts. A VM made by this lab's `up` has it from its first boot;
        a new key (the lab's key was lost) goes into the credential and the VM reboots, so tmpfiles
        writes it. No SSH is needed, as with containers (podman exec)."""
        directory = vm_dir(lab, host)
        if not (directory / "vm.json").exists():
            raise LabError(
                f"VM {host!r} of lab {lab!r} still runs, but its disk overlay, control socket and first-boot "
                f"configuration were lost with the lab's state directory, so labctl can neither give it the "
                f"lab's new SSH key nor manage it. Fix: recreate it: 'labctl down --name {lab}' "
                "(stops the VM and removes what is left), then 'labctl up' again."
            )
        cfg = VmConfig.load(directory)
        if cfg.pubkey.strip() == pubkey.strip():
            return
        cfg.pubkey = pubkey
        cfg.credential = first_boot(
            host, cfg.nics, cfg.extra_hosts, pubkey, cfg.servers or [cfg.nics[0].gateway], host_key(directory)
        )
        cfg.save(directory)
        if self._pid(lab, host):
            self.stop(lab, host)
            self.start(lab, host)

    def host_keys(self, lab: str, host: str) -> str:
        """The public host key labctl made for the VM (in its credential), without asking the VM."""
        pair = host_key(vm_dir(lab, host))
        if pair is None:
            raise LabError(
                f"VM {host!r} of lab {lab!r} was made without a host key of labctl's (an older labctl, or its "
                f"directory was lost). Fix: re-create it: 'labctl down --name {lab}', then 'labctl up'."
            )
        return pair[1]

    def _plug(self, lab: str, host: str, nic: Nic) -> None:
        vmnet.ensure_bridge(vmnet.Bridge(nic.bridge, nic.subnet, nic.gateway), lab, nic.network)
        vmnet.create_tap(nic.tap, nic.bridge, vmnet.lab_alias(lab, host=host, net=nic.network))

    def start(self, lab: str, host: str) -> None:
        """Boot the VM and wait until its SSH server answers (or say why it did not, from its console)."""
        directory = vm_dir(lab, host)
        cfg = self._config(lab, host)
        if self._pid(lab, host):
            return
        img = vmimage.VmImage(Path(cfg.image), "")
        if not img.ready():
            raise LabError(
                f"VM {host!r}: its image {cfg.image} is gone. Fix: 'labctl down' and 'labctl up' the lab again."
            )
        for nic in cfg.nics:
            if not vmnet.exists(nic.tap) or vmnet.master(nic.tap) != nic.bridge:
                self._plug(lab, host, nic)
        for sock in ("qmp.sock", "console.sock"):
            (directory / sock).unlink(missing_ok=True)
        accel = detect()
        cfg.accelerator = accel.name
        cfg.save(directory)
        _write_bytes(directory / CREDENTIAL_FILE, smbios_structure("tmpfiles.extra", cfg.credential))
        log = directory / "console.log"
        offset = log.stat().st_size if log.exists() else 0
        try:
            result = subprocess.run(
                qemu_argv(cfg, accel, img), cwd=directory, capture_output=True, text=True, check=False, timeout=120
            )
        except FileNotFoundError:
            raise LabError(f"qemu is not installed ({QEMU} not found). Fix: run ./setup.sh.") from None
        if result.returncode != 0:
            raise LabError(f"qemu could not start VM {host!r}: {result.stderr.strip() or result.stdout.strip()}")
        self._wait_boot(lab, host, cfg, accel, offset)

    def _wait_boot(self, lab: str, host: str, cfg: VmConfig, accel: Accel, offset: int) -> None:
        directory = vm_dir(lab, host)
        timeout = boot_timeout(os.environ.get("LABCTL_VM_BOOT_TIMEOUT"), BOOT_TIMEOUT[accel.name])
        address = cfg.nics[0].address
        deadline = time.monotonic() + timeout
        while True:
            pid = self._pid(lab, host)
            if pid is None:
                raise LabError(
                    f"VM {host!r} stopped while booting. Its console ends with:\n{console_tail(directory, offset)}"
                )
            if PANIC in console_tail(directory, offset, lines=40):
                _kill(pid)
                raise LabError(
                    f"VM {host!r} failed to boot (kernel panic). Its console ends with:\n"
                    f"{console_tail(directory, offset)}\nFix: check 'vm: kernel_args' of {host!r}; "
                    f"'labctl console {host}' shows the whole log."
                )
            if _ssh_banner(address):
                return
            if time.monotonic() > deadline:
                raise LabError(
                    f"VM {host!r} did not answer on SSH ({address}) within {timeout:.0f} s on {accel.name.upper()}. "
                    f"Its console ends with:\n{console_tail(directory, offset)}\n"
                    f"Fix: see 'labctl console {host}'; on a slow or busy host set LABCTL_VM_BOOT_TIMEOUT."
                )
            time.sleep(1.0)

    def stop(self, lab: str, host: str) -> None:
        """ACPI power-down over QMP; kill after STOP_TIMEOUT seconds."""
        pid = self._pid(lab, host)
        if pid is None:
            return
        try:
            qmp.command(vm_dir(lab, host), "system_powerdown")
        except (LabError, OSError):
            _kill(pid)  # no control socket: nothing to ask politely
            return
        if not _wait_exit(pid, STOP_TIMEOUT):
            _kill(pid)

    def destroy(self, lab: str, host: str) -> None:
        for pid, name in lab_processes(lab).items():
            if name == host:
                _kill(pid)
        directory = vm_dir(lab, host)
        bridges = set()
        for link, text in vmnet.lab_links(lab).items():
            if f" host={host} " in f"{text} ":
                bridges.add(vmnet.master(link))
                vmnet.delete_link(link)
        for bridge in bridges - {None}:
            assert bridge is not None
            vmnet.remove_if_unused(bridge)
        if directory.exists():
            remove_inside_root(directory)

    def destroy_lab(self, lab: str) -> list[str]:
        """Every VM process, tap, labctl-made bridge and NAT rule of the lab, and the VMs' state."""
        removed = []
        checked(lab)
        for pid, host in lab_processes(lab).items():
            _kill(pid)
            removed.append(f"vm {host} (pid {pid})")
        links = vmnet.lab_links(lab)
        bridges = {vmnet.master(link) for link, text in links.items() if " host=" in text}
        bridges |= {link for link, text in links.items() if " kind=bridge" in text}
        for link, text in links.items():
            if " host=" in text and vmnet.delete_link(link):
                removed.append(f"tap {link}")
        for bridge in sorted(b for b in bridges if b):
            if vmnet.remove_if_unused(bridge):
                removed.append(f"bridge {bridge}")
        if vmnet.remove_nat(lab):
            removed.append("VM NAT rules")
        if vms_dir(lab).exists():
            removed += [f"vm disk {d.name}" for d in vms_dir(lab).iterdir() if (d / "disk.qcow2").exists()]
            saved = vms_dir(lab) / vmsave.IMAGES
            removed += [f"restored vm disk {d.name}" for d in sorted(saved.iterdir())] if saved.is_dir() else []
            remove_inside_root(vms_dir(lab))
        return removed

    def check_names(self, lab: str, hosts: list[str], networks: list[str]) -> None:
        """VMs are found by their lab/host label, which no other lab can hold; the networks are podman's."""
        for host in hosts:
            container_name(lab, host)
        self._bridges.check_names(lab, [], networks)

    def remains(self, lab: str) -> list[str]:
        """Taps, bridges and NAT rules labctl made for the lab's VMs, and their disks and sockets."""
        left = []
        links = vmnet.lab_links(checked(lab))
        taps = sorted(link for link, text in links.items() if " host=" in text)
        bridges = sorted(link for link, text in links.items() if " kind=bridge" in text)
        if taps:
            left.append(f"{len(taps)} VM tap(s) ({', '.join(taps)})")
        if bridges:
            left.append(f"{len(bridges)} bridge(s) labctl made ({', '.join(bridges)})")
        if vmnet.nat_rules(lab):
            left.append(f"{len(vmnet.nat_rules(lab))} VM NAT rule(s) (comment {vmnet.COMMENT}={lab})")
        if vms_dir(lab).is_dir():
            disks = sorted(d.name for d in vms_dir(lab).iterdir() if d.is_dir() and d.name != vmsave.IMAGES)
            if (vms_dir(lab) / vmsave.IMAGES).is_dir():
                left.append(f"the restored VM disks in {vms_dir(lab) / vmsave.IMAGES}")
            if disks:
                left.append(f"the disks and sockets of VM(s) {', '.join(disks)} in {vms_dir(lab)}")
        return left

    def labs(self) -> dict[str, dict[str, list[str]]]:
        """Every lab with running VMs, found by the qemu processes' labels alone (networks: podman's)."""
        out: dict[str, dict[str, list[str]]] = {}
        for ident in lab_processes().values():
            lab, _, host = ident.partition("/")
            out.setdefault(lab, {"hosts": [], "networks": []})["hosts"].append(host)
        return out

    def reserved(self) -> list[tuple[str, str]]:
        return self._bridges.reserved()

    def console(self, lab: str, host: str, lines: int = 15) -> str:
        """The last lines of the VM's serial console."""
        return console_tail(vm_dir(lab, host), lines=lines)

    def exit_code(self, lab: str, host: str) -> int | None:
        return None  # a VM has no exit code; its console says why it stopped

    def address(self, spec: HostSpec) -> str:
        return next(iter(spec.networks.values()))

    def image_info(self, hosts: list[HostSpec]) -> dict[str, str]:
        """The VM image the hosts boot from (tag with its recipe hash; its disk's digest is not taken)."""
        if not hosts:
            return {}
        img = vmimage.current()
        return {"tag": f"vm:{img.tag}", "recipe_hash": vmimage.recipe_hash(), "id": ""}

    def export_hosts(
        self, lab: str, hosts: list[str], dest: Path, secrets: bool = False, runner: Runner | None = None
    ) -> dict[str, str]:
        """Each running VM's disk, flattened, with the kernel and initrd it boots, into dest/vm-<host>/;
        its host keys (and, unless secrets, the secret files roles list) set aside over SSH: see vmsave."""
        if runner is None:
            raise LabError(f"lab {lab!r}: saving VMs needs SSH to them. Fix: save through 'labctl save'.")
        out: dict[str, str] = {}
        shared: dict[str, Path] = {}  # image directory -> the first saved VM booting its kernel
        for host in hosts:
            cfg = self._config(lab, host)
            if self._pid(lab, host) is None:
                raise LabError(
                    f"save: VM {host!r} of lab {lab!r} is not running, so its host keys cannot be set aside. "
                    "Fix: 'labctl up' the lab, then save it."
                )
            img = vmimage.VmImage(Path(cfg.image), "")
            entry = vmsave.entry_name(host)
            script = SET_ASIDE.read_text()
            vmsave.export_vm(runner, host, vm_dir(lab, host), img, dest / entry, script, secrets, shared.get(cfg.image))
            shared.setdefault(cfg.image, dest / entry)
            out[host] = entry
        return out

    def check_import(self, lab: str, files: dict[str, str], src: Path) -> None:
        """Every saved VM complete, its disk a self-contained qcow2 (vmsave.check_saved), before any is moved."""
        for host, entry in files.items():
            vmsave.checked_entry(host, entry)
            vmsave.check_saved(host, src / entry)

    def undo_import(self, lab: str, images: dict[str, str]) -> None:
        """Remove the saved disks import_hosts moved into the lab's state (vms/.images/<host>) and only those."""
        for host in images:
            target = vms_dir(lab) / vmsave.IMAGES / host
            if target.exists():
                remove_inside_root(target)

    def import_hosts(self, lab: str, files: dict[str, str], src: Path) -> dict[str, str]:
        """Check each saved VM (all parts there, a sound flattened qcow2) and move it into the lab's state
        (vms/.images/<host>, removed by destroy_lab); returns host -> that directory, the image a HostSpec
        names: create() makes the VM's overlay on its disk and boots its kernel."""
        self.check_import(lab, files, src)
        out: dict[str, str] = {}
        try:
            for host, entry in files.items():
                img = vmsave.import_vm(host, src / entry, vms_dir(lab) / vmsave.IMAGES)
                out[host] = str(img.dir)
        except BaseException:
            self.undo_import(lab, out)
            raise
        return out

    def list(self, lab: str, hosts: list[HostSpec] | None = None) -> dict[str, HostInfo]:
        out: dict[str, HostInfo] = {}
        root = vms_dir(lab)
        for directory in sorted(root.iterdir()) if root.is_dir() else []:
            if not (directory / "vm.json").exists():
                continue
            cfg = VmConfig.load(directory)
            pid = self._pid(lab, cfg.host)
            details = {"accelerator": cfg.accelerator or "-", "cpus": str(cfg.cpus), "memory": f"{cfg.memory} MiB"}
            out[cfg.host] = HostInfo(cfg.host, HostState.RUNNING if pid else HostState.STOPPED, str(pid or ""), details)
        for pid, host in lab_processes(lab).items():  # still running, but its state is gone
            out.setdefault(
                host, HostInfo(host, HostState.RUNNING, str(pid), {"accelerator": "-", "problem": "state lost"})
            )
        return out

    def show_console(self, lab: str, host: str, interactive: bool) -> int:
        """The serial console: its log, or (on a terminal) the console itself."""
        directory = vm_dir(lab, host)
        if not (directory / "vm.json").exists():
            raise LabError(f"console: VM {host!r} of lab {lab!r} does not exist. Fix: 'labctl up' the lab.")
        if interactive and self._pid(lab, host):
            from labctl.providers.qemu import console

            return console.attach(directory, "console.sock", host)
        sys.stdout.write(
            (directory / "console.log").read_text(errors="replace") if (directory / "console.log").exists() else ""
        )
        return 0

    # -- helpers --------------------------------------------------------------------------------
    def _config(self, lab: str, host: str) -> VmConfig:
        directory = vm_dir(lab, host)
        if not (directory / "vm.json").exists():
            raise LabError(f"VM {host!r} of lab {lab!r} does not exist. Fix: 'labctl up' the lab.")
        return VmConfig.load(directory)

    def _pid(self, lab: str, host: str) -> int | None:
        """The VM's qemu pid if it runs (its pidfile, checked against the process's identity)."""
        try:
            pid = int((vm_dir(lab, host) / "qemu.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if _alive(pid) and _vm_id(pid) == f"{lab}/{host}" else None


def _write_bytes(path: Path, data: bytes) -> None:
    """Write a 0600 file atomically (the credential: it holds the VM's private host key)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""
