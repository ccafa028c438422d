"""Secrets the user wrote are secrets to `save` (issue 21 item 7): the roles' argument specs say which
variables are secret, save without --with-secrets refuses a lab that sets one (before it reads any
host, naming where and never the value), and the files roles make from them are set aside on the host."""

from __future__ import annotations

import json
import re
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml
from labctl.bundles.memcached import checks as memcached

from labctl import paths
from labctl.checks.base import CheckFailed
from labctl.errors import LabError
from labctl.hostside import setaside
from labctl.lifecycle.model import Lab
from labctl.provisioning import secretvars
from labctl.provisioning.inventory_vars import load
from labctl.reproduce import archive, locked
from labctl.state import LabState
from labctl.topology import parse
from tests.unit.conftest import FakeRunner, MakeCtx, lab_host_vars, role_fact
from tests.unit.test_lock import _FakeProvider, sample

PASSWORD = "Sasl-S3cret-Pw"


def test_the_roles_argument_specs_name_the_secrets() -> None:
    assert "memcached_sasl_password" in secretvars.secret_names()
    assert "memcached_sasl_user" not in secretvars.secret_names()


def test_every_role_option_named_like_a_secret_is_marked() -> None:
    """A new password/token/secret option that a role forgets to mark no_log fails here (a directory or
    file name, like mongodb_secrets_dir, says where secrets live and is none)."""
    unmarked = []
    for spec in sorted(paths.ROLES_DIR.glob("*/meta/argument_specs.yml")):
        for entry in (yaml.safe_load(spec.read_text())["argument_specs"] or {}).values():
            for name, option in (entry.get("options") or {}).items():
                looks = re.search(r"passw|token|secret|private_key|api_key", name)
                where = option.get("type") == "path" or name.endswith(("_dir", "_path", "_file"))
                if looks and not where and name not in secretvars.secret_names():
                    unmarked.append(f"{spec.parent.parent.name}: {name}")
    assert unmarked == []


def test_no_log_options_and_suboptions_make_a_variable_secret(tmp_path: Path) -> None:
    spec = {
        "argument_specs": {
            "main": {
                "options": {
                    "r_token": {"type": "str", "no_log": True},
                    "r_user": {"type": "str", "no_log": False},
                    "r_port": {"type": "int"},
                    "r_accounts": {"type": "list", "elements": "dict",
                                   "options": {"name": {"type": "str"}, "key": {"type": "str", "no_log": True}}},
                }
            },
            "other": {"options": {"r_api_secret": {"no_log": True}}},
        }
    }  # fmt: skip
    (tmp_path / "r" / "meta").mkdir(parents=True)
    (tmp_path / "r" / "meta" / "argument_specs.yml").write_text(yaml.safe_dump(spec))
    (tmp_path / "plain" / "meta").mkdir(parents=True)
    (tmp_path / "plain" / "meta" / "argument_specs.yml").write_text("---\n")
    assert secretvars.secret_names(tmp_path) == {"r_token", "r_accounts", "r_api_secret"}


def _topology(tmp_path: Path, **places: dict[str, Any]) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "sv",
        "networks": [{"name": "lab", "subnet": "198.18.206.0/24"}],
        "hosts": [{"name": "m1", "groups": ["memcached"], "networks": ["lab"], "vars": places.get("host", {})}],
    }
    if "vars" in places:
        raw["vars"] = places["vars"]
    if "group" in places:
        raw["groups"] = {"memcached": places["group"]}
    return raw


def test_where_the_topology_and_inventory_set_a_secret(tmp_path: Path) -> None:
    secret = {"memcached_sasl_password": PASSWORD}
    raw = _topology(tmp_path, vars=secret, group=secret, host={**secret, "memcached_sasl_user": "u"})
    topo = parse(raw, tmp_path / "sv.yml", paths.known_groups())
    inv = tmp_path / "inventory"
    (inv / "group_vars").mkdir(parents=True)
    (inv / "host_vars").mkdir()
    (inv / "group_vars" / "memcached.yml").write_text(f"memcached_sasl_password: {PASSWORD}\n")
    (inv / "group_vars" / "mongodb.yml").write_text(f"memcached_sasl_password: {PASSWORD}\n")  # no host of it
    (inv / "host_vars" / "m1.yml").write_text(f"memcached_sasl_password: {PASSWORD}\n")
    found = secretvars.written(topo, load(inv), inv, secretvars.secret_names())
    assert found == [
        "vars.memcached_sasl_password",
        "groups.memcached.memcached_sasl_password",
        "hosts.m1.vars.memcached_sasl_password",
        f"memcached_sasl_password in {inv}/group_vars/memcached",
        f"memcached_sasl_password in {inv}/host_vars/m1",
    ]


def _lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, raw: dict[str, Any]) -> tuple[Lab, _FakeProvider]:
    """The lab on the fake provider of test_lock (it records whether a host was exported)."""
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("LABCTL_INVENTORY_DIR", str(tmp_path / "inventory"))
    state = LabState("sv")
    state.ensure_keypair()
    lab = Lab(parse(raw, tmp_path / "sv.yml", paths.known_groups()), state)
    fake = _FakeProvider()
    monkeypatch.setattr(lab, "backend", lambda _name: fake)
    monkeypatch.setattr(locked, "topology_raw", lambda _lab: dict(raw))
    return lab, fake


