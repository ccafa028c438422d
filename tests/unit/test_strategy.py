"""The converge's strategy: mitogen's by default (a labctl dependency), Ansible's own with LABCTL_STRATEGY=linear."""

from __future__ import annotations

import importlib.util

import pytest

from labctl import inventory
from labctl.errors import LabError
from labctl.state import LabState


def test_linear_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert inventory.strategy_lines({"LABCTL_STRATEGY": "linear"}) == ""
    monkeypatch.setenv("LABCTL_STRATEGY", "linear")
    assert "strategy" not in inventory.render_cfg(LabState("st"))


@pytest.mark.parametrize("env", [{}, {"LABCTL_STRATEGY": ""}, {"LABCTL_STRATEGY": "mitogen"}])
def test_mitogen_by_default(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    if importlib.util.find_spec("ansible_mitogen") is None:
        with pytest.raises(LabError, match="mitogen is not installed"):
            inventory.strategy_lines(env)
        return
    lines = inventory.strategy_lines(env)
    assert "strategy = mitogen_linear" in lines and "ansible_mitogen/plugins/strategy" in lines
    monkeypatch.delenv("LABCTL_STRATEGY", raising=False)
    assert "strategy = mitogen_linear" in inventory.render_cfg(LabState("st"))


def test_unknown_strategy_is_named() -> None:
    with pytest.raises(LabError, match=r"LABCTL_STRATEGY='free'.*mitogen, linear"):
        inventory.strategy_lines({"LABCTL_STRATEGY": "free"})
