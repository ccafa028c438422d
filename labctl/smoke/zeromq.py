"""Smoke checks for the zeromq role: the lab's ZeroMQ guide patterns, across two hosts over tcp.

The servers run as systemd units on the first host of group zeromq (or the hosts with
zeromq_servers_enabled: true); the checks run clients, subscribers, workers and the ventilator with
the scripts the role installed, clients on another zeromq host (the same host when there is only
one). Every script prints a JSON report and has its own timeouts, and every command runs under
timeout(1), so a broken service fails its check instead of hanging it.
"""

from __future__ import annotations

import json
import shlex
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

from labctl.smoke.base import CheckFailed, CheckFn, CheckSkipped, Context, Result, check

SERVICE = "zeromq"
GROUP = "zeromq"
UNIT = "labctl-zmq-*"  # what `labctl logs HOST UNIT` shows when a check fails

FILES = Path(__file__).parent / "files"
SINK_STATUS = "/run/labctl-zmq-sink/status.json"

# Role defaults (roles/zeromq/defaults/main.yml) for variables the topology does not set.
DEFAULTS: dict[str, Any] = {
    "zeromq_install_dir": "/opt/labctl-zmq",
    "zeromq_echo_enabled": True,
    "zeromq_echo_port": 5555,
    "zeromq_pubsub_enabled": True,
    "zeromq_pubsub_port": 5563,
    "zeromq_pubsub_keys": ["A", "B"],
    "zeromq_pubsub_interval": 0.2,
    "zeromq_syncpub_enabled": True,
    "zeromq_syncpub_port": 5561,
    "zeromq_syncpub_sync_port": 5562,
    "zeromq_syncpub_subscribers": 2,
    "zeromq_syncpub_messages": 10000,
    "zeromq_syncpub_round_timeout": 30,
    "zeromq_pipeline_enabled": True,
    "zeromq_pipeline_vent_port": 5557,
    "zeromq_pipeline_sink_port": 5558,
    "zeromq_pipeline_control_port": 5559,
    "zeromq_queue_enabled": True,
    "zeromq_queue_frontend_port": 5570,
    "zeromq_queue_backend_port": 5571,
    "zeromq_queue_workers": 2,
}

ECHO_REQUESTS = 50
PUBSUB_MESSAGES = 10
PIPELINE_TASKS = 200
PIPELINE_WORKERS = 2
QUEUE_CLIENTS = 2
QUEUE_REQUESTS = 20


MessageCheck = Callable[[Context], str]


def _check(name: str) -> Callable[[MessageCheck], MessageCheck]:
    """@check for checks that return a message for the smoke table (zmq_version, counts)."""

    def register(fn: MessageCheck) -> MessageCheck:
        check(name)(cast(CheckFn, fn))
        return fn

    return register


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "yes", "on", "1")
    return bool(value)


def _var(ctx: Context, host: str, name: str, default: Any = None) -> Any:
    """A role variable as set in the topology, else the role default (templated values count as unset)."""
    value = ctx.var(host, name, DEFAULTS.get(name, default))
    if isinstance(value, str) and "{{" in value:
        return DEFAULTS.get(name, default)
    return value


def server_and_client(ctx: Context) -> tuple[str, str]:
    """The host running the servers and the host the clients run on (another one when there is one)."""
    hosts = ctx.hosts(GROUP)
    servers = [h for h in hosts if _truthy(_var(ctx, h, "zeromq_servers_enabled", h == hosts[0]))]
    if not servers:
        raise CheckSkipped("no zeromq host runs the servers (zeromq_servers_enabled is false everywhere)")
    server = servers[0]
    return server, next((h for h in hosts if h != server), server)


def _need(ctx: Context, server: str, pattern: str) -> None:
    if not _truthy(_var(ctx, server, f"zeromq_{pattern}_enabled")):
        raise CheckSkipped(f"zeromq_{pattern}_enabled is false on {server}")


