#!/usr/bin/python3
"""Create mongod's admin and application users if absent (labctl role mongodb), idempotently.

Input: one JSON object on stdin (never on the command line):
  {"port", "admin_user", "admin_password", "app_user", "app_password", "app_db",
   "replset", "members", "member_names"}
With "replset" set, the replica set is initiated first when it is not yet (members: addresses,
null entries fall back to the member's name), and the script waits for this node to be primary.
The first user is created through MongoDB's localhost exception, so this runs on the server host.
Output: {"changed": bool, "actions": [...]} on stdout. Errors go to stderr with exit 1, and
never contain a password.
"""

from __future__ import annotations

import json
import sys
import time

from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

AUTH_FAILED = 18
UNAUTHORIZED = 13


def connect(cfg: dict, user: str | None = None, password: str | None = None, db: str = "admin") -> MongoClient:
    kwargs: dict = {"directConnection": True, "serverSelectionTimeoutMS": 10000, "connectTimeoutMS": 5000}
    if user:
        kwargs.update(username=user, password=password, authSource=db)
    return MongoClient("127.0.0.1", int(cfg["port"]), **kwargs)


def can_login(cfg: dict, user: str, password: str, db: str) -> bool:
    client = connect(cfg, user, password, db)
    try:
        client[db].command("ping")
        return True
    except OperationFailure as exc:
        if exc.code == AUTH_FAILED:
            return False
        raise
    finally:
        client.close()


def ensure_replset(client: MongoClient, cfg: dict, actions: list[str]) -> None:
    hello = client.admin.command("isMaster")
    if not hello.get("setName"):
        names = cfg.get("member_names") or []
        addresses = cfg.get("members") or []
        hosts = [addr or name for addr, name in zip(addresses, names, strict=False)] or ["127.0.0.1"]
        members = [
            {"_id": i, "host": f"{h}:{int(cfg['port'])}", "priority": 2 if i == 0 else 1} for i, h in enumerate(hosts)
        ]
        client.admin.command("replSetInitiate", {"_id": cfg["replset"], "members": members})
        actions.append(f"initiated replica set {cfg['replset']} with {len(members)} members")
    deadline = time.monotonic() + 90
    while not client.admin.command("isMaster").get("ismaster"):
        if time.monotonic() > deadline:
            raise SystemExit("mongodb_users: this node did not become primary within 90 s")
        time.sleep(1)


def main() -> int:
    cfg = json.load(sys.stdin)
    actions: list[str] = []
    admin, admin_pw = cfg["admin_user"], cfg["admin_password"]
    app, app_pw, app_db = cfg["app_user"], cfg["app_password"], cfg["app_db"]

    if can_login(cfg, admin, admin_pw, "admin"):
        client = connect(cfg, admin, admin_pw)
        if cfg.get("replset"):
            ensure_replset(client, cfg, actions)
    else:
        # No admin yet: the localhost exception lets this connection create the first user.
        anon = connect(cfg)
        if cfg.get("replset"):
            ensure_replset(anon, cfg, actions)
        try:
            anon.admin.command("createUser", admin, pwd=admin_pw, roles=[{"role": "root", "db": "admin"}])
        except OperationFailure as exc:
            if exc.code == UNAUTHORIZED:
                raise SystemExit(
                    f"mongodb_users: user {admin!r} cannot log in with the password kept in the lab's state, "
                    "and the localhost exception is closed (users exist). Fix: remove the data directory "
                    "to start over, or put the right password in the lab's secrets/mongodb_admin."
                ) from None
            raise
        finally:
            anon.close()
        actions.append(f"created user {admin} (root)")
        client = connect(cfg, admin, admin_pw)

    with client:
        db = client[app_db]
        if not db.command("usersInfo", app)["users"]:
            db.command("createUser", app, pwd=app_pw, roles=[{"role": "readWrite", "db": app_db}])
            actions.append(f"created user {app} (readWrite on {app_db})")
        elif not can_login(cfg, app, app_pw, app_db):
            db.command("updateUser", app, pwd=app_pw)
            actions.append(f"reset the password of user {app}")

    print(json.dumps({"changed": bool(actions), "actions": actions}))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except PyMongoError as exc:
        # pymongo's messages carry server errors, not the credentials.
        print(f"mongodb_users: {type(exc).__name__}: {exc}", file=sys.stderr)
        sys.exit(1)
