"""Every role has a README that names every variable of its defaults/main.yml, its fact and its checks."""

from __future__ import annotations

import pytest
import yaml

from labctl import bundles, paths
from labctl.checks import base

ROLES = sorted(p.name for p in paths.ROLES_DIR.iterdir() if (p / "tasks").is_dir())


def test_the_roles_are_found() -> None:
    assert {"common", "memcached", "nat_gateway"} <= set(ROLES)


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_names_every_variable(role: str) -> None:
    readme = paths.ROLES_DIR / role / "README.md"
    assert readme.is_file(), f"roles/{role} has no README.md"
    text = readme.read_text()
    defaults = yaml.safe_load((paths.ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}
    missing = [name for name in defaults if f"`{name}`" not in text]
    assert not missing, f"roles/{role}/README.md does not name {missing}"


@pytest.mark.parametrize("role", ROLES)
def test_the_readme_names_the_fact_and_the_checks(role: str) -> None:
    text = (paths.ROLES_DIR / role / "README.md").read_text()
    if (paths.ROLES_DIR / role / "tasks" / "fact.yml").is_file():
        assert f"ansible_local.{role}" in text
    if role in bundles.names():
        service = bundles.checks(role).SERVICE
        names = [c.name for c in base.registered() if c.service == service]
        assert names
        assert all(name in text for name in names), f"roles/{role}/README.md does not list every check"
