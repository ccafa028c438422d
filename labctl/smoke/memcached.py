"""memcached: every instance answers on its lab address only (UDP off), and real clients (the
seed's libmemcached C program and pymemcache's HashClient) spread keys over all instances.

Where keys land is proven on the servers, not taken from the client: each instance's
``total_items`` and ``delete_hits`` counters must grow by exactly the number of keys the client
says it hashed there, and every instance must get some.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from labctl.smoke.base import CheckFailed, CheckSkipped, Context, check

SERVICE = "memcached"
GROUP = "memcached"
UNIT = "memcached"  # what `labctl logs HOST UNIT` shows when a check fails
CLIENT_GROUP = "memcached_clients"
KEYS = 200
WORKDIR = "/tmp/labctl-memcached"
FILES = Path(__file__).parent / "files"


@dataclass(frozen=True)
class Endpoint:
    server: str  # lab host running the instance
    address: str
    port: int

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def endpoints(ctx: Context) -> list[Endpoint]:
    """Every instance of every server, as the role deployed it (its fact)."""
    out: list[Endpoint] = []
    for server in ctx.hosts(GROUP):
        for inst in ctx.fact(server, SERVICE)["instances"]:
            out.append(Endpoint(server, str(inst["listen_address"]), int(inst["port"])))
    return out


def clients(ctx: Context) -> list[str]:
    """Hosts that run the clients: the memcached_clients group, else the first server."""
    return ctx.hosts(CLIENT_GROUP) or ctx.hosts(GROUP)[:1]


def _sasl(ctx: Context) -> tuple[str, str] | None:
    """SASL credentials when the servers require them (None when SASL is off)."""
    server = ctx.hosts(GROUP)[0]
    sasl = ctx.fact(server, SERVICE)["sasl"]
    if not sasl["enabled"]:
        return None
    # A secret is never in a fact: the password comes from the topology file, as a literal.
    password = ctx.var(server, "memcached_sasl_password")
    if not isinstance(password, str) or not password or "{{" in password:
        raise CheckSkipped("SASL is on but memcached_sasl_password is not a literal in the topology file")
    return str(sasl["user"]), password


def parse_memcstat(text: str) -> dict[str, dict[str, str]]:
    """memcstat output -> {"host:port": {stat: value}}."""
    stats: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in text.splitlines():
        head = re.match(r"Server:\s+(\S+)\s+\((\d+)\)", line)
        if head:
            current = stats.setdefault(f"{head.group(1)}:{head.group(2)}", {})
        elif current is not None and ":" in line:
            key, _, value = line.strip().partition(":")
            current[key.strip()] = value.strip()
    return stats


def memcstat(ctx: Context, client: str, eps: list[Endpoint]) -> dict[str, dict[str, str]]:
    """Stats of every endpoint, read with libmemcached's memcstat from the client host."""
    auth = _sasl(ctx)
    opts = f" --binary --username={shlex.quote(auth[0])} --password={shlex.quote(auth[1])}" if auth else ""
    cmd = f"memcstat --servers={','.join(str(e) for e in eps)}{opts}"
    result = ctx.sh(client, cmd, timeout=30)
    stats = parse_memcstat(result.stdout)
    shown = cmd.replace(auth[1], "***") if auth else cmd
    for ep in eps:
        if "pid" not in stats.get(str(ep), {}):
            raise CheckFailed(f"{client}: memcached at {ep} did not answer stats", shown, result.output)
    return stats


def parse_mem_test(text: str) -> tuple[dict[str, int], dict[str, tuple[int, int]]]:
    """The C program's output -> ({"host:port": keys}, {"SET"|"FETCH"|"DELETE": (ok, bad)})."""
    servers: dict[str, int] = {}
    totals: dict[str, tuple[int, int]] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0] == "SERVER":
            servers[parts[1]] = int(parts[2])
        elif len(parts) == 3 and parts[0] in ("SET", "FETCH", "DELETE"):
            totals[parts[0]] = (int(parts[1]), int(parts[2]))
    return servers, totals


def verify_spread(
    eps: list[Endpoint],
    per_server: dict[str, int],
    before: dict[str, dict[str, str]],
    after: dict[str, dict[str, str]],
    count: int,
) -> str:
    """Check the client's per-server key counts against the servers' own counters.

    Returns a problem description, or "" when every instance got keys, the counts add up to
    ``count``, and each instance's total_items and delete_hits grew by exactly its count."""
    problems = []
    if sum(per_server.get(str(ep), 0) for ep in eps) != count:
        problems.append(f"the client put {sum(per_server.values())} of {count} keys on the listed servers")
    for ep in eps:
        want = per_server.get(str(ep), 0)
        if want == 0:
            problems.append(f"{ep} got no keys (no spread over instances)")
        for stat in ("total_items", "delete_hits"):
            delta = int(after[str(ep)].get(stat, 0)) - int(before[str(ep)].get(stat, 0))
            if delta != want:
                problems.append(f"{ep}: {stat} grew by {delta}, the client hashed {want} keys there")
    return "; ".join(problems)


