"""What went into a host's converge, and what changed since: the basis of a re-`up` that does no
needless work.

For every host and role the playbook gives it, a fingerprint records the role's files (one digest
per file, so a change can be named), the host's variables as the inventory gives them (one digest
per variable, every layer: all, its groups, the host), the play that runs the role, and the host's identity (its
provider's id: a recreated container is a new host). :func:`plan` compares the fingerprints of the
last successful converge with today's and says, per host, which roles must run and why;
:func:`partial_playbook` writes the playbook that runs exactly those.

Pure logic: files and the inventory are read, nothing is run."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl import yamlload

SKIP_PARTS = {"__pycache__", ".pytest_cache", ".molecule", ".cache"}
ROLE_CHECKS = "checks/"  # a role's smoke checks (labctl.bundles): run by labctl, not part of a converge
# a role that ships files from outside itself names them in its defaults as "{{ role_path }}/../../X"
_OUTSIDE = re.compile(r"\{\{\s*role_path\s*\}\}/((?:\.\./)+[\w./-]+)")
MAX_NAMED = 3  # files or variables named in a reason before "and N more"


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@dataclass(frozen=True)
class Play:
    hosts: str  # the play's host pattern, e.g. "memcached:memcached_clients"
    roles: list[str]  # what runs, by unit: a role of `roles:`, or the play itself when it has tasks
    raw: dict[str, Any]
    uses: dict[str, list[str]] = field(default_factory=dict)  # unit -> the roles whose files it runs


_INCLUDES = {f"{ns}{verb}" for ns in ("", "ansible.builtin.") for verb in ("include_role", "import_role")}


def _included_roles(tasks: Any) -> list[str]:
    """Roles a list of tasks includes or imports (blocks too)."""
    out: list[str] = []
    for task in tasks or []:
        if not isinstance(task, dict):
            continue
        for key, value in task.items():
            if key in _INCLUDES and isinstance(value, dict) and value.get("name"):
                out.append(str(value["name"]))
            elif key in ("block", "rescue", "always"):
                out += _included_roles(value)
    return out


def load_plays(playbook: Path) -> list[Play]:
    """The playbook's plays. A play's `roles:` are units of their own; a play with tasks is one unit,
    named after the play, whose inputs are the roles its tasks include."""
    data = yamlload.load(playbook.read_text(), str(playbook)) or []
    plays = []
    for raw in data:
        roles = [r["role"] if isinstance(r, dict) else str(r) for r in raw.get("roles") or []]
        uses = {r: [r] for r in roles}
        if any(raw.get(k) for k in ("pre_tasks", "tasks", "post_tasks", "handlers")):
            unit = f"play {raw.get('name', raw.get('hosts'))!r}"
            included = [_included_roles(raw.get(k)) for k in ("pre_tasks", "tasks", "post_tasks", "handlers")]
            uses[unit] = list(dict.fromkeys(r for found in included for r in found))
            roles.append(unit)
        plays.append(Play(str(raw.get("hosts", "")), roles, raw, uses))
    return plays


def play_matches(pattern: str, host: str, groups: set[str]) -> bool:
    """True when a simple host pattern (names joined by ':' or ',') selects the host."""
    names = {p.strip() for p in re.split(r"[:,]", pattern) if p.strip()}
    return bool(names & ({"all", host} | groups))


def role_dir(role: str, playbook: Path, roles_dir: Path) -> Path:
    """Where Ansible finds a role: the playbook's own roles/ first, then roles_path."""
    local = playbook.parent / "roles" / role
    return local if local.is_dir() else roles_dir / role


def _tree(base: Path, prefix: str, out: dict[str, str]) -> None:
    if base.is_file():
        out[prefix] = _digest(base.read_bytes())
        return
    for path in sorted(base.rglob("*")):
        rel = path.relative_to(base)
        if path.is_file() and not (SKIP_PARTS & set(rel.parts)) and path.suffix != ".pyc":
            out[f"{prefix}{rel}"] = _digest(path.read_bytes())


def role_files(directory: Path) -> dict[str, str]:
    """Relative path -> digest of every file of the role, plus what its defaults ship from outside it."""
    out: dict[str, str] = {}
    _tree(directory, "", out)
    for rel in [r for r in out if r.startswith(ROLE_CHECKS)]:  # labctl's side: Ansible never ships it
        del out[rel]
    defaults = directory / "defaults" / "main.yml"
    if defaults.is_file():
        for rel in _OUTSIDE.findall(defaults.read_text()):
            outside = (directory / rel).resolve()
            if outside.exists():
                _tree(outside, f"{rel.rstrip('/')}/", out)
    return out


def host_vars(inventory: dict[str, Any], host: str) -> dict[str, str]:
    """Variable name -> digest of every value the inventory gives the host for it (all, its groups
    by name, the host), so any change that can reach the host changes the digest."""
    root = inventory.get("all") or {}
    layers: dict[str, list[tuple[str, Any]]] = {}
    for name, value in (root.get("vars") or {}).items():
        layers.setdefault(name, []).append(("all", value))
    for group, entry in sorted((root.get("children") or {}).items()):
        entry = entry or {}
        if host in (entry.get("hosts") or {}):
            for name, value in (entry.get("vars") or {}).items():
                layers.setdefault(name, []).append((f"group {group}", value))
    for name, value in ((root.get("hosts") or {}).get(host) or {}).items():
        layers.setdefault(name, []).append(("host", value))
    return {k: _digest(json.dumps(v, sort_keys=True, default=str).encode()) for k, v in sorted(layers.items())}


