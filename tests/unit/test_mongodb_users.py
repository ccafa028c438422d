"""The mongodb role's user script (roles/mongodb/files/mongodb_users.py) against a fake mongod.

No MongoDB server is installable here, so a small fake of the pymongo API models what the script
relies on: authentication (code 18 on a bad login), the localhost exception (an unauthenticated
createUser works only while no user exists, else code 13), usersInfo/updateUser, and isMaster /
replSetInitiate.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
import types
from pathlib import Path
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "roles" / "mongodb" / "files" / "mongodb_users.py"


class PyMongoError(Exception):
    pass


class OperationFailure(PyMongoError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class Server:
    def __init__(self) -> None:
        self.users: dict[tuple[str, str], str] = {}
        self.set_name = ""
        self.initiations = 0


SERVER = Server()


class FakeDB:
    def __init__(self, client: FakeClient, name: str) -> None:
        self.client, self.name = client, name

    def command(self, name: str, *args: Any, **kw: Any) -> dict[str, Any]:
        c = self.client
        authed = c.user is not None and SERVER.users.get((c.source, c.user)) == c.password
        if c.user is not None and not authed:
            raise OperationFailure("Authentication failed.", 18)
        if name in ("ping", "isMaster"):
            return {"ok": 1, "ismaster": True, "setName": SERVER.set_name or None}
        if name == "replSetInitiate":
            SERVER.set_name = args[0]["_id"]
            SERVER.initiations += 1
            return {"ok": 1}
        if name == "createUser":
            if not authed and SERVER.users:
                raise OperationFailure("not authorized", 13)
            SERVER.users[(self.name, args[0])] = kw["pwd"]
            return {"ok": 1}
        if not authed:
            raise OperationFailure("requires authentication", 13)
        if name == "usersInfo":
            return {"users": [{"user": args[0]}] if (self.name, args[0]) in SERVER.users else []}
        if name == "updateUser":
            SERVER.users[(self.name, args[0])] = kw["pwd"]
            return {"ok": 1}
        raise AssertionError(name)


class FakeClient:
    def __init__(self, host: str, port: int, **kw: Any) -> None:
        self.user, self.password, self.source = kw.get("username"), kw.get("password"), kw.get("authSource")

    def __getitem__(self, name: str) -> FakeDB:
        return FakeDB(self, name)

    @property
    def admin(self) -> FakeDB:
        return FakeDB(self, "admin")

    def close(self) -> None:
        pass

    def __enter__(self) -> FakeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


@pytest.fixture
def users_script(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    global SERVER
    SERVER = Server()
    pymongo = types.ModuleType("pymongo")
    pymongo.MongoClient = FakeClient  # type: ignore[attr-defined]
    errors = types.ModuleType("pymongo.errors")
    errors.OperationFailure = OperationFailure  # type: ignore[attr-defined]
    errors.PyMongoError = PyMongoError  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pymongo", pymongo)
    monkeypatch.setitem(sys.modules, "pymongo.errors", errors)
    spec = importlib.util.spec_from_file_location("mongodb_users", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(module: types.ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], **cfg: Any):
    base = {
        "port": 27017,
        "admin_user": "admin",
        "admin_password": "AdminPw",
        "app_user": "labapp",
        "app_password": "AppPw",
        "app_db": "test",
        "replset": "",
        "members": [],
        "member_names": [],
    }
    base.update(cfg)
    monkeypatch.setattr(sys, "stdin", io.StringIO(json.dumps(base)))
    assert module.main() == 0
    return json.loads(capsys.readouterr().out)


def test_creates_users_once(users_script, monkeypatch, capsys) -> None:
    first = run(users_script, monkeypatch, capsys)
    assert first["changed"] and len(first["actions"]) == 2
    assert SERVER.users == {("admin", "admin"): "AdminPw", ("test", "labapp"): "AppPw"}
    assert run(users_script, monkeypatch, capsys) == {"changed": False, "actions": []}


def test_resets_a_changed_app_password(users_script, monkeypatch, capsys) -> None:
    run(users_script, monkeypatch, capsys)
    out = run(users_script, monkeypatch, capsys, app_password="NewPw")
    assert out["changed"] and SERVER.users[("test", "labapp")] == "NewPw"


def test_admin_password_mismatch_is_a_clear_error_without_secrets(users_script, monkeypatch, capsys) -> None:
    run(users_script, monkeypatch, capsys)
    with pytest.raises(SystemExit) as exc:
        run(users_script, monkeypatch, capsys, admin_password="WrongPw")
    assert "localhost exception is closed" in str(exc.value.code)
    assert "WrongPw" not in str(exc.value.code) and "AdminPw" not in str(exc.value.code)


def test_initiates_the_replica_set_once(users_script, monkeypatch, capsys) -> None:
    cfg = {"replset": "rs0", "members": ["198.18.67.10", None], "member_names": ["db", "db2"]}
    out = run(users_script, monkeypatch, capsys, **cfg)
    assert out["actions"][0] == "initiated replica set rs0 with 2 members"
    run(users_script, monkeypatch, capsys, **cfg)
    assert SERVER.initiations == 1
