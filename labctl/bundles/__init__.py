"""The roles' bundles: ``labctl.bundles.<role>`` is the folder ``roles/<role>/`` (a namespace package).

A role's Python lives with the role, under ``roles/<role>/checks/`` (a package): its smoke checks in
``checks/__init__.py`` (or submodules it imports), the programs the checks run on lab hosts in
``checks/files/``, and its optional extensions as submodules of ``checks``:

- ``checks/status.py``: ``details(lab, host) -> dict`` (what ``labctl status --host`` adds for a host of
  the role's group) and ``show(host, details) -> None`` (prints it);
- ``checks/graph.py``: ``notes(topo, host) -> dict`` (what ``labctl graph`` draws for a host of the
  role's group, e.g. {"forwards": [...]});
- ``checks/cli.py``: ``add_parser(sub)`` (the role's own verbs, e.g. ``labctl sdn``).

The package's path is :data:`labctl.paths.ROLES_DIR`, so this works from a checkout and from the copy a
wheel ships (``labctl/_data/roles``). :func:`names` lists the roles that have checks; :func:`extension`
imports one extension module of one bundle."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from labctl import paths

__path__ = [str(paths.ROLES_DIR)]


def names() -> list[str]:
    """The roles that carry checks (``roles/<role>/checks/__init__.py``), sorted."""
    if not paths.ROLES_DIR.is_dir():
        return []
    return sorted(
        d.name for d in paths.ROLES_DIR.iterdir() if d.name.isidentifier() and (d / "checks" / "__init__.py").is_file()
    )


def checks(role: str) -> ModuleType:
    """The checks package of one role (``labctl.bundles.<role>.checks``)."""
    return importlib.import_module(f"{__name__}.{role}.checks")


def extension(role: str, name: str) -> ModuleType | None:
    """The module ``roles/<role>/checks/<name>.py`` when the role has it, else None."""
    if not (paths.ROLES_DIR / role / "checks" / f"{name}.py").is_file():
        return None
    return importlib.import_module(f"{__name__}.{role}.checks.{name}")


def extensions(name: str) -> dict[str, ModuleType]:
    """role -> its ``checks/<name>.py`` module, for every role that has one."""
    found = {role: extension(role, name) for role in names()}
    return {role: module for role, module in found.items() if module is not None}
