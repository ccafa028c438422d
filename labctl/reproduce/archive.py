"""A saved lab: one tar archive with the topology, the lock and every host's file system, and its restore
(`labctl save -o lab.tar`, `labctl up --from lab.tar [--name NEW]`).

Never in an archive: the lab's SSH private key, the hosts' private host keys (providers leave them out),
and the generated secrets of the lab's state (unless with_secrets: the archive is then 0600)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from labctl import paths, yamlload
from labctl.errors import LabError, printable
from labctl.lifecycle import up as lifecycle_up
from labctl.lifecycle.model import Lab
from labctl.lifecycle.parallel import Say, quiet
from labctl.names import is_host_name, is_lab_name
from labctl.provisioning import secretvars
from labctl.reproduce import archive_checks, locked
from labctl.state import LabState, remove_inside_root, state_root, write_atomic
from labctl.topology import MAX_FILE_BYTES, Topology, parse

KIND = "labctl-saved-lab"
SCHEMA = 1
MANIFEST = "manifest.yml"
TOPOLOGY = "topology.yml"
LOCK = "lab.lock"
SECRETS = "secrets"
HOSTS_DIR = "hosts"
TOP_LEVEL = (MANIFEST, TOPOLOGY, LOCK, HOSTS_DIR, SECRETS)  # what a restore unpacks (nothing else is read)
# Bounds on what one archive may make a restore write or read (env vars raise them for a huge lab; the
# default lab's archive is ~3 GiB in a few hundred members).
MAX_BYTES_ENV, MAX_BYTES = "LABCTL_ARCHIVE_MAX_BYTES", 64 * 1024**3
MAX_MEMBERS_ENV, MAX_MEMBERS = "LABCTL_ARCHIVE_MAX_MEMBERS", 10_000
MAX_MANIFEST_ENV, MAX_MANIFEST = "LABCTL_ARCHIVE_MAX_MANIFEST_BYTES", 1024**2
COPY_CHUNK = 1024**2
ALTERED = "restore only archives written by labctl save -o FILE (this one was altered, or is no saved lab)"
BIG = "restore only archives written by labctl save -o FILE; for a lab this big, raise"


@dataclass
class SaveReport:
    path: Path
    size: int
    seconds: float
    with_secrets: bool


def _staging(near: Path) -> tempfile.TemporaryDirectory[str]:
    """A scratch directory on the file system of near (a big archive is moved, not copied)."""
    return tempfile.TemporaryDirectory(prefix=".labctl-save-", dir=near)


def require_secrets_choice(lab: Lab, with_secrets: bool) -> None:
    """A lab whose roles generated secrets (kept in its state: MongoDB's server passwords, its replica set
    key) is saved with them: the hosts' data was made with them (MongoDB's users log in with those
    passwords, and no new password can be set once users exist), so a restore that made new ones could
    not converge. A lab with none (no MongoDB server, or its source was unreachable and it was skipped) is
    saved without, and its restore converges with 0 changes."""
    kept = lab.state.dir / SECRETS
    names = sorted(p.relative_to(kept).as_posix() for p in kept.rglob("*") if p.is_file()) if kept.is_dir() else []
    if names and not with_secrets:
        raise LabError(
            f"save: lab {lab.name!r} holds generated secrets ({', '.join(names)}) that its hosts' data was made "
            "with (e.g. the MongoDB server's users log in with them): a restore without them could not log in, "
            "and a secret a role makes anew is not accepted by that data. Fix: save it with --with-secrets "
            "(the archive is then 0600: keep it private)."
        )


def save(lab: Lab, out: Path, with_secrets: bool = False, say: Say = quiet) -> SaveReport:
    """Write the running lab into one tar archive at out (see require_secrets_choice for the secrets)."""
    t0 = time.monotonic()
    require_secrets_choice(lab, with_secrets)
    secretvars.require_choice(lab.topo, with_secrets)  # secrets the user wrote: before any host is read
    out = out.resolve()
    if not out.parent.is_dir():
        raise LabError(f"save: the directory of {out} does not exist. Fix: create it, or name another -o path.")
    if out.exists() and not out.is_file():
        raise LabError(f"save: {out} exists and is not a regular file. Fix: name another -o path.")
    say("reading the exact package versions of every host (the archive's lock)")
    found = locked.collect(lab)
    raw = locked.topology_raw(lab)
    raw["name"] = lab.name
    with lab.state.locked(), _staging(out.parent) as tmp:
        stage = Path(tmp)
        (stage / HOSTS_DIR).mkdir()
        files: dict[str, dict[str, str]] = {}
        runner = lab.runner()  # for providers with no way of their own into a running host (VMs)
        try:
            for name, specs in lab.providers().items():
                backend = lab.backend(name)
                kind = backend.host_kind
                say(f"saving {len(specs)} {kind}(s) of provider {name}")
                hosts = [s.name for s in specs]
                began = time.monotonic()
                exported = backend.export_hosts(lab.name, hosts, stage / HOSTS_DIR, with_secrets, runner=runner)
                say(f"saved the {kind}(s) of provider {name} in {time.monotonic() - began:.1f} s")
                files.update({h: manifest_entry(name, kind, f) for h, f in exported.items()})
        finally:
            runner.close()
        manifest: dict[str, Any] = {
            "kind": KIND,
            "schema": SCHEMA,
            "lab": lab.name,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "locked": bool(lab.extra.get("locked")),
            "secrets": with_secrets,
            "hosts": files,
        }
        if with_secrets:
            manifest["warning"] = "this archive holds the lab's generated secrets: keep it private"
        (stage / MANIFEST).write_text(yaml.safe_dump(manifest, sort_keys=False))
        (stage / TOPOLOGY).write_text(yaml.safe_dump(raw, sort_keys=False))
        (stage / LOCK).write_text(found.dumps())
        if with_secrets and (lab.state.dir / SECRETS).is_dir():
            shutil.copytree(lab.state.dir / SECRETS, stage / SECRETS)
        part = stage / ".archive.tar"
        say(f"writing {out}")
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if with_secrets else 0o644)
        with os.fdopen(fd, "wb") as handle, _open_for_writing(handle, out) as tar:
            for member in [MANIFEST, TOPOLOGY, LOCK, HOSTS_DIR, SECRETS]:
                if (stage / member).exists():
                    tar.add(stage / member, arcname=member)
        os.chmod(part, 0o600 if with_secrets else 0o644)
        os.replace(part, out)
    return SaveReport(out, out.stat().st_size, time.monotonic() - t0, with_secrets)


def manifest_entry(provider: str, kind: str, file: str) -> dict[str, str]:
    """A host's line in the manifest: its provider, what it is (container | vm) and its file under hosts/."""
    return {"provider": provider, "kind": kind, "file": file}


