"""Per-lab runtime directory for SSH control sockets: root-only, short, removed on `down`.

/run/labctl/<hash> (0700) when labctl runs as root, else $XDG_RUNTIME_DIR/labctl/<hash>;
LABCTL_RUNTIME_DIR overrides the parent. Never a predictable directory in world-writable /tmp."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import stat
import tempfile
from pathlib import Path

from labctl.errors import LabError
from labctl.state import LabState

# OpenSSH's ControlPath is <dir>/%C (40 hex digits), created as <path>.<16 random chars> first;
# a unix socket path holds at most 107 bytes.
SOCKET_MAX = 107
CONTROL_NAME_LEN = 1 + 40 + 17
_LEAF = re.compile(r"^[0-9a-f]{10}$")


def runtime_root() -> Path:
    override = os.environ.get("LABCTL_RUNTIME_DIR")
    if override:
        return Path(override)
    if os.geteuid() == 0:
        return Path("/run/labctl")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return Path(xdg) / "labctl"
    return Path(tempfile.gettempdir()) / f"labctl-{os.geteuid()}"


def control_path_dir(state: LabState) -> Path:
    """Where the lab's SSH control sockets live (one short directory per state directory)."""
    digest = hashlib.sha1(str(state.dir.absolute()).encode()).hexdigest()[:10]
    path = runtime_root() / digest
    if len(str(path)) + CONTROL_NAME_LEN > SOCKET_MAX:
        raise LabError(
            f"the runtime directory {runtime_root()} is too long for SSH control sockets "
            f"(at most {SOCKET_MAX - CONTROL_NAME_LEN - 11} characters). Fix: set LABCTL_RUNTIME_DIR to a shorter path."
        )
    return path


def _private_dir(path: Path) -> None:
    """Create path 0700, or accept it only if it is a real directory of ours that nobody else can enter."""
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=0o700)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
        raise LabError(
            f"{path} is not a directory owned by this user (uid {os.geteuid()}); labctl keeps SSH control "
            f"sockets there. Fix: remove it, or set LABCTL_RUNTIME_DIR to a directory of your own."
        )
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)


def ensure_control_dir(state: LabState) -> Path:
    path = control_path_dir(state)
    root = runtime_root()
    root.parent.mkdir(parents=True, exist_ok=True)
    _private_dir(root)
    _private_dir(path)
    return path


def remove_control_dir(state: LabState) -> bool:
    """Remove the lab's control socket directory, after proving it lies directly inside the runtime root."""
    path = control_path_dir(state)
    if not path.exists() and not path.is_symlink():
        return False
    root = runtime_root().resolve()
    if path.is_symlink() or not _LEAF.match(path.name) or path.resolve().parent != root:
        raise LabError(
            f"refusing to remove {path}: it is not a directory inside labctl's runtime directory {root}. "
            "Fix: remove it by hand after checking what it is."
        )
    shutil.rmtree(path)
    return True
