"""Run on a host being saved (python3 - out|back [keep-secrets]): set aside what must not go into a saved
image, into /run (a tmpfs, never committed), and put it back after the commit.

Always set aside: the host's private SSH host keys (a restored host makes new ones at boot). Unless
keep-secrets: the files roles list as generated secrets in their local fact ("secret_files")."""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys

ASIDE = "/run/labctl-save"
TAR = f"{ASIDE}/aside.tar"


def secret_files(facts_dir: str = "/etc/ansible/facts.d") -> list[str]:
    """The files the roles' local facts list as secrets made on this host (memcached's sasldb and its
    credential digest, MongoDB's replica set key file)."""
    found: list[str] = []
    for path in sorted(glob.glob(f"{facts_dir}/*.fact")):
        try:
            with open(path) as handle:
                fact = json.load(handle)
        except (OSError, ValueError):
            continue
        if isinstance(fact, dict) and isinstance(fact.get("secret_files"), list):
            found += [str(f) for f in fact["secret_files"]]
    return found


def out(keep_secrets: bool) -> None:
    paths = glob.glob("/etc/ssh/ssh_host_*") + ([] if keep_secrets else secret_files())
    paths = [p.lstrip("/") for p in paths if os.path.isabs(p) and os.path.lexists(p)]
    os.makedirs(ASIDE, mode=0o700, exist_ok=True)
    if paths:
        subprocess.run(["tar", "-C", "/", "-cf", TAR, "--remove-files", *paths], check=True)


def back() -> None:
    if os.path.exists(TAR):
        subprocess.run(["tar", "-C", "/", "-xpf", TAR], check=True)
        os.unlink(TAR)
    if os.path.isdir(ASIDE):
        os.rmdir(ASIDE)


if __name__ == "__main__":
    if sys.argv[1] == "out":
        out(keep_secrets="keep-secrets" in sys.argv[2:])
    else:
        back()