def _open_for_writing(handle: BinaryIO, out: Path) -> tarfile.TarFile:
    """Plain tar, or gzip for a .tar.gz/.tgz name (smaller, slower to write)."""
    if out.name.endswith((".tar.gz", ".tgz")):
        return tarfile.open(fileobj=handle, mode="w:gz", compresslevel=1)
    return tarfile.open(fileobj=handle, mode="w")


def _bad(path: Path, problem: str) -> LabError:
    return LabError(
        printable(
            f"{path}: not a saved lab labctl can restore ({problem}). "
            "Fix: name an archive written by 'labctl save -o FILE'."
        )
    )


def _limit(env: str, default: int) -> int:
    """A bound on what an archive may make labctl write or read, overridable by env (for huge labs)."""
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) <= 0:
        raise LabError(
            printable(f"{env}={text!r} is not a positive whole number. Fix: unset it, or give e.g. {default}.")
        )
    return int(text)


@dataclass(frozen=True)
class Limits:
    """What unpacking one archive may write: bytes in all, members, and the manifest's size."""

    total: int
    members: int
    manifest: int

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            _limit(MAX_BYTES_ENV, MAX_BYTES),
            _limit(MAX_MEMBERS_ENV, MAX_MEMBERS),
            _limit(MAX_MANIFEST_ENV, MAX_MANIFEST),
        )


def _member_error(archive: Path, name: str, problem: str, fix: str = "") -> LabError:
    return LabError(printable(f"{archive}: member {name!r} {problem}. Fix: {fix or ALTERED}."))


def _checked_name(archive: Path, name: str) -> str:
    """A member name proven relative and inside the stage: no absolute path, no '..', no empty part."""
    clean = name[:-1] if name.endswith("/") else name
    parts = clean.split("/")
    if not clean or clean.startswith("/") or any(p in ("", ".", "..") for p in parts) or "\0" in clean:
        raise _member_error(archive, name, "has a name that is absolute or leaves the archive ('..', '.', empty part)")
    return clean


