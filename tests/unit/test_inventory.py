"""Inventory rendering: groups, vars, connection settings."""

from __future__ import annotations

from pathlib import Path

import yaml

from labctl.lifecycle.model import Lab
from labctl.provisioning import inventory
from labctl.state import LabState
from labctl.topology import parse

RAW = {
    "schema": 1,
    "name": "inv",
    "vars": {"common_timezone": "Europe/Paris"},
    "networks": [
        {"name": "outside", "subnet": "198.18.1.0/24"},
        {"name": "inside", "subnet": "198.18.2.0/24", "routes": [{"to": "outside", "via": "gw"}]},
    ],
    "groups": {"web": {"web_port": 6767}},
    "hosts": [
        {"name": "gw", "groups": [], "networks": ["outside", "inside"]},
        {"name": "app", "groups": ["web"], "networks": ["inside"], "vars": {"web_port": 8080}},
    ],
}


def test_inventory_has_groups_vars_and_connection(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    topo = parse(RAW, Path("inv.yml"))
    state = LabState("inv")
    data = yaml.safe_load(inventory.render(topo, state, Lab(topo, state).addresses()))["all"]
    assert data["vars"]["labctl_lab"] == "inv"
    assert data["vars"]["labctl_networks"] == {"outside": "198.18.1.0/24", "inside": "198.18.2.0/24"}
    assert data["vars"]["labctl_hosts"]["gw"] == {"outside": "198.18.1.10", "inside": "198.18.2.10"}
    assert data["vars"]["common_timezone"] == "Europe/Paris"
    assert data["children"]["web"] == {"hosts": {"app": None}, "vars": {"web_port": 6767}}
    app = data["hosts"]["app"]
    assert app["ansible_host"] == "198.18.2.11"
    assert app["ansible_user"] == "root"
    assert app["ansible_ssh_private_key_file"] == str(tmp_path / "inv" / "id_ed25519")
    assert app["labctl_routes"] == [{"to": "198.18.1.0/24", "via": "198.18.2.10"}]
    assert app["web_port"] == 8080
    assert data["hosts"]["gw"]["labctl_address"] == "198.18.1.10"


def test_ansible_cfg_is_fast_and_uses_the_lab_files(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    cfg = inventory.render_cfg(LabState("inv"))
    assert "pipelining = True" in cfg
    assert "ControlPersist=60s" in cfg
    assert f"inventory = {tmp_path / 'inv' / 'inventory.yml'}" in cfg
    assert "gathering = explicit" in cfg
    control_dir = cfg.split("control_path_dir = ")[1].split()[0]
    assert len(control_dir) < 40


def test_static_hosts_use_their_own_address_user_and_key(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    raw = {
        "schema": 1,
        "name": "st",
        "provider": "static",
        "hosts": [{"name": "vm1", "address": "192.0.2.7", "user": "admin", "key": "/keys/vm1"}],
    }
    topo = parse(raw, Path("st.yml"))
    hv = yaml.safe_load(inventory.render(topo, LabState("st"), Lab(topo).addresses()))["all"]["hosts"]["vm1"]
    assert (hv["ansible_host"], hv["ansible_user"], hv["ansible_ssh_private_key_file"]) == (
        "192.0.2.7",
        "admin",
        "/keys/vm1",
    )


def test_fixed_mac_addresses_are_local_and_follow_the_ip() -> None:
    from labctl.providers.podman.provider import mac_address

    assert mac_address("198.18.2.10") == "02:4c:c6:12:02:0a"
    assert mac_address("198.18.2.11") != mac_address("198.18.2.10")
