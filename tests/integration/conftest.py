"""Integration fixtures: real podman, real ansible-playbook, a private state directory."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

LABCTL = str(Path(sys.executable).parent / "labctl")


def require_tool(tool: str, packages: str) -> None:
    """Skip when a tool is missing on a developer's machine; fail under CI, where setup.sh installed it."""
    if shutil.which(tool) is not None:
        return
    message = f"{tool} is not installed (run ./setup.sh, or apt-get install {packages})"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {message}; the integration tests need it", pytrace=False)
    pytest.skip(message, allow_module_level=True)


require_tool("podman", "podman runc")


def run(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([LABCTL, *args], capture_output=True, text=True, env=env, check=False, timeout=900)
    if check and result.returncode != 0:
        raise AssertionError(f"labctl {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


def podman_json(*args: str) -> list[dict]:  # type: ignore[type-arg]
    out = subprocess.run(["podman", *args, "--format", "json"], capture_output=True, text=True, check=True).stdout
    return json.loads(out or "[]")  # type: ignore[no-any-return]


def lab_containers(lab: str) -> list[dict]:  # type: ignore[type-arg]
    return podman_json("ps", "-a", "--filter", f"label=labctl.lab={lab}")


def lab_networks(lab: str) -> list[str]:
    return [n["name"] for n in podman_json("network", "ls") if (n.get("labels") or {}).get("labctl.lab") == lab]


@pytest.fixture
def labenv(tmp_path: Path) -> Iterator[dict[str, str]]:
    """Environment with a private labctl state directory."""
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp_path / "state"))
    yield env


def write_lab(tmp_path: Path, name: str, subnet: str, hosts: int = 2) -> Path:
    lines = ["---", "schema: 1", f"name: {name}", "networks:", f"  - {{name: lab, subnet: {subnet}}}", "hosts:"]
    lines += [f"  - {{name: h{i}, groups: [], networks: [lab]}}" for i in range(1, hosts + 1)]
    path = tmp_path / f"{name}.yml"
    path.write_text("\n".join(lines) + "\n")
    return path
