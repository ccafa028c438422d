"""Where the project's Ansible content lives: the source checkout when labctl runs from one (an editable
install), else the copy shipped inside the package (``labctl/_data``, put there when a wheel is built)."""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def data_dir(package_dir: Path = PACKAGE_DIR) -> Path:
    """The checkout that holds this package when it has roles/ and playbooks/, else the shipped copy."""
    checkout = package_dir.parent
    if (checkout / "roles").is_dir() and (checkout / "playbooks").is_dir():
        return checkout
    return package_dir / "_data"


PROJECT_DIR = data_dir()
ROLES_DIR = PROJECT_DIR / "roles"
PLAYBOOKS_DIR = PROJECT_DIR / "playbooks"
SITE_PLAYBOOK = PLAYBOOKS_DIR / "site.yml"
DEFAULT_LAB = PROJECT_DIR / "labs" / "default.yml"
INVENTORY_DIR = PROJECT_DIR / "inventory"  # group_vars/ and host_vars/ a user edits
PLUGINS_DIR = PACKAGE_DIR / "provisioning" / "plugins"


def known_groups() -> set[str]:
    """Groups that have a role: the role's name, plus its `<role>_clients` group."""
    groups: set[str] = set()
    if ROLES_DIR.is_dir():
        for role in ROLES_DIR.iterdir():
            if (role / "tasks").is_dir() and role.name != "common":
                groups |= {role.name, f"{role.name}_clients"}
    return groups