def _active(ctx: Context, server: str, *units: str) -> None:
    """Fail fast, with the journal, when a server unit is not running."""
    for unit in units:
        res = ctx.run(server, f"systemctl is-active {unit}", timeout=15)
        if not res.ok:
            journal = ctx.run(server, f"journalctl -u {unit} -n 15 --no-pager", timeout=15)
            raise CheckFailed(
                f"{server}: {unit} is {res.stdout.strip()}", f"systemctl is-active {unit}", journal.output
            )


def _bind(ctx: Context, server: str) -> str:
    """The address the server's services bind to (role default: its lab address)."""
    value = ctx.var(server, "zeromq_bind_address")
    if not value or "{{" in str(value):
        value = ctx.var(server, "labctl_address") or ctx.address(server)
    return str(value)


def _wildcard(address: str) -> bool:
    return address in ("*", "0.0.0.0")


def endpoint(ctx: Context, src: str, server: str, port: Any) -> str:
    """tcp:// endpoint of a server port as seen from src."""
    bind = _bind(ctx, server)
    if _wildcard(bind):
        bind = "127.0.0.1" if src == server else ctx.reach(src, server)
    return f"tcp://{bind}:{int(port)}"


def _script(ctx: Context, server: str, script: str, *args: Any, timeout: float = 30) -> str:
    """Command line running one of the role's scripts under timeout(1)."""
    path = f"{_var(ctx, server, 'zeromq_install_dir')}/{script}"
    argv = " ".join(shlex.quote(str(a)) for a in args)
    return f"timeout {int(timeout)} python3 {shlex.quote(path)} {argv}"


def parse_reports(result: Result) -> list[dict[str, Any]]:
    """The JSON reports a command printed, one per line."""
    out = []
    for line in result.stdout.splitlines():
        line = line.strip()
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def _one_report(result: Result, host: str) -> dict[str, Any]:
    reports = parse_reports(result)
    if not reports:
        raise CheckFailed(f"{host}: no report (exit {result.exited})", result.command, result.output)
    return reports[-1]


@_check("zmq_version, pyzmq and the C toolchain")
def versions(ctx: Context) -> str:
    """Every zeromq host compiles and runs a C program against libzmq (pkg-config), and imports pyzmq."""
    source = (FILES / "zeromq_version.c").read_text()
    seen: dict[str, list[str]] = {}
    for host in ctx.hosts(GROUP):
        build = (
            "set -e; d=$(mktemp -d); trap 'rm -rf $d' EXIT; cat > $d/v.c; "
            "cc -Wall -o $d/v $d/v.c $(pkg-config --cflags --libs libzmq); timeout 10 $d/v; "
            "timeout 10 python3 -c 'import zmq; print(zmq.zmq_version(), zmq.pyzmq_version())'"
        )
        res = ctx.sh(host, build, timeout=60, stdin=source)
        lines = res.stdout.split()
        if len(lines) != 3 or lines[0] != lines[1]:
            raise CheckFailed(
                f"{host}: C libzmq {lines[:1]} and pyzmq's libzmq {lines[1:2]} differ or are missing",
                build,
                res.output,
            )
        seen.setdefault(f"libzmq {lines[0]} (pyzmq {lines[2]})", []).append(host)
    return "; ".join(f"zmq_version {v} on {', '.join(h)}" for v, h in seen.items())


@_check("req-rep echo round trips")
def req_rep(ctx: Context) -> str:
    server, client = server_and_client(ctx)
    _need(ctx, server, "echo")
    _active(ctx, server, "labctl-zmq-echo")
    ep = endpoint(ctx, client, server, _var(ctx, server, "zeromq_echo_port"))
    cmd = _script(
        ctx,
        server,
        "echo_client.py",
        "--connect",
        ep,
        "--requests",
        ECHO_REQUESTS,
        "--timeout",
        5,
        "--tag",
        f"smoke-{client}",
        timeout=30,
    )
    res = ctx.run(client, cmd, timeout=45)
    rep = _one_report(res, client)
    if rep.get("echoed") != ECHO_REQUESTS or rep.get("received") != ECHO_REQUESTS:
        raise CheckFailed(
            f"{client} -> {ep}: {rep.get('echoed')}/{ECHO_REQUESTS} requests echoed: {rep.get('errors', [])[:3]}",
            cmd,
            res.output,
        )
    return f"{ECHO_REQUESTS}/{ECHO_REQUESTS} echoed {client} -> {ep} in {rep.get('seconds')} s"


