"""The roles' bundles (labctl.bundles): found by discovery under roles/, importable by name and with
importlib, their extensions merged by labctl.checks.bundles without the core naming a role."""

from __future__ import annotations

import argparse
import importlib
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from labctl import bundles, paths
from labctl.checks import bundles as ext
from labctl.checks import runner
from labctl.errors import LabError

RULES = '-P PREROUTING ACCEPT\n-A PREROUTING -d 198.18.1.10/32 -p tcp -m tcp --dport 8080 -m comment --comment "labctl nat_gateway forward web" -j DNAT --to-destination 198.18.2.11:80\n'  # noqa: E501


def test_every_role_with_checks_is_a_bundle() -> None:
    with_checks = {p.parent.parent.name for p in paths.ROLES_DIR.glob("*/checks/__init__.py")}
    assert set(bundles.names()) == with_checks
    assert {"common", "memcached", "nat_gateway", "sdn_controller"} <= with_checks
    assert set(runner.service_modules()) >= with_checks


def test_a_bundle_is_the_role_folder() -> None:
    module = importlib.import_module("labctl.bundles.memcached.checks")
    assert Path(module.__file__ or "") == paths.ROLES_DIR / "memcached" / "checks" / "__init__.py"
    assert module is bundles.checks("memcached")
    # relative imports inside a bundle and across bundles resolve to the same modules
    mongrel2 = bundles.checks("mongrel2")
    iptables = importlib.import_module("labctl.bundles.nat_gateway.checks.iptables")
    assert mongrel2.forwards_from_rules is iptables.forwards_from_rules
    sdn = bundles.checks("sdn_controller")
    controller = importlib.import_module("labctl.bundles.sdn_controller.files.controller.slices")
    assert sdn.sl is controller


def test_extensions_are_found_by_name() -> None:
    assert set(bundles.extensions("status")) == {"nat_gateway"}
    assert set(bundles.extensions("graph")) == {"nat_gateway", "sdn_controller"}
    assert set(bundles.extensions("cli")) == {"sdn_controller"}
    assert bundles.extension("memcached", "status") is None


def test_the_cli_extensions_add_the_bundles_verbs() -> None:
    sub = argparse.ArgumentParser().add_subparsers()
    ext.add_cli_extensions(sub)
    assert "sdn" in sub.choices


@dataclass
class _Res:
    ok: bool
    stdout: str
    output: str = ""


class _Conn:
    def __init__(self, res: _Res) -> None:
        self.res, self.ran, self.closed = res, [], False

    def run(self, host: str, command: str, timeout: int = 0) -> _Res:
        self.ran.append((host, command))
        return self.res

    def close(self) -> None:
        self.closed = True


def _lab(groups: dict[str, list[str]], res: _Res) -> Any:
    conn = _Conn(res)
    topo = SimpleNamespace(group_hosts=lambda: groups)
    return SimpleNamespace(topo=topo, runner=lambda: conn, conn=conn)


def test_host_details_merge_the_bundles_of_the_hosts_groups() -> None:
    lab = _lab({"nat_gateway": ["gw"], "mongrel2": ["web"]}, _Res(True, RULES))
    details = ext.host_details(lab, "gw")
    assert details == {
        "forwards": [
            {
                "name": "web",
                "protocol": "tcp",
                "address": "198.18.1.10",
                "port": 8080,
                "to_host": None,
                "to_address": "198.18.2.11",
                "to_port": 80,
            }
        ]
    }
    assert lab.conn.ran == [("gw", "iptables -w 5 -t nat -S")] and lab.conn.closed
    assert ext.host_details(lab, "web") == {}


def test_host_details_name_the_fix_when_the_rules_cannot_be_read() -> None:
    lab = _lab({"nat_gateway": ["gw"]}, _Res(False, "", "permission denied"))
    with pytest.raises(LabError, match="Fix: check 'labctl exec gw -- iptables -t nat -S'"):
        ext.host_details(lab, "gw")


def test_graph_notes_come_from_the_hosts_vars_else_the_role_defaults() -> None:
    forwards = [{"name": "x", "protocol": "udp", "port": 53}]
    hostvars = {"gw": {"nat_gateway_forwards": forwards}, "sdn": {}}
    groups = {"nat_gateway": ["gw"], "sdn_controller": ["sdn"]}
    topo: Any = SimpleNamespace(group_hosts=lambda: groups, hostvars=lambda h: hostvars.get(h, {}))
    assert ext.graph_notes(topo, "gw") == {"forwards": forwards}
    slices = ext.graph_notes(topo, "sdn")["slices"]
    assert slices and all("id" in s for s in slices)
    assert ext.graph_notes(topo, "other") == {}
