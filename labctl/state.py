"""Per-lab state on the controller: one directory per lab under the XDG state directory.

It holds the SSH keypair, the generated inventory and ansible.cfg, secrets (0600) and state.json,
written atomically. A lock file beside it keeps two labctl commands off the same lab."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.errors import LabError


def state_root() -> Path:
    base = os.environ.get("LABCTL_STATE_DIR")
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(xdg) / "labctl"


def write_atomic(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file so that readers see the old or the new content, never a half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass(frozen=True)
class LabState:
    """Paths of one lab's state."""

    name: str

    @property
    def dir(self) -> Path:
        return state_root() / self.name

    @property
    def lock_path(self) -> Path:
        return state_root() / f".{self.name}.lock"

    @property
    def key(self) -> Path:
        return self.dir / "id_ed25519"

    @property
    def pubkey(self) -> Path:
        return self.dir / "id_ed25519.pub"

    @property
    def inventory(self) -> Path:
        return self.dir / "inventory.yml"

    @property
    def ansible_cfg(self) -> Path:
        return self.dir / "ansible.cfg"

    @property
    def known_hosts(self) -> Path:
        return self.dir / "known_hosts"

    @property
    def state_file(self) -> Path:
        return self.dir / "state.json"

    @property
    def log_dir(self) -> Path:
        return self.dir / "logs"

    def exists(self) -> bool:
        return self.state_file.exists()

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())  # type: ignore[no-any-return]
        except FileNotFoundError:
            return {}
        except json.JSONDecodeError as exc:
            raise LabError(
                f"{self.state_file}: the lab's state file is damaged ({exc}). "
                f"Fix: run 'labctl down --name {self.name}' and bring the lab up again."
            ) from None

    def write(self, data: dict[str, Any]) -> None:
        write_atomic(self.state_file, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o600)

    def ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)

    def ensure_keypair(self) -> bool:
        """Generate the lab's own SSH keypair once (0600); True when a new one was made."""
        self.ensure_dir()
        if self.key.exists() and self.pubkey.exists():
            return False
        for path in (self.key, self.pubkey):
            path.unlink(missing_ok=True)
        result = subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"labctl-{self.name}", "-f", str(self.key)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LabError(f"ssh-keygen failed: {result.stderr.strip()}. Fix: install openssh-client.")
        os.chmod(self.key, 0o600)
        return True

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lab's lock; fail at once when another labctl command holds it."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabError(
                    f"Another labctl command is changing lab {self.name!r} right now (lock {self.lock_path}). "
                    "Fix: wait for it to finish, then run this command again."
                ) from None
            try:
                yield
            finally:
                if not self.dir.exists():
                    self.lock_path.unlink(missing_ok=True)
                fcntl.flock(handle, fcntl.LOCK_UN)


def all_labs() -> dict[str, dict[str, Any]]:
    """Every lab that has a state file: name -> state. A damaged state file is listed, not hidden:
    {"name", "phase": "damaged", "error"}."""
    root = state_root()
    out: dict[str, dict[str, Any]] = {}
    if not root.is_dir():
        return out
    for child in sorted(root.iterdir()):
        if child.is_dir() and (child / "state.json").exists():
            try:
                out[child.name] = LabState(child.name).read()
            except LabError as exc:
                out[child.name] = {"name": child.name, "phase": "damaged", "error": str(exc)}
    return out
