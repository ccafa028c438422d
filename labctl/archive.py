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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import yaml

from labctl import lab as labmod
from labctl import lockrun, paths, secretvars
from labctl.errors import LabError
from labctl.lab import Lab, Say, _quiet
from labctl.state import LabState, write_atomic
from labctl.topology import parse

KIND = "labctl-saved-lab"
SCHEMA = 1
MANIFEST = "manifest.yml"
TOPOLOGY = "topology.yml"
LOCK = "lab.lock"
SECRETS = "secrets"
HOSTS_DIR = "hosts"


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


def save(lab: Lab, out: Path, with_secrets: bool = False, say: Say = _quiet) -> SaveReport:
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
    found = lockrun.collect(lab)
    raw = lockrun.topology_raw(lab)
    raw["name"] = lab.name
    with lab.state.locked(), _staging(out.parent) as tmp:
        stage = Path(tmp)
        (stage / HOSTS_DIR).mkdir()
        files: dict[str, dict[str, str]] = {}
        runner = lab.runner()  # for providers with no way of their own into a running host (VMs)
        try:
            for name, specs in lab.providers().items():
                backend = lab.backend(name)
                kind = str(getattr(backend, "host_kind", "container"))
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
        f"{path}: not a saved lab labctl can restore ({problem}). "
        "Fix: name an archive written by 'labctl save -o FILE'."
    )


def read_manifest(tar: tarfile.TarFile, path: Path) -> dict[str, Any]:
    try:
        member = tar.extractfile(MANIFEST)
    except KeyError:
        raise _bad(path, f"no {MANIFEST}") from None
    if member is None:
        raise _bad(path, f"{MANIFEST} is not a file")
    try:
        manifest = yaml.safe_load(member.read())
    except yaml.YAMLError:
        raise _bad(path, f"{MANIFEST} is not YAML") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        raise _bad(path, f"{MANIFEST} is not a labctl manifest")
    if manifest.get("schema") != SCHEMA:
        raise _bad(path, f"archive schema {manifest.get('schema')!r}, this labctl reads {SCHEMA}")
    if not isinstance(manifest.get("hosts"), dict):
        raise _bad(path, "the manifest lists no hosts")
    return manifest


def restore(archive: Path, name: str | None = None, say: Say = _quiet) -> tuple[Lab, dict[str, Any]]:
    """Make a new lab's hosts from an archive (no package source needed); returns the lab, ready for
    labmod.up, and the manifest. The caller runs up (converge, smoke)."""
    archive = archive.resolve()
    try:
        tar = tarfile.open(archive, mode="r:*")  # noqa: SIM115 (closed by the with below)
    except (OSError, tarfile.TarError) as exc:
        raise _bad(archive, f"cannot be opened as tar: {exc}") from None
    with tar, tempfile.TemporaryDirectory(prefix="labctl-restore-", dir="/var/tmp") as tmp:
        manifest = read_manifest(tar, archive)
        target = name or str(manifest["lab"])
        state = LabState(target)
        if state.exists():
            raise LabError(
                f"lab {target!r} already exists on this machine. Fix: restore under another name "
                f"(labctl up --from {archive} --name NEW), or remove it first (labctl down --name {target})."
            )
        stage = Path(tmp)
        say(f"unpacking {archive.name}")
        tar.extractall(stage, filter="data")
        raw = yaml.safe_load((stage / TOPOLOGY).read_text())
        if not isinstance(raw, dict):
            raise _bad(archive, f"{TOPOLOGY} is not a mapping")
        raw["name"] = target
        state.ensure_dir()
        topo_file = state.dir / TOPOLOGY
        write_atomic(topo_file, yaml.safe_dump(raw, sort_keys=False))
        try:
            topo = parse(raw, topo_file, paths.known_groups())
            lab = Lab(topo, state)
            missing = sorted(set(topo.hosts) - set(manifest["hosts"]))
            if missing:
                raise _bad(archive, f"no file system for host(s) {', '.join(missing)}")
            labmod.check_networks(lab)
            labmod.check_names(lab)
            images: dict[str, str] = {}
            by_provider: dict[str, dict[str, str]] = {}
            for host, entry in manifest["hosts"].items():
                by_provider.setdefault(str(entry["provider"]), {})[str(host)] = str(entry["file"])
            for provider, files in by_provider.items():
                say(f"loading {len(files)} host(s) into {provider}")
                images.update(lab.backend(provider).import_hosts(target, files, stage / HOSTS_DIR))
            write_atomic(lab.lock_copy, (stage / LOCK).read_text(), 0o600)
            if (stage / SECRETS).is_dir():
                shutil.copytree(stage / SECRETS, state.dir / SECRETS, dirs_exist_ok=True)
                for item in (state.dir / SECRETS).rglob("*"):
                    os.chmod(item, 0o700 if item.is_dir() else 0o600)
        except BaseException:
            with contextlib.suppress(LabError):
                labmod.down(target)
            raise
    lab.extra.update(
        {
            "images": images,
            "locked": bool(manifest.get("locked")),
            "restored": {
                "archive": str(archive),
                "from_lab": manifest["lab"],
                "saved": manifest.get("created"),
                "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "secrets": bool(manifest.get("secrets")),
            },
        }
    )
    return lab, manifest
