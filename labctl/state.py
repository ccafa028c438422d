"""Per-lab state on the controller: one directory per lab under the XDG state directory.

It holds the SSH keypair, the generated inventory and ansible.cfg, secrets (0600) and state.json,
written atomically. A lock file beside it keeps two labctl commands off the same lab."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import ipaddress
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl.errors import LabError, printable
from labctl.names import is_lab_name, validate_lab_name

MAX_STATE_BYTES = 64 * 1024 * 1024  # state.json holds a topology (at most 4 MiB of YAML) and fingerprints


def state_root() -> Path:
    base = os.environ.get("LABCTL_STATE_DIR")
    if base:
        return usable_dir(Path(base), "LABCTL_STATE_DIR")
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg:
        return usable_dir(Path(xdg), "XDG_STATE_HOME") / "labctl"
    return Path.home() / ".local" / "state" / "labctl"


def usable_dir(root: Path, var: str) -> Path:
    """root, when it is a directory or can be made one: its nearest existing ancestor is a directory."""
    probe = root
    while not os.path.lexists(probe) and probe != probe.parent:
        probe = probe.parent
    if os.path.lexists(probe) and not probe.is_dir():
        what = "is not a directory"
        if probe != root:
            what = f"lies under {printable(str(probe))}, which is not a directory"
        raise LabError(
            f"{var}={printable(str(root))} {what}: labctl keeps its files in a directory there. "
            f"Fix: set {var} to a directory (labctl creates it if missing), or unset it."
        )
    return root


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


def remove_inside_root(path: Path) -> bool:
    """Remove a file, symlink or directory tree that lies inside the state root; True if it existed.

    Every removal of labctl's state goes through here. The path is resolved first (symlinks, '..')
    and must lie strictly inside the resolved state root, else nothing is removed and a LabError
    says why. A symlink (to somewhere inside the root) is removed itself, never what it points to."""
    root = state_root().resolve()
    if path.name in ("", ".", ".."):
        raise _outside(path, path, root)
    leaf = path.parent.resolve() / path.name  # the entry itself (a symlink stays a symlink)
    for candidate in (leaf, path.resolve()):
        if candidate == root or root not in candidate.parents:
            raise _outside(path, candidate, root)
    if leaf.is_symlink() or leaf.is_file():
        leaf.unlink()
        return True
    if leaf.is_dir():
        shutil.rmtree(leaf, ignore_errors=True)
        return True
    return False


def _outside(path: Path, resolved: Path, root: Path) -> LabError:
    return LabError(
        f"refusing to remove {path}: it resolves to {resolved}, which is not inside labctl's state root {root}. "
        "Fix: name the lab by a valid lab name (see 'labctl status --all'); remove anything else by hand."
    )


# state.json's fields that labctl reads, and the type each must have
_STATE_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "phase": str,
    "provider": str,
    "topology_file": str,
    "topology": dict,
    "networks": dict,
    "converged": dict,
    "images": dict,
    "updated": (int, float),
}


def state_problem(data: Any) -> str:
    """What is wrong with a state.json's content (empty when nothing is)."""
    if not isinstance(data, dict):
        return f"expected a JSON object, got {type(data).__name__}"
    for key, kind in _STATE_FIELDS.items():
        if key in data and (not isinstance(data[key], kind) or isinstance(data[key], bool)):
            return f"field {key!r} is {type(data[key]).__name__}, not what labctl writes"
    for key in ("networks", "images"):
        for name, value in (data.get(key) or {}).items():
            if not isinstance(value, str):
                return f"field '{key}.{name}' is {type(value).__name__}, expected a string"
    for name, subnet in (data.get("networks") or {}).items():
        try:
            ipaddress.IPv4Network(subnet)
        except ValueError:
            return f"field 'networks.{name}' is {subnet!r}, not an IPv4 subnet"
    if "topology" in data and not isinstance(data.get("topology_file"), str):
        return "field 'topology_file' is missing"
    return ""


