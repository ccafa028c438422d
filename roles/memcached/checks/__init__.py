"""memcached: every instance answers on its lab address and 127.0.0.1 only (UDP off), `service
memcached status` reports them running, the seed's own mem_test2.c builds and runs on the memcached
host against localhost exactly as in the notebook, and real clients (a libmemcached C program grown
from the seed's and pymemcache's HashClient) spread keys over all instances.

Where keys land is proven on the servers, not taken from the client: each instance's
``total_items`` and ``delete_hits`` counters must grow by exactly the number of keys the client
says it hashed there, and every instance must get some.

The clients run on the memcached_clients hosts (the role installs the client side there); in a lab
without that group, on a memcached host (or any lab host) that has the client tools; else the client
checks are skipped with the reason. The server-side check needs nothing but the servers.
"""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from labctl.checks.base import CheckFailed, CheckSkipped, Context, Need, check, command, pkg_config, python_module

SERVICE = "memcached"
GROUP = "memcached"
UNIT = "memcached"  # what `labctl logs HOST UNIT` shows when a check fails
CLIENT_GROUP = "memcached_clients"
KEYS = 200
WORKDIR = "/tmp/labctl-memcached"
FILES = Path(__file__).parent / "files"

# Where the client checks run: the memcached_clients hosts (the role installs the client side there),
# else a memcached host or any lab host that has the tools. memcstat reads the servers' counters.
MEMCSTAT = command("memcstat", "libmemcached-tools")
STATS_CLIENT = Need("client", group=CLIENT_GROUP, tools=(MEMCSTAT,), fallback=(GROUP, "all"))
C_CLIENT = Need(
    "client",
    group=CLIENT_GROUP,
    tools=(
        MEMCSTAT,
        command("gcc", "build-essential"),
        pkg_config("libmemcached", "libmemcached-dev, libssl-dev, pkg-config"),
    ),
    fallback=(GROUP, "all"),
)
PY_CLIENT = Need(
    "client",
    group=CLIENT_GROUP,
    tools=(MEMCSTAT, python_module("pymemcache", "python3-pymemcache")),
    fallback=(GROUP, "all"),
)


@dataclass(frozen=True)
class Endpoint:
    server: str  # lab host running the instance
    address: str
    port: int
    binds: tuple[str, ...] = ()  # every address the instance listens on (the role's fact)

    def __str__(self) -> str:
        return f"{self.address}:{self.port}"


def _localhost(ctx: Context, server: str) -> bool:
    """Whether the role makes the instances listen on 127.0.0.1 too (its fact's listen_localhost)."""
    return bool(ctx.fact(server, SERVICE).get("listen_localhost"))


def endpoints(ctx: Context) -> list[Endpoint]:
    """Every instance of every server, as the role deployed it (its fact)."""
    out: list[Endpoint] = []
    for server in ctx.hosts(GROUP):
        for inst in ctx.fact(server, SERVICE)["instances"]:
            binds = tuple(str(a) for a in inst.get("listen_addresses") or [inst["listen_address"]])
            out.append(Endpoint(server, str(inst["listen_address"]), int(inst["port"]), binds))
    return out


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
    cmd = f"memcstat --servers={','.join(str(e) for e in eps)}"
    if auth:  # the password goes on stdin, never into a command line labctl shows or logs
        cmd = f'IFS= read -r P; exec {cmd} --binary --username={shlex.quote(auth[0])} --password="$P"'
    result = ctx.sh(client, cmd, timeout=30, stdin=f"{auth[1]}\n" if auth else None)
    stats = parse_memcstat(result.stdout)
    shown = cmd
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


def expected_binds(ep: Endpoint) -> set[str]:
    """The sockets an instance listens on: its address, and 127.0.0.1 with memcached_listen_localhost."""
    return {f"{address}:{ep.port}" for address in ep.binds or (ep.address,)}


