"""Run on a lab host (python3 - MODE < this file): what is installed there, as JSON on stdout.

MODE collect: {"debian": {pkg: version}, "origins": {pkg: origin}, "python": {env: {dist: version}},
"sources": [apt source lines], "roles": {role: source}}.
MODE available (a JSON {pkg: version} on the file named by argv[2]): {"missing": {pkg: version},
"elsewhere": {pkg: origin}} after an `apt-get update`: locked versions that neither dpkg has nor
a configured apt source offers ("elsewhere": from an origin no source of the host names yet,
e.g. a repository a role adds).

Standard library only (python3-apt is used when present). Never prints a secret."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
from typing import Any

VENV_ROOTS = ("/opt", "/srv", "/usr/local", "/root", "/home", "/var/lib")
VENV_DEPTH = 4
LIST_DISTS = (
    "import importlib.metadata as m, json, sys\n"
    "out = {}\n"
    "for d in m.distributions():\n"
    "    name = (d.metadata['Name'] or '').lower().replace('_', '-')\n"
    "    if name and name not in out: out[name] = d.version  # the first copy is the one imported\n"
    "json.dump(out, sys.stdout)\n"
)


def dpkg() -> dict[str, str]:
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${db:Status-Abbrev}\t${Package}\t${Version}\n"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    pkgs: dict[str, str] = {}
    for line in out.splitlines():
        status, _, rest = line.partition("\t")
        name, _, version = rest.partition("\t")
        if status.startswith("ii") and name:
            pkgs[name] = version
    return pkgs


def origins(pkgs: dict[str, str]) -> dict[str, str]:
    """Where each installed version came from: 'site archive/component', or 'local'."""
    try:
        import apt  # python3-apt
    except ImportError:
        return {}
    cache = apt.Cache()
    out: dict[str, str] = {}
    for name in pkgs:
        if name not in cache or cache[name].installed is None:
            continue
        found = "local"
        for origin in cache[name].installed.origins:
            if origin.site:
                found = f"{origin.site} {origin.archive}/{origin.component}"
                break
        out[name] = found
    return out


def venvs() -> list[str]:
    found = []
    for root in VENV_ROOTS:
        for depth in range(1, VENV_DEPTH + 1):
            pattern = os.path.join(root, *(["*"] * (depth - 1)), "pyvenv.cfg")
            found += [os.path.dirname(p) for p in glob.glob(pattern)]
    return sorted(set(found))


def dists(python: str) -> dict[str, str] | None:
    try:
        result = subprocess.run([python, "-c", LIST_DISTS], capture_output=True, text=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return dict(sorted(json.loads(result.stdout or "{}").items()))


def python_envs() -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    system = dists("/usr/bin/python3")
    if system is not None:
        out["system"] = system
    for venv in venvs():
        listed = dists(os.path.join(venv, "bin", "python"))
        if listed is not None:
            out[venv] = listed
    return out


def sources() -> list[str]:
    lines = []
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        try:
            with open(path) as handle:
                lines += [ln.strip() for ln in handle if ln.strip().startswith("deb")]
        except OSError:
            continue
    return lines


def roles() -> dict[str, str]:
    """Every role that ran here (its local fact) and its package source (the fact's 'source', else apt)."""
    out = {}
    for path in sorted(glob.glob("/etc/ansible/facts.d/*.fact")):
        role = os.path.basename(path)[: -len(".fact")]
        source = "apt"
        try:
            with open(path) as handle:
                fact: Any = json.load(handle)
            if isinstance(fact, dict) and isinstance(fact.get("source"), str):
                source = fact["source"]
        except (OSError, ValueError):
            pass
        out[role] = source
    return out


def collect() -> dict[str, Any]:
    pkgs = dpkg()
    return {
        "debian": dict(sorted(pkgs.items())),
        "origins": origins(pkgs),
        "python": python_envs(),
        "sources": sources(),
        "roles": roles(),
    }


def offered() -> dict[str, set[str]]:
    """Versions the configured apt sources offer, by package (apt-cache madison)."""
    out: dict[str, set[str]] = {}
    try:
        import apt

        cache = apt.Cache()
        for pkg in cache:
            out[pkg.name] = {v.version for v in pkg.versions if v.downloadable}
        return out
    except ImportError:
        pass
    return out


def available(locked: dict[str, str], locked_origins: dict[str, str]) -> dict[str, Any]:
    update = subprocess.run(["apt-get", "update", "-qq"], capture_output=True, text=True, check=False)
    have = dpkg()
    offers = offered()
    if not offers:  # no python3-apt: ask apt-cache madison
        out = subprocess.run(["apt-cache", "madison", *locked], capture_output=True, text=True, check=False).stdout
        for line in out.splitlines():
            parts = [p.strip() for p in line.split("|")]
            if len(parts) >= 2:
                offers.setdefault(parts[0], set()).add(parts[1])
    sites = " ".join(sources())
    missing: dict[str, str] = {}
    elsewhere: dict[str, str] = {}
    for name, version in locked.items():
        if have.get(name) == version or version in offers.get(name, set()):
            continue
        origin = locked_origins.get(name, "")
        site = origin.split(" ")[0]
        if site and site != "local" and site not in sites:
            elsewhere[name] = origin
        else:
            missing[name] = version
    return {"missing": missing, "elsewhere": elsewhere, "update_errors": update.stderr.strip()[-2000:]}


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "collect"
    if mode == "collect":
        json.dump(collect(), sys.stdout)
    elif mode == "available":
        with open(sys.argv[2]) as handle:
            wanted = json.load(handle)
        json.dump(available(wanted["debian"], wanted.get("origins", {})), sys.stdout)
    else:
        sys.exit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
