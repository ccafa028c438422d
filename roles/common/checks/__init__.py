"""Checks every lab host passes: SSH works, systemd is up, names resolve, routes are in place."""

from __future__ import annotations

from labctl.checks.base import CheckFailed, Context, check

SERVICE = "common"
GROUP = "all"


@check("systemd running")
def systemd_running(ctx: Context) -> None:
    for host in ctx.hosts(GROUP):
        state = ctx.run(host, "systemctl is-system-running --wait", timeout=60).stdout.strip()
        if state not in ("running", "degraded"):
            raise CheckFailed(f"{host}: systemd is {state!r}", "systemctl is-system-running --wait", state)
        if state == "degraded":
            failed = ctx.run(host, "systemctl --failed --no-legend --plain").stdout.strip()
            raise CheckFailed(f"{host}: failed units", "systemctl --failed", failed)


@check("lab names resolve")
def names_resolve(ctx: Context) -> None:
    hosts = ctx.hosts(GROUP)
    for host in hosts:
        for other in hosts:
            got = ctx.sh(host, f"getent hosts {other}").stdout.split()
            want = ctx.reach(host, other) if other != host else None
            if want and (not got or got[0] != want):
                raise CheckFailed(f"{host}: {other} resolves to {got[:1]}, expected {want}", f"getent hosts {other}")


@check("routes via gateways")
def routes(ctx: Context) -> None:
    for host in ctx.hosts(GROUP):
        for route in ctx.var(host, "labctl_routes", []):
            out = ctx.sh(host, f"ip -4 route show {route['to']}").stdout
            if f"via {route['via']}" not in out:
                raise CheckFailed(f"{host}: no route to {route['to']} via {route['via']}", "ip route", out)
