"""Mongrel2 smoke checks: the ZeroMQ handler answers through Mongrel2 with the seed's exact greeting,
static files are served from the chroot, unrouted paths get 404, connections end as HTTP says
(HTTP/1.0 and `Connection: close` are closed after the reply, keep-alive stays open), a bounded load
(ApacheBench, direct and through a NAT gateway's port forward) completes without failures, and both
restarting mongrel2 and restarting the handler heal.

Requests come from another lab host (the first one outside the mongrel2 and nat_gateway groups, else
the web host itself) with Python's standard library; the load check installs ``ab`` (apache2-utils)
on its client hosts when missing. What to test (ports, routes, units, static files) is read from the
role's local fact (``ctx.fact(web, "mongrel2")``), so overridden role variables are honoured.
"""

from __future__ import annotations

import json
import re
import shlex
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.checks.base import CheckFailed, Context, check

from ...nat_gateway.checks.iptables import forwards_from_rules

SERVICE = "mongrel2"
GROUP = "mongrel2"
UNIT = "mongrel2"  # what `labctl logs HOST UNIT` shows when a check fails
GATEWAY_GROUP = "nat_gateway"

RESTART_TIMEOUT = 30.0
KEEPALIVE_REQUESTS = 1000  # ab -k: requests over kept-alive HTTP/1.0 connections
PIPELINE_REQUESTS = 100  # HTTP/1.1 requests on one connection (raw sockets)
LOAD_REQUESTS = 2000
LOAD_CONCURRENCY = 10
AB_TIMEOUT = 10  # ab -s: seconds a request may take before ab gives up (a hang guard, not a speed goal)
AB_PACKAGE = "apache2-utils"
_FILES = Path(__file__).parent / "files"
_CLIENT = (_FILES / "mongrel2_http.py").read_text()
_CONN = (_FILES / "mongrel2_conn.py").read_text()


def _deployment(ctx: Context, web: str) -> dict[str, Any]:
    dep = ctx.fact(web, SERVICE)
    if not dep.get("servers"):
        raise CheckFailed(f"{web}: the mongrel2 fact lists no servers", output=json.dumps(dep))
    return dep


def _client(ctx: Context, web: str) -> str:
    """The host requests come from: a lab host outside the mongrel2 group that shares a network with web
    (hosts that are not NAT gateways first), else the web host."""
    webnets = set(ctx.addresses.get(web, {}))
    others = [h for h in ctx.hosts("all") if h not in ctx.hosts(GROUP) and webnets & set(ctx.addresses.get(h, {}))]
    others.sort(key=lambda h: h in ctx.hosts(GATEWAY_GROUP))
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


def _greeting_ok(resp: dict[str, Any], greeting: str) -> bool:
    """A handler reply is the seed's greeting, exactly (nothing after it)."""
    return resp.get("status") == 200 and resp.get("body") == greeting