@pytest.mark.parametrize("place", ["vars", "group", "host", "inventory"])
def test_save_refuses_a_secret_the_user_wrote_before_reading_any_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, place: str
) -> None:
    secret = {"memcached_sasl_password": PASSWORD}
    raw = _topology(tmp_path, **({} if place == "inventory" else {place: secret}))
    if place == "inventory":
        (tmp_path / "inventory" / "group_vars").mkdir(parents=True)
        (tmp_path / "inventory" / "group_vars" / "memcached").write_text(yaml.safe_dump(secret))
    lab, fake = _lab(tmp_path, monkeypatch, raw)
    monkeypatch.setattr(locked, "collect", lambda _lab: pytest.fail("a host was read"))
    with pytest.raises(LabError) as err:
        archive.save(lab, tmp_path / "lab.tar")
    text = str(err.value)
    where = {"vars": "vars.", "group": "groups.memcached.", "host": "hosts.m1.vars.", "inventory": ""}[place]
    assert f"{where}memcached_sasl_password" in text and "Fix: save it with --with-secrets" in text
    assert place != "inventory" or "inventory/group_vars/memcached" in text
    assert PASSWORD not in text and "\n" not in text
    assert fake.secrets is None and not (tmp_path / "lab.tar").exists()  # nothing read, nothing written


def test_with_secrets_the_lab_is_saved_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab, fake = _lab(tmp_path, monkeypatch, _topology(tmp_path, vars={"memcached_sasl_password": PASSWORD}))
    monkeypatch.setattr(locked, "collect", lambda _lab: sample())
    report = archive.save(lab, tmp_path / "lab.tar", with_secrets=True)
    assert fake.secrets is True and report.path.stat().st_mode & 0o777 == 0o600
    with tarfile.open(report.path) as tar:
        topo = yaml.safe_load(tar.extractfile("topology.yml").read())  # type: ignore[union-attr]
    assert topo["vars"]["memcached_sasl_password"] == PASSWORD  # the restore converges with it


def test_a_lab_without_secrets_saves_as_before(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab, fake = _lab(tmp_path, monkeypatch, _topology(tmp_path, vars={"memcached_sasl_user": "u"}))
    monkeypatch.setattr(locked, "collect", lambda _lab: sample())
    report = archive.save(lab, tmp_path / "lab.tar")
    assert fake.secrets is False and report.path.stat().st_mode & 0o777 == 0o644


GROUPS = {"memcached": ["db"], "memcached_clients": ["dev"]}
ADDRESSES = {"db": {"lab": "198.18.206.10"}, "dev": {"lab": "198.18.206.11"}}


@pytest.mark.parametrize("sasl", [True, False])
def test_the_sasl_database_is_set_aside_unless_with_secrets(tmp_path: Path, sasl: bool) -> None:
    """The memcached role's real fact on a SASL server lists the sasldb and its credential digest:
    setaside (run on every saved container and VM) puts them aside with the host keys."""
    facts = tmp_path / "facts.d"
    facts.mkdir()
    on = {"memcached_sasl_enabled": True, "memcached_sasl_password": PASSWORD} if sasl else {}
    for host in ("db", "dev"):
        fact = role_fact("memcached", lab_host_vars(host, GROUPS, ADDRESSES), **on)
        (facts / f"{host}-memcached.fact").write_text(json.dumps(fact))
    expected = ["/etc/sasl2/memcached-sasldb2", "/etc/sasl2/.memcached-sasl.sha256"] if sasl else []
    assert setaside.secret_files(str(facts)) == expected  # the client's fact lists none
    assert PASSWORD not in "".join(p.read_text() for p in facts.iterdir())


def test_the_memcached_checks_pass_the_sasl_password_on_stdin_only(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    """memcstat and the C client get the password on stdin: no command labctl runs, shows in a failed
    check or logs holds it, even when memcstat fails."""
    groups = {"memcached": ["db"], "memcached_clients": ["dev"]}
    addresses = {"db": {"lab": "198.18.206.10"}, "dev": {"lab": "198.18.206.11"}}
    ctx = make_ctx(groups, addresses, {h: {"memcached_sasl_password": PASSWORD} for h in addresses})
    for host in addresses:
        fact = role_fact("memcached", lab_host_vars(host, groups, addresses), memcached_sasl_enabled=True)
        runner.fact(host, "memcached", fact)
    runner.on("memcstat", "", exited=1)
    with pytest.raises(CheckFailed) as err:
        memcached.memcstat(ctx, "dev", memcached.endpoints(ctx))
    failure = f"{err.value} {err.value.command} {err.value.output}"
    assert PASSWORD not in failure
    calls = [(cmd, stdin) for _h, cmd, stdin in runner.calls if "memcstat" in cmd]
    assert calls and all(PASSWORD not in cmd and stdin == f"{PASSWORD}\n" for cmd, stdin in calls)
