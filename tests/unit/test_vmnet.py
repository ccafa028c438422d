"""What VM networking removes: only links and rules marked with the lab's own name (fake ip/iptables)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from labctl.providers.qemu import vmnet

RULES = """\
-P POSTROUTING ACCEPT
-A POSTROUTING -s 198.18.120.0/24 -d 198.18.120.0/24 -m comment --comment labctl.vm=lab -j RETURN
-A POSTROUTING -s 198.18.120.0/24 ! -d 224.0.0.0/4 -m comment --comment labctl.vm=lab -j MASQUERADE
-A POSTROUTING -s 198.18.121.0/24 ! -d 224.0.0.0/4 -m comment --comment labctl.vm=lab-2 -j MASQUERADE
-A POSTROUTING -s 10.88.0.0/16 -j NETAVARK-1D8721804F16F
"""


@pytest.fixture
def fake_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`ip` and `iptables` that log their arguments; iptables -S prints RULES."""
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
    return log


def test_remove_nat_deletes_only_this_labs_rules(fake_tools: Path) -> None:
    assert vmnet.remove_nat("lab") == 2
    deletes = [line for line in fake_tools.read_text().splitlines() if " -D " in line]
    assert len(deletes) == 2
    assert all("labctl.vm=lab " in d + " " and "lab-2" not in d for d in deletes)


def fake_sys(tmp_path: Path, links: dict[str, str], members: dict[str, list[str]]) -> Path:
    root = tmp_path / "sys"
    for name, alias in links.items():
        (root / name).mkdir(parents=True)
        (root / name / "ifalias").write_text(alias + "\n")
    for bridge, ports in members.items():
        (root / bridge / "brif").mkdir(parents=True, exist_ok=True)
        for port in ports:
            (root / bridge / "brif" / port).mkdir()
    return root


def test_lab_links_are_found_by_their_alias_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    links = {
        "lqaaa0n0": "labctl.lab=lab host=v1 net=n1",
        "lqbbb0n0": "labctl.lab=lab-2 host=v1 net=n1",
        "podman3": "labctl.lab=lab net=n1 kind=bridge",
        "eth0": "",
    }
    monkeypatch.setattr(vmnet, "SYS_NET", fake_sys(tmp_path, links, {}))
    assert sorted(vmnet.lab_links("lab")) == ["lqaaa0n0", "podman3"]


def test_a_bridge_with_ports_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_tools: Path) -> None:
    links = {"podman3": "labctl.lab=lab kind=bridge", "podman4": "labctl.lab=lab kind=bridge"}
    monkeypatch.setattr(vmnet, "SYS_NET", fake_sys(tmp_path, links, {"podman3": ["veth1"], "podman4": []}))
    assert not vmnet.remove_if_unused("podman3")
    assert vmnet.remove_if_unused("podman4")
    assert fake_tools.read_text().splitlines() == ["ip link delete dev podman4"]