def _echo_ok(resp: dict[str, Any], greeting: str, path: str, method: str) -> bool:
    """A reply of the handler's debug echo: the greeting, then the request's path and method."""
    body = resp.get("body", "")
    return (
        resp.get("status") == 200
        and body.startswith(greeting + "\n")
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
            if not _greeting_ok(resp, dep["greeting"]):
                raise CheckFailed(
                    f"{client} -> {web}: {route} did not answer exactly {dep['greeting']!r}",
                    resp["command"],
                    _describe(resp),
                )
            echo = str(dep.get("echo_subpath", "echo")).strip("/")
            if not echo:
                continue
            # A POST whose body and a header hold spaces, to the debug echo: the handler must count the body's bytes.
            token = uuid.uuid4().hex[:12]
            path = f"{route.rstrip('/')}/{echo}/smoke-{token}"
            body = "labctl smoke body with  spaces, commas, and 12:colons,"
            resp = _request(
                ctx, client, addr, server["port"], path, "POST", body, {"X-Labctl-Note": "a header with spaces"}
            )
            if not _echo_ok(resp, dep["greeting"], path, "POST") or (
                f"\nbody-bytes: {len(body.encode())}\n" not in resp["body"]
            ):
                raise CheckFailed(
                    f"{client} -> {web}: POST with a body was not echoed by the handler",
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


def connection_problems(report: dict[str, Any], greeting: str, count: int) -> list[str]:
    """What is wrong in mongrel2_conn.py's report (empty when connections end as HTTP says)."""
    problems = []
    for case, want_header in (("http10", "close"), ("http11_close", "close")):
        got = report.get(case, {})
        what = "HTTP/1.0" if case == "http10" else "HTTP/1.1 with Connection: close"
        if got.get("error"):
            problems.append(f"{what}: {got['error']}")
        elif got.get("status") != 200 or got.get("body") != greeting:
            problems.append(f"{what}: HTTP {got.get('status')} {got.get('body', '')[:80]!r}")
        elif not got.get("closed"):
            problems.append(f"{what}: the connection stayed open after the reply")
        elif got.get("headers", {}).get("connection", "").lower() != want_header:
            problems.append(f"{what}: Connection header {got.get('headers', {}).get('connection')!r}, expected close")
    keep = report.get("http10_keep", {})
    if keep.get("error") or keep.get("same_body") != 2:
        problems.append(f"HTTP/1.0 keep-alive: {keep.get('same_body', 0)}/2 on one connection {keep.get('error', '')}")
    elif keep.get("headers", {}).get("connection", "").lower() != "keep-alive":
        problems.append(f"HTTP/1.0 keep-alive: Connection header {keep.get('headers', {}).get('connection')!r}")
    pipe = report.get("http11_keep", {})
    if pipe.get("error") or pipe.get("same_body") != count or pipe.get("body") != greeting:
        problems.append(
            f"HTTP/1.1: {pipe.get('same_body', 0)}/{count} greetings on one connection {pipe.get('error', '')}".strip()
        )
    return problems


@check("connections end as HTTP says (HTTP/1.0 and close end, keep-alive stays)")
def connections(ctx: Context) -> str:
    for web in ctx.hosts(GROUP):
        dep = _deployment(ctx, web)
        client = _client(ctx, web)
        for server in dep["servers"]:
            addr = _target(ctx, client, web, server)
            route, _handler = _handler_route(dep, server)
            args = [addr, str(server["port"]), route, str(PIPELINE_REQUESTS)]
            cmd = "python3 - " + " ".join(shlex.quote(a) for a in args)
            res = ctx.sh(client, cmd, timeout=120, stdin=_CONN)
            try:
                report = json.loads(res.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError) as exc:
                raise CheckFailed(f"{client}: unreadable output of the connection probe", cmd, res.output) from exc
            problems = connection_problems(report, dep["greeting"], PIPELINE_REQUESTS)
            if problems:
                raise CheckFailed(
                    f"{client} -> {web}:{server['port']}{route}: " + "; ".join(problems), cmd, res.stdout[-3000:]
                )
    return f"HTTP/1.0 and Connection: close end after the reply; {PIPELINE_REQUESTS} HTTP/1.1 requests on one socket"


@dataclass(frozen=True)
class AbReport:
    """What ApacheBench printed (counts are None when ab stopped before its summary)."""

    complete: int | None
    failed: int | None
    non_2xx: int
    keep_alive: int
    rps: float | None
    finished: int | None  # "Total of N requests completed" (ab gave up early)
    document_length: int | None = None  # body length of the first response
    html_transferred: int | None = None  # body bytes of all responses

    def problem(self, requests: int, body: str, keep_alive: bool = False) -> str:
        """Why this run does not show `requests` successful requests, each answered with `body` ("" when it does).

        ab counts a connection closed without any response as complete (0 bytes): the body sizes catch that."""
        if self.complete is None:
            done = self.finished if self.finished is not None else 0
            return f"ab gave up after {done} of {requests} requests"
        if self.complete != requests or self.failed or self.non_2xx:
            return f"{self.complete}/{requests} complete, {self.failed} failed, {self.non_2xx} non-2xx"
        size = len(body.encode())
        if self.document_length != size or self.html_transferred != size * requests:
            return (
                f"bodies of {self.document_length} bytes ({self.html_transferred} in all), "
                f"expected {size} ({size * requests} in all)"
            )
        if keep_alive and self.keep_alive != requests:
            return f"only {self.keep_alive} of {requests} requests were kept alive"
        return ""


def _ab_int(text: str, label: str) -> int | None:
    m = re.search(rf"^{re.escape(label)}:\s+(\d+)", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def parse_ab(text: str) -> AbReport:
    """Parse ab's report (Complete/Failed requests, Non-2xx responses, Keep-Alive requests, Requests per second)."""
    rps = re.search(r"^Requests per second:\s+([\d.]+)", text, re.MULTILINE)
    total = re.search(r"^Total of (\d+) requests completed", text, re.MULTILINE)
    return AbReport(
        complete=_ab_int(text, "Complete requests"),
        failed=_ab_int(text, "Failed requests"),
        non_2xx=_ab_int(text, "Non-2xx responses") or 0,
        keep_alive=_ab_int(text, "Keep-Alive requests") or 0,
        rps=float(rps.group(1)) if rps else None,
        finished=int(total.group(1)) if total else None,
        document_length=_ab_int(text, "Document Length"),
        html_transferred=_ab_int(text, "HTML transferred"),
    )


def _ensure_ab(ctx: Context, host: str) -> None:
    """Install ApacheBench (apache2-utils) on a client host unless it is there."""
    if ctx.run(host, "command -v ab").ok:
        return
    env = "DEBIAN_FRONTEND=noninteractive"
    install = f"{env} apt-get install -y -q --no-install-recommends {AB_PACKAGE}"
    res = ctx.run(host, f"{install} || ({env} apt-get update -q && {install})", timeout=300)
    if not res.ok:
        raise CheckFailed(f"{host}: cannot install {AB_PACKAGE} (ab) for the load test", install, res.output[-2000:])


def _ab(
    ctx: Context, host: str, url: str, body: str, requests: int, concurrency: int, keep_alive: bool = False
) -> AbReport:
    flags = "-k " if keep_alive else ""
    cmd = f"ab -q -r -s {AB_TIMEOUT} {flags}-n {requests} -c {concurrency} {shlex.quote(url)}"
    res = ctx.run(host, cmd, timeout=AB_TIMEOUT * 4 + requests / 10)
    report = parse_ab(res.stdout + "\n" + res.stderr)
    problem = report.problem(requests, body, keep_alive)
    if problem or not res.ok:
        raise CheckFailed(f"{host}: {url}: {problem or f'ab exited {res.exited}'}", cmd, res.output[-3000:])
    return report


@dataclass(frozen=True)
class Forward:
    gateway: str
    client: str  # a host on the network the forward listens on
    address: str
    port: int


def _forwards_to(ctx: Context, web: str, port: int) -> list[Forward]:
    """Port forwards of the lab's NAT gateways that lead to web:port, each with an outside client host.

    Read from the rules in force on the gateway (``iptables -t nat -S``)."""
    out = []
    web_addrs = set(ctx.addresses.get(web, {}).values())
    for gw in ctx.hosts(GATEWAY_GROUP):
        rules = ctx.sh(gw, "iptables -w 5 -t nat -S PREROUTING")
        for fwd in forwards_from_rules(rules.stdout):
            if fwd["protocol"] != "tcp" or fwd["to_port"] != port or fwd["to_address"] not in web_addrs:
                continue
            gw_nets = ctx.addresses.get(gw, {})
            net = next((n for n, a in gw_nets.items() if a == fwd["address"]), None)
            if net is None or fwd["port"] is None:
                continue
            clients = [
                h
                for h in ctx.hosts("all")
                if h not in (gw, web) and net in ctx.addresses.get(h, {}) and h not in ctx.hosts(GATEWAY_GROUP)
            ]
            if clients:
                out.append(Forward(gw, clients[0], fwd["address"], int(fwd["port"])))
    return out


@check(f"load: ab {LOAD_REQUESTS} requests at concurrency {LOAD_CONCURRENCY}, direct and through DNAT")
def load(ctx: Context) -> str:
    figures = []
    for web in ctx.hosts(GROUP):
        dep = _deployment(ctx, web)
        client = _client(ctx, web)
        server = dep["servers"][0]
        route, _handler = _handler_route(dep, server)
        _ensure_ab(ctx, client)
        url = f"http://{_target(ctx, client, web, server)}:{server['port']}{route}"
        greeting = dep["greeting"]
        kept = _ab(ctx, client, url, greeting, KEEPALIVE_REQUESTS, LOAD_CONCURRENCY, keep_alive=True)
        direct = _ab(ctx, client, url, greeting, LOAD_REQUESTS, LOAD_CONCURRENCY)
        figures.append(
            f"{client} -> {web}:{server['port']} {direct.rps:.0f} req/s "
            f"({kept.keep_alive} keep-alive at {kept.rps:.0f} req/s)"
        )
        fwds = _forwards_to(ctx, web, int(server["port"]))
        for fwd in fwds:
            _ensure_ab(ctx, fwd.client)
            fwd_url = f"http://{fwd.address}:{fwd.port}{route}"
            report = _ab(ctx, fwd.client, fwd_url, greeting, LOAD_REQUESTS, LOAD_CONCURRENCY)
            figures.append(f"{fwd.client} -> {fwd.gateway}:{fwd.port} (DNAT) {report.rps:.0f} req/s")
        if not fwds:
            figures.append(f"no NAT gateway forwards to {web}:{server['port']} (DNAT not measured)")
    return f"{LOAD_REQUESTS} requests, 0 failed: " + "; ".join(figures)


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
        return _greeting_ok(last, dep["greeting"])

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
