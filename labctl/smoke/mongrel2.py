"""Mongrel2 smoke checks: the ZeroMQ handler answers through Mongrel2, static files are served from
the chroot, unrouted paths get 404, and both restarting mongrel2 and restarting the handler heal.

Requests come from another lab host (the first one outside the mongrel2 group, else the web host
itself) with Python's http.client, so the client needs nothing but python3. What to test (ports,
routes, units, static files) is read from the role's local fact (``ctx.fact(web, "mongrel2")``),
so overridden role variables are honoured.
"""

from __future__ import annotations

import json
import shlex
import uuid
from pathlib import Path
from typing import Any

from labctl.smoke.base import CheckFailed, Context, check

SERVICE = "mongrel2"
GROUP = "mongrel2"
UNIT = "mongrel2"  # what `labctl logs HOST UNIT` shows when a check fails

RESTART_TIMEOUT = 30.0
_CLIENT = (Path(__file__).parent / "files" / "mongrel2_http.py").read_text()


def _deployment(ctx: Context, web: str) -> dict[str, Any]:
    dep = ctx.fact(web, SERVICE)
    if not dep.get("servers"):
        raise CheckFailed(f"{web}: the mongrel2 fact lists no servers", output=json.dumps(dep))
    return dep


def _client(ctx: Context, web: str) -> str:
    """The host requests come from: a lab host outside the mongrel2 group, else the web host."""
    others = [h for h in ctx.hosts("all") if h not in ctx.hosts(GROUP)]
    return others[0] if others else web


def _target(ctx: Context, client: str, web: str, server: dict[str, Any]) -> str:
    bind = server.get("bind_addr") or "0.0.0.0"
    return ctx.reach(client, web) if bind == "0.0.0.0" else bind