@check("instances listen on the lab address (and localhost) only, UDP off")
def instances_answer(ctx: Context) -> None:
    eps = endpoints(ctx)
    for server in ctx.hosts(GROUP):
        mine = [e for e in eps if e.server == server]
        tcp = ctx.sh(server, "ss -Hltn").stdout
        udp = ctx.sh(server, "ss -Hlun").stdout
        for ep in mine:
            bound = {line.split()[3] for line in tcp.splitlines() if line.split()[3].endswith(f":{ep.port}")}
            want = expected_binds(ep)
            if bound != want:
                raise CheckFailed(
                    f"{server}: port {ep.port} listens on {sorted(bound)}, expected {sorted(want)}", "ss -Hltn", tcp
                )
            if any(line.split()[3].endswith(f":{ep.port}") for line in udp.splitlines()):
                raise CheckFailed(f"{server}: UDP port {ep.port} is open", "ss -Hlun", udp)
        # UDP is off: nothing answers a memcached UDP request (the probe is plain python3, from the server).
        probe = ctx.python(server, (FILES / "memcached_udp_probe.py").read_text(), *(str(e) for e in mine))
        if "answered" in probe.stdout:
            raise CheckFailed(f"{server}: memcached answers over UDP (expected -U 0)", "udp probe", probe.output)


@check("service memcached status: active while the instances run")
def service_status(ctx: Context) -> None:
    for server in ctx.hosts(GROUP):
        units = [f"memcached@{ep.port}.service" for ep in endpoints(ctx) if ep.server == server]
        for unit in units:
            state = ctx.run(server, f"systemctl is-active {unit}").stdout.strip()
            if state != "active":
                raise CheckFailed(f"{server}: {unit} is {state!r}", f"systemctl is-active {unit}")
        has_service = ctx.run(server, "command -v service").ok
        cmd = "service memcached status" if has_service else "systemctl status --no-pager memcached"
        res = ctx.run(server, cmd)
        if not res.ok or "Active: active" not in res.stdout:
            raise CheckFailed(
                f"{server}: `{cmd}` does not report memcached running while {', '.join(units)} run", cmd, res.output
            )
        wants = ctx.sh(server, "systemctl show -p Wants --value memcached.service").stdout.split()
        missing = [u for u in units if u not in wants]
        if missing:
            raise CheckFailed(f"{server}: memcached.service does not group {missing}", "systemctl show -p Wants")


NOTEBOOK_PORTS = (11211, 11212)
# What mem_test2 prints in the notebook's run (its output lost the key2/key3 lines and says "Delete Key";
# the program's own printf says "Delete %s success").
NOTEBOOK_OUTPUT = [
    'Save key:key1 data:"This is c first value" success.',
    'Save key:key2 data:"This is c second value" success.',
    'Save key:key3 data:"This is c third value" success.',
    "Fetch key:key1 data:This is c first value",
    "Fetch key:key2 data:This is c second value",
    "Fetch key:key3 data:This is c third value",
    "Delete key1 success",
    "Delete key2 success",
    "Delete key3 success",
]


def same_as_notebook(lines: list[str]) -> bool:
    """The program printed the notebook's lines. Its three fetches come from one memcached_mget over two
    servers, which hands back the keys as the servers answer: their order is not the program's to choose."""
    fetched = slice(3, 6)
    return (
        len(lines) == len(NOTEBOOK_OUTPUT)
        and lines[:3] + lines[6:] == NOTEBOOK_OUTPUT[:3] + NOTEBOOK_OUTPUT[6:]
        and sorted(lines[fetched]) == sorted(NOTEBOOK_OUTPUT[fetched])
    )


def stats_delta(before: dict[str, dict[str, str]], after: dict[str, dict[str, str]], stat: str) -> int:
    """How much a counter grew, summed over the instances."""
    return sum(int(after[ep].get(stat, 0)) - int(before[ep].get(stat, 0)) for ep in before)


def _local_stats(ctx: Context, server: str, eps: list[str]) -> dict[str, dict[str, str]]:
    res = ctx.python(server, (FILES / "memcached_stats.py").read_text(), *eps)
    try:
        stats: dict[str, dict[str, str]] = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise CheckFailed(f"{server}: unreadable stats", "python3 memcached_stats.py", res.output) from exc
    for ep in eps:
        if "pid" not in stats.get(ep, {}):
            raise CheckFailed(f"{server}: no memcached answers on {ep}", "stats", json.dumps(stats.get(ep)))
    return stats