@check("instances answer on the lab address only, UDP off")
def instances_answer(ctx: Context) -> None:
    eps = endpoints(ctx)
    for client in clients(ctx):
        memcstat(ctx, client, eps)
        probe = ctx.python(client, (FILES / "memcached_udp_probe.py").read_text(), *(str(e) for e in eps))
        if "answered" in probe.stdout:
            raise CheckFailed(f"{client}: memcached answers over UDP (expected -U 0)", "udp probe", probe.output)
    for server in ctx.hosts(GROUP):
        mine = [e for e in eps if e.server == server]
        tcp = ctx.sh(server, "ss -Hltn").stdout
        udp = ctx.sh(server, "ss -Hlun").stdout
        for ep in mine:
            bound = [line.split()[3] for line in tcp.splitlines() if line.split()[3].endswith(f":{ep.port}")]
            if bound != [str(ep)]:
                raise CheckFailed(f"{server}: port {ep.port} listens on {bound}, expected only {ep}", "ss -Hltn", tcp)
            if any(line.split()[3].endswith(f":{ep.port}") for line in udp.splitlines()):
                raise CheckFailed(f"{server}: UDP port {ep.port} is open", "ss -Hlun", udp)
        stock = ctx.run(server, "systemctl is-active memcached.service").stdout.strip()
        if stock == "active":
            raise CheckFailed(f"{server}: the stock memcached.service is running", "systemctl is-active memcached")


@check("libmemcached C client spreads keys over all instances")
def c_client(ctx: Context) -> None:
    eps = endpoints(ctx)
    client = clients(ctx)[0]
    auth = _sasl(ctx)
    ctx.sh(client, f"mkdir -p {WORKDIR}")
    ctx.put_text(client, (FILES / "memcached_mem_test.c").read_text(), f"{WORKDIR}/mem_test.c")
    ctx.sh(
        client,
        f"gcc -O2 -Wall -o {WORKDIR}/mem_test {WORKDIR}/mem_test.c $(pkg-config --cflags --libs libmemcached)",
        timeout=120,
    )
    prefix = f"labctl-c-{int(time.time() * 1000)}"
    env = f"MEMCACHED_USERNAME={shlex.quote(auth[0])} MEMCACHED_PASSWORD={shlex.quote(auth[1])} " if auth else ""
    cmd = f"{env}{WORKDIR}/mem_test {KEYS} {prefix} {' '.join(str(e) for e in eps)}"
    before = memcstat(ctx, client, eps)
    result = ctx.run(client, cmd, timeout=60)
    after = memcstat(ctx, client, eps)
    shown = cmd.replace(auth[1], "***") if auth else cmd
    per_server, totals = parse_mem_test(result.stdout)
    if not result.ok or any(totals.get(op) != (KEYS, 0) for op in ("SET", "FETCH", "DELETE")):
        raise CheckFailed(f"{client}: mem_test did not set/fetch/delete all {KEYS} keys", shown, result.output)
    problem = verify_spread(eps, per_server, before, after, KEYS)
    if problem:
        raise CheckFailed(f"{client}: {problem}", shown, result.output)


@check("pymemcache HashClient spreads keys over all instances")
def python_client(ctx: Context) -> None:
    eps = endpoints(ctx)
    client = clients(ctx)[0]
    if _sasl(ctx):
        raise CheckSkipped("SASL is on and pymemcache speaks only the ASCII protocol")
    prefix = f"labctl-py-{int(time.time() * 1000)}"
    before = memcstat(ctx, client, eps)
    result = ctx.python(
        client, (FILES / "memcached_pymemcache.py").read_text(), str(KEYS), prefix, *(str(e) for e in eps), timeout=60
    )
    after = memcstat(ctx, client, eps)
    try:
        report = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise CheckFailed(
            f"{client}: no report from the pymemcache client", "python3 pymemcache", result.output
        ) from exc
    if report["set"] != KEYS or report["got"] != KEYS or report["mismatched"] or report["deleted"] != KEYS:
        raise CheckFailed(f"{client}: pymemcache round trip incomplete: {report}", "python3 pymemcache", result.output)
    problem = verify_spread(eps, report["servers"], before, after, KEYS)
    if problem:
        raise CheckFailed(f"{client}: {problem}", "python3 pymemcache", result.output)