@_check("pub-sub envelope filtering")
def pub_sub(ctx: Context) -> str:
    server, client = server_and_client(ctx)
    _need(ctx, server, "pubsub")
    _active(ctx, server, "labctl-zmq-psenvpub")
    keys = [str(k) for k in _var(ctx, server, "zeromq_pubsub_keys")]
    interval = float(_var(ctx, server, "zeromq_pubsub_interval"))
    ep = endpoint(ctx, client, server, _var(ctx, server, "zeromq_pubsub_port"))
    wait = 5 + 3 * PUBSUB_MESSAGES * interval
    key = keys[0]
    cmd = _script(
        ctx,
        server,
        "psenvsub.py",
        "--connect",
        ep,
        "--key",
        key,
        "--count",
        PUBSUB_MESSAGES,
        "--timeout",
        wait,
        timeout=wait + 10,
    )
    res = ctx.run(client, cmd, timeout=wait + 20)
    rep = _one_report(res, client)
    if rep.get("received") != PUBSUB_MESSAGES or rep.get("keys") != {key: PUBSUB_MESSAGES}:
        raise CheckFailed(
            f"subscriber for {key!r} on {client}: wanted {PUBSUB_MESSAGES} messages all under {key!r}, "
            f"got {rep.get('received')} by key {rep.get('keys')}",
            cmd,
            res.output,
        )
    if rep.get("bad") or rep.get("gaps"):
        raise CheckFailed(
            f"subscriber for {key!r} on {client}: {rep.get('gaps')} gaps, bad: {rep.get('bad', [])[:3]}",
            cmd,
            res.output,
        )
    # The filter is only meaningful if the other keys are really published: an unfiltered subscriber sees them.
    count = 3 * len(keys)
    cmd_all = _script(
        ctx,
        server,
        "psenvsub.py",
        "--connect",
        ep,
        "--key",
        "",
        "--count",
        count,
        "--timeout",
        wait,
        timeout=wait + 10,
    )
    res_all = ctx.run(client, cmd_all, timeout=wait + 20)
    rep_all = _one_report(res_all, client)
    if set(rep_all.get("keys", {})) != set(keys) or rep_all.get("bad"):
        raise CheckFailed(
            f"unfiltered subscriber on {client}: keys {sorted(rep_all.get('keys', {}))}, expected {sorted(keys)}",
            cmd_all,
            res_all.output,
        )
    return f"{PUBSUB_MESSAGES}/{PUBSUB_MESSAGES} {key!r} messages only, in order; unfiltered saw {sorted(keys)}"


@_check("synchronized pub-sub: no lost first message")
def sync_pub_sub(ctx: Context) -> str:
    server, client = server_and_client(ctx)
    _need(ctx, server, "syncpub")
    _active(ctx, server, "labctl-zmq-syncpub")
    subscribers = int(_var(ctx, server, "zeromq_syncpub_subscribers"))
    messages = int(_var(ctx, server, "zeromq_syncpub_messages"))
    pub = endpoint(ctx, client, server, _var(ctx, server, "zeromq_syncpub_port"))
    sync = endpoint(ctx, client, server, _var(ctx, server, "zeromq_syncpub_sync_port"))
    wait = 20 + messages / 5000
    one = _script(
        ctx,
        server,
        "syncsub.py",
        "--connect",
        pub,
        "--sync",
        sync,
        "--expect",
        messages,
        "--timeout",
        wait,
        timeout=wait + 5,
    )
    cmd = f"for i in $(seq {subscribers}); do {one} & done; wait"
    res = ctx.run(client, cmd, timeout=wait + 20)
    reports = parse_reports(res)
    if len(reports) != subscribers:
        raise CheckFailed(f"{len(reports)} of {subscribers} subscribers on {client} reported", cmd, res.output)
    for i, rep in enumerate(reports, 1):
        good = (
            rep.get("end")
            and rep.get("received") == messages
            and rep.get("first") == 0
            and rep.get("last") == messages - 1
            and rep.get("gaps") == 0
        )
        if not good:
            raise CheckFailed(
                f"subscriber {i}/{subscribers} on {client}: received {rep.get('received')}/{messages}, "
                f"first {rep.get('first')}, last {rep.get('last')}, gaps {rep.get('gaps')}, END {rep.get('end')} "
                f"{rep.get('error', '')}".strip(),
                cmd,
                res.output,
            )
    return f"{subscribers} subscribers on {client} each got {messages}/{messages} messages from seq 0, then END"


