"""A VM's first-boot configuration, read by systemd 252 itself: no cloud-init.

The hostname goes on the kernel command line (``systemd.hostname=``). Everything else is one
systemd credential, ``tmpfiles.extra``, passed as an SMBIOS type 11 string
(``io.systemd.credential.binary:``): systemd-tmpfiles writes from it, at every boot, the lab's SSH
key, /etc/hosts, /etc/resolv.conf and one systemd-networkd unit per network, matched by MAC (the
same address->MAC function as containers). No Python runs at boot (cloud-init's start-up costs
seconds under TCG). The VM's ed25519 host key is made on this machine when the VM is (labctl knows it
before the VM ever answers: labctl.access.hostkeys) and goes in the credential too, so the credential is a
secret: it reaches qemu as a file (``-smbios file=``, an SMBIOS type 11 structure, 0600 in the VM's
directory), never on qemu's command line."""

from __future__ import annotations

import base64
import ipaddress
import struct
from dataclasses import dataclass

HOST_KEY = "/etc/ssh/ssh_host_ed25519_key"


@dataclass(frozen=True)
class Nic:
    """One VM network interface: on network `network`, with its tap on `bridge`."""

    network: str
    address: str
    subnet: str
    gateway: str
    mac: str
    tap: str
    bridge: str

    @property
    def prefix(self) -> int:
        return ipaddress.ip_network(self.subnet).prefixlen


def network_unit(nic: Nic, metric: int) -> str:
    """A systemd-networkd unit: a static address and a default route through the network's gateway
    (as podman gives containers: one per network, the first network preferred)."""
    return (
        "[Match]\n"
        f"MACAddress={nic.mac}\n\n"
        "[Network]\n"
        f"Address={nic.address}/{nic.prefix}\n"
        "LinkLocalAddressing=no\n"
        "IPv6AcceptRA=no\n\n"
        "[Route]\n"
        f"Gateway={nic.gateway}\n"
        f"Metric={metric}\n"
    )


def hosts_file(host: str, nics: list[Nic], extra_hosts: dict[str, str]) -> str:
    lines = ["127.0.0.1\tlocalhost", "::1\tlocalhost ip6-localhost ip6-loopback"]
    lines += [f"{nic.address}\t{host}" for nic in nics]
    lines += [f"{addr}\t{name}" for name, addr in extra_hosts.items()]
    return "\n".join(lines) + "\n"


def nameservers(resolv_conf: str, fallback: list[str]) -> list[str]:
    """The host's resolvers a VM can reach (not loopback ones); the fallback when there are none."""
    found = []
    for line in resolv_conf.splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == "nameserver":
            try:
                addr = ipaddress.ip_address(words[1])
            except ValueError:
                continue
            if not addr.is_loopback and addr.version == 4:
                found.append(words[1])
    return found[:3] or fallback


def resolv_file(servers: list[str]) -> str:
    return "".join(f"nameserver {s}\n" for s in servers)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def tmpfiles(files: dict[str, tuple[str, str]]) -> str:
    """tmpfiles.d lines that (re)write each file: path -> (mode, content)."""
    lines = ["d /root/.ssh 0700 root root -"]
    for path, (mode, content) in files.items():
        lines.append(f"f+~ {path} {mode} root root - {_b64(content)}")
    return "\n".join(lines) + "\n"


def first_boot(
    host: str,
    nics: list[Nic],
    extra_hosts: dict[str, str],
    authorized_key: str,
    servers: list[str],
    host_key: tuple[str, str] | None = None,
) -> str:
    """The whole tmpfiles.extra credential of a VM; host_key: (private, public) key text of its SSH host key,
    written at every boot (a key changed inside the VM is put back by a reboot)."""
    files = {
        "/root/.ssh/authorized_keys": ("0600", authorized_key),
        **({HOST_KEY: ("0600", host_key[0]), f"{HOST_KEY}.pub": ("0644", host_key[1])} if host_key else {}),
        "/etc/hosts": ("0644", hosts_file(host, nics, extra_hosts)),
        "/etc/resolv.conf": ("0644", resolv_file(servers)),
    }
    for index, nic in enumerate(nics):
        files[f"/etc/systemd/network/10-labctl-{index}.network"] = ("0644", network_unit(nic, 100 + index))
    return tmpfiles(files)


def smbios_credential(name: str, content: str) -> str:
    """The -smbios argument that hands systemd a credential (base64: no commas, no newlines)."""
    return f"type=11,value=io.systemd.credential.binary:{name}={_b64(content)}"


def smbios_structure(name: str, content: str) -> bytes:
    """The same credential as an SMBIOS type 11 (OEM strings) structure, for ``-smbios file=``: a 5-byte header
    (type 11, length 5, handle 0, one string), the string, and the double NUL that ends the string set."""
    string = f"io.systemd.credential.binary:{name}={_b64(content)}".encode()
    return struct.pack("<BBHB", 11, 5, 0, 1) + string + b"\0\0"


def kernel_cmdline(host: str, extra: str = "") -> str:
    parts = ["root=/dev/vda", "rw", "console=ttyS0", "net.ifnames=0", "quiet", f"systemd.hostname={host}"]
    return " ".join(parts + ([extra] if extra else []))
