"""inventory/: the group_vars and host_vars a user edits, layered under the topology in the generated
inventory, checked with real Ansible (ansible-inventory) as plain `ansible-playbook -i` would see them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import paths
from labctl.errors import LabError
from labctl.lifecycle.model import Lab
from labctl.provisioning import inventory, inventory_vars
from labctl.state import LabState
from labctl.topology import parse

BIN = Path(sys.executable).parent
RAW = {
    "schema": 1,
    "name": "iv",
    "vars": {"level": "topology-all"},
    "networks": [{"name": "lab", "subnet": "198.18.100.0/24"}],
    "groups": {"web": {"web_port": 8000}, "store": {}},
    "hosts": [
        {"name": "app", "groups": ["web"], "networks": ["lab"], "vars": {"app_note": "topology-host"}},
        {"name": "db", "groups": ["store"], "networks": ["lab"]},
    ],
}


def write(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """An inventory/ directory with a value at every level, some also set by the topology."""
    base = tmp_path / "inventory"
    write(base / "group_vars" / "all.yml", {"level": "inventory-all", "only_all": 1, "shared": "all"})
    write(base / "group_vars" / "web.yml", {"web_port": 7000, "web_workers": 4, "shared": "web"})
    write(base / "group_vars" / "store" / "10-main.yaml", {"store_size": 10, "shared": "store"})
    write(base / "group_vars" / "store" / "20-more.yml", {"store_size": 20})
    write(base / "group_vars" / "nobody.yml", {"shared": "nobody"})
    write(base / "host_vars" / "app.yml", {"app_note": "inventory-host", "shared": "app", "ansible_user": "evil"})
    write(base / "host_vars" / ".gitkeep", "")
    write(base / "host_vars" / "README.md", "not vars\n")
    return base


def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user: inventory_vars.InventoryVars) -> Path:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    topo = parse(RAW, tmp_path / "iv.yml")
    state = LabState("iv")
    path = tmp_path / "inventory.yml"
    path.write_text(inventory.render(topo, state, Lab(topo, state).addresses(), user))
    return path


def ansible_vars(inventory_file: Path, host: str) -> dict[str, Any]:
    """The variables Ansible itself gives the host from this inventory (run elsewhere: no group_vars beside)."""
    out = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(inventory_file), "--host", host],
        capture_output=True,
        text=True,
        check=True,
        cwd=inventory_file.parent,
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def test_load_reads_files_and_directories_in_order(user_dir: Path) -> None:
    user = inventory_vars.load(user_dir)
    assert user.groups["store"] == {"store_size": 20, "shared": "store"}
    assert set(user.groups) == {"all", "web", "store", "nobody"}
    assert set(user.hosts) == {"app"}
    assert user.for_host("db", ["store"]) == {
        "level": "inventory-all",
        "only_all": 1,
        "shared": "store",
        "store_size": 20,
    }


def test_missing_directory_is_empty(tmp_path: Path) -> None:
    assert inventory_vars.load(tmp_path / "none") == inventory_vars.InventoryVars()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("- a\n- b\n", "expected a mapping of variable names to values, got list"),
        ("a: [\n", "not valid YAML"),
        ("$ANSIBLE_VAULT;1.1;AES256\n6162\n", "encrypted with ansible-vault"),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path: Path, text: str, message: str) -> None:
    write(tmp_path / "group_vars" / "web.yml", text)
    with pytest.raises(LabError, match=message) as err:
        inventory_vars.load(tmp_path)
    assert str(tmp_path / "group_vars" / "web.yml") in str(err.value) and "Fix:" in str(err.value)


def test_plain_ansible_sees_inventory_vars_under_the_topology(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_dir: Path
) -> None:
    inv = rendered(tmp_path, monkeypatch, inventory_vars.load(user_dir))
    app, db = ansible_vars(inv, "app"), ansible_vars(inv, "db")
    # the topology wins at every level: all, group, host
    assert (app["level"], app["web_port"], app["app_note"]) == ("topology-all", 8000, "topology-host")
    assert db["level"] == "topology-all"
    # what the topology leaves unset comes from inventory/: all < group (by name) < host
    assert (app["only_all"], app["web_workers"], app["shared"]) == (1, 4, "app")
    assert (db["only_all"], db["store_size"], db["shared"]) == (1, 20, "store")
    assert "web_workers" not in db
    # labctl's connection and labctl_* variables are never taken from inventory/
    assert app["ansible_user"] == "root" and app["labctl_lab"] == "iv"


def test_without_inventory_vars_nothing_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    inv = rendered(tmp_path, monkeypatch, inventory_vars.InventoryVars())
    assert "only_all" not in ansible_vars(inv, "app")


def test_the_default_lab_gets_the_project_s_inventory_vars(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("LABCTL_INVENTORY_DIR", raising=False)
    lab = Lab(parse(yaml.safe_load(paths.DEFAULT_LAB.read_text()), paths.DEFAULT_LAB, paths.known_groups()))
    lab.write_config()
    db = ansible_vars(lab.state.inventory, "db")
    assert db["mongodb_unreachable_action"] == "skip"  # inventory/group_vars/mongodb.yml
    assert "mongodb_unreachable_action" not in ansible_vars(lab.state.inventory, "web")


def test_inventory_dir_can_be_elsewhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, user_dir: Path) -> None:
    monkeypatch.setenv("LABCTL_INVENTORY_DIR", str(user_dir))
    assert inventory_vars.load().groups["web"]["web_workers"] == 4


def test_example_static_inventory_covers_every_play_and_reads_group_vars() -> None:
    example = paths.INVENTORY_DIR / "example-static.yml"
    listing = json.loads(
        subprocess.run(
            [str(BIN / "ansible-inventory"), "-i", str(example), "--list"],
            capture_output=True,
            text=True,
            check=True,
            cwd=paths.PROJECT_DIR,
        ).stdout
    )
    groups = {g for g, v in listing.items() if isinstance(v, dict) and v.get("hosts")}
    plays = yaml.safe_load(paths.SITE_PLAYBOOK.read_text())
    for play in plays:
        if play["hosts"] != "all":
            assert set(play["hosts"].split(":")) & groups, f"no host in the example for play {play['name']!r}"
    assert listing["_meta"]["hostvars"]["db"]["mongodb_unreachable_action"] == "skip"
    check = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(example), "--syntax-check", str(paths.SITE_PLAYBOOK)],
        capture_output=True,
        text=True,
        check=False,
        cwd=paths.PROJECT_DIR,
    )
    assert check.returncode == 0, check.stdout + check.stderr
