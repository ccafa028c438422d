"""labctl impair: option validation (option, fix), the netem command, the clear script, the delayer's parsing."""

from __future__ import annotations

import importlib.util
import socket
import struct
import subprocess

import pytest

from labctl.errors import LabError
from labctl.netops import impair


def test_settings_become_one_netem_command() -> None:
    imp = impair.validate("50ms", "5ms", "1%", "10mbit")
    assert (
        impair.netem_command("eth1", imp) == "tc qdisc replace dev eth1 root netem delay 50ms 5ms loss 1% rate 10mbit"
    )
    assert (imp.delay_ms, imp.jitter_ms, imp.loss_pct) == (50.0, 5.0, 1.0)
    assert impair.validate("0.5s", None, None, None).delay_ms == 500.0
    assert imp.describe() == "delay 50ms ± 5ms, loss 1%, rate 10mbit"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("50", None, None, None), "--delay '50' is not understood. Fix: write it like 50ms"),
        ((None, "5ms", None, None), "--jitter varies a delay. Fix: give --delay too"),
        ((None, None, "1", None), "--loss '1' is not understood. Fix: write it like 1%"),
        ((None, None, "101%", None), "above 100%"),
        ((None, None, None, "10 mbit"), "--rate '10 mbit' is not understood. Fix: write it like 10mbit"),
        ((None, None, None, "0mbit"), "no rate"),
        ((None, None, None, None), "nothing to do"),
    ],
)
def test_bad_settings_name_the_option_and_the_fix(args: tuple[str | None, ...], message: str) -> None:
    with pytest.raises(LabError) as err:
        impair.validate(*args)
    assert message in str(err.value) and "Fix:" in str(err.value)


def test_the_clear_script_is_valid_sh() -> None:
    script = impair.clear_script("eth0")
    assert subprocess.run(["sh", "-n", "-c", script], check=False).returncode == 0
    assert "systemctl stop labctl-impair-eth0.service" in script and "-D $chain $rule" in script


def test_the_delayer_reads_packet_ids_from_nfnetlink_messages() -> None:
    spec = importlib.util.spec_from_file_location(
        "netdelay", impair.Path(impair.__file__).parent / "../hostside/impair/netdelay.py"
    )
    assert spec is not None and spec.loader is not None
    netdelay = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(netdelay)
    hdr = struct.pack("!IHB", 4242, 0x0800, 4) + b"\0"
    attrs = netdelay._attr(netdelay.NFQA_PACKET_HDR, hdr) + netdelay._attr(9, b"abcdef")
    msg = netdelay._message(netdelay.NFQNL_MSG_PACKET, 1002, attrs, socket.AF_INET)
    assert netdelay._packet_ids(msg + msg.replace(struct.pack("!I", 4242), struct.pack("!I", 7))) == [4242, 7]