def _copy_member(tar: tarfile.TarFile, member: tarfile.TarInfo, dest: Path) -> None:
    """Write one regular member into a new file (never through an existing one, never a symlink)."""
    source = tar.extractfile(member)
    if source is None:
        raise OSError("no data")
    fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as out:
        while chunk := source.read(COPY_CHUNK):
            out.write(chunk)


class _Unpacker:
    """Unpacks an archive into the stage member by member, bounded as it reads (a member whose size would
    pass the total is refused before a byte of it is written): regular files, directories, and hard links
    to a file already unpacked (save links the kernel VMs share); nothing else."""

    def __init__(self, archive: Path, stage: Path, limits: Limits) -> None:
        self.archive, self.stage, self.limits = archive, stage, limits
        self.total = 0
        self.count = 0
        self.files: set[str] = set()

    def run(self, tar: tarfile.TarFile) -> None:
        while True:
            try:
                member = tar.next()
            except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
                raise _bad(self.archive, f"it is damaged after {self.count} member(s): {exc}") from None
            if member is None:
                return
            self.count += 1
            if self.count > self.limits.members:
                raise _member_error(
                    self.archive,
                    member.name,
                    f"is past the limit of {self.limits.members} members",
                    f"{BIG} {MAX_MEMBERS_ENV}",
                )
            self.one(tar, member)

    def one(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        name = _checked_name(self.archive, member.name)
        if name.split("/")[0] not in TOP_LEVEL:
            return  # not read: nothing of a saved lab lives there
        dest = self.stage / name
        try:
            if member.isdir():
                dest.mkdir(parents=True, exist_ok=True, mode=0o700)
            elif member.islnk():
                self.link(name, member, dest)
            elif member.isreg() and not member.issparse():
                self.regular(tar, name, member, dest)
            else:
                raise _member_error(
                    self.archive,
                    name,
                    "is not a regular file or directory (a symbolic link, device, FIFO or sparse "
                    "file: a saved lab holds none)",
                )
        except FileExistsError:
            raise _member_error(
                self.archive, name, "appears twice (or a file and a directory share its name)"
            ) from None
        except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
            raise _member_error(self.archive, name, f"cannot be unpacked ({exc})") from None

    def link(self, name: str, member: tarfile.TarInfo, dest: Path) -> None:
        target = _checked_name(self.archive, member.linkname)
        if target not in self.files:
            raise _member_error(self.archive, name, f"is a link to {member.linkname!r}, not a file unpacked before it")
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.link(self.stage / target, dest)
        self.files.add(name)

    def regular(self, tar: tarfile.TarFile, name: str, member: tarfile.TarInfo, dest: Path) -> None:
        small = {MANIFEST: self.limits.manifest, TOPOLOGY: MAX_FILE_BYTES}.get(name)
        if small is not None and member.size > small:
            raise _member_error(self.archive, name, f"is {member.size} bytes, more than the {small} it may be",
                                f"restore only archives written by labctl save -o FILE; raise {MAX_MANIFEST_ENV} "
                                "for a manifest this big")  # fmt: skip
        self.total += member.size
        if self.total > self.limits.total:
            raise _member_error(
                self.archive,
                name,
                f"takes the unpacked size past the limit of {self.limits.total} bytes",
                f"{BIG} {MAX_BYTES_ENV}",
            )
        dest.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        _copy_member(tar, member, dest)
        self.files.add(name)


def _restore_staging() -> tempfile.TemporaryDirectory[str]:
    """The scratch directory an archive is unpacked into: inside the state root (on the file system the
    restored lab's VM disks move to; removed afterwards)."""
    root = state_root()
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
        return tempfile.TemporaryDirectory(prefix=".labctl-restore-", dir=root)
    except OSError as exc:
        raise LabError(
            printable(
                f"cannot unpack into the state root {root} ({exc.strerror or exc}). "
                "Fix: point LABCTL_STATE_DIR at a writable directory with room for the archive."
            )
        ) from None


def _load_yaml(text: str, archive: Path, member: str) -> Any:
    """One archive member's YAML, read by labctl's bounded loader (size, alias expansion, duplicate keys)."""
    try:
        return yamlload.load(text, f"{archive.name}: {member}", max_bytes=max(len(text.encode()), 1))
    except LabError as exc:
        raise _bad(archive, f"{member} is not YAML labctl reads: {exc}") from None


def _read_member(stage: Path, archive: Path, member: str) -> str:
    path = stage / member
    if not path.is_file():
        raise _bad(archive, f"no {member}" if not path.exists() else f"{member} is not a file")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise _bad(archive, f"{member} is not UTF-8 text") from None


def read_manifest(stage: Path, path: Path) -> dict[str, Any]:
    manifest = _load_yaml(_read_member(stage, path, MANIFEST), path, MANIFEST)
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise _bad(path, f"{MANIFEST} is not a labctl manifest")
    if manifest.get("schema") != SCHEMA:
        raise _bad(path, f"archive schema {printable(repr(manifest.get('schema')))[:40]}, this labctl reads {SCHEMA}")
    if not isinstance(manifest.get("hosts"), dict):
        raise _bad(path, "the manifest lists no hosts")
    if not is_lab_name(manifest.get("lab")):
        raise _bad(path, f"{MANIFEST} field 'lab' is not a lab name")
    for host, entry in manifest["hosts"].items():
        _check_entry(path, host, entry)
    return manifest


def _check_entry(path: Path, host: Any, entry: Any) -> None:
    where = f"{MANIFEST} field 'hosts.{host}'"
    if not is_host_name(host):
        raise _bad(path, f"{where}: not a host name")
    if not isinstance(entry, dict):
        raise _bad(path, f"{where} is not a mapping")
    for key in ("provider", "file"):
        if not isinstance(entry.get(key), str) or not entry[key]:
            raise _bad(path, f"{where} has no {key!r} (a string)")
    file = entry["file"].partition("#")[0]
    if "/" in file or file.startswith(".") or "\\" in file:
        raise _bad(path, f"{where}.file names {file!r}, not a file of the archive's {HOSTS_DIR}/")


def read_topology(stage: Path, archive: Path, target: str, trust: bool) -> dict[str, Any]:
    """The archive's topology, as data: bounded, a mapping, and (unless trust) with nothing that changes how
    Ansible connects or that Ansible would render on this machine (labctl/archive_checks.py)."""
    raw = _load_yaml(_read_member(stage, archive, TOPOLOGY), archive, TOPOLOGY)
    if not isinstance(raw, dict):
        raise _bad(archive, f"{TOPOLOGY} is not a mapping")
    archive_checks.check(raw, str(archive), trust)
    raw["name"] = target
    return raw


def check_providers(archive: Path, topo: Topology, manifest: dict[str, Any]) -> dict[str, dict[str, str]]:
    """provider -> {host: file}: each host's provider is the topology's, never the manifest's; a static host
    (a machine labctl does not own, reached by address) is never restored."""
    hosts = manifest["hosts"]
    extra = sorted(set(hosts) - set(topo.hosts))
    if extra:
        raise _bad(archive, f"{MANIFEST} lists host(s) {', '.join(extra)} that its {TOPOLOGY} does not have")
    missing = sorted(set(topo.hosts) - set(hosts))
    if missing:
        raise _bad(archive, f"no file system for host(s) {', '.join(missing)}")
    static = sorted(h for h, spec in topo.hosts.items() if spec.provider == "static")
    if static:
        raise LabError(
            f"{archive}: member {TOPOLOGY!r} has static host(s) {', '.join(static)}: a restore never reaches a machine "
            "by an address an archive names. Fix: restore only labs of podman and qemu hosts; add static hosts to "
            "the restored lab's topology yourself."
        )
    by_provider: dict[str, dict[str, str]] = {}
    for host, spec in topo.hosts.items():
        if hosts[host]["provider"] != spec.provider:
            raise LabError(
                printable(
                    f"{archive}: member {MANIFEST!r}, field 'hosts.{host}.provider' is {hosts[host]['provider']!r} but "
                    f"{TOPOLOGY} makes host {host!r} a {spec.provider!r} host. Fix: restore only archives written by "
                    "labctl save -o FILE (this one was altered)."
                )
            )
        by_provider.setdefault(spec.provider, {})[host] = hosts[host]["file"]
    return by_provider


@dataclass
class _Made:
    """What one restore made, so a failed restore removes that and nothing else (never a `down` by name)."""

    state_dir: Path | None = None  # the lab's state directory, when this restore made it
    files: list[Path] = field(default_factory=list)  # files it wrote into a state directory that was there
    imported: list[tuple[str, dict[str, str]]] = field(default_factory=list)  # (provider, host -> image)

    def undo(self, lab: Lab) -> None:
        for provider, images in reversed(self.imported):
            with contextlib.suppress(LabError, OSError):
                lab.backend(provider).undo_import(lab.name, images)
        for path in [*self.files, *([self.state_dir] if self.state_dir else [])]:
            with contextlib.suppress(LabError, OSError):
                if path.exists():
                    remove_inside_root(path)


def restore(
    archive: Path, name: str | None = None, say: Say = quiet, trust: bool = False
) -> tuple[Lab, dict[str, Any]]:
    """Make a new lab's hosts from an archive (no package source needed); returns the lab, ready for
    lifecycle.up.up, and the manifest. The caller runs up (converge, smoke).

    The archive is data (docs/ARCHITECTURE.md, "Trust model"): everything in it is checked, and every
    refusal comes before anything is made (containers, images, VM disks, state)."""
    archive = archive.resolve()
    limits = Limits.from_env()
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError, EOFError, zlib.error) as exc:
        raise _bad(archive, f"cannot be opened as tar: {exc}") from None
    with tar, _restore_staging() as tmp:
        stage = Path(tmp)
        say(f"unpacking {archive.name}")
        _Unpacker(archive, stage, limits).run(tar)
        return _restore_staged(archive, stage, name, say, trust)


