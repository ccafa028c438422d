"""Every Molecule scenario uses the shared template (hosts through labctl), so the copies stay in sync."""

from __future__ import annotations

import pytest
import yaml

from labctl import paths

MOLECULE = paths.PROJECT_DIR / "molecule"
TEMPLATE = yaml.safe_load((MOLECULE / "shared" / "scenario-template.yml").read_text())
SCENARIOS = sorted(p.parent.name for p in MOLECULE.glob("*/molecule.yml"))


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario_follows_the_template(scenario: str) -> None:
    config = yaml.safe_load((MOLECULE / scenario / "molecule.yml").read_text())
    if scenario == "lab":  # the whole lab also restarts every host before verify
        assert config["provisioner"]["playbooks"].pop("side_effect") == "side_effect.yml"
        config["scenario"]["test_sequence"].remove("side_effect")
    assert config == TEMPLATE
    for name in ("lab.yml", "converge.yml", "verify.yml"):
        assert (MOLECULE / scenario / name).is_file()


def test_every_role_has_a_scenario() -> None:
    roles = {p.name for p in paths.ROLES_DIR.iterdir() if p.is_dir()} - {"common"}
    assert roles <= set(SCENARIOS)
