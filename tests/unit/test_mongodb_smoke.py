"""Pure logic of the mongodb smoke checks: skip reasons, the session's verdict, C output, secrets."""

from __future__ import annotations

import datetime
import filecmp
from pathlib import Path
from typing import Any

import pytest
from labctl.bundles.mongodb import checks as mongodb

from labctl.checks.base import CheckFailed, CheckSkipped, Context
from tests.unit.conftest import FakeRunner, MakeCtx, lab_host_vars, role_fact

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime.datetime(2026, 11, 25, 14, 0, 0, tzinfo=datetime.UTC)


GROUPS = {"mongodb": ["db"], "mongodb_clients": ["dev"]}
ADDRESSES = {"db": {"lab": "198.18.67.10"}, "dev": {"lab": "198.18.67.11"}}


def mfact(host: str, state_dir: Path, **role_vars: Any) -> dict[str, Any]:
    """The fact the mongodb role writes on host, the lab's state dir being state_dir."""
    host_vars = lab_host_vars(host, GROUPS, ADDRESSES)
    host_vars["labctl_state_dir"] = str(state_dir)
    return role_fact("mongodb", host_vars, **role_vars)


@pytest.fixture
def ctx(runner: FakeRunner, make_ctx: MakeCtx, tmp_path: Path) -> Context:
    """db (server) and dev (client), both provisioned; the generated secrets live in tmp_path/secrets."""
    runner.strict = False
    for host in ADDRESSES:
        runner.fact(host, "mongodb", mfact(host, tmp_path))
    return make_ctx(GROUPS, ADDRESSES, {h: {"labctl_state_dir": str(tmp_path)} for h in ADDRESSES})


def session_data() -> dict:
    pic = {"$hex": "89504e47"}
    since = "2026-11-25T13:59:58+00:00"
    docs = [
        {"_id": "1", "a": 1},
        {
            "_id": "2",
            "name": "kristina",
            "contact info": {"twitter": "@kchodorow", "email": "kristina@10gen.com"},
            "friends": 400232,
            "pic": pic,
            "member since": since,
        },
        {"_id": "3", "a": 2},
        {"_id": "4", "a": 3},
    ]
    return {
        "inserted_member_since": since,
        "pic": pic,
        "find": docs,
        "find_one": docs[0],
        "find_a1": [docs[0]],
        "find_kristina": [docs[1]],
    }


def test_skip_reason_names_the_unreachable_source() -> None:
    marker = "not installed: source unreachable: https://repo.mongodb.org/apt/debian/dists/bookworm/x/Release\n"
    assert mongodb.skip_reason(marker, False) == (
        "not installed: source unreachable (https://repo.mongodb.org/apt/debian/dists/bookworm/x/Release)"
    )


def test_skip_reason_without_marker_or_mongod() -> None:
    assert "not installed" in (mongodb.skip_reason(None, False) or "")
    assert mongodb.skip_reason(None, True) is None
    assert mongodb.skip_reason("installed: mongodb_source=repo https://x\n", True) is None


def test_server_checks_skip_with_the_reason(ctx: Context, runner: FakeRunner) -> None:
    runner.on("cat /etc/labctl/mongodb.state", "not installed: source unreachable: https://repo.example/Release\n")
    with pytest.raises(CheckSkipped, match=r"source unreachable \(https://repo.example/Release\)"):
        mongodb.seed_session(ctx)
    with pytest.raises(CheckSkipped):
        mongodb.server_running(ctx)


def test_state_file_comes_from_the_fact(ctx: Context, runner: FakeRunner, tmp_path: Path) -> None:
    runner.fact("db", "mongodb", mfact("db", tmp_path, mongodb_state_file="/srv/mongo.state"))
    runner.on("cat /srv/mongo.state", "not installed: source unreachable: https://x/Release\n")
    with pytest.raises(CheckSkipped, match="https://x/Release"):
        mongodb.server_running(ctx)


def test_server_checks_fail_when_the_role_has_not_run(ctx: Context, runner: FakeRunner) -> None:
    del runner.facts[("db", "mongodb")]
    with pytest.raises(CheckFailed, match="role mongodb has not run on host db"):
        mongodb.server_running(ctx)


def test_check_session_accepts_the_seed_session() -> None:
    assert mongodb.check_session(session_data(), NOW) == []