def host_groups(inventory: dict[str, Any], host: str) -> set[str]:
    children = (inventory.get("all") or {}).get("children") or {}
    return {g for g, entry in children.items() if host in ((entry or {}).get("hosts") or {})}


@dataclass
class Fingerprint:
    """What went into one host's converge."""

    identity: str
    vars: dict[str, str]
    roles: dict[str, dict[str, str]]  # role -> file -> digest

    def to_json(self) -> dict[str, Any]:
        return {"identity": self.identity, "vars": self.vars, "roles": self.roles}

    @classmethod
    def from_json(cls, data: Any) -> Fingerprint | None:
        if not isinstance(data, dict) or not isinstance(data.get("roles"), dict):
            return None
        return cls(str(data.get("identity")), dict(data.get("vars") or {}), data["roles"])


def fingerprints(
    playbook: Path, roles_dir: Path, inventory: dict[str, Any], identities: dict[str, str]
) -> dict[str, Fingerprint]:
    """Today's fingerprint of every host (identities: host -> its provider's id)."""
    plays = load_plays(playbook)
    files: dict[str, dict[str, str]] = {}
    out = {}
    for host, identity in identities.items():
        groups = host_groups(inventory, host)
        roles: dict[str, dict[str, str]] = {}
        for play in plays:
            if not play_matches(play.hosts, host, groups):
                continue
            # the play itself counts as one of its roles' inputs (less its host pattern: membership shows
            # in the roles a host has)
            text = json.dumps({k: v for k, v in play.raw.items() if k != "hosts"}, sort_keys=True, default=str)
            for unit in play.roles:
                inputs = roles.setdefault(unit, {})
                for role in play.uses.get(unit, []):
                    if role not in files:
                        files[role] = role_files(role_dir(role, playbook, roles_dir))
                    inputs.update({(f if role == unit else f"{role}/{f}"): d for f, d in files[role].items()})
                inputs[f"play {play.raw.get('name', play.hosts)!r}"] = _digest(text.encode())
        out[host] = Fingerprint(identity, host_vars(inventory, host), roles)
    return out


def _named(items: list[str]) -> str:
    shown = ", ".join(items[:MAX_NAMED])
    return shown + (f" and {len(items) - MAX_NAMED} more" if len(items) > MAX_NAMED else "")


def _changed(old: dict[str, str], new: dict[str, str]) -> list[str]:
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


@dataclass
class HostPlan:
    """The roles to run on one host, each with why (in playbook order)."""

    roles: dict[str, str] = field(default_factory=dict)
    why: str = ""  # a reason that covers every role of the host (new host, variables...)


def plan_host(old: Fingerprint | None, new: Fingerprint) -> HostPlan:
    if old is None:
        return HostPlan({r: "no converge recorded" for r in new.roles}, "no converge recorded")
    whole = ""
    if old.identity != new.identity:
        whole = "host recreated"
    else:
        changed_vars = _changed(old.vars, new.vars)
        if changed_vars:
            whole = f"variables changed: {_named(changed_vars)}"
    if whole:
        return HostPlan({r: whole for r in new.roles}, whole)
    out = HostPlan()
    for role, files in new.roles.items():
        if role not in old.roles:
            out.roles[role] = "role added"
        else:
            changed = _changed(old.roles[role], files)
            if changed:
                out.roles[role] = f"changed: {_named(changed)}"
    return out


def plan(old: dict[str, Fingerprint | None], new: dict[str, Fingerprint]) -> dict[str, HostPlan]:
    """Per host (those with something to do only), the roles to run and why."""
    out = {}
    for host, fp in new.items():
        host_plan = plan_host(old.get(host), fp)
        if host_plan.roles:
            out[host] = host_plan
    return out


def full_plan(new: dict[str, Fingerprint], why: str) -> dict[str, HostPlan]:
    return {h: HostPlan({r: why for r in fp.roles}, why) for h, fp in new.items() if fp.roles}


def describe(todo: dict[str, HostPlan]) -> list[str]:
    """One line per host: "web: mongrel2 changed: templates/x.j2" or "db: every role (host recreated)"."""
    lines = []
    for host, hp in todo.items():
        if hp.why:
            lines.append(f"{host}: {', '.join(hp.roles)} ({hp.why})")
        else:
            lines.append(f"{host}: " + "; ".join(f"{role} {why}" for role, why in hp.roles.items()))
    return lines


def roles_path(playbook: Path, roles_dir: Path) -> str:
    """ANSIBLE_ROLES_PATH for a playbook written elsewhere: the playbook's roles/, then roles_path."""
    return f"{playbook.parent.resolve() / 'roles'}:{roles_dir}"


def partial_playbook(playbook: Path, todo: dict[str, HostPlan], order: list[str]) -> str:
    """The playbook as YAML, each play limited to the hosts that need its roles (in topology order,
    ``order``); plays nobody needs are left out. It lives elsewhere than the playbook: run it with
    :func:`roles_path` so its roles resolve as the playbook's do."""
    out = []
    for play in load_plays(playbook):
        hosts = [h for h in order if h in todo and any(r in todo[h].roles for r in play.roles)]
        if not hosts:
            continue
        raw = dict(play.raw)
        raw["hosts"] = ",".join(hosts)
        out.append(raw)
    return f"# Generated by labctl from {playbook}: only what changed. Do not edit.\n" + yaml.safe_dump(
        out, sort_keys=False
    )
