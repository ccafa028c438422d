"""MongoDB: the seed's shell session (via pymongo on a client) and its C driver example.

The role's settings (port, users, files, the controller's secrets dir) come from its fact,
``ctx.fact(host, "mongodb")``. The server may be missing on purpose: MongoDB's repository is
unreachable in some labs, and the role then records "not installed: source unreachable: URL" in its
state file (/etc/labctl/mongodb.state) and only provisions the client side. Server checks are then
skipped with that reason, while the C program is still compiled, linked and run against a closed
port (a clean connection error).
Passwords come from the lab's state dir on the controller (secrets/mongodb_app) and reach the
client on stdin only: never on a command line, never in a result.

Clients run on the mongodb_clients hosts (the role installs the client side and builds the C program
there). In a lab without that group the pymongo checks run on a mongodb host (or any lab host) with
pymongo, and the C program's checks are skipped with the reason (add a mongodb_clients host).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import shlex
from pathlib import Path
from typing import Any

from labctl.checks.base import CheckFailed, CheckSkipped, Context, Need, check, python_module

SERVICE = "mongodb"
GROUP = "mongodb"
UNIT = "mongod"  # what `labctl logs HOST UNIT` shows when a check fails
CLIENT_GROUP = "mongodb_clients"

FILES = Path(__file__).parent / "files"
C_SOURCE = FILES / "mongodb_test.c"
SESSION_SCRIPT = FILES / "mongodb_session.py"

REMOTE_DIR = "/tmp/labctl-mongodb"
# The pymongo session runs on a client host, else on any host with pymongo (the server host has it).
PYMONGO_CLIENT = Need(
    "client", group=CLIENT_GROUP, tools=(python_module("pymongo", "python3-pymongo"),), fallback=(GROUP, "all")
)
# The C program is built by the role on mongodb_clients hosts only.
C_CLIENT = Need("client", group=CLIENT_GROUP)
COLLECTION = "foo"


def skip_reason(marker: str | None, has_mongod: bool) -> str | None:
    """Why the server checks cannot run, from the role's marker file (None: they can)."""
    text = (marker or "").strip()
    if text.startswith("not installed"):
        url = text.split("source unreachable:", 1)[1].strip() if "source unreachable:" in text else ""
        return f"not installed: source unreachable ({url})" if url else text
    if not text and not has_mongod:
        return "not installed: no mongod and no state file (the mongodb role did not finish here)"
    return None


def redact(text: str, *secrets: str) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _server(ctx: Context) -> str:
    """The server host the checks use; skip when its server was not installed."""
    hosts = ctx.hosts(GROUP)
    if not hosts:
        raise CheckSkipped(f"no host in group {GROUP!r}")
    host = hosts[0]
    state_file = ctx.fact(host, SERVICE)["state_file"]
    marker = ctx.run(host, f"cat {shlex.quote(state_file)} 2>/dev/null", timeout=30)
    has_mongod = ctx.run(host, "command -v mongod", timeout=30).ok
    reason = skip_reason(marker.stdout if marker.ok else None, has_mongod)
    if reason:
        raise CheckSkipped(reason)
    return host


def app_password(ctx: Context, server: str) -> str:
    """The application user's password, from the lab's own state dir on this machine (its secrets/,
    where the mongodb role generates it): never from a path the host reports (its fact is data)."""
    state_dir = ctx.var(server, "labctl_state_dir")
    if not isinstance(state_dir, str) or not state_dir:
        raise CheckFailed(f"{server}: the lab's state directory is not known (labctl_state_dir)")
    path = Path(state_dir) / "secrets" / "mongodb_app"
    try:
        password = path.read_text().split()[0]
    except (OSError, IndexError):
        raise CheckFailed(
            f"no MongoDB application password in {path} (the mongodb role generates it on the controller)"
        ) from None
    return password


def connection(ctx: Context, server: str, client: str, password: str) -> dict[str, Any]:
    """What the client-side programs need to log in as the application user."""
    fact = ctx.fact(server, SERVICE)
    return {
        "host": ctx.reach(client, server),
        "port": int(fact["port"]),
        "db": fact["app_database"],
        "collection": COLLECTION,
        "user": fact["app_user"],
        "password": password,
        "replset": fact["replset_name"] or "",
    }


def uri(conn: dict[str, Any]) -> str:
    """A libmongoc connection string for conn (letters and digits only in generated passwords)."""
    options = f"authSource={conn['db']}&serverSelectionTimeoutMS=8000&connectTimeoutMS=5000"
    if conn["replset"]:
        options += f"&replicaSet={conn['replset']}"
    return f"mongodb://{conn['user']}:{conn['password']}@{conn['host']}:{conn['port']}/{conn['db']}?{options}"


