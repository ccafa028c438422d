"""Every role records what it resolved as a local fact, and the facts hold what the smoke checks read.

The facts are rendered from the roles' own templates with their defaults (conftest.role_fact), in the
default lab's shape, so a check reading a key the role does not write fails here, not in a lab."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import paths
from labctl.checks.runner import service_modules
from tests.unit.conftest import lab_host_vars, role_fact
from tests.unit.fact_reads import fact_reads

ROLES = sorted(p.name for p in paths.ROLES_DIR.iterdir() if p.is_dir() and p.name != "common")
GROUPS = {
    "nat_gateway": ["gw"],
    "memcached": ["db"],
    "mongodb": ["db"],
    "mongrel2": ["web"],
    "zeromq": ["web", "dev"],
    "swig": ["dev"],
    "sdn_controller": ["sdn"],
    "memcached_clients": ["dev"],
    "mongodb_clients": ["dev"],
}
ADDRESSES = {
    "gw": {"outside": "198.18.1.10", "inside": "198.18.2.254"},
    "db": {"inside": "198.18.2.10"},
    "web": {"inside": "198.18.2.11"},
    "dev": {"inside": "198.18.2.12"},
    "sdn": {"inside": "198.18.2.13"},
    "ext": {"outside": "198.18.1.11"},
}
# The default lab's port forward (labs/default.yml sets it for group nat_gateway).
DEFAULT_LAB_FORWARDS = yaml.safe_load(paths.DEFAULT_LAB.read_text())["groups"]["nat_gateway"]["nat_gateway_forwards"]
# What the interpreter on a Debian 12 host answers the swig role.
PYTHON_PATHS = {"stdout": '{"include": "/usr/include/python3.11", "site": "/usr/lib/python3/dist-packages"}'}

# The keys each role's checks (roles/*/checks/*.py, the bundles) read from its fact, found in their source.
CHECK_SOURCES = sorted(paths.ROLES_DIR.glob("*/checks/*.py"))
READ_BY_CHECKS = fact_reads(CHECK_SOURCES)
# Keys no check reads today that the facts keep for their readers (the role READMEs list them).
KEPT_FOR_READERS = {"memcached": {"server", "client"}, "mongodb": {"server"}}


def groups_for(role: str) -> dict[str, list[str]]:
    """The default lab's groups; a role the default lab does not use gets its group on host dev."""
    return GROUPS if role in GROUPS else {**GROUPS, role: ["dev"]}


def fact(role: str, host: str, state_dir: Path | None = None, **role_vars: Any) -> dict[str, Any]:
    host_vars = lab_host_vars(host, groups_for(role), ADDRESSES)
    host_vars["labctl_networks"] = {"outside": "198.18.1.0/24", "inside": "198.18.2.0/24"}
    host_vars["__swig_python_paths"] = PYTHON_PATHS
    if state_dir:
        host_vars["labctl_state_dir"] = str(state_dir)
    return role_fact(role, host_vars, **role_vars)


def test_every_role_with_checks_is_listed() -> None:
    assert set(READ_BY_CHECKS) == set(ROLES)
    assert set(ROLES) <= set(service_modules())


@pytest.mark.parametrize("role", ROLES)
def test_the_role_writes_its_fact(role: str) -> None:
    tasks = {p.name: yaml.safe_load(p.read_text()) for p in (paths.ROLES_DIR / role / "tasks").glob("*.yml")}
    writes = [
        t
        for t in (task for file in tasks.values() for task in file or [])
        if t.get("ansible.builtin.template", {}).get("dest") == f"/etc/ansible/facts.d/{role}.fact"
    ]
    assert len(writes) == 1, f"roles/{role} must template /etc/ansible/facts.d/{role}.fact exactly once"
    assert writes[0]["ansible.builtin.template"]["src"] == f"etc/ansible/facts.d/{role}.fact.j2"


@pytest.mark.parametrize("role", ROLES)
def test_the_fact_holds_what_the_checks_read(role: str) -> None:
    host = next(h for h in ADDRESSES if h in groups_for(role)[role])
    keys = set(fact(role, host))
    assert READ_BY_CHECKS[role] <= keys, f"checks read {sorted(READ_BY_CHECKS[role] - keys)} the {role} fact lacks"
    assert KEPT_FOR_READERS.get(role, set()) <= keys