def _request(
    ctx: Context,
    src: str,
    addr: str,
    port: int,
    path: str,
    method: str = "GET",
    body: str = "",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    args = [method, addr, str(port), path, body, json.dumps(headers or {})]
    cmd = "python3 - " + " ".join(shlex.quote(a) for a in args)
    res = ctx.run(src, cmd, timeout=30, stdin=_CLIENT)
    if not res.ok:
        raise CheckFailed(f"{src}: the HTTP client failed", cmd, res.output)
    try:
        out = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise CheckFailed(f"{src}: unreadable HTTP client output", cmd, res.output) from exc
    out["command"] = f"{method} http://{addr}:{port}{path}"
    return out


def _routes_of(server: dict[str, Any], names: set[str]) -> list[str]:
    return [path for path, target in server.get("routes", {}).items() if target in names]


def _handler_route(dep: dict[str, Any], server: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """A route of the server served by a bundled Python handler, and that handler."""
    for handler in dep.get("handlers", []):
        if handler.get("unit"):
            routes = _routes_of(server, {handler["name"]})
            if routes:
                return routes[0].rstrip("/") or "/", handler
    raise CheckFailed(f"server {server['name']}: no route leads to a bundled Python handler")


def _greeting_ok(resp: dict[str, Any], greeting: str, path: str, method: str = "GET") -> bool:
    body = resp.get("body", "")
    return (
        resp.get("status") == 200
        and body.startswith(greeting)
        and f"\npath: {path}\n" in body
        and f"\nmethod: {method}\n" in body
    )


def _describe(resp: dict[str, Any]) -> str:
    if resp.get("error"):
        return f"{resp['command']}: {resp['error']}"
    return f"{resp['command']}: HTTP {resp.get('status')}, body {resp.get('body', '')[:300]!r}"


@check("handler answers through mongrel2")
def handler_answers(ctx: Context) -> None:
    for web in ctx.hosts(GROUP):
        dep = _deployment(ctx, web)
        client = _client(ctx, web)
        for server in dep["servers"]:
            addr = _target(ctx, client, web, server)
            route, _handler = _handler_route(dep, server)
            resp = _request(ctx, client, addr, server["port"], route)
            if not _greeting_ok(resp, dep["greeting"], route):
                raise CheckFailed(
                    f"{client} -> {web}: no handler greeting on {route}", resp["command"], _describe(resp)
                )
            # A POST whose body and a header hold spaces: the handler must count the body's bytes.
            token = uuid.uuid4().hex[:12]
            path = f"{route.rstrip('/')}/smoke-{token}"
            body = "labctl smoke body with  spaces, commas, and 12:colons,"
            resp = _request(
                ctx, client, addr, server["port"], path, "POST", body, {"X-Labctl-Note": "a header with spaces"}
            )
            if not _greeting_ok(resp, dep["greeting"], path, "POST") or (
                f"\nbody-bytes: {len(body.encode())}\n" not in resp["body"]
            ):
                raise CheckFailed(
                    f"{client} -> {web}: POST with a body was not answered by the handler",
                    resp["command"],
                    _describe(resp),
                )
            # Mongrel2 logs to files in its chroot: the request must be in the access log.
            log = server["access_log"]
            got = ctx.run(web, f"grep -c smoke-{token} {shlex.quote(log)}")
            if not got.ok or int(got.stdout.strip() or 0) < 1:
                raise CheckFailed(f"{web}: request {path} not in {log}", f"grep smoke-{token} {log}", got.output)


@check("static files served from the chroot")
def static_files(ctx: Context) -> None:
    for web in ctx.hosts(GROUP):
        dep = _deployment(ctx, web)
        client = _client(ctx, web)
        served = 0
        for server in dep["servers"]:
            addr = _target(ctx, client, web, server)
            for d in dep.get("dirs", []):
                base = d["base"].strip("/") + "/"
                for route in _routes_of(server, {d["name"]}):
                    for rel in dep.get("static_files", []):
                        if not rel.startswith(base) or rel.endswith("/"):
                            continue
                        path = route.rstrip("/") + "/" + rel[len(base) :]
                        full = f"{dep['chroot'].rstrip('/')}/{rel}"
                        want = ctx.sh(web, f"sha256sum {shlex.quote(full)}").stdout.split()[0]
                        resp = _request(ctx, client, addr, server["port"], path)
                        if resp.get("status") != 200 or resp.get("sha256") != want:
                            raise CheckFailed(
                                f"{client} -> {web}: {path} does not serve {full} (sha256 {want[:12]}…)",
                                resp["command"],
                                _describe(resp),
                            )
                        served += 1
        if not served:
            raise CheckFailed(f"{web}: no static file lies under a Dir route ({dep.get('static_files')})")


@check("unrouted paths answer 404")
def not_found(ctx: Context) -> None:
    for web in ctx.hosts(GROUP):
        dep = _deployment(ctx, web)
        client = _client(ctx, web)
        token = uuid.uuid4().hex[:12]
        for server in dep["servers"]:
            addr = _target(ctx, client, web, server)
            paths = []
            if "/" not in server.get("routes", {}):
                paths.append(f"/labctl-no-route-{token}")  # no route at all: mongrel2 itself answers
            dir_names = {d["name"] for d in dep.get("dirs", [])}
            paths += [r.rstrip("/") + f"/no-such-file-{token}.txt" for r in _routes_of(server, dir_names)[:1]]
            route, _handler = _handler_route(dep, server)
            if not route.endswith("/"):
                paths.append(f"{route}-no-such-route-{token}")  # routed to the handler, which answers 404
            for path in paths:
                resp = _request(ctx, client, addr, server["port"], path)
                if resp.get("status") != 404:
                    raise CheckFailed(f"{client} -> {web}: {path} did not answer 404", resp["command"], _describe(resp))


def _restart_and_recover(ctx: Context, web: str, which: str) -> None:
    """Restart the first server's unit (which="server") or its handler's unit, then poll the handler route."""
    dep = _deployment(ctx, web)
    client = _client(ctx, web)
    server = dep["servers"][0]
    addr = _target(ctx, client, web, server)
    route, handler = _handler_route(dep, server)
    unit = server["unit"] if which == "server" else handler["unit"]
    pid_cmd = f"systemctl show -p MainPID --value {unit}"
    before = ctx.sh(web, pid_cmd).stdout.strip()
    ctx.sh(web, f"systemctl restart {unit}", timeout=60)
    after = ctx.sh(web, pid_cmd).stdout.strip()
    if after in ("", "0", before):
        raise CheckFailed(f"{web}: {unit} did not restart (MainPID {before} -> {after})", pid_cmd, after)
    last: dict[str, Any] = {}

    def answered() -> bool:
        nonlocal last
        last = _request(ctx, client, addr, server["port"], route)
        return _greeting_ok(last, dep["greeting"], route)

    try:
        ctx.wait_until(f"{web}: {route} answers after restarting {unit}", answered, timeout=RESTART_TIMEOUT)
    except CheckFailed as exc:
        journal = ctx.run(web, f"journalctl -u {unit} -n 20 --no-pager").output
        raise CheckFailed(str(exc), last.get("command", ""), _describe(last) + "\n" + journal) from exc


@check("requests work again after restarting mongrel2")
def survives_server_restart(ctx: Context) -> None:
    for web in ctx.hosts(GROUP):
        _restart_and_recover(ctx, web, "server")


@check("requests work again after restarting the handler")
def survives_handler_restart(ctx: Context) -> None:
    for web in ctx.hosts(GROUP):
        _restart_and_recover(ctx, web, "handler")