def _session(ctx: Context, client: str, mode: str, conn: dict[str, Any]) -> dict[str, Any]:
    script = f"{REMOTE_DIR}/mongodb_session.py"
    ctx.sh(client, f"mkdir -p {REMOTE_DIR}")
    ctx.put_text(client, SESSION_SCRIPT.read_text(), script)
    cmd = f"python3 {script} {mode}"
    res = ctx.run(client, cmd, timeout=60, stdin=json.dumps(conn))
    out = redact(res.output, conn["password"])
    try:
        data: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise CheckFailed(f"{client}: pymongo session ({mode}) gave no result", cmd, out) from None
    if not res.ok or "failed" in data:
        raise CheckFailed(f"{client}: pymongo session ({mode}) failed: {data.get('failed', '')}", cmd, out)
    return data


def _strip_id(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}


def check_session(data: dict[str, Any], now: datetime.datetime | None = None) -> list[str]:
    """Problems in what the seed's session returned (empty when it behaved like the seed's shell)."""
    problems: list[str] = []
    docs = data.get("find", [])
    if len(docs) != 4:
        return [f"find() returned {len(docs)} documents, expected 4"]
    first, kristina, second, third = docs
    expect_k = {
        "name": "kristina",
        "contact info": {"twitter": "@kchodorow", "email": "kristina@10gen.com"},
        "friends": 400232,
        "pic": data.get("pic"),
    }
    for want, got in (({"a": 1}, first), ({"a": 2}, second), ({"a": 3}, third)):
        if _strip_id(got) != want:
            problems.append(f"find(): expected {want}, got {_strip_id(got)}")
    got_k = _strip_id(kristina)
    since = got_k.pop("member since", None)
    if got_k != expect_k:
        problems.append(f"find(): kristina document is {got_k}")
    try:
        when = datetime.datetime.fromisoformat(str(since))
        sent = datetime.datetime.fromisoformat(data["inserted_member_since"])
        if abs((when - sent).total_seconds()) > 1:
            problems.append(f"'member since' came back as {since}, inserted {data['inserted_member_since']}")
        if now and abs((when - now).total_seconds()) > 600:
            problems.append(f"'member since' {since} is not about now ({now.isoformat()})")
    except (TypeError, ValueError, KeyError):
        problems.append(f"'member since' is not a date: {since!r}")
    ids = [d.get("_id") for d in docs]
    if len(set(ids)) != 4 or not all(ids):
        problems.append(f"documents lack distinct _ids: {ids}")
    if data.get("find_one") != first:
        problems.append(f"find_one() returned {data.get('find_one')}, expected the first document {first}")
    if data.get("find_a1") != [first]:
        problems.append(f"find({{'a': 1}}) returned {data.get('find_a1')}")
    if data.get("find_kristina") != [kristina]:
        problems.append(f"find({{'name': 'kristina'}}) returned {data.get('find_kristina')}")
    return problems


def parse_c_output(stdout: str) -> tuple[bool, list[dict[str, Any]], int | None]:
    """mongodb_test's output: (connected, documents, the count it printed)."""
    connected = False
    docs: list[dict[str, Any]] = []
    count = None
    for line in stdout.splitlines():
        line = line.strip()
        if line.startswith("MONGO_OK"):
            connected = True
        elif line.startswith("{"):
            docs.append(json.loads(line))
        elif line.endswith(" documents") and line.split()[0].isdigit():
            count = int(line.split()[0])
    return connected, docs, count


@check("C driver program builds and fails cleanly without a server", needs=(C_CLIENT,))
def c_program_builds(ctx: Context) -> None:
    for client in ctx.picks(C_CLIENT):
        src = f"{REMOTE_DIR}/mongodb_test.c"
        exe = f"{REMOTE_DIR}/mongodb_test"
        ctx.sh(client, f"mkdir -p {REMOTE_DIR}")
        ctx.put_text(client, C_SOURCE.read_text(), src)
        ctx.sh(
            client,
            f"gcc -std=c99 -Wall -Wextra -Werror -o {exe} {src} $(pkg-config --cflags --libs libmongoc-1.0)",
            timeout=120,
        )
        installed_bin = ctx.fact(client, SERVICE)["test_bin"]
        installed_src = ctx.fact(client, SERVICE)["test_src"]
        want = hashlib.sha256(C_SOURCE.read_bytes()).hexdigest()
        got = ctx.sh(client, f"sha256sum {shlex.quote(installed_src)}").stdout.split()[0]
        if got != want:
            raise CheckFailed(f"{client}: {installed_src} differs from labctl's mongodb_test.c (re-provision)")
        ldd = ctx.sh(client, f"ldd {shlex.quote(installed_bin)}")
        if "libmongoc-1.0.so" not in ldd.stdout or "not found" in ldd.stdout:
            raise CheckFailed(f"{client}: {installed_bin} is not linked to libmongoc", ldd.command, ldd.output)
        version = ctx.sh(client, "pkg-config --modversion libmongoc-1.0").stdout.strip()
        out = ctx.sh(client, f"{shlex.quote(installed_bin)} --version")
        if f"libmongoc {version}" not in out.stdout:
            raise CheckFailed(f"{client}: --version does not report libmongoc {version}", out.command, out.output)
        # A closed port: the driver must report a connection error and exit 1, quickly.
        bogus = "mongodb://127.0.0.1:1/test?serverSelectionTimeoutMS=2000&connectTimeoutMS=1000"
        res = ctx.run(client, f"timeout 20 {exe} {shlex.quote(bogus)}", timeout=30)
        if res.exited != 1 or "connection failed" not in res.stderr:
            raise CheckFailed(
                f"{client}: expected a clean connection error (exit 1), got exit {res.exited}",
                res.command,
                res.output,
            )
        res = ctx.run(client, f"{exe} not-a-uri", timeout=30)
        if res.exited != 2 or "invalid URI" not in res.stderr:
            raise CheckFailed(f"{client}: a bad URI must exit 2 with 'invalid URI'", res.command, res.output)


