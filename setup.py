"""Ships the Ansible content (roles, playbooks, labs, Molecule's shared files) inside the wheel as
labctl/_data, so an installed labctl works from any directory (labctl/paths.py finds it there)."""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
SHIPPED = ("roles", "playbooks", "labs", "molecule/shared")
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")


class BuildWithData(build_py):
    def run(self) -> None:
        super().run()
        if getattr(self, "editable_mode", False):
            return  # an editable install reads the checkout itself
        target = Path(self.build_lib) / "labctl" / "_data"
        for name in SHIPPED:
            src, dst = ROOT / name, target / name
            if dst.exists():
                shutil.rmtree(dst) if dst.is_dir() else dst.unlink()
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=IGNORE)
            else:
                shutil.copy2(src, dst)


setup(cmdclass={"build_py": BuildWithData})
