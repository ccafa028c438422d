"""Runs on the sdn host: pings [[netns, address], ...] in parallel; prints a JSON list of booleans.

Usage: python3 - '[["h1", "198.19.250.2"], ...]'
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor


def ping(pair: list[str]) -> bool:
    netns, address = pair
    cmd = ["ip", "netns", "exec", netns, "ping", "-n", "-q", "-c", "3", "-i", "0.3", "-W", "1", address]
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0


def main(pairs: list[list[str]]) -> None:
    with ThreadPoolExecutor(8) as pool:
        print(json.dumps(list(pool.map(ping, pairs))))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
