"""The seed's mongo shell session, replayed with pymongo on a client host (labctl smoke, mongodb).

Usage: python3 mongodb_session.py MODE   with a JSON object on stdin:
  {"host", "port", "db", "collection", "user", "password", "replset"}
MODE noauth   insert without credentials; prints {"ok": bool, "code", "error"} (ok must be false)
MODE session  drop the collection, then the seed's inserts and finds; prints what they returned
MODE count    prints the documents of the collection (after the C program's insert)
Output is one JSON object on stdout; the password never appears in it.
"""

from __future__ import annotations

import datetime
import json
import sys

from bson.binary import Binary
from bson.objectid import ObjectId
from pymongo import MongoClient
from pymongo.errors import OperationFailure, PyMongoError

# A PNG signature and a few bytes: the seed's BinData(...) "pic".
PIC = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDRlabctl"


def plain(value):
    """BSON values as JSON: ObjectId -> str, datetime -> ISO 8601, binary -> {"$hex": ...}."""
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [plain(v) for v in value]
    if isinstance(value, ObjectId):
        return str(value)
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)
        return value.isoformat()
    if isinstance(value, (bytes, Binary)):
        return {"$hex": bytes(value).hex()}
    return value


def connect(cfg, auth=True):
    kwargs = {"serverSelectionTimeoutMS": 8000, "connectTimeoutMS": 5000}
    if cfg.get("replset"):
        kwargs["replicaSet"] = cfg["replset"]
    else:
        kwargs["directConnection"] = True
    if auth:
        kwargs.update(username=cfg["user"], password=cfg["password"], authSource=cfg["db"])
    return MongoClient(cfg["host"], int(cfg["port"]), **kwargs)


def noauth(cfg):
    client = connect(cfg, auth=False)
    try:
        client[cfg["db"]]["labctl_noauth"].insert_one({"a": 1})
        return {"ok": True, "code": None, "error": ""}
    except OperationFailure as exc:
        return {"ok": False, "code": exc.code, "error": str(exc)}


def session(cfg):
    coll = connect(cfg)[cfg["db"]][cfg["collection"]]
    coll.drop()
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    coll.insert_one({"a": 1})  # db.foo.save({a:1})
    doc = {
        "name": "kristina",
        "contact info": {"twitter": "@kchodorow", "email": "kristina@10gen.com"},
        "friends": 400232,
        "pic": Binary(PIC),
        "member since": now,
    }
    coll.insert_one(doc)  # db.foo.insert(doc)
    coll.insert_one({"a": 2})
    coll.insert_one({"a": 3})
    return {
        "inserted_member_since": now.isoformat(),
        "pic": {"$hex": PIC.hex()},
        "find": plain(list(coll.find())),
        "find_one": plain(coll.find_one()),
        "find_a1": plain(list(coll.find({"a": 1}))),
        "find_kristina": plain(list(coll.find({"name": "kristina"}))),
    }


def count(cfg):
    coll = connect(cfg)[cfg["db"]][cfg["collection"]]
    return {"count": coll.count_documents({}), "docs": plain(list(coll.find()))}


def main():
    cfg = json.load(sys.stdin)
    mode = sys.argv[1]
    try:
        out = {"noauth": noauth, "session": session, "count": count}[mode](cfg)
    except PyMongoError as exc:
        print(json.dumps({"failed": f"{type(exc).__name__}: {exc}"}))
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
