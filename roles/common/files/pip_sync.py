"""Run on a lab host (python3 - PINS_JSON): bring each Python distribution of the locked environments
that runs at another version back to its locked one (role common, `labctl up --locked`).

PINS_JSON: {env: {name: version}}; env is "system" (/usr/bin/python3) or a virtualenv's directory.
An environment that does not exist (yet) is left alone, and so is a distribution it does not have.
Where pip installed a distribution over another copy that is at the locked version (e.g. Debian's,
under /usr/lib/python3/dist-packages), the pip copy is uninstalled and the locked copy runs again:
no download. Any other is installed at its locked version (pip --no-deps: its dependencies are
locked too). Prints {"changed": ["env: name old -> new", ...]}; exits 1 naming what still differs.
Standard library only."""

from __future__ import annotations

import json
import os
import subprocess
import sys

LIST = (
    "import importlib.metadata as m, json, sys\n"
    "out = {}\n"
    "for d in m.distributions():\n"
    "    name = (d.metadata['Name'] or '').lower().replace('_', '-')\n"
    "    if name: out.setdefault(name, []).append(d.version)\n"
    "json.dump(out, sys.stdout)\n"
)


def python_of(env: str) -> str:
    return "/usr/bin/python3" if env == "system" else os.path.join(env, "bin", "python")


def listed(python: str) -> dict[str, list[str]]:
    """name -> versions of every copy, in import order (the first one runs)."""
    result = subprocess.run([python, "-c", LIST], capture_output=True, text=True, check=True)
    return json.loads(result.stdout or "{}")


def pip(python: str, system: bool, *args: str) -> None:
    extra = ["--break-system-packages"] if system else []
    subprocess.run([python, "-m", "pip", *args, "--no-input", *extra], capture_output=True, text=True, check=True)


def sync(env: str, pins: dict[str, str], changed: list[str], failed: list[str]) -> None:
    python = python_of(env)
    if not os.path.exists(python):
        return
    have = listed(python)
    for name, version in sorted(pins.items()):
        copies = have.get(name)
        if not copies or copies[0] == version:
            continue
        try:
            if version in copies[1:]:  # a pip copy over the locked one: remove it
                pip(python, env == "system", "uninstall", "-y", name)
            else:
                pip(python, env == "system", "install", "--no-deps", f"{name}=={version}")
        except subprocess.CalledProcessError as exc:
            failed.append(f"{env}: {name} {copies[0]} -> {version}: {(exc.stderr or exc.stdout).strip()[-300:]}")
            continue
        changed.append(f"{env}: {name} {copies[0]} -> {version}")
    after = listed(python)
    failed += [
        f"{env}: {name} is {after[name][0]}, locked {version}"
        for name, version in sorted(pins.items())
        if after.get(name) and after[name][0] != version and not any(f.startswith(f"{env}: {name} ") for f in failed)
    ]


def main() -> int:
    pins = json.loads(sys.argv[1])
    changed: list[str] = []
    failed: list[str] = []
    for env, dists in sorted(pins.items()):
        sync(env, dists, changed, failed)
    print(json.dumps({"changed": changed, "failed": failed}))
    if failed:
        print("\n".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
