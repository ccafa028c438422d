"""LABCTL_STRATEGY=mitogen puts mitogen's strategy into the lab's ansible.cfg; the default is Ansible's own."""

from __future__ import annotations

import importlib.util

import pytest

from labctl import inventory
from labctl.errors import LabError
from labctl.state import LabState


def test_default_is_ansibles_linear_strategy() -> None:
    assert inventory.strategy_lines({}) == ""
    assert "strategy" not in inventory.render_cfg(LabState("st"))


def test_mitogen_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"LABCTL_STRATEGY": "mitogen"}
    if importlib.util.find_spec("ansible_mitogen") is None:
        with pytest.raises(LabError, match="mitogen is not installed"):
            inventory.strategy_lines(env)
        return
    lines = inventory.strategy_lines(env)
    assert "strategy = mitogen_linear" in lines and "ansible_mitogen/plugins/strategy" in lines
    monkeypatch.setenv("LABCTL_STRATEGY", "mitogen")
    assert "strategy = mitogen_linear" in inventory.render_cfg(LabState("st"))