@check("mongod runs with access control on the lab address")
def server_running(ctx: Context) -> None:
    server = _server(ctx)
    ctx.sh(server, "systemctl is-active mongod")
    fact = ctx.fact(server, SERVICE)
    port = int(fact["port"])
    listening = ctx.sh(server, f"ss -ltnH 'sport = :{port}'").stdout
    for addr in (ctx.address(server), "127.0.0.1"):
        if f"{addr}:{port}" not in listening:
            raise CheckFailed(f"{server}: mongod does not listen on {addr}:{port}", "ss -ltn", listening)
    conf = ctx.sh(server, "cat /etc/mongod.conf").stdout
    if "authorization: enabled" not in conf:
        raise CheckFailed(f"{server}: /etc/mongod.conf does not enable authorization", "cat /etc/mongod.conf", conf)
    nofile = int(fact["limit_nofile"])
    limits = ctx.sh(server, "cat /proc/$(systemctl show -p MainPID --value mongod)/limits").stdout
    line = next((x for x in limits.splitlines() if x.startswith("Max open files")), "")
    if line.split()[3:4] != [str(nofile)]:
        raise CheckFailed(f"{server}: mongod's open-file limit is not {nofile}", "cat /proc/PID/limits", line)


def _conn(ctx: Context, need: Need) -> tuple[str, str, dict[str, Any]]:
    server = _server(ctx)
    client = ctx.pick(need)
    return server, client, connection(ctx, server, client, app_password(ctx, server))


@check("unauthenticated writes are refused", needs=(PYMONGO_CLIENT,))
def auth_required(ctx: Context) -> None:
    _server_host, client, conn = _conn(ctx, PYMONGO_CLIENT)
    data = _session(ctx, client, "noauth", conn)
    if data.get("ok") or data.get("code") != 13:
        raise CheckFailed(f"{client}: an insert without credentials was not refused as unauthorized: {data}")


@check("the seed's shell session (insert, find, findOne) via pymongo", needs=(PYMONGO_CLIENT,))
def seed_session(ctx: Context) -> None:
    _server_host, client, conn = _conn(ctx, PYMONGO_CLIENT)
    data = _session(ctx, client, "session", conn)
    problems = check_session(data, datetime.datetime.now(datetime.UTC))
    if problems:
        raise CheckFailed(f"{client}: " + "; ".join(problems), output=json.dumps(data, indent=1)[:4000])


@check("the C program connects, inserts and reads the same documents", needs=(C_CLIENT,))
def c_program_reads(ctx: Context) -> None:
    _server_host, client, conn = _conn(ctx, C_CLIENT)
    before = _session(ctx, client, "count", conn)
    exe = shlex.quote(ctx.fact(client, SERVICE)["test_bin"])
    res = ctx.run(client, f"{exe} - {COLLECTION}", timeout=60, stdin=uri(conn) + "\n")
    out = redact(res.output, conn["password"])
    if not res.ok:
        raise CheckFailed(f"{client}: mongodb_test failed (exit {res.exited})", res.command, out)
    connected, docs, count = parse_c_output(res.stdout)
    names = [d.get("name") for d in docs]
    if not connected or count != before["count"] + 1 or len(docs) != count:
        raise CheckFailed(
            f"{client}: mongodb_test printed {count} documents, expected {before['count'] + 1}", res.command, out
        )
    if "kristina" not in names or [d.get("a") for d in docs if "a" in d][:3] != [1, 2, 3]:
        raise CheckFailed(f"{client}: mongodb_test did not read the session's documents", res.command, out)
    after = _session(ctx, client, "count", conn)
    if after["count"] != before["count"] + 1 or not any(d.get("from") == "mongodb_test.c" for d in after["docs"]):
        raise CheckFailed(f"{client}: pymongo does not see the document mongodb_test inserted: {after}")
