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

from labctl.checks.base import CheckFailed, CheckFn, CheckSkipped, Context, Result, check

SERVICE = "zeromq"
GROUP = "zeromq"
UNIT = "labctl-zmq-*"  # what `labctl logs HOST UNIT` shows when a check fails

FILES = Path(__file__).parent / "files"
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


def server_and_client(ctx: Context) -> tuple[str, str]:
    """The host running the servers and the host the clients run on (another one when there is one)."""
    hosts = ctx.hosts(GROUP)
    servers = [h for h in hosts if ctx.fact(h, SERVICE)["servers"]]
    if not servers:
        raise CheckSkipped("no zeromq host runs the servers (zeromq_servers_enabled is false everywhere)")
    server = servers[0]
    return server, next((h for h in hosts if h != server), server)


def _serving(ctx: Context, pattern: str, *units: str) -> tuple[str, str, dict[str, Any]]:
    """Server, client and the role's settings of one pattern on the server (ports, counts); skip when
    the pattern is off there, fail (with the journal) when one of its units is not running."""
    server, client = server_and_client(ctx)
    settings: dict[str, Any] = ctx.fact(server, SERVICE)[pattern]
    if not settings["enabled"]:
        raise CheckSkipped(f"zeromq_{pattern}_enabled is false on {server}")
    _active(ctx, server, *units)
    return server, client, settings


def _active(ctx: Context, server: str, *units: str) -> None:
    """Fail fast, with the journal, when a server unit is not running."""
    for unit in units:
        res = ctx.run(server, f"systemctl is-active {unit}", timeout=15)
        if not res.ok:
            journal = ctx.run(server, f"journalctl -u {unit} -n 15 --no-pager", timeout=15)
            raise CheckFailed(
                f"{server}: {unit} is {res.stdout.strip()}", f"systemctl is-active {unit}", journal.output
            )


def _wildcard(address: str) -> bool:
    return address in ("*", "0.0.0.0")


def endpoint(ctx: Context, src: str, server: str, port: Any) -> str:
    """tcp:// endpoint of a server port as seen from src."""
    bind = str(ctx.fact(server, SERVICE)["bind_address"])
    if _wildcard(bind):
        bind = "127.0.0.1" if src == server else ctx.reach(src, server)
    return f"tcp://{bind}:{int(port)}"


def script(ctx: Context, host: str, file: str, limit: float, /, **options: Any) -> str:
    """Command line running one of the role's scripts on host under timeout(1) LIMIT seconds;
    each option becomes ``--name value`` (underscores in the name become dashes)."""
    path = f"{ctx.fact(host, SERVICE)['install_dir']}/{file}"
    argv = [f"--{key.replace('_', '-')} {shlex.quote(str(value))}" for key, value in options.items()]
    return " ".join([f"timeout {int(limit)} python3 {shlex.quote(path)}", *argv])


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


def _report(ctx: Context, host: str, command: str, timeout: float) -> tuple[Result, dict[str, Any]]:
    """Run a script on host and return its result and its (last) JSON report; fail when it printed none."""
    result = ctx.run(host, command, timeout=timeout)
    reports = parse_reports(result)
    if not reports:
        raise CheckFailed(f"{host}: no report (exit {result.exited})", result.command, result.output)
    return result, reports[-1]


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
    server, client, echo = _serving(ctx, "echo", "labctl-zmq-echo")
    ep = endpoint(ctx, client, server, echo["port"])
    cmd = script(
        ctx, client, "echo_client.py", 30, connect=ep, requests=ECHO_REQUESTS, timeout=5, tag=f"smoke-{client}"
    )
    res, rep = _report(ctx, client, cmd, 45)
    if rep.get("echoed") != ECHO_REQUESTS or rep.get("received") != ECHO_REQUESTS:
        raise CheckFailed(
            f"{client} -> {ep}: {rep.get('echoed')}/{ECHO_REQUESTS} requests echoed: {rep.get('errors', [])[:3]}",
            cmd,
            res.output,
        )
    return f"{ECHO_REQUESTS}/{ECHO_REQUESTS} echoed {client} -> {ep} in {rep.get('seconds')} s"


@_check("pub-sub envelope filtering")
def pub_sub(ctx: Context) -> str:
    server, client, pubsub = _serving(ctx, "pubsub", "labctl-zmq-psenvpub")
    keys = [str(k) for k in pubsub["keys"]]
    ep = endpoint(ctx, client, server, pubsub["port"])
    wait = 5 + 3 * PUBSUB_MESSAGES * float(pubsub["interval"])
    key = keys[0]
    cmd = script(ctx, client, "psenvsub.py", wait + 10, connect=ep, key=key, count=PUBSUB_MESSAGES, timeout=wait)
    res, rep = _report(ctx, client, cmd, wait + 20)
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
    cmd_all = script(ctx, client, "psenvsub.py", wait + 10, connect=ep, key="", count=count, timeout=wait)
    res_all, rep_all = _report(ctx, client, cmd_all, wait + 20)
    if set(rep_all.get("keys", {})) != set(keys) or rep_all.get("bad"):
        raise CheckFailed(
            f"unfiltered subscriber on {client}: keys {sorted(rep_all.get('keys', {}))}, expected {sorted(keys)}",
            cmd_all,
            res_all.output,
        )
    return f"{PUBSUB_MESSAGES}/{PUBSUB_MESSAGES} {key!r} messages only, in order; unfiltered saw {sorted(keys)}"


