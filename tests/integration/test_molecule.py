"""Every Molecule scenario, run for real: create (labctl), converge, idempotence, verify (smoke), destroy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_molecule_scenario(scenario: str, tmp_path: Path) -> None:
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=f"{bindir}:{os.environ.get('PATH', '')}", PY_COLORS="0", ANSIBLE_FORCE_COLOR="0")
    log = tmp_path / f"molecule-{scenario}.log"
    with open(log, "w") as out:
        proc = subprocess.run(
            [f"{bindir}/molecule", "test", "-s", scenario],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1800,
            check=False,
        )
    text = log.read_text()
    if proc.returncode != 0:
        pytest.fail(f"molecule test -s {scenario} exited {proc.returncode}; last lines:\n" + text[-6000:])
    assert "idempotence" in text and "verify" in text
