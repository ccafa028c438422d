"""The converge's strategy: mitogen's by default (a labctl dependency), Ansible's own with LABCTL_STRATEGY=linear."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible.config.manager import ConfigManager
from ansible.plugins.loader import strategy_loader

from labctl.errors import LabError
from labctl.provisioning import ansible_run, inventory
from labctl.state import LabState


def test_linear_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    assert inventory.strategy_lines({"LABCTL_STRATEGY": "linear"}) == ""
    monkeypatch.setenv("LABCTL_STRATEGY", "linear")
    assert "strategy" not in inventory.render_cfg(LabState("st"))


@pytest.mark.parametrize("env", [{}, {"LABCTL_STRATEGY": ""}, {"LABCTL_STRATEGY": "mitogen"}])
def test_mitogen_by_default(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    # mitogen is a labctl dependency (pyproject.toml): missing, it fails here instead of being skipped
    assert importlib.util.find_spec("ansible_mitogen") is not None, "mitogen is not installed"
    lines = inventory.strategy_lines(env)
    assert "strategy = mitogen_linear" in lines and "ansible_mitogen/plugins/strategy" in lines
    monkeypatch.delenv("LABCTL_STRATEGY", raising=False)
    assert "strategy = mitogen_linear" in inventory.render_cfg(LabState("st"))


def test_without_mitogen_the_error_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ansible_mitogen", None)  # import ansible_mitogen raises ImportError
    with pytest.raises(LabError, match=r"mitogen is not installed\. Fix: .*LABCTL_STRATEGY=linear"):
        inventory.strategy_lines({})


class _Done:
    returncode = 0

    def poll(self) -> int:
        return 0


def test_the_converge_runs_mitogens_linear_strategy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ansible-playbook is pointed at the lab's ansible.cfg, and Ansible reading that file resolves the
    strategy to mitogen_linear, a plugin of the installed mitogen that Ansible's loader finds and loads."""
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    monkeypatch.delenv("LABCTL_STRATEGY", raising=False)
    monkeypatch.delenv("ANSIBLE_STRATEGY", raising=False)
    monkeypatch.delenv("ANSIBLE_STRATEGY_PLUGINS", raising=False)
    state = LabState("st")
    state.ensure_dir()
    state.ansible_cfg.write_text(inventory.render_cfg(state))
    seen: dict[str, Any] = {}

    def popen(cmd: list[str], **kw: Any) -> _Done:
        seen.update(cmd=cmd, env=kw["env"])
        return _Done()

    monkeypatch.setattr(ansible_run.procs, "popen", popen)
    assert ansible_run.run_playbook(state, tmp_path / "site.yml").ok
    assert Path(seen["cmd"][0]).name == "ansible-playbook" and "ANSIBLE_STRATEGY" not in seen["env"]
    config = ConfigManager(conf_file=seen["env"]["ANSIBLE_CONFIG"])
    assert config.get_config_value("DEFAULT_STRATEGY") == "mitogen_linear"
    (plugins,) = config.get_config_value("DEFAULT_STRATEGY_PLUGIN_PATH")
    import ansible_mitogen.strategy

    assert Path(plugins) == Path(ansible_mitogen.strategy.__file__).parent / "plugins" / "strategy"
    strategy_loader.add_directory(plugins)
    found = strategy_loader.find_plugin_with_context("mitogen_linear")
    assert found.resolved and Path(found.plugin_resolved_path) == Path(plugins) / "mitogen_linear.py"
    spec = importlib.util.spec_from_file_location("labctl_test_mitogen_linear", found.plugin_resolved_path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert issubclass(module.StrategyModule, ansible_mitogen.strategy.StrategyMixin)


def test_unknown_strategy_is_named() -> None:
    with pytest.raises(LabError, match=r"LABCTL_STRATEGY='free'.*mitogen, linear"):
        inventory.strategy_lines({"LABCTL_STRATEGY": "free"})
