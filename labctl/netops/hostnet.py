"""Address space on the host that a lab's subnets must not overlap: networks labctl did not make
(podman's own `podman` network is 10.88.0.0/16) and the host's routes (`ip -j route`)."""

from __future__ import annotations

import json
import subprocess
from typing import Any

Reserved = tuple[str, str]  # (what, subnet)


def foreign(networks: list[dict[str, Any]], routes: list[dict[str, Any]], label: str) -> list[Reserved]:
    """Subnets of podman networks without the labctl label, and host routes not on a podman bridge
    (routes on a bridge belong to its network, which the network checks cover)."""
    out: list[Reserved] = []
    bridges = {n.get("network_interface") for n in networks} - {None, ""}
    for net in networks:
        if label in (net.get("labels") or {}):
            continue
        for sub in net.get("subnets") or []:
            if ":" not in str(sub.get("subnet", "")):
                out.append((f"podman network {net.get('name')!r}, which labctl did not create", str(sub["subnet"])))
    for route in routes:
        dst = str(route.get("dst", ""))
        if dst in ("", "default") or ":" in dst or route.get("dev") in bridges:
            continue
        dev = f" dev {route['dev']}" if route.get("dev") else ""
        out.append((f"the host's route to {dst}{dev}", dst if "/" in dst else f"{dst}/32"))
    return out


def host_routes() -> list[dict[str, Any]]:
    """The host's IPv4 routes (main table); empty when `ip` is missing."""
    try:
        result = subprocess.run(["ip", "-j", "-4", "route", "show"], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        return []
    if result.returncode != 0:
        return []
    return json.loads(result.stdout or "[]")  # type: ignore[no-any-return]