def _restore_staged(archive: Path, stage: Path, name: str | None, say: Say, trust: bool) -> tuple[Lab, dict[str, Any]]:
    manifest = read_manifest(stage, archive)
    target = name or str(manifest["lab"])
    state = LabState(target)
    if state.exists():
        raise LabError(
            f"lab {target!r} already exists on this machine. Fix: restore under another name "
            f"(labctl up --from {archive} --name NEW), or remove it first (labctl down --name {target})."
        )
    raw = read_topology(stage, archive, target, trust)
    lock_text = _read_member(stage, archive, LOCK)
    topo = parse(raw, archive / TOPOLOGY, paths.known_groups())
    by_provider = check_providers(archive, topo, manifest)
    lab = Lab(topo, state)
    lifecycle_up.check_networks(lab)
    lifecycle_up.check_names(lab)
    for provider, files in by_provider.items():
        lab.backend(provider).check_import(target, files, stage / HOSTS_DIR)
    made = _Made()
    try:
        images = _import(lab, raw, lock_text, by_provider, stage, made, say)
    except BaseException:
        made.undo(lab)
        raise
    lab = Lab(parse(raw, state.dir / TOPOLOGY, paths.known_groups()), state)
    lab.extra.update(
        {
            "images": images,
            "locked": bool(manifest.get("locked")),
            "restored": {
                "archive": str(archive),
                "from_lab": manifest["lab"],
                "saved": str(manifest.get("created"))[:40],
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "secrets": bool(manifest.get("secrets")),
            },
        }
    )
    return lab, manifest


