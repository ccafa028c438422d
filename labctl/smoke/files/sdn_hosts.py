"""Runs on the sdn host: what every emulated host is; prints {name: {port, mac, ip, prefix}}.

Usage: python3 - '["h1", "h2", ...]'
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def describe(name: str) -> dict[str, Any]:
    port = int(run("ovs-vsctl", "get", "interface", name, "ofport"))
    link = json.loads(run("ip", "-n", name, "-j", "link", "show", name))[0]
    addr = json.loads(run("ip", "-n", name, "-j", "-4", "addr", "show", name))[0]["addr_info"]
    return {"port": port, "mac": link["address"], "ip": addr[0]["local"], "prefix": addr[0]["prefixlen"]}


def main(names: list[str]) -> None:
    print(json.dumps({name: describe(name) for name in names}))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
