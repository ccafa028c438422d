"""Where the project's Ansible content lives (labctl runs from its source tree, installed editable)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_DIR = PACKAGE_DIR.parent
ROLES_DIR = PROJECT_DIR / "roles"
PLAYBOOKS_DIR = PROJECT_DIR / "playbooks"
SITE_PLAYBOOK = PLAYBOOKS_DIR / "site.yml"
DEFAULT_LAB = PROJECT_DIR / "labs" / "default.yml"
INVENTORY_DIR = PROJECT_DIR / "inventory"  # group_vars/ and host_vars/ a user edits
PLUGINS_DIR = PACKAGE_DIR / "ansible_plugins"


def known_groups() -> set[str]:
    """Groups that have a role: the role's name, plus its `<role>_clients` group."""
    groups: set[str] = set()
    if ROLES_DIR.is_dir():
        for role in ROLES_DIR.iterdir():
            if (role / "tasks").is_dir() and role.name != "common":
                groups |= {role.name, f"{role.name}_clients"}
    return groups