def _read_bounded(path: Path, limit: int) -> str:
    """A regular file's text, at most limit bytes (ValueError else); never opens a FIFO or a device."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise ValueError("not a regular file")
    if info.st_size > limit:
        raise ValueError(f"{info.st_size} bytes, more than {limit}")
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"more than {limit} bytes")
    return data.decode("utf-8", errors="replace")


@dataclass(frozen=True)
class LabState:
    """Paths of one lab's state. The name is validated: it can only name a directory in the state root."""

    name: str
    # state.json as last read or written by this object, and the file it was (read once per command)
    _cache: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        validate_lab_name(self.name, "lab state")

    @property
    def dir(self) -> Path:
        return state_root() / self.name

    @property
    def mutex_path(self) -> Path:
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

    def _signature(self) -> tuple[int, int, int] | None:
        """What tells the state file's versions apart (None when there is none)."""
        try:
            info = self.state_file.stat()
        except OSError:
            return None
        return (info.st_ino, info.st_size, info.st_mtime_ns)

    def read(self) -> dict[str, Any]:
        """state.json as labctl wrote it ({} when there is none); any other shape is one LabError.

        Parsed once: read again, it is the copy kept from the last read or write of this object, unless the
        file was replaced since (another command, a test)."""
        sig = self._signature()
        if sig is not None and self._cache.get("signature") == sig:
            return copy.deepcopy(self._cache["data"])
        data = self._parse()
        if sig is not None:
            self._cache.update(signature=sig, data=copy.deepcopy(data))
        return data

    def _parse(self) -> dict[str, Any]:
        try:
            text = _read_bounded(self.state_file, MAX_STATE_BYTES)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise self._damaged(f"cannot be read: {exc.strerror}") from None
        except ValueError as exc:
            raise self._damaged(str(exc)) from None
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise self._damaged(f"not JSON: {exc}" if isinstance(exc, ValueError) else "nested too deeply") from None
        problem = state_problem(data)
        if not problem and data.get("name", self.name) != self.name:
            problem = f"it names lab {data['name']!r}, not {self.name!r}"
        if problem:
            raise self._damaged(problem)
        return data  # type: ignore[no-any-return]

    def _damaged(self, problem: str) -> LabError:
        return LabError(
            f"{self.state_file}: the lab's state file is damaged ({printable(problem)}). "
            f"Fix: run 'labctl down --name {self.name}' and bring the lab up again."
        )

    def write(self, data: dict[str, Any]) -> None:
        self._cache.clear()
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        write_atomic(self.state_file, text, 0o600)
        sig = self._signature()
        if sig is not None:  # what was written is what the next read gives (no second parse of the file)
            self._cache.update(signature=sig, data=json.loads(text))

    def ensure_dir(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.dir, 0o700)

    def ensure_keypair(self) -> bool:
        """Generate the lab's own SSH keypair once (0600); True when a new one was made."""
        self.ensure_dir()
        if self.key.exists() and self.pubkey.exists():
            return False
        for path in (self.key, self.pubkey):
            remove_inside_root(path)
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
        remove_inside_root(self.dir)

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the lab's lock; fail at once when another labctl command holds it."""
        self.mutex_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.mutex_path, "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise LabError(
                    f"Another labctl command is changing lab {self.name!r} right now (lock {self.mutex_path}). "
                    "Fix: wait for it to finish, then run this command again."
                ) from None
            try:
                yield
            finally:
                if not self.dir.exists():
                    remove_inside_root(self.mutex_path)
                fcntl.flock(handle, fcntl.LOCK_UN)


def all_labs() -> dict[str, dict[str, Any]]:
    """Every lab that has a state file: name -> state. A damaged state file is listed, not hidden:
    {"name", "phase": "damaged", "error"}."""
    root = state_root()
    out: dict[str, dict[str, Any]] = {}
    if not root.is_dir():
        return out
    for child in sorted(root.iterdir()):
        if is_lab_name(child.name) and child.is_dir() and (child / "state.json").exists():
            try:
                out[child.name] = LabState(child.name).read()
            except LabError as exc:
                out[child.name] = {"name": child.name, "phase": "damaged", "error": str(exc)}
    return out
