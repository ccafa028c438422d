"""A VM's first-boot configuration: what systemd-tmpfiles and systemd-networkd will read."""

from __future__ import annotations

import base64

from labctl.providers.qemu.vmconfig import (
    Nic,
    first_boot,
    hosts_file,
    kernel_cmdline,
    nameservers,
    network_unit,
    smbios_credential,
)

NIC0 = Nic("outside", "198.18.1.10", "198.18.1.0/24", "198.18.1.1", "02:4c:c6:12:01:0a", "lqabc0", "podman3")
NIC1 = Nic("inside", "198.18.2.254", "198.18.2.0/24", "198.18.2.1", "02:4c:c6:12:02:fe", "lqabc1", "podman4")


def decoded(tmpfiles: str) -> dict[str, tuple[str, str]]:
    """path -> (mode, content) of the f+~ lines."""
    out = {}
    for line in tmpfiles.splitlines():
        kind, path, mode, _user, _group, _age, *arg = line.split(" ")
        if kind == "f+~":
            out[path] = (mode, base64.b64decode(arg[0]).decode())
    return out


def test_network_unit_matches_the_mac_and_routes_through_the_gateway() -> None:
    unit = network_unit(NIC1, 101)
    assert "MACAddress=02:4c:c6:12:02:fe" in unit
    assert "Address=198.18.2.254/24" in unit
    assert "Gateway=198.18.2.1" in unit
    assert "Metric=101" in unit


def test_hosts_file_has_the_host_and_its_peers() -> None:
    text = hosts_file("gw", [NIC0, NIC1], {"db": "198.18.2.11"})
    assert "198.18.1.10\tgw" in text
    assert "198.18.2.254\tgw" in text
    assert "198.18.2.11\tdb" in text
    assert text.startswith("127.0.0.1\tlocalhost\n")


def test_nameservers_skip_loopback_and_fall_back() -> None:
    assert nameservers("nameserver 127.0.0.53\nsearch x\n", ["198.18.1.1"]) == ["198.18.1.1"]
    assert nameservers("nameserver 10.255.255.53\nnameserver ::1\nnameserver 9.9.9.9\n", []) == [
        "10.255.255.53",
        "9.9.9.9",
    ]


def test_first_boot_writes_key_hosts_resolver_and_one_unit_per_network() -> None:
    text = first_boot("gw", [NIC0, NIC1], {"db": "198.18.2.11"}, "ssh-ed25519 AAAA lab\n", ["10.0.0.53"])
    assert text.splitlines()[0] == "d /root/.ssh 0700 root root -"
    files = decoded(text)
    assert files["/root/.ssh/authorized_keys"] == ("0600", "ssh-ed25519 AAAA lab\n")
    assert files["/etc/resolv.conf"][1] == "nameserver 10.0.0.53\n"
    assert "198.18.2.11\tdb" in files["/etc/hosts"][1]
    assert "MACAddress=02:4c:c6:12:01:0a" in files["/etc/systemd/network/10-labctl-0.network"][1]
    assert "Metric=101" in files["/etc/systemd/network/10-labctl-1.network"][1]


def test_the_credential_is_one_qemu_option_value() -> None:
    arg = smbios_credential("tmpfiles.extra", "a,b\nc\n")
    assert arg.startswith("type=11,value=io.systemd.credential.binary:tmpfiles.extra=")
    payload = arg.split("=", 3)[3]
    assert "," not in payload and "\n" not in payload
    assert base64.b64decode(payload) == b"a,b\nc\n"


def test_kernel_cmdline_names_the_host_and_keeps_extra_arguments() -> None:
    line = kernel_cmdline("v1", "loglevel=7")
    assert "systemd.hostname=v1" in line.split()
    assert line.endswith("loglevel=7")
    assert "console=ttyS0" in line.split()