@check("the notebook's mem_test2.c builds and runs on the memcached host (localhost)")
def notebook_program(ctx: Context) -> str:
    ran = []
    for server in ctx.hosts(GROUP):
        mine = [ep for ep in endpoints(ctx) if ep.server == server]
        local_ports = {ep.port for ep in mine if {"127.0.0.1", "0.0.0.0"} & set(ep.binds)}
        if not set(NOTEBOOK_PORTS) <= local_ports:
            raise CheckSkipped(
                f"{server}: the notebook's program talks to localhost:11211 and :11212; instances here: "
                f"{sorted(ep.port for ep in mine)}, on localhost: {sorted(local_ports)} "
                f"(memcached_listen_localhost: {_localhost(ctx, server)})"
            )
        if _sasl(ctx):
            raise CheckSkipped("SASL is on and the notebook's program does not authenticate")
        local = [f"127.0.0.1:{port}" for port in NOTEBOOK_PORTS]
        ctx.sh(server, f"mkdir -p {WORKDIR}")
        ctx.put_text(server, (FILES / "memcached_mem_test2.c").read_text(), f"{WORKDIR}/mem_test2.c")
        # The notebook's own build line, in the directory of the source.
        ctx.sh(server, f"cd {WORKDIR} && gcc -o mem_test2 mem_test2.c -lmemcached -lpthread", timeout=120)
        before = _local_stats(ctx, server, local)
        res = ctx.sh(server, f"cd {WORKDIR} && ./mem_test2", timeout=60)
        after = _local_stats(ctx, server, local)
        if not same_as_notebook(res.stdout.strip().splitlines()):
            raise CheckFailed(
                f"{server}: mem_test2 printed something else than the notebook", "./mem_test2", res.output
            )
        # The program's 6 sets (3 saves, 3 re-sets before deleting), 3 hits and 3 deletes reached these instances.
        grown = {stat: stats_delta(before, after, stat) for stat in ("cmd_set", "get_hits", "delete_hits")}
        if grown != {"cmd_set": 6, "get_hits": 3, "delete_hits": 3}:
            raise CheckFailed(
                f"{server}: instances on localhost counted {grown}, expected 6 sets, 3 hits, 3 deletes",
                "./mem_test2",
                res.output,
            )
        ran.append(server)
    return f"built with the notebook's gcc line and run on {', '.join(ran)}: its 9 lines, 6 sets on localhost"


@check("every instance answers memcstat from the clients", needs=(STATS_CLIENT,))
def client_stats(ctx: Context) -> str:
    eps = endpoints(ctx)
    clients = ctx.picks(STATS_CLIENT)
    for client in clients:
        memcstat(ctx, client, eps)
    return f"{len(eps)} instance(s) answered memcstat from {', '.join(clients)}"


@check("libmemcached C client spreads keys over all instances", needs=(C_CLIENT,))
def c_client(ctx: Context) -> None:
    eps = endpoints(ctx)
    client = ctx.pick(C_CLIENT)
    auth = _sasl(ctx)
    ctx.sh(client, f"mkdir -p {WORKDIR}")
    ctx.put_text(client, (FILES / "memcached_mem_test.c").read_text(), f"{WORKDIR}/mem_test.c")
    ctx.sh(
        client,
        f"gcc -O2 -Wall -o {WORKDIR}/mem_test {WORKDIR}/mem_test.c $(pkg-config --cflags --libs libmemcached)",
        timeout=120,
    )
    prefix = f"labctl-c-{int(time.time() * 1000)}"
    cmd = f"{WORKDIR}/mem_test {KEYS} {prefix} {' '.join(str(e) for e in eps)}"
    if auth:  # the password on stdin, into the program's environment: never in the command line
        login = f"IFS= read -r MEMCACHED_PASSWORD; export MEMCACHED_PASSWORD MEMCACHED_USERNAME={shlex.quote(auth[0])}"
        cmd = f"{login}; exec {cmd}"
    before = memcstat(ctx, client, eps)
    result = ctx.run(client, cmd, timeout=60, stdin=f"{auth[1]}\n" if auth else None)
    after = memcstat(ctx, client, eps)
    shown = cmd
    per_server, totals = parse_mem_test(result.stdout)
    if not result.ok or any(totals.get(op) != (KEYS, 0) for op in ("SET", "FETCH", "DELETE")):
        raise CheckFailed(f"{client}: mem_test did not set/fetch/delete all {KEYS} keys", shown, result.output)
    problem = verify_spread(eps, per_server, before, after, KEYS)
    if problem:
        raise CheckFailed(f"{client}: {problem}", shown, result.output)


@check("pymemcache HashClient spreads keys over all instances", needs=(PY_CLIENT,))
def python_client(ctx: Context) -> None:
    eps = endpoints(ctx)
    client = ctx.pick(PY_CLIENT)
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