def _import(
    lab: Lab,
    raw: dict[str, Any],
    lock_text: str,
    by_provider: dict[str, dict[str, str]],
    stage: Path,
    made: _Made,
    say: Say,
) -> dict[str, str]:
    """Make the restored lab's state and load its hosts, noting in made each thing as it is made."""
    state = lab.state
    if not state.dir.exists():
        made.state_dir = state.dir
    else:
        made.files += [state.dir / TOPOLOGY, lab.lock_copy, state.dir / SECRETS]
    state.ensure_dir()
    write_atomic(state.dir / TOPOLOGY, yaml.safe_dump(raw, sort_keys=False))
    images: dict[str, str] = {}
    for provider, files in by_provider.items():
        say(f"loading {len(files)} host(s) into {provider}")
        loaded = lab.backend(provider).import_hosts(lab.name, files, stage / HOSTS_DIR)
        made.imported.append((provider, loaded))
        images.update(loaded)
    write_atomic(lab.lock_copy, lock_text, 0o600)
    if (stage / SECRETS).is_dir():
        shutil.copytree(stage / SECRETS, state.dir / SECRETS, dirs_exist_ok=True)
        for item in (state.dir / SECRETS).rglob("*"):
            os.chmod(item, 0o700 if item.is_dir() else 0o600)
    return images
