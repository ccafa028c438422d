"""Runs on the sdn host: a batch of steps in one program (one SSH round trip); prints a JSON list with
one result per step, in order.

Usage: python3 - '[STEP, ...]'   where STEP is one of
  ["http", METHOD, URL, BODY, [STATUS, ...]]
                                    one REST request (BODY: JSON text or ""): {"status", "body"}
                                    (status 0: no answer, body the reason); a
                                    status not in the list ends the batch (later steps do not run)
  ["pings", [[NETNS, ADDRESS, WANT], ...]]
                                    pings, all at once: a list of booleans (reached or not)
  ["wait_pings", [[NETNS, ADDRESS, WANT], ...], TIMEOUT]
                                    pings until every pair's outcome is WANT, polled here on the host
                                    (no SSH round trip per try): {"ok", "got", "seconds"}
  ["wait_http", URL, TIMEOUT]       GET URL until it answers 200: {"ok", "seconds"}
  ["sh", COMMAND]                   a shell command: {"exit", "stdout", "stderr"}
  ["wait_sh", COMMAND, STDOUT, TIMEOUT]
                                    runs COMMAND until it prints STDOUT (stripped): {"ok", "seconds"}
  ["hosts", [NAME, ...], BRIDGE]    each emulated host's {port, mac, ip, prefix} and the bridge's
                                    datapath id: {"hosts": {NAME: {...}}, "dpid": INT}

A ping counts as reached when one echo reply comes back: it sends a request every 0.1 s until the first
reply (3-50 ms between emulated hosts on a quiet machine, ARP and the controller's flow set-up
included) or until its deadline. A pair that must reach (WANT true) gets 5 s, so a loaded machine does
not fail it, and answers at once when healthy; a pair that must not reach gets 1 s: 10 requests (the
former ping -c 3 -W 1 sent 3) and its first one as long a wait for a reply as before (1 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from typing import Any

DEADLINE = {True: "5", False: "1"}  # seconds a ping waits for its first reply, by what the pair must do


def http(method: str, url: str, body: str) -> dict[str, Any]:
    req = urllib.request.Request(
        url,
        method=method,
        data=body.encode() if body else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except OSError as exc:  # refused, timed out: status 0, the reason as the body
        return {"status": 0, "body": str(exc)}
    return {"status": status, "body": json.loads(raw) if raw.strip() else None}


def ping(pair: list[Any]) -> bool:
    netns, address, want = pair
    deadline = DEADLINE[bool(want)]
    cmd = ["ip", "netns", "exec", netns, "ping", "-n", "-q", "-c", "1", "-i", "0.1", "-w", deadline, address]
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False).returncode == 0


def pings(pairs: list[list[Any]]) -> list[bool]:
    if not pairs:
        return []
    with ThreadPoolExecutor(len(pairs)) as pool:
        return list(pool.map(ping, pairs))


def wait_pings(pairs: list[list[Any]], timeout: float) -> dict[str, Any]:
    start = time.monotonic()
    while True:
        got = pings(pairs)
        ok = all(g == p[2] for g, p in zip(got, pairs, strict=True))
        if ok or time.monotonic() - start > timeout:
            return {"ok": ok, "got": got, "seconds": round(time.monotonic() - start, 2)}
        time.sleep(0.1)


def wait_http(url: str, timeout: float) -> dict[str, Any]:
    start = time.monotonic()
    while True:
        try:
            ok = http("GET", url, "")["status"] == 200
        except ValueError:  # not JSON yet
            ok = False
        if ok or time.monotonic() - start > timeout:
            return {"ok": ok, "seconds": round(time.monotonic() - start, 2)}
        time.sleep(0.05)


def run(*cmd: str) -> str:
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def describe(name: str) -> dict[str, Any]:
    port = int(run("ovs-vsctl", "get", "interface", name, "ofport"))
    link = json.loads(run("ip", "-n", name, "-j", "link", "show", name))[0]
    addr = json.loads(run("ip", "-n", name, "-j", "-4", "addr", "show", name))[0]["addr_info"]
    return {"port": port, "mac": link["address"], "ip": addr[0]["local"], "prefix": addr[0]["prefixlen"]}


def hosts(names: list[str], bridge: str) -> dict[str, Any]:
    dpid = int(run("ovs-vsctl", "get", "bridge", bridge, "datapath_id").strip().strip('"'), 16)
    return {"hosts": {name: describe(name) for name in names}, "dpid": dpid}


def sh(command: str) -> dict[str, Any]:
    res = subprocess.run(command, shell=True, capture_output=True, text=True, check=False)
    return {"exit": res.returncode, "stdout": res.stdout, "stderr": res.stderr}


def wait_sh(command: str, stdout: str, timeout: float) -> dict[str, Any]:
    start = time.monotonic()
    while True:
        ok = sh(command)["stdout"].strip() == stdout
        if ok or time.monotonic() - start > timeout:
            return {"ok": ok, "seconds": round(time.monotonic() - start, 2)}
        time.sleep(0.05)


def step(item: list[Any]) -> Any:
    kind, args = item[0], item[1:]
    if kind == "http":
        return http(*args[:3])
    if kind == "pings":
        return pings(*args)
    if kind == "wait_pings":
        return wait_pings(*args)
    if kind == "wait_http":
        return wait_http(*args)
    if kind == "sh":
        return sh(*args)
    if kind == "wait_sh":
        return wait_sh(*args)
    if kind == "hosts":
        return hosts(*args)
    raise SystemExit(f"unknown step {kind!r}")


def main(steps: list[list[Any]]) -> None:
    results = []
    for item in steps:
        results.append(step(item))
        if item[0] == "http" and len(item) > 4 and results[-1]["status"] not in item[4]:
            break
    print(json.dumps(results))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
