"""Molecule scenarios share their settings through .config/molecule/config.yml (hosts through labctl);
each molecule/<scenario>/molecule.yml keeps only what differs."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from molecule.util import merge_dicts

from labctl import paths

MOLECULE = paths.PROJECT_DIR / "molecule"
SHARED = yaml.safe_load((paths.PROJECT_DIR / ".config" / "molecule" / "config.yml").read_text())
SCENARIOS = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))


def scenario_config(scenario: str) -> dict[str, Any]:
    return yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text()) or {}


def leaves(data: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    if isinstance(data, dict):
        return {p: v for k, sub in data.items() for p, v in leaves(sub, (*path, str(k))).items()}
    return {path: data}


def test_shared_config_creates_hosts_through_labctl() -> None:
    assert SHARED["driver"] == {"name": "default", "options": {"managed": False}}
    provisioner = SHARED["provisioner"]
    assert provisioner["ansible_args"] == ["--inventory", "${MOLECULE_EPHEMERAL_DIRECTORY}/labctl-inventory.yml"]
    assert provisioner["playbooks"] == {"create": "../shared/create.yml", "destroy": "../shared/destroy.yml"}
    assert {"converge", "idempotence", "verify"} <= set(SHARED["scenario"]["test_sequence"])
    for name in ("create.yml", "destroy.yml"):
        assert (MOLECULE / "shared" / name).is_file()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_keeps_only_what_differs(scenario: str) -> None:
    shared = leaves(SHARED)
    same = [".".join(p) for p, v in leaves(scenario_config(scenario)).items() if p in shared and shared[p] == v]
    assert not same, f"molecule/{scenario}/molecule.yml repeats shared settings: {same}"
    for name in ("lab.yml", "converge.yml", "verify.yml"):
        assert (MOLECULE / scenario / name).is_file()


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_runs_the_shared_sequence(scenario: str) -> None:
    config = merge_dicts(SHARED, scenario_config(scenario))
    sequence = list(config["scenario"]["test_sequence"])
    if scenario == "lab":  # the whole lab also restarts every host before verify
        assert config["provisioner"]["playbooks"]["side_effect"] == "side_effect.yml"
        assert sequence.index("side_effect") == sequence.index("verify") - 1
        sequence.remove("side_effect")
    assert sequence == SHARED["scenario"]["test_sequence"]


def test_every_role_has_a_scenario() -> None:
    roles = {p.name for p in paths.ROLES_DIR.iterdir() if p.is_dir()} - {"common"}
    assert roles <= set(SCENARIOS)


def test_molecule_checks_host_keys_as_labctl_does() -> None:
    """The scenarios' hosts come from labctl's inventory, whose ssh args check keys against the lab's known_hosts;
    molecule's own ssh_args come first on ssh's command line (ssh keeps an option's first value): they must not
    turn the checks off."""
    options = SHARED["provisioner"]["config_options"]
    assert options["defaults"]["host_key_checking"] is True
    ssh_args = options["ssh_connection"]["ssh_args"]
    assert "StrictHostKeyChecking" not in ssh_args and "UserKnownHostsFile" not in ssh_args
    assert "ControlPersist=60s" in ssh_args