@_check("pipeline: ventilator, workers, sink, kill signal")
def pipeline(ctx: Context) -> str:
    server, client = server_and_client(ctx)
    _need(ctx, server, "pipeline")
    _active(ctx, server, "labctl-zmq-sink")
    token = f"zsmoke{uuid.uuid4().hex[:10]}"
    pattern = shlex.quote(f"[{token[0]}]{token[1:]}")  # never matches the shell running pgrep itself
    vent_port = _var(ctx, server, "zeromq_pipeline_vent_port")
    sink_port = _var(ctx, server, "zeromq_pipeline_sink_port")
    control = endpoint(ctx, client, server, _var(ctx, server, "zeromq_pipeline_control_port"))
    workers = []
    for i in range(1, PIPELINE_WORKERS + 1):
        one = _script(
            ctx,
            server,
            "taskwork.py",
            "--vent",
            endpoint(ctx, client, server, vent_port),
            "--sink",
            endpoint(ctx, client, server, sink_port),
            "--control",
            control,
            "--name",
            f"{token}-w{i}",
            "--idle-timeout",
            60,
            timeout=120,
        )
        workers.append(f"setsid nohup {one} > /tmp/{token}-w{i}.log 2>&1 < /dev/null &")
    start = " ".join(workers)
    try:
        ctx.sh(client, start, timeout=30)
        bind = _bind(ctx, server)
        vent = _script(
            ctx,
            server,
            "taskvent.py",
            "--bind",
            f"tcp://{bind}:{int(vent_port)}",
            "--sink",
            endpoint(ctx, server, server, sink_port),
            "--tasks",
            PIPELINE_TASKS,
            "--workers",
            PIPELINE_WORKERS,
            "--batch",
            token,
            "--timeout",
            20,
            timeout=45,
        )
        res = ctx.run(server, vent, timeout=60)
        rep = _one_report(res, server)
        if rep.get("sent") != PIPELINE_TASKS or rep.get("error"):
            raise CheckFailed(
                f"ventilator on {server}: sent {rep.get('sent')}/{PIPELINE_TASKS} tasks to {rep.get('workers')} "
                f"worker(s) on {client}: {rep.get('error')}",
                vent,
                res.output,
            )

        summary: dict[str, Any] = {}

        def batch_done() -> bool:
            out = ctx.run(server, f"cat {SINK_STATUS}", timeout=10)
            try:
                status = json.loads(out.stdout) if out.ok else {}
            except json.JSONDecodeError:
                return False
            summary.update(status.get(token, {}))
            return bool(summary)

        ctx.wait_until(f"sink on {server} finishes batch {token} ({SINK_STATUS})", batch_done, timeout=30)
        by_worker = summary.get("workers", {})
        if not (
            summary.get("complete")
            and summary.get("distinct") == PIPELINE_TASKS
            and summary.get("results") == PIPELINE_TASKS
        ):
            raise CheckFailed(
                f"sink on {server}: {summary.get('distinct')} distinct / {summary.get('results')} results of "
                f"{PIPELINE_TASKS} tasks (complete: {summary.get('complete')})",
                f"cat {SINK_STATUS}",
                json.dumps(summary),
            )
        expected = {f"{token}-w{i}" for i in range(1, PIPELINE_WORKERS + 1)}
        if set(by_worker) != expected or min(by_worker.values()) < 1:
            raise CheckFailed(
                f"results came from {sorted(by_worker)}, expected every worker of {sorted(expected)} on {client}",
                f"cat {SINK_STATUS}",
                json.dumps(summary),
            )
        gone = f"! pgrep -f {pattern}"
        try:
            ctx.wait_until(
                f"workers on {client} exit on the kill signal",
                lambda: ctx.run(client, gone, timeout=10).ok,
                timeout=15,
            )
        except CheckFailed as exc:
            logs = ctx.run(client, f"pgrep -af {pattern}; tail -n 5 /tmp/{token}-w*.log", timeout=10)
            raise CheckFailed(str(exc), gone, logs.output) from None
        worker_logs = ctx.run(client, f"cat /tmp/{token}-w*.log", timeout=10).stdout
        killed = worker_logs.count(f"KILL {token}")
        if killed != PIPELINE_WORKERS:
            raise CheckFailed(
                f"{killed}/{PIPELINE_WORKERS} workers logged the kill signal for batch {token}",
                f"cat /tmp/{token}-w*.log",
                worker_logs,
            )
    finally:
        ctx.run(client, f"pkill -f {pattern}; rm -f /tmp/{token}-w*.log", timeout=10)
    split = ", ".join(f"{w.rsplit('-', 1)[-1]}: {n}" for w, n in sorted(by_worker.items()))
    return (
        f"{PIPELINE_TASKS}/{PIPELINE_TASKS} results at the sink in {summary.get('ms')} ms ({split}); "
        f"{PIPELINE_WORKERS} workers on {client} exited on KILL"
    )