@_check("synchronized pub-sub: no lost first message")
def sync_pub_sub(ctx: Context) -> str:
    server, client, syncpub = _serving(ctx, "syncpub", "labctl-zmq-syncpub")
    subscribers = int(syncpub["subscribers"])
    messages = int(syncpub["messages"])
    pub = endpoint(ctx, client, server, syncpub["port"])
    sync = endpoint(ctx, client, server, syncpub["sync_port"])
    wait = 20 + messages / 5000
    one = script(ctx, client, "syncsub.py", wait + 5, connect=pub, sync=sync, expect=messages, timeout=wait)
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
    server, client, pipe = _serving(ctx, "pipeline", "labctl-zmq-sink")
    sink_status = ctx.fact(server, SERVICE)["sink_status"]
    token = f"zsmoke{uuid.uuid4().hex[:10]}"
    pattern = shlex.quote(f"[{token[0]}]{token[1:]}")  # never matches the shell running pgrep itself
    vent_ep, sink_ep, control_ep = (
        endpoint(ctx, client, server, pipe[port]) for port in ("vent_port", "sink_port", "control_port")
    )
    workers = []
    for i in range(1, PIPELINE_WORKERS + 1):
        name = f"{token}-w{i}"
        one = script(
            ctx, client, "taskwork.py", 120, vent=vent_ep, sink=sink_ep, control=control_ep, name=name, idle_timeout=60
        )
        workers.append(f"setsid nohup {one} > /tmp/{token}-w{i}.log 2>&1 < /dev/null &")
    start = " ".join(workers)
    try:
        ctx.sh(client, start, timeout=30)
        vent = script(
            ctx,
            server,
            "taskvent.py",
            45,
            bind=f"tcp://{ctx.fact(server, SERVICE)['bind_address']}:{int(pipe['vent_port'])}",
            sink=endpoint(ctx, server, server, pipe["sink_port"]),
            tasks=PIPELINE_TASKS,
            workers=PIPELINE_WORKERS,
            batch=token,
            timeout=20,
        )
        res, rep = _report(ctx, server, vent, 60)
        if rep.get("sent") != PIPELINE_TASKS or rep.get("error"):
            raise CheckFailed(
                f"ventilator on {server}: sent {rep.get('sent')}/{PIPELINE_TASKS} tasks to {rep.get('workers')} "
                f"worker(s) on {client}: {rep.get('error')}",
                vent,
                res.output,
            )

        summary: dict[str, Any] = {}

        def batch_done() -> bool:
            out = ctx.run(server, f"cat {sink_status}", timeout=10)
            try:
                status = json.loads(out.stdout) if out.ok else {}
            except json.JSONDecodeError:
                return False
            summary.update(status.get(token, {}))
            return bool(summary)

        ctx.wait_until(f"sink on {server} finishes batch {token} ({sink_status})", batch_done, timeout=30)
        by_worker = summary.get("workers", {})
        if not (
            summary.get("complete")
            and summary.get("distinct") == PIPELINE_TASKS
            and summary.get("results") == PIPELINE_TASKS
        ):
            raise CheckFailed(
                f"sink on {server}: {summary.get('distinct')} distinct / {summary.get('results')} results of "
                f"{PIPELINE_TASKS} tasks (complete: {summary.get('complete')})",
                f"cat {sink_status}",
                json.dumps(summary),
            )
        expected = {f"{token}-w{i}" for i in range(1, PIPELINE_WORKERS + 1)}
        if set(by_worker) != expected or min(by_worker.values()) < 1:
            raise CheckFailed(
                f"results came from {sorted(by_worker)}, expected every worker of {sorted(expected)} on {client}",
                f"cat {sink_status}",
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
    server, client, queue = _serving(ctx, "queue", "labctl-zmq-broker", "labctl-zmq-worker")
    workers = int(queue["workers"])
    ep = endpoint(ctx, client, server, queue["frontend_port"])
    parts = [
        script(
            ctx, client, "rrclient.py", 40, connect=ep, requests=QUEUE_REQUESTS, timeout=5, name=f"smoke-{client}-c{i}"
        )
        for i in range(1, QUEUE_CLIENTS + 1)
    ]
    cmd = " ".join(f"{one} &" for one in parts) + " wait"
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
