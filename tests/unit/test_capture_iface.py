"""Pure parts of capture and HOST[:NETWORK|IFACE]: the remote script, pcap counting, address lookup."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.netops import capture, hostiface

IP_ADDR = """1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever preferred_lft forever
2: eth0@if7    inet 198.18.1.10/24 brd 198.18.1.255 scope global eth0\\       valid_lft forever
3: eth1@if9    inet 198.18.2.254/24 brd 198.18.2.255 scope global eth1\\       valid_lft forever
"""


def test_the_interface_is_found_by_the_lab_address() -> None:
    assert hostiface.iface_of_address(IP_ADDR, "198.18.2.254") == "eth1"
    assert hostiface.iface_of_address(IP_ADDR, "198.18.1.10") == "eth0"
    assert hostiface.iface_of_address(IP_ADDR, "198.18.1.1") is None


@pytest.mark.parametrize("text", ["", ":eth0", "gw:"])
def test_a_bad_target_names_the_form(text: str) -> None:
    with pytest.raises(LabError, match=r"is not HOST\[:NETWORK\|IFACE\]. Fix: e.g. capture gw:outside"):
        hostiface.parse_target(text, "capture")


def test_the_remote_script_is_valid_sh_and_quotes_the_filter() -> None:
    script = capture.remote_script("gw", "eth0", True, 5, ["tcp", "port", "80", "and", "host", "1.2.3.4;x"])
    assert "tcpdump -i eth0 -n --immediate-mode -U -w - -c 5 tcp port 80 and host '1.2.3.4;x' </dev/null &" in script
    assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0
    text = capture.remote_script("gw", "any", False, None, [])
    assert "-l" in text.split() and "-w" not in text.split()


def _pcap(path: Path, sizes: list[int], cut: int = 0) -> Path:
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for n in sizes:
        data += struct.pack("<IIII", 1, 2, n, n) + b"x" * n
    path.write_bytes(data[: len(data) - cut] if cut else data)
    return path


def test_packets_are_counted_and_a_cut_record_is_not(tmp_path: Path) -> None:
    assert capture.count_packets(_pcap(tmp_path / "a.pcap", [60, 1500, 42])) == 3
    assert capture.count_packets(_pcap(tmp_path / "b.pcap", [60, 1500, 42], cut=10)) == 2
    assert capture.count_packets(_pcap(tmp_path / "c.pcap", [])) == 0
    (tmp_path / "d").write_bytes(b"not a pcap at all, no no no")
    assert capture.count_packets(tmp_path / "d") is None


def test_the_filter_follows_dashes_and_options_go_anywhere_before() -> None:
    from labctl.cli import parse_args

    args = parse_args(["capture", "gw:outside", "-w", "-", "--count", "3", "-f", "l.yml", "--", "tcp", "port", "80"])
    assert (args.host, args.write, args.count, args.file, args.command) == (
        "gw:outside",
        "-",
        3,
        "l.yml",
        ["tcp", "port", "80"],
    )
    args = parse_args(["impair", "gw:outside", "--delay", "50ms", "--jitter", "5ms", "--loss", "1%", "--rate", "1mbit"])
    assert (args.host, args.delay, args.jitter, args.loss, args.rate, args.clear) == (
        "gw:outside",
        "50ms",
        "5ms",
        "1%",
        "1mbit",
        False,
    )
