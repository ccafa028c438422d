"""The client-side session script and the smoke verdict agree (no server here: a fake pymongo).

roles/mongodb/checks/files/mongodb_session.py runs on a lab client with Debian's pymongo; its JSON output
is judged by labctl.bundles.mongodb.checks.check_session on the controller. This runs the script's session
against an in-memory fake collection (BSON-like: naive UTC datetimes with millisecond precision,
binary as bytes, ObjectIds) and feeds its output to the verdict.
"""

from __future__ import annotations

import datetime
import importlib.util
import io
import itertools
import json
import sys
import types
from typing import Any

import pytest
from labctl.bundles.mongodb import checks as mongodb

_ids = itertools.count(1)


class ObjectId:
    def __init__(self) -> None:
        self.value = f"{next(_ids):024x}"

    def __str__(self) -> str:
        return self.value


class Binary(bytes):
    pass


class OperationFailure(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


def bson_roundtrip(value: Any) -> Any:
    """What a BSON round trip gives back with pymongo's defaults."""
    if isinstance(value, dict):
        return {k: bson_roundtrip(v) for k, v in value.items()}
    if isinstance(value, datetime.datetime):
        value = value.astimezone(datetime.UTC).replace(tzinfo=None)
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, bytes):
        return bytes(value)
    return value


class Collection:
    def __init__(self, store: list[dict[str, Any]], authed: bool) -> None:
        self.store, self.authed = store, authed

    def _guard(self) -> None:
        if not self.authed:
            raise OperationFailure("command insert requires authentication", 13)

    def drop(self) -> None:
        self._guard()
        self.store.clear()

    def insert_one(self, doc: dict[str, Any]) -> None:
        self._guard()
        self.store.append({"_id": ObjectId(), **bson_roundtrip(doc)})

    def find(self, query: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        self._guard()
        return [dict(d) for d in self.store if all(d.get(k) == v for k, v in (query or {}).items())]

    def find_one(self) -> dict[str, Any] | None:
        docs = self.find()
        return docs[0] if docs else None

    def count_documents(self, query: dict[str, Any]) -> int:
        return len(self.find(query))


STORE: list[dict[str, Any]] = []


class MongoClient:
    def __init__(self, host: str, port: int, **kw: Any) -> None:
        self.authed = kw.get("username") == "labapp" and kw.get("password") == "pw"

    def __getitem__(self, name: str) -> Any:
        client = self

        class DB:
            def __getitem__(self, coll: str) -> Collection:
                return Collection(STORE, client.authed)

        return DB()


@pytest.fixture
def session_script(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    STORE.clear()
    modules = {
        "pymongo": {"MongoClient": MongoClient},
        "pymongo.errors": {"OperationFailure": OperationFailure, "PyMongoError": Exception},
        "bson": {},
        "bson.binary": {"Binary": Binary},
        "bson.objectid": {"ObjectId": ObjectId},
    }
    for name, attrs in modules.items():
        module = types.ModuleType(name)
        for key, value in attrs.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name, module)
    spec = importlib.util.spec_from_file_location("mongodb_session", mongodb.SESSION_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(module: types.ModuleType, mode: str, monkeypatch, capsys, password: str = "pw") -> dict[str, Any]:
    cfg = {"host": "db", "port": 27017, "db": "test", "collection": "foo", "user": "labapp", "password": password}
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps({**cfg, "replset": ""})))
    monkeypatch.setattr(sys, "argv", ["mongodb_session.py", mode])
    module.main()
    return json.loads(capsys.readouterr().out)


def test_session_output_passes_the_verdict(session_script, monkeypatch, capsys) -> None:
    data = run(session_script, "session", monkeypatch, capsys)
    assert mongodb.check_session(data, datetime.datetime.now(datetime.UTC)) == []
    assert run(session_script, "count", monkeypatch, capsys)["count"] == 4


def test_session_is_repeatable(session_script, monkeypatch, capsys) -> None:
    run(session_script, "session", monkeypatch, capsys)
    data = run(session_script, "session", monkeypatch, capsys)
    assert mongodb.check_session(data, datetime.datetime.now(datetime.UTC)) == []


def test_noauth_reports_the_refusal(session_script, monkeypatch, capsys) -> None:
    out = run(session_script, "noauth", monkeypatch, capsys)
    assert out["ok"] is False and out["code"] == 13


def test_errors_do_not_leak_the_password(session_script, monkeypatch, capsys) -> None:
    out = run(session_script, "session", monkeypatch, capsys, password="WrongSecret")
    assert "failed" in out and "WrongSecret" not in json.dumps(out)
