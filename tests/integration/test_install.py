"""labctl installed like any Python tool: a built wheel in a fresh venv outside the checkout brings up a
lab from another directory (roles and playbooks shipped as package data); the roles built as the
`labctl.lab` collection converge a lab host from a playbook of its own."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import lab_containers

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
NAME = "it-wheel"
TOPOLOGY = f"""---
schema: 1
name: {NAME}
networks:
  - {{name: lab, subnet: 198.18.141.0/24}}
groups:
  cache: {{}}
hosts:
  - {{name: one, groups: [cache], networks: [lab]}}
"""
PLAYBOOK = """---
- name: Memcached from the labctl.lab collection
  hosts: cache
  gather_facts: false
  vars:
    memcached_server_group: cache
  roles:
    - role: labctl.lab.memcached
"""


def sh(*argv: str | Path, **kw: object) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True, check=False, timeout=900, **kw)  # type: ignore[call-overload]
    assert res.returncode == 0, f"{argv} exited {res.returncode}:\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res  # type: ignore[no-any-return]


def test_wheel_outside_the_checkout_and_the_roles_as_a_collection(tmp_path: Path) -> None:
    sh(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", tmp_path / "wheel", ROOT)
    (wheel,) = (tmp_path / "wheel").glob("labctl-*.whl")
    venv = tmp_path / "venv"
    sh(sys.executable, "-m", "venv", venv)
    sh(venv / "bin" / "pip", "install", "-q", wheel)
    where = tmp_path / "elsewhere"
    where.mkdir()
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp_path / "state"), PATH=f"{venv / 'bin'}:{os.environ['PATH']}")
    shipped = sh(venv / "bin" / "python", "-c", "from labctl import paths; print(paths.SITE_PLAYBOOK)", cwd=where)
    assert shipped.stdout.strip().startswith(str(venv)), shipped.stdout  # not the checkout's
    (where / "lab.yml").write_text(TOPOLOGY)
    labctl = venv / "bin" / "labctl"
    try:
        up = sh(labctl, "up", "-f", "lab.yml", cwd=where, env=env)
        assert "converge ok" in up.stderr and "0 failed" in up.stdout

        sh(ROOT / "collection" / "build", tmp_path / "dist", env=env)
        (collection,) = (tmp_path / "dist").glob("labctl-lab-*.tar.gz")
        sh(
            venv / "bin" / "ansible-galaxy",
            "collection",
            "install",
            "-p",
            tmp_path / "collections",
            collection,
            env=env,
        )
        (where / "use-role.yml").write_text(PLAYBOOK)
        inventory = sh(labctl, "inventory", "-f", "lab.yml", cwd=where, env=env).stdout.strip()
        play_env = dict(env, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "collections"))
        sh(venv / "bin" / "ansible-playbook", "-i", inventory, "use-role.yml", cwd=where, env=play_env)
        active = sh(
            labctl,
            "exec",
            "-f",
            "lab.yml",
            "one",
            "--",
            "systemctl",
            "is-active",
            "memcached@11211",
            cwd=where,
            env=env,
        )
        assert active.stdout.strip() == "active"
    finally:
        subprocess.run([str(labctl), "down", "--name", NAME], env=env, capture_output=True, check=False, timeout=300)
    assert lab_containers(NAME) == []
