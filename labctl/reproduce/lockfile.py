"""The lock file format (LAB.lock beside LAB.yml): what a working lab contained, exactly.

Pure data and logic: reading, writing, validating a lock, and comparing one with what runs. Collecting
it from hosts is labctl.reproduce.locked's job."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl import yamlload
from labctl.errors import LabError

SCHEMA = 1
HEADER = (
    "# labctl lock: the exact package versions of a working lab. Written by 'labctl lock';\n"
    "# 'labctl up --locked' rebuilds them, 'labctl lock --check' compares a running lab with them.\n"
)


@dataclass
class HostLock:
    """What one host runs: Debian packages (name -> version), Python distributions per environment
    ('system' or a venv's path -> {name: version}), where packages came from, and each role's source."""

    debian: dict[str, str] = field(default_factory=dict)
    python: dict[str, dict[str, str]] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # package -> "site archive/component" or "local"
    sources: list[str] = field(default_factory=list)  # apt source lines
    roles: dict[str, str] = field(default_factory=dict)  # role -> its package source

    def to_dict(self) -> dict[str, Any]:
        return {
            "roles": dict(sorted(self.roles.items())),
            "sources": list(self.sources),
            "debian": dict(sorted(self.debian.items())),
            "python": {env: dict(sorted(d.items())) for env, d in sorted(self.python.items())},
            "origins": dict(sorted(self.origins.items())),
        }


@dataclass
class Lock:
    lab: str
    topology_sha256: str
    image: dict[str, str]  # recipe_hash, id, tag (empty for providers without an image)
    project: dict[str, Any]  # commit, dirty, version
    hosts: dict[str, HostLock]
    created: str = ""
    schema: int = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "lab": self.lab,
            "created": self.created,
            "topology_sha256": self.topology_sha256,
            "image": dict(self.image),
            "project": dict(self.project),
            "hosts": {name: h.to_dict() for name, h in self.hosts.items()},
        }

    def dumps(self) -> str:
        return HEADER + yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=False, width=200)

    def pins(self, host: str) -> dict[str, Any]:
        """The inventory variables `up --locked` gives a host (common's pin maps)."""
        h = self.hosts[host]
        return {
            "common_apt_pins": dict(h.debian),
            "common_python_pins": python_pins(h.python),
            "common_python_env_pins": {env: dict(d) for env, d in h.python.items()},
        }


def python_pins(envs: dict[str, dict[str, str]]) -> dict[str, str]:
    """One constraint per distribution for pip; a name locked at two versions in two environments is left out."""
    seen: dict[str, set[str]] = {}
    for dists in envs.values():
        for name, version in dists.items():
            seen.setdefault(name, set()).add(version)
    return {name: next(iter(v)) for name, v in sorted(seen.items()) if len(v) == 1}


def topology_hash(raw: dict[str, Any]) -> str:
    """A hash of the topology's content, without its name (a lab restored under another name keeps it)."""
    content = {k: v for k, v in raw.items() if k != "name"}
    return hashlib.sha256(json.dumps(content, sort_keys=True, default=str).encode()).hexdigest()


def lock_path(topology_file: Path) -> Path:
    """LAB.lock beside LAB.yml."""
    return topology_file.with_suffix(".lock")


def _damaged(path: Path, problem: str) -> LabError:
    return LabError(
        f"{path}: the lock file is damaged ({problem}). "
        "Fix: restore it from version control, or write a new one from a working lab with 'labctl lock'."
    )


def _str_map(value: Any, path: Path, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _damaged(path, f"{where} must be a mapping of names to versions")
    if not all(isinstance(v, str) for v in value.values()):
        bad = next(k for k, v in value.items() if not isinstance(v, str))
        raise _damaged(path, f"{where}.{bad} must be a version string (quote it)")
    return dict(value)


def _document(text: str, path: Path) -> dict[str, Any]:
    """The lock's top level, checked: a mapping of this schema naming its lab and topology."""
    try:
        data = yamlload.load(text, str(path))
    except yamlload.Refused as exc:
        raise _damaged(path, exc.problem) from None
    if not isinstance(data, dict):
        raise _damaged(path, "not a mapping")
    schema = data.get("schema")
    if schema != SCHEMA:
        if isinstance(schema, int) and schema > SCHEMA:
            raise LabError(
                f"{path}: lock schema {schema} is newer than this labctl reads (schema {SCHEMA}). "
                "Fix: upgrade labctl, or write a new lock with 'labctl lock'."
            )
        raise _damaged(path, f"schema is {schema!r}, expected {SCHEMA}")
    for key in ("lab", "topology_sha256"):
        if not isinstance(data.get(key), str):
            raise _damaged(path, f"'{key}' is missing or not a string")
    return data


def _host(name: str, h: Any, path: Path) -> HostLock:
    """One host's entry, checked."""
    if not isinstance(h, dict):
        raise _damaged(path, f"hosts.{name} is not a mapping")
    python = h.get("python") or {}
    if not isinstance(python, dict):
        raise _damaged(path, f"hosts.{name}.python must map environments to packages")
    sources = h.get("sources") or []
    if not isinstance(sources, list):
        raise _damaged(path, f"hosts.{name}.sources must be a list")
    return HostLock(
        debian=_str_map(h.get("debian"), path, f"hosts.{name}.debian"),
        python={str(env): _str_map(d, path, f"hosts.{name}.python.{env}") for env, d in python.items()},
        origins=_str_map(h.get("origins") or {}, path, f"hosts.{name}.origins"),
        sources=[str(s) for s in sources],
        roles=_str_map(h.get("roles") or {}, path, f"hosts.{name}.roles"),
    )


def parse(text: str, path: Path) -> Lock:
    data = _document(text, path)
    hosts = data.get("hosts")
    if not isinstance(hosts, dict) or not hosts:
        raise _damaged(path, "'hosts' is missing or empty")
    parsed = {str(name): _host(str(name), h, path) for name, h in hosts.items()}
    image, project = data.get("image") or {}, data.get("project") or {}
    if not isinstance(image, dict) or not isinstance(project, dict):
        raise _damaged(path, "'image' and 'project' must be mappings")
    return Lock(
        lab=data["lab"],
        topology_sha256=data["topology_sha256"],
        image={str(k): str(v) for k, v in image.items()},
        project=dict(project),
        hosts=parsed,
        created=str(data.get("created", "")),
    )


def read(path: Path) -> Lock:
    try:
        text = path.read_text()
    except FileNotFoundError:
        topo = path.with_suffix(".yml")
        raise LabError(f"{path}: no lock file. Fix: write one from the running lab: labctl lock -f {topo}.") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise _damaged(path, f"cannot be read: {exc}") from None
    return parse(text, path)


@dataclass(frozen=True)
class Drift:
    """One difference between the lock and a running lab ('absent' on the side that lacks it)."""

    host: str
    kind: str  # debian | python:<env> | host | topology
    package: str
    locked: str
    running: str

    def line(self) -> str:
        return f"{self.host}: {self.kind} {self.package}: {self.locked} → {self.running}"


ABSENT = "absent"


def _diff_map(host: str, kind: str, locked: dict[str, str], running: dict[str, str]) -> list[Drift]:
    out = []
    for name in sorted(set(locked) | set(running)):
        a, b = locked.get(name, ABSENT), running.get(name, ABSENT)
        if a != b:
            out.append(Drift(host, kind, name, a, b))
    return out


def diff(lock: Lock, running: dict[str, HostLock], topology_sha256: str | None = None) -> list[Drift]:
    """Every difference of packages (and of the topology, when its hash is given) between lock and lab."""
    out: list[Drift] = []
    if topology_sha256 is not None and topology_sha256 != lock.topology_sha256:
        out.append(Drift("-", "topology", "sha256", lock.topology_sha256[:12], topology_sha256[:12]))
    for host in sorted(set(lock.hosts) | set(running)):
        if host not in running:
            out.append(Drift(host, "host", host, "locked", ABSENT))
            continue
        if host not in lock.hosts:
            out.append(Drift(host, "host", host, ABSENT, "running"))
            continue
        want, have = lock.hosts[host], running[host]
        out += _diff_map(host, "debian", want.debian, have.debian)
        for env in sorted(set(want.python) | set(have.python)):
            out += _diff_map(host, f"python:{env}", want.python.get(env, {}), have.python.get(env, {}))
    return out