@_check("shared queue: ROUTER/DEALER broker and workers")
def shared_queue(ctx: Context) -> str:
    server, client = server_and_client(ctx)
    _need(ctx, server, "queue")
    _active(ctx, server, "labctl-zmq-broker", "labctl-zmq-worker")
    workers = int(_var(ctx, server, "zeromq_queue_workers"))
    ep = endpoint(ctx, client, server, _var(ctx, server, "zeromq_queue_frontend_port"))
    parts = []
    for i in range(1, QUEUE_CLIENTS + 1):
        one = _script(
            ctx,
            server,
            "rrclient.py",
            "--connect",
            ep,
            "--requests",
            QUEUE_REQUESTS,
            "--timeout",
            5,
            "--name",
            f"smoke-{client}-c{i}",
            timeout=40,
        )
        parts.append(f"{one} &")
    cmd = " ".join(parts) + " wait"
    res = ctx.run(client, cmd, timeout=60)
    reports = parse_reports(res)
    if len(reports) != QUEUE_CLIENTS:
        raise CheckFailed(f"{len(reports)} of {QUEUE_CLIENTS} clients on {client} reported", cmd, res.output)
    seen: dict[str, int] = {}
    for rep in reports:
        if rep.get("replies") != QUEUE_REQUESTS or rep.get("errors"):
            raise CheckFailed(
                f"client {rep.get('client')}: {rep.get('replies')}/{QUEUE_REQUESTS} replies through {ep}: "
                f"{rep.get('errors', [])[:3]}",
                cmd,
                res.output,
            )
        for worker, n in rep.get("workers", {}).items():
            seen[worker] = seen.get(worker, 0) + n
    if len(seen) < min(workers, 2):
        raise CheckFailed(
            f"replies came from {sorted(seen)} only; {workers} workers run behind the broker on {server}",
            cmd,
            res.output,
        )
    total = QUEUE_CLIENTS * QUEUE_REQUESTS
    return f"{total}/{total} requests from {QUEUE_CLIENTS} clients on {client} answered by {len(seen)} workers"