def test_templated_defaults_are_resolved() -> None:
    assert fact("zeromq", "web")["bind_address"] == "198.18.2.11"
    assert (fact("zeromq", "web")["servers"], fact("zeromq", "dev")["servers"]) == (True, False)
    assert {i["listen_address"] for i in fact("memcached", "db")["instances"]} == {"198.18.2.10"}
    nat = fact("nat_gateway", "gw", nat_gateway_forwards=DEFAULT_LAB_FORWARDS)
    assert (nat["outside_address"], nat["inside_address"]) == ("198.18.1.10", "198.18.2.254")
    assert [(f["to_host"], f["to_address"], f["to_port"]) for f in nat["forwards"]] == [("web", "198.18.2.11", 6767)]
    assert fact("nat_gateway", "gw")["forwards"] == []  # no forward by default: the role fits any topology
    assert fact("sdn_controller", "sdn")["rest_url"] == "http://198.18.2.13:8080"


def test_user_settings_reach_the_fact() -> None:
    instances = [{"port": 11300}, {"port": 11301, "listen_address": "127.0.0.1", "memory": 8}]
    got = fact("memcached", "db", memcached_instances=instances, memcached_memory=32)["instances"]
    assert [(i["port"], i["listen_address"], i["memory"]) for i in got] == [
        (11300, "198.18.2.10", 32),
        (11301, "127.0.0.1", 8),
    ]
    assert fact("swig", "dev", swig_build_dir="/srv/ex/", swig_install_pth=False)["build_dir"] == "/srv/ex"
    assert fact("swig", "dev", swig_install_pth=False)["pth_file"] is None
    assert fact("zeromq", "web", zeromq_pubsub_port="6000")["pubsub"]["port"] == 6000


def test_the_log_prefix_is_the_notebooks_tagged_with_the_lab() -> None:
    """Labs share the machine's kernel log: each finds its own LOG lines by its tag."""
    assert fact("nat_gateway", "gw", labctl_lab="default")["log_prefix"] == "default blocked packets : "
    long = fact("nat_gateway", "gw", labctl_lab="a-very-long-lab-name")["log_prefix"]
    other = fact("nat_gateway", "gw", labctl_lab="a-very-long-lab-name2")["log_prefix"]
    assert long.endswith(" blocked packets : ") and len(long) == 29 and long != other
    assert fact("nat_gateway", "gw")["log_prefix"] == "blocked packets : "  # plain Ansible, no labctl_lab


def test_a_client_only_host_has_no_instances() -> None:
    client = fact("memcached", "dev")
    assert (client["server"], client["client"], client["instances"]) == (False, True, [])


def test_no_secret_goes_into_a_fact(tmp_path: Path) -> None:
    text = json.dumps(fact("memcached", "db", memcached_sasl_enabled=True, memcached_sasl_password="S3cretPw0rd"))
    assert "S3cretPw0rd" not in text and '"enabled": true' in text
    mongo = fact("mongodb", "db", state_dir=tmp_path)
    assert mongo["secrets_dir"] == f"{tmp_path}/secrets"
    assert not (tmp_path / "secrets").exists(), "rendering the fact must not evaluate the password lookups"


def test_every_role_with_checks_has_its_reads_found() -> None:
    """The scan finds reads for every role (an empty set would make the test above pass vacuously)."""
    assert all(READ_BY_CHECKS[role] for role in ROLES), {r: READ_BY_CHECKS.get(r) for r in ROLES}
    assert {"rest_port", "units"} <= READ_BY_CHECKS["sdn_controller"]  # smoke/sdn_controller.py (rest_url), its Sdn
    assert {"echo", "queue", "pipeline"} <= READ_BY_CHECKS["zeromq"]  # keys passed as _serving(ctx, "echo")


SCANNED = """
SERVICE = "r"
KEY = "by_constant"


class Box:
    pass


def direct(ctx, h):
    return ctx.fact(h, SERVICE)["direct"], ctx.fact(h, "r").get("got"), ctx.fact(h, "other")["elsewhere"]


def named(ctx, h):
    fact = ctx.fact(h, SERVICE)

    def inner():
        return fact["closure"]

    return fact[KEY], inner()


def _dep(ctx, h):
    dep = ctx.fact(h, SERVICE)
    return dep


def returned(ctx, h):
    dep = _dep(ctx, h)
    return dep["returned"], helper(dep), Box(fact=dep)


def helper(d):
    return d.get("passed")


def stored(box):
    return box.fact["stored"]


def by_param(ctx, h, pattern):
    return ctx.fact(h, SERVICE)[pattern]


def callers(ctx, h):
    return by_param(ctx, h, "lit1"), by_param(ctx, h, pattern="lit2"), {"x": 1}["not_a_fact"]
"""


def test_the_scan_follows_a_fact_through_a_module(tmp_path: Path) -> None:
    module = tmp_path / "checks.py"
    module.write_text(SCANNED)
    assert fact_reads([module]) == {
        "r": {"direct", "got", "closure", "by_constant", "returned", "passed", "stored", "lit1", "lit2"},
        "other": {"elsewhere"},
    }