def test_check_session_catches_wrong_order_count_and_lookups() -> None:
    data = session_data()
    data["find"][0], data["find"][2] = data["find"][2], data["find"][0]
    assert any("expected {'a': 1}" in p for p in mongodb.check_session(data, NOW))
    data = session_data()
    data["find"].pop()
    assert mongodb.check_session(data, NOW) == ["find() returned 3 documents, expected 4"]
    data = session_data()
    data["find_kristina"] = []
    assert any("kristina" in p for p in mongodb.check_session(data, NOW))
    data = session_data()
    data["find"][1]["contact info"] = {"twitter": "@kchodorow"}
    assert any("kristina document" in p for p in mongodb.check_session(data, NOW))


def test_check_session_checks_the_date() -> None:
    data = session_data()
    data["find"][1]["member since"] = "not a date"
    assert any("not a date" in p for p in mongodb.check_session(data, NOW))
    assert any("not about now" in p for p in mongodb.check_session(session_data(), NOW + datetime.timedelta(days=1)))


def test_parse_c_output() -> None:
    out = (
        "MONGO_OK: connection succeeded\ninserted 1 document into test.foo\n"
        '{ "_id" : { "$oid" : "6560" }, "a" : 1 }\n{ "name" : "kristina" }\n2 documents\n'
    )
    connected, docs, count = mongodb.parse_c_output(out)
    assert connected and count == 2 and docs[1]["name"] == "kristina"


def test_uri_and_redaction() -> None:
    conn = {"user": "labapp", "password": "S3cret", "host": "198.18.67.10", "port": 27017, "db": "test", "replset": ""}
    uri = mongodb.uri(conn)
    assert uri.startswith("mongodb://labapp:S3cret@198.18.67.10:27017/test?authSource=test")
    assert "replicaSet" not in uri
    assert "replicaSet=rs0" in mongodb.uri({**conn, "replset": "rs0"})
    assert mongodb.redact(f"error in {uri}", "S3cret") == f"error in {uri.replace('S3cret', '***')}"


def installed(runner: FakeRunner, noauth: str) -> None:
    """db runs mongod; the noauth session on the client answers `noauth`."""
    runner.on("cat /etc/labctl/mongodb.state", "installed: mongodb_source=repo https://repo\n")
    runner.on("command -v mongod", "/usr/bin/mongod").on("mkdir").on("mongodb_session.py noauth", noauth)


def test_password_from_the_secrets_dir_goes_on_stdin_only(ctx: Context, runner: FakeRunner, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mongodb_app").write_text("Pw0rdPw0rdPw0rd\n")
    installed(runner, '{"ok": false, "code": 13, "error": "requires auth"}')
    mongodb.auth_required(ctx)
    assert all("Pw0rd" not in cmd for _h, cmd, _s in runner.calls)
    assert any(stdin and "Pw0rdPw0rdPw0rd" in stdin for _h, _c, stdin in runner.calls)


def test_auth_check_fails_when_unauthenticated_insert_works(ctx: Context, runner: FakeRunner, tmp_path: Path) -> None:
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mongodb_app").write_text("x\n")
    installed(runner, '{"ok": true, "code": null, "error": ""}')
    with pytest.raises(CheckFailed, match="not refused"):
        mongodb.auth_required(ctx)


def test_missing_password_file_is_a_clear_failure(ctx: Context) -> None:
    with pytest.raises(CheckFailed, match="mongodb_app"):
        mongodb.app_password(ctx, "db")


def test_helper_files_ship_and_role_uses_the_same_c_source() -> None:
    assert mongodb.C_SOURCE.is_file() and mongodb.SESSION_SCRIPT.is_file()
    role_copy = ROOT / "roles" / "mongodb" / "files" / "mongodb_test.c"
    assert filecmp.cmp(role_copy, mongodb.C_SOURCE, shallow=False)
    compile(mongodb.SESSION_SCRIPT.read_text(), "mongodb_session.py", "exec")
    compile((ROOT / "roles/mongodb/files/mongodb_users.py").read_text(), "mongodb_users.py", "exec")


def test_a_hostile_secrets_dir_fact_changes_nothing_labctl_reads(
    ctx: Context, runner: FakeRunner, tmp_path: Path
) -> None:
    """The host says its secrets are in /etc (issue 21 item 10): labctl still reads the lab's own
    state dir, and a file the fact names is never opened."""
    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "mongodb_app").write_text("FromTheHost\n")
    runner.facts[("db", "mongodb")] = {**runner.facts[("db", "mongodb")], "secrets_dir": str(hostile)}
    with pytest.raises(CheckFailed, match=str(tmp_path / "secrets" / "mongodb_app")):
        mongodb.app_password(ctx, "db")  # the lab's own secret is missing: a failure, not the host's file
    runner.facts[("db", "mongodb")]["secrets_dir"] = "/etc"
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "mongodb_app").write_text("TheLabs\n")
    assert mongodb.app_password(ctx, "db") == "TheLabs"
