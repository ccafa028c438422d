"""A corpus of crafted inputs (issue 21 items 11 and 12), built here, run through the real CLI.

Topology files with fields of every wrong type, shape and size (resource bounds: huge subnets, YAML alias
bombs, thousands of hosts), odd state.json shapes in a scratch LABCTL_STATE_DIR, environment variables
and command lines. Each case runs `labctl.cli.main` in-process with a scratch state root and fake
`podman`/`ip`/`iptables`/`qemu-*` first on PATH (they record every call and touch nothing), under a
time bound (a hang fails). Each must end with exit 2 and one paragraph naming the field and the fix
(or exit 0 where the input is fine), never a traceback; a refused `up` must make no podman call that
creates anything. The variables read when labctl's modules are imported (LABCTL_PKGCACHE_PORT) run as
subprocesses. tests/unit/test_bad_input.py holds the older malformed-topology table; none repeats here."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import pytest
import yaml

from labctl import cli, yamlload
from labctl.errors import LabError

from .test_bad_input import BASE, STATIC
from .test_down_fake_podman import FAKE_IPTABLES, FAKE_PODMAN

CASE_SECONDS = 10  # a case still running then is a hang
LAB = "tl-run"  # the scratch "running" lab (a state.json only: its containers are the fake podman's)
GLAB = "tl-grp"  # the same with groups


@dataclass
class Case:
    id: str
    argv: list[str]
    expect: str | tuple[str, ...] = ""  # text(s) the one-paragraph error holds (exit 2), or the output (exit 0)
    rc: int = 2
    files: dict[str, str | bytes] = field(default_factory=dict)  # scratch files: name -> content
    state: dict[str, Any] = field(default_factory=dict)  # lab -> state.json content (str/bytes as is, else JSON)
    env: dict[str, str] = field(default_factory=dict)  # "{d}" in a value is the scratch directory


def dump(data: Any) -> str:
    return yaml.safe_dump(data, sort_keys=False)


def edit(fn: Callable[[dict[str, Any]], Any], base: dict[str, Any] = BASE) -> str:
    data = copy.deepcopy(base)
    fn(data)
    return dump(data)


def status(text: str | bytes, expect: str | tuple[str, ...], case: str, rc: int = 2) -> Case:
    """`status -f lab.yml` of this text: a topology error names the field; a valid file ends in 'no lab'."""
    return Case(case, ["status", "-f", "{d}/lab.yml"], expect, rc, files={"lab.yml": text})


def up(text: str, expect: str, case: str) -> Case:
    """`up --no-provision -f lab.yml`: refused before podman is asked to create anything."""
    return Case(case, ["up", "--no-provision", "-f", "{d}/lab.yml"], expect, files={"lab.yml": text})


def nets(*subnets: str) -> Callable[[dict[str, Any]], Any]:
    def change(d: dict[str, Any]) -> None:
        d["networks"][0]["subnet"] = subnets[0]
        if len(subnets) > 1:
            d["networks"][1]["subnet"] = subnets[1]

    return change


def hosts_n(n: int, prefix: int = 16) -> str:
    return dump(
        {
            "name": "tl-many",
            "networks": [{"name": "lan", "subnet": f"198.18.0.0/{prefix}"}],
            "hosts": [{"name": f"h{i}", "networks": ["lan"]} for i in range(n)],
        }
    )


def networks_n(n: int) -> str:
    return dump(
        {
            "name": "tl-nets",
            "networks": [{"name": f"n{i}", "subnet": f"198.18.{i}.0/24"} for i in range(n)],
            "hosts": [{"name": "h", "networks": ["n0"]}],
        }
    )


LAUGHS = "a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi", strict=True)
)


def bomb(body: str) -> str:
    """BASE with vars: the YAML body given (anchors and aliases), indented under it."""
    text = dump({k: v for k, v in BASE.items() if k != "vars"})
    return text + "vars:\n" + "".join(f"  {line}\n" for line in body.splitlines())


SUBNET_BOUNDS = [
    ("subnet /1", "128.0.0.0/1", "more than a /16"),
    ("subnet /8", "10.0.0.0/8", "more than a /16"),
    ("subnet /15", "198.18.0.0/15", "more than a /16"),
    ("subnet /0", "0.0.0.0/0", "more than a /16"),
    ("subnet loopback", "127.0.0.0/24", "the loopback range"),
    ("subnet loopback /16", "127.1.0.0/16", "the loopback range"),
    ("subnet link-local", "169.254.10.0/24", "link-local"),
    ("subnet multicast", "224.0.1.0/24", "multicast"),
    ("subnet 'this network'", "0.0.0.0/24", "'this network'"),
    ("subnet reserved 240/4", "240.0.0.0/24", "reserved range"),
    ("subnet broadcast", "255.255.255.0/28", "reserved range"),
    ("subnet with host bits", "198.18.78.1/24", "has host bits set"),
    ("subnet as a number", 3232235776, "invalid IPv4 subnet"),
    ("subnet with spaces", " 198.18.78.0/24", "invalid IPv4 subnet"),
    ("subnet prefix 33", "198.18.78.0/33", "invalid IPv4 subnet"),
    ("subnet IPv6 /112", "fd00::/112", "invalid IPv4 subnet"),
    ("subnet IPv4-mapped", "::ffff:198.18.78.0/120", "invalid IPv4 subnet"),
    ("subnet a mapping", {"a": 1}, "invalid IPv4 subnet"),
    ("subnet true", True, "invalid IPv4 subnet"),
]

YES, NO = "YAML reads an unquoted yes, true or on as a boolean", "YAML reads an unquoted no, false or off"
BOOLEAN_NAMES = [  # (case, text in the base file, what replaces it, the field named, why)
    ("lab name: yes", "name: sn-bad\n", "name: yes\n", "name", "True (" + YES),
    ("lab name: off", "name: sn-bad\n", "name: off\n", "name", "False (" + NO),
    ("host name: no", "- name: gw\n", "- name: no\n", "hosts[0].name", NO),
    ("network name: on", "- name: lan\n", "- name: on\n", "networks[0].name", YES),
    ("group key: yes", "groups:\n  web:", "groups:\n  yes:", "groups.True", YES),
    ("var key: off", "vars:\n  x: 1", "vars:\n  off: 1", "vars.False", NO),
]


TOPOLOGY: list[Case] = [
    *(status(edit(nets(value)), ("field 'networks[0].subnet'", why), case) for case, value, why in SUBNET_BOUNDS),
    status(
        edit(lambda d: (nets("198.18.0.0/16", "198.19.0.0/16")(d), d["hosts"][1].pop("addresses"))),
        "no lab named 'sn-bad' is up",
        "two /16 networks: fine",
    ),
    status(edit(nets("198.18.0.0/16", "198.18.7.0/24")), "overlaps network 'lan'", "a /24 inside the /16"),
    status(hosts_n(513), "field 'hosts': 513 hosts, more than labctl makes for one lab (512)", "513 hosts"),
    status(hosts_n(512), "no lab named 'tl-many' is up", "512 hosts on a /16: fine and fast"),
    status(hosts_n(300, 24), "field 'networks.lan.subnet': the subnet has no free address left", "300 hosts on a /24"),
    status(networks_n(65), "field 'networks': 65 networks, more than labctl makes for one lab (64)", "65 networks"),
    status(networks_n(64), "no lab named 'tl-nets' is up", "64 networks: fine"),
    # YAML alias bombs and recursion, in every place a value goes
    status(bomb(LAUGHS), "refused: the document holds more than", "billion laughs in vars"),
    status(LAUGHS + dump(BASE), "refused: the document holds more than", "billion laughs at the top level"),
    status(bomb("a: &a [*a]"), "an alias (*name) refers to a value that contains it", "recursive list alias"),
    status(bomb("a: &a {b: *a}"), "an alias (*name) refers to a value that contains it", "recursive mapping alias"),
    status(bomb("a: &a {<<: *a}"), "refers to a value that contains it", "recursive merge key"),
    status(
        bomb(
            "base: &b {k0: 0, k1: 1, k2: 2, k3: 3, k4: 4, k5: 5, k6: 6, k7: 7, k8: 8, k9: 9}\n"
            + "".join(f"m{i}: &m{i} [{', '.join(['*' + ('b' if i == 0 else f'm{i - 1}')] * 12)}]\n" for i in range(6))
        ),
        "refused: the document holds more than",
        "laughs built on a mapping",
    ),
    status(bomb("a: &a [1, 2]\nb: [*a, *a, *a]"), "no lab named 'sn-bad' is up", "a few aliases: fine"),
    status(bomb("a: *nowhere"), "not valid YAML at line", "alias of no anchor"),
    status("x: &a 1\n" * 3 + dump(BASE), "found duplicate anchor 'a'", "the same anchor thrice"),
    status(bomb("a: " + "[" * 400 + "]" * 400), "no lab named 'sn-bad' is up", "400 nested lists in a var: fine"),
    status(bomb("a: !!binary aGVsbG8="), "no lab named 'sn-bad' is up", "a binary var: fine"),
    status(bomb("a: !!set {x, y}"), "no lab named 'sn-bad' is up", "a set var: fine"),
    status(bomb("a: 2001-02-03"), "no lab named 'sn-bad' is up", "a date var: fine"),
    status(bomb("a: .nan\nb: .inf"), "no lab named 'sn-bad' is up", "nan and inf vars: fine"),
    status(bomb("a: !!python/name:os.system"), "not valid YAML", "a python tag in a var"),
    status(bomb("a: !custom 1"), "not valid YAML", "an unknown tag in a var"),
    status("%YAML 1.1\n---\n" + dump(BASE), "no lab named 'sn-bad' is up", "a YAML directive: fine"),
    status("%YAML 2.0\n---\n" + dump(BASE), "not valid YAML", "YAML 2.0 directive"),
    status("\ufeff" + dump(BASE), "no lab named 'sn-bad' is up", "a UTF-8 BOM: fine"),
    status(dump(BASE).encode("utf-16"), "is not UTF-8 text", "UTF-16 text"),
    status(b"\xef\xbb\xbf\xff", "is not UTF-8 text", "a BOM then a bad byte"),
    status("\x1b[31m: 1\n", "not valid YAML", "a terminal escape"),
    status(dump(BASE).replace("sn-bad", "sn-\u202ebad"), "field 'name': lab name 'sn-\\u202ebad'", "RTL override"),
    status(edit(lambda d: d.update(name="s\u0578-bad")), "field 'name'", "a homoglyph in the name"),
    status(edit(lambda d: d["hosts"][0].update(name="g\u0301w")), "field 'hosts[0].name'", "a combining accent"),
    # big numbers and odd scalars
    status(edit(lambda d: d.update(schema=10**100)), "field 'schema'", "schema: a googol"),
    status(
        "schema: 0x1\n" + dump({k: v for k, v in BASE.items() if k != "schema"}), "no lab named", "schema: 0x1, fine"
    ),
    status(edit(lambda d: d.update(name=1.5e300)), "field 'name'", "name: a float"),
    status(edit(lambda d: d.update(name=None)), "field 'name': lab name missing", "name: null"),
    status(edit(lambda d: d.update(provider=None)), "field 'provider'", "provider: null"),
    status(edit(lambda d: d.update(provider=True)), "field 'provider'", "provider: true"),
    status(edit(lambda d: d.update(image=["x"])), "field 'image'", "image: a list"),
    status(edit(lambda d: d.update(image="x" * 300 + " y")), "field 'image'", "image with a space"),
    status(edit(lambda d: d.update(checks=5)), "field 'checks'", "checks: a number"),
    status(edit(lambda d: d.update(checks=[5])), "field 'checks[0]'", "a check that is a number"),
    status(edit(lambda d: d.update(checks={"a": 1})), "field 'checks'", "checks: a mapping"),
    status(edit(lambda d: d.update(checks=[{"name": "c"}])), "field 'checks[0]", "a check with no command"),
    status(edit(lambda d: d.update(networks=None)), "field 'networks': no networks defined", "networks: null"),
    status(edit(lambda d: d.update(hosts=None)), "field 'hosts': no hosts defined", "hosts: null"),
    status(edit(lambda d: d.update(groups=5)), "field 'groups'", "groups: a number"),
    status(edit(lambda d: d.update(groups={5: {}})), "field 'groups.5'", "a group named by a number"),
    status(edit(lambda d: d.update(groups={None: {}})), "field 'groups.None'", "a group named null"),
    status(edit(lambda d: d.update(vars={5: 1})), "field 'vars.5'", "a var named by a number"),
    status(edit(lambda d: d.update(vars={"": 1})), "field 'vars.'", "a var with an empty name"),
    status(edit(lambda d: d["networks"][0].update(name="")), "field 'networks[0].name'", "empty network name"),
    status(edit(lambda d: d["networks"][0].update(name="default")), "names the default route", "network: default"),
    status(edit(lambda d: d["networks"][0].update(name="a" * 40)), "field 'networks[0].name'", "long network name"),
    status(edit(lambda d: d["networks"][0].update(name=None)), "field 'networks[0].name'", "network name null"),
    status(edit(lambda d: d["networks"][0].update({5: 1})), "field 'networks[0].5'", "network key a number"),
    status(edit(lambda d: d["networks"][1].update(routes=[{"to": "lan"}])), "routes[0].via", "route without via"),
    status(edit(lambda d: d["networks"][1].update(routes=[{"via": "gw"}])), "routes[0].to", "route without to"),
    status(edit(lambda d: d["networks"][1].update(routes={"to": "lan"})), "networks[1].routes", "routes a mapping"),
    status(
        edit(lambda d: d["networks"][1].update(routes=[{"to": "default", "via": "gw"}])),
        "no lab named 'sn-bad' is up",
        "a default route: fine",
    ),
    status(edit(lambda d: d["hosts"][0].update(name="a" * 64)), "field 'hosts[0].name'", "host name of 64"),
    status(edit(lambda d: d["hosts"][0].update(name="-gw")), "field 'hosts[0].name'", "host name starts with -"),
    status(edit(lambda d: d["hosts"][0].update(name="gw.example")), "field 'hosts[0].name'", "host name with a dot"),
    status(edit(lambda d: d["hosts"][0].update(groups=None)), "no lab named 'sn-bad' is up", "host groups null: ok"),
    status(edit(lambda d: d["hosts"][0].update(groups=[None])), "field 'hosts.gw.groups'", "a null group"),
    status(edit(lambda d: d["hosts"][0].update(groups=[True])), "YAML reads an unquoted", "a boolean group"),
    status(edit(lambda d: d["hosts"][0].update(networks=[5])), "field 'hosts.gw.networks'", "a network a number"),
    status(edit(lambda d: d["hosts"][0].update(networks={"lan": 1})), "'hosts.gw.networks'", "networks a mapping"),
    status(edit(lambda d: d["hosts"][1].update(addresses={5: "1.2.3.4"})), "addresses.5", "address key a number"),
    status(edit(lambda d: d["hosts"][1].update(addresses=5)), "field 'hosts.h1.addresses'", "addresses a number"),
    status(edit(lambda d: d["hosts"][1].update(addresses={"dmz": 3323481394})), "addresses.dmz", "address an int"),
    status(edit(lambda d: d["hosts"][1].update(addresses={"dmz": "198.18.77.255"})), "addresses.dmz", "broadcast"),
    status(edit(lambda d: d["hosts"][1].update(addresses={"dmz": "198.18.77.0"})), "addresses.dmz", "network addr"),
    status(edit(lambda d: d["hosts"][1].update(addresses={"dmz": None})), "addresses.dmz", "address null"),
    status(edit(lambda d: d["hosts"][1].update(addresses={"dmz": "198.18.77.5/24"})), "addresses.dmz", "CIDR addr"),
    status(edit(lambda d: d["hosts"][0].update(vm={"cpus": 2})), "field 'hosts.gw.vm'", "vm on a podman host"),
    status(edit(lambda d: d["hosts"][0].update(provider="static")), "field 'hosts.gw.address'", "static, no address"),
    status(edit(lambda d: d["hosts"][0].update({"name": "gw", None: 1})), "field 'hosts[0].None'", "null host key"),
    status(edit(lambda d: d["hosts"].append([])), "field 'hosts[2]'", "a host that is a list"),
    status(edit(lambda d: d["hosts"].append(None)), "field 'hosts[2].name'", "a host that is null"),
    status(edit(lambda d: d["networks"].append(None)), "field 'networks[2].name'", "a network that is null"),
    # qemu VM sizes
    *(
        status(edit(lambda d, v=vm: d["hosts"][0].update(provider="qemu", vm=v)), f"field '{where}'", case)
        for case, vm, where in [
            ("vm a list", [1], "hosts.gw.vm"),
            ("vm cpus a string", {"cpus": "2"}, "hosts.gw.vm.cpus"),
            ("vm cpus true", {"cpus": True}, "hosts.gw.vm.cpus"),
            ("vm cpus 0", {"cpus": 0}, "hosts.gw.vm.cpus"),
            ("vm cpus a googol", {"cpus": 10**100}, "hosts.gw.vm.cpus"),
            ("vm memory 1e12", {"memory": 10**12}, "hosts.gw.vm.memory"),
            ("vm memory a float", {"memory": 512.5}, "hosts.gw.vm.memory"),
            ("vm kernel_args a list", {"kernel_args": ["a"]}, "hosts.gw.vm.kernel_args"),
            ("vm unknown field", {"disk": 10}, "hosts.gw.vm.disk"),
        ]
    ),
    # static hosts
    status(edit(lambda d: d["hosts"][0].update(address=""), STATIC), "field 'hosts.vm.address'", "empty address"),
    status(edit(lambda d: d["hosts"][0].update(address="a b"), STATIC), "'hosts.vm.address'", "address with space"),
    status(edit(lambda d: d["hosts"][0].update(user="Root"), STATIC), "field 'hosts.vm.user'", "user upper-case"),
    status(edit(lambda d: d["hosts"][0].update(user="-oX"), STATIC), "field 'hosts.vm.user'", "user an option"),
    status(edit(lambda d: d["hosts"][0].update(key=""), STATIC), "field 'hosts.vm.key'", "empty key path"),
    status(edit(lambda d: d["hosts"][0].update(networks=["x"]), STATIC), "'hosts.vm.networks'", "static on no net"),
    # a podman lab with a static host on no network: a valid lab (StopIteration on every up/status before)
    status(
        edit(lambda d: d["hosts"].append({"name": "ext", "provider": "static", "address": "198.18.76.10"})),
        "no lab named 'sn-bad' is up",
        "a static host on no network in a podman lab: fine",
    ),
    # up: refused before podman creates anything
    up(edit(nets("10.0.0.0/8")), "more than a /16", "up of a /8"),
    up(bomb(LAUGHS), "refused: the document holds more than", "up of a billion laughs"),
    up(hosts_n(600), "600 hosts, more than", "up of 600 hosts"),
    up(edit(nets("127.0.0.0/24")), "the loopback range", "up of a loopback subnet"),
]
CHECK = {"name": "c", "hosts": ["gw"], "command": "true", "expect": {"exit_code": 0}}


def check(**kv: Any) -> str:
    return edit(lambda d: d.update(checks=[{**CHECK, **kv}]))


TOPOLOGY += [
    status(check(), "no lab named 'sn-bad' is up", "a check: fine"),
    status(check(timeout=10**400), ("field 'checks[0] (c).timeout'", "more than an hour"), "check timeout 10**400"),
    status(check(timeout=1e9), ("field 'checks[0] (c).timeout'", "more than an hour"), "check timeout 1e9"),
    status(check(wait=float("inf")), ("field 'checks[0] (c).wait'", "more than an hour"), "check wait inf"),
    status(check(wait=-1), ("field 'checks[0] (c).wait'", "not a number of seconds"), "check wait -1"),
    status(check(retries=10**100), "field 'checks[0] (c).retries'", "check retries a googol"),
    status(check(hosts="gw"), "no lab named 'sn-bad' is up", "check hosts one string: one host, fine"),
    status(check(hosts=["nosuch"]), ("field 'checks[0] (c).hosts'", "use one of: gw, h1"), "check on no such host"),
    status(check(expect={"number": {"match": "(", "lt": 1}}), "checks[0] (c).expect.number", "check bad regex"),
    status(
        edit(lambda d: d.update(checks=[{**CHECK, "name": f"c{i}"} for i in range(1001)])),
        "field 'checks': 1001 checks, more than labctl runs (1000)",
        "1001 checks",
    ),
]
TOPOLOGY += [
    status(dump(BASE).replace(old, new, 1), (f"field '{where}'", why), case)
    for case, old, new, where, why in BOOLEAN_NAMES
]


def lab_topology(name: str, groups: bool) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["name"] = name
    data["networks"][0]["subnet"], data["networks"][1]["subnet"] = "198.18.212.0/24", "198.18.213.0/24"
    data["hosts"][1]["addresses"] = {"dmz": "198.18.213.50"}
    if not groups:
        data.pop("groups")
        data["hosts"][1]["groups"] = []
    return data


def state_of(name: str, groups: bool = False, **changes: Any) -> dict[str, Any]:
    """A state.json as `up` writes it, for a lab whose hosts the fake podman does not have."""
    data: dict[str, Any] = {
        "name": name,
        "phase": "up",
        "provider": "podman",
        "topology_file": f"/nonexistent/{name}.yml",
        "topology": lab_topology(name, groups),
        "networks": {"lan": "198.18.212.0/24", "dmz": "198.18.213.0/24"},
        "updated": 0.0,
        "converged": {},
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def odd(case: str, content: Any, expect: str, verbs: tuple[str, ...] = ("status", "graph", "inventory")) -> list[Case]:
    """One damaged state.json, read by several verbs (`--name tl-odd`) and listed by `status --all`."""
    out = [Case(f"state {case}: {v}", [v, "--name", "tl-odd"], expect, state={"tl-odd": content}) for v in verbs]
    out.append(Case(f"state {case}: status --all", ["status", "--all"], "tl-odd", 0, state={"tl-odd": content}))
    return out


STATE: list[Case] = [
    *odd("not JSON", '{"name": "tl-odd", "phase": "up", "provi', "state file is damaged (not JSON"),
    *odd("empty", "", "state file is damaged (not JSON"),
    *odd("a list", [1, 2], "state file is damaged (expected a JSON object, got list)"),
    *odd("a string", '"tl-odd"', "state file is damaged (expected a JSON object, got str)"),
    *odd("null", None, "expected a JSON object, got NoneType"),
    *odd("topology a list", state_of("tl-odd", topology=[1]), "field 'topology' is list"),
    *odd("topology_file a number", state_of("tl-odd", topology_file=5), "field 'topology_file' is int"),
    *odd("no topology_file", state_of("tl-odd", topology_file=None), "field 'topology_file' is missing"),
    *odd("networks a string", state_of("tl-odd", networks="x"), "field 'networks' is str"),
    *odd("networks of numbers", state_of("tl-odd", networks={"lan": 5}), "field 'networks.lan' is int"),
    *odd("a subnet that is none", state_of("tl-odd", networks={"lan": "x/99"}), "not an IPv4 subnet"),
    *odd("converged a list", state_of("tl-odd", converged=[]), "field 'converged' is list"),
    *odd("phase a number", state_of("tl-odd", phase=5), "field 'phase' is int"),
    *odd("images a list", state_of("tl-odd", images=["x"]), "field 'images' is list"),
    *odd("updated true", state_of("tl-odd", updated=True), "field 'updated' is bool"),
    *odd("nested 100000 deep", "[" * 100000 + "]" * 100000, "nested too deeply"),
    *odd(
        "a topology that is invalid", state_of("tl-odd", topology={"name": "tl-odd"}), "field 'networks'", ("status",)
    ),
    *odd("a directory", "DIR", "state file is damaged (not a regular file)"),
    *odd("a FIFO", "FIFO", "state file is damaged (not a regular file)"),
    *odd("a link to /dev/zero", "ZERO", "state file is damaged (not a regular file)"),
    *odd("not UTF-8", b"\xff\xfe{}", "state file is damaged (not JSON"),
    *odd("a converged host of odd shape", state_of("tl-odd", converged={"gw": [1]}), "tl-odd", ()),
    Case(
        "state of another name in its dir",
        ["status", "--name", "tl-odd"],
        "it names lab 'tl-other', not 'tl-odd'",
        2,
        state={"tl-odd": state_of("tl-other")},
    ),
]


def _with_static(name: str) -> dict[str, Any]:
    data = lab_topology(name, False)
    data["hosts"].append({"name": "ext", "provider": "static", "address": "192.0.2.10", "key": "/nonexistent/k"})
    return data


def running(*argv: str, expect: str | tuple[str, ...], rc: int = 2, case: str = "") -> Case:
    """A command on the scratch running labs (tl-run without groups, tl-grp with group web)."""
    return Case(case or " ".join(argv), list(argv), expect, rc, state={LAB: state_of(LAB), GLAB: state_of(GLAB, True)})


ARGV: list[Case] = [
    running("logs", "--name", LAB, "-n", "-5", "h1", expect="argument -n/--lines: expected a whole number"),
    running("logs", "--name", LAB, "-n", "0", "h1", expect="argument -n/--lines: expected a whole number"),
    running("logs", "--name", LAB, "-n", "abc", "h1", expect="argument -n/--lines"),
    running("logs", "--name", LAB, "-n", "9" * 30, "h1", expect="argument -n/--lines"),
    running("logs", "--name", LAB, "nosuch", expect="logs: no host 'nosuch' in lab 'tl-run'"),
    running("exec", "--name", GLAB, "--all", "--group", "web", "--", "true", expect="--all and --group"),
    running("exec", "--name", LAB, "--group", "web", "--", "true", expect="lab 'tl-run' has no groups"),
    running("exec", "--name", GLAB, "--group", "nosuch", "--", "true", expect="Fix: use one of: web"),
    running("exec", "--name", GLAB, "--group", "", "--", "true", expect="Fix: use one of: web"),
    running("exec", "--name", LAB, "--all", expect="exec: no command given"),
    running("exec", "--name", LAB, "--json", "h1", "--", "true", expect="--json goes with --all or --group"),
    running("exec", "--name", LAB, "nosuch", "--", "true", expect="exec: no host 'nosuch'"),
    running("exec", "--name", LAB, "h1", "--timeout", "inf", "--", "true", expect="argument --timeout"),
    running("exec", "--name", LAB, "h1", "--timeout", "-1", "--", "true", expect="argument --timeout"),
    running("graph", "--name", LAB, "-o", "{d}/missing/lab.md", expect=("graph -o", "missing", "Fix:")),
    running("graph", "--name", LAB, "-o", "{d}", expect=("graph -o", "is a directory")),
    running("graph", "--name", LAB, "-o", "/dev/full", expect=("graph -o", "No space left on device")),
    running("graph", "--name", LAB, "-o", "{d}/out.md", expect="", rc=0),
    running("graph", "--name", LAB, "--format", "bogus", expect="argument --format: invalid choice"),
    running("capture", "--name", LAB, "-w", "{d}/missing/x.pcap", "h1", expect=("capture -w", "missing")),
    running("capture", "--name", LAB, "-c", "-1", "h1", expect="argument -c/--count"),
    running("capture", "--name", LAB, "--seconds", "nan", "h1", expect="argument --seconds"),
    running("status", "--name", LAB, "--host", "nosuch", expect="--host: no host 'nosuch' in lab 'tl-run'"),
    running("restart", "--name", LAB, "nosuch", expect="no host 'nosuch' in lab 'tl-run'"),
    running("console", "--name", LAB, "nosuch", expect="console: no host 'nosuch'"),
    running("ssh-config", "--name", LAB, "nosuch", expect="ssh-config: no host 'nosuch'"),
    running("ssh", "--name", LAB, "nosuch", expect="ssh: no host 'nosuch'"),
    running("cp", "--name", LAB, "nosuch:/etc/hosts", "{d}/x", expect="cp: no host 'nosuch'"),
    running("cp", "--name", LAB, "{d}/a", "{d}/b", expect="cp: neither side names a host"),
    running("impair", "--name", LAB, "h1:dmz", "--delay", "abc", expect="--delay"),
    running("impair", "--name", LAB, "h1:dmz", "--loss", "200%", expect="--loss"),
    running("impair", "--name", LAB, "h1:dmz", "--rate", "-1mbit", expect="--rate"),
    running("impair", "--name", LAB, "h1:dmz", "--clear", "--delay", "5ms", expect="--clear takes no other"),
    running("impair", "--name", LAB, expect="impair: name HOST:NETWORK"),
    running("sdn", "--name", LAB, "create", "a b", expect="argument slice: 'a b' is not an id"),
    running("sdn", "--url", "http://127.0.0.1:9", "show", "a/../b", expect="argument slice: 'a/../b' is not an id"),
    running("sdn", "--url", "http://127.0.0.1:9", "create", "", expect="argument slice: '' is not an id"),
    running("sdn", "--url", "http://127.0.0.1:9", "remove-port", "s1", "b 1", expect="argument binding_id"),
    running("sdn", "--url", "http://127.0.0.1:9", "show-filter", "f?x=1", expect="argument filter_id"),
    running("sdn", "--url", "http://127.0.0.1:9", "add-mac", "s1", "02:00:00:00:00:01", "--id", "a b", expect="--id"),
    running("sdn", "--url", "notaurl", "list", expect=("argument --url", "'notaurl' is not an http")),
    running("sdn", "--url", "file:///etc/passwd", "list", expect=("argument --url", "is not an http")),
    running("sdn", "--url", "http://127.0.0.1:9", "list", expect=("sdn list: cannot reach", "Connection refused")),
    running("sdn", "--name", LAB, "list", expect="has no sdn_controller host"),
    running("status", "--name", "a" * 40, expect="--name: lab name"),
    running("status", "--name", "tl-\u00e9", expect="--name: lab name"),
    running("status", "-f", "{d}/a\nb.yml", expect="a\\nb.yml: no such topology file"),
    running("status", "-f", "/dev/zero", expect="is not a regular file"),
    running("status", "-f", "{d}/loop.yml", expect="cannot read the topology file"),
    running("status", "--name", LAB, "--json", expect="", rc=1),
    running("status", "--all", "--json", expect=LAB, rc=0),
    Case(
        "a running podman lab with a static host on no network: status",
        ["status", "--name", "tl-ext"],
        "missing",
        1,
        state={"tl-ext": state_of("tl-ext", topology=_with_static("tl-ext"))},
    ),
    Case(
        "a running podman lab with a static host on no network: graph",
        ["graph", "--name", "tl-ext"],
        "ext",
        0,
        state={"tl-ext": state_of("tl-ext", topology=_with_static("tl-ext"))},
    ),
    running("up", "--name", LAB, "--locked", "--from", "{d}/x.tar", expect="-f and --locked do not go with it"),
]

ENV: list[Case] = [
    running("status", "--all", expect=("LABCTL_STATE_DIR=", "is not a directory", "Fix:"), case="state dir a file"),
    running(
        "status",
        "--all",
        expect=("LABCTL_STATE_DIR=", "lies under", "which is not a directory"),
        case="state dir under a file",
    ),
    running("status", "--name", LAB, expect="LABCTL_STATE_DIR=", case="state dir a file: status --name"),
    running("down", "--name", LAB, expect="LABCTL_STATE_DIR=", case="state dir a file: down"),
    running("status", "--all", expect=("XDG_STATE_HOME=", "is not a directory"), case="XDG state home a file"),
    running("status", "--all", expect=LAB, rc=0, case="state dir relative"),
    running("up", "--no-provision", "-f", "{d}/lab.yml", expect=("LABCTL_STRATEGY='bogus'", "Fix:"), case="strategy"),
    running("up", "--no-provision", "-f", "{d}/lab.yml", expect=("LABCTL_QEMU_ACCEL", "Fix:"), case="qemu accel"),
    running("up", "--no-provision", "-f", "{d}/lab.yml", expect="LABCTL_VM_BOOT_TIMEOUT='soon'", case="vm boot"),
    running("up", "--no-provision", "-f", "{d}/lab.yml", expect="LABCTL_RUNTIME_DIR", case="runtime dir long"),
    running(
        "up",
        "--no-provision",
        "-f",
        "{d}/lab.yml",
        expect=("LABCTL_RUNTIME_DIR=", "lies under"),
        case="runtime dir under a file",
    ),
]
ENV_SETTINGS: dict[str, dict[str, str]] = {
    "state dir a file": {"LABCTL_STATE_DIR": "{d}/afile"},
    "state dir under a file": {"LABCTL_STATE_DIR": "{d}/afile/state"},
    "state dir a file: status --name": {"LABCTL_STATE_DIR": "{d}/afile"},
    "state dir a file: down": {"LABCTL_STATE_DIR": "{d}/afile"},
    "XDG state home a file": {"LABCTL_STATE_DIR": "", "XDG_STATE_HOME": "{d}/afile"},
    "state dir relative": {"LABCTL_STATE_DIR": "state"},
    "strategy": {"LABCTL_STRATEGY": "bogus"},
    "qemu accel": {"LABCTL_QEMU_ACCEL": "bogus"},
    "vm boot": {"LABCTL_VM_BOOT_TIMEOUT": "soon"},
    "runtime dir long": {"LABCTL_RUNTIME_DIR": "/tmp/" + "r" * 60},
    "runtime dir under a file": {"LABCTL_RUNTIME_DIR": "{d}/afile/run"},
}
for _case in ENV:
    _case.env = ENV_SETTINGS[_case.id]
for _case in ENV[-5:]:
    _case.state = {}
    _case.files = {"lab.yml": dump(lab_topology("tl-env", False))}
for _case in ENV[-4:-2]:
    _case.files = {"lab.yml": edit(lambda d: d.update(provider="qemu"), lab_topology("tl-vm", False))}

CASES = TOPOLOGY + STATE + ARGV + ENV


class Hang(Exception):
    pass


def _alarm(_signum: int, _frame: FrameType | None) -> None:
    raise Hang(f"still running after {CASE_SECONDS} s")


def fake_bin(directory: Path) -> Path:
    """podman and iptables from test_down_fake_podman (an empty world), and ip, qemu-img and
    qemu-system-x86_64 that only record their calls; ssh and scp refuse (nothing is reached)."""
    directory.mkdir()
    (directory / "podman").write_text(FAKE_PODMAN.replace("PYTHON", sys.executable))
    (directory / "iptables").write_text(FAKE_IPTABLES)
    for tool in ("ip", "qemu-img", "qemu-system-x86_64", "ssh", "scp"):
        (directory / tool).write_text(f'#!/bin/sh\necho "{tool} $*" >> "$FAKE_LOG"\nexit 1\n')
    for tool in directory.iterdir():
        tool.chmod(0o755)
    return directory


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    bin_dir = fake_bin(tmp_path / "bin")
    (tmp_path / "world.json").write_text(json.dumps({"containers": [], "networks": []}))
    (tmp_path / "calls.log").write_text("")
    (tmp_path / "afile").write_text("")
    (tmp_path / "loop.yml").symlink_to(tmp_path / "loop.yml")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    run_root = Path(tempfile.mkdtemp(prefix="lc-"))  # SSH control sockets need a short path
    monkeypatch.setenv("LABCTL_RUNTIME_DIR", str(run_root))
    monkeypatch.setenv("LABCTL_PKGCACHE", "off")
    monkeypatch.setenv("LABCTL_IMAGE_DIR", str(tmp_path / "images"))
    monkeypatch.setenv("FAKE_WORLD", str(tmp_path / "world.json"))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "calls.log"))
    old = signal.signal(signal.SIGALRM, _alarm)
    yield tmp_path
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)
    shutil.rmtree(run_root)


def write_state(root: Path, lab: str, content: Any) -> None:
    directory = root / lab
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "state.json"
    if content == "DIR":
        path.mkdir()
    elif content == "FIFO":
        os.mkfifo(path)
    elif content == "ZERO":
        path.symlink_to("/dev/zero")
    elif isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))


def run_case(
    case: Case, d: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    for name, content in case.files.items():
        if isinstance(content, bytes):
            (d / name).write_bytes(content)
        else:
            (d / name).write_text(content)
    for lab, content in case.state.items():
        write_state(d / "state", lab, content)
    for var, value in case.env.items():
        monkeypatch.setenv(var, value.replace("{d}", str(d)))
    signal.alarm(CASE_SECONDS)
    try:
        rc = cli.main([a.replace("{d}", str(d)) for a in case.argv])
    except SystemExit as exc:
        rc = int(exc.code or 0) if not isinstance(exc.code, str) else 2
    finally:
        signal.alarm(0)
    out = capsys.readouterr()
    return rc, out.out, out.err


CREATES = ("podman create", "podman run", "podman network create", "podman build", "podman import", "qemu-")


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_crafted_input(
    case: Case, scratch: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    rc, out, err = run_case(case, scratch, capsys, monkeypatch)
    expects = (case.expect,) if isinstance(case.expect, str) else case.expect
    assert "Traceback" not in err
    if case.rc == 2:
        lines = err.strip().splitlines()
        message = lines[-1] if lines else ""
        assert rc == 2, (rc, err)
        assert [line for line in lines if "labctl: error:" in line] == [message], err  # one paragraph, the last
        assert message.startswith("labctl: error: ") and "Fix:" in message, message
        for text in expects:
            assert text in message, message
    else:
        assert rc == case.rc, (rc, err)
        for text in expects:
            assert text in out + err, out + err
    if case.argv[0] == "up" and case.rc == 2:
        made = [c for c in (scratch / "calls.log").read_text().splitlines() if c.startswith(CREATES)]
        assert made == [], made


def test_the_corpus_is_large_and_its_names_unique() -> None:
    names = [c.id for c in CASES]
    assert len(names) == len(set(names)), [n for n in names if names.count(n) > 1]
    assert len(names) >= 150, len(names)


def _subprocess(argv: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL
    )


# LABCTL_PKGCACHE_PORT is read when labctl.providers.pkgcache is imported (every verb imports it): a bad value used to
# end every verb in a ValueError traceback. Now only what uses the cache refuses it.
PORTS = ["abc", "0", "70000"]  # more in test_a_good_package_cache_port_is_the_port, in-process
USES_CACHE = "from labctl.providers import pkgcache; pkgcache.ensure()"


def test_a_bad_package_cache_port_stops_only_what_uses_the_cache(scratch: Path) -> None:
    (scratch / "lab.yml").write_text(dump(lab_topology("tl-port", False)))
    env = dict(os.environ)
    env.pop("LABCTL_PKGCACHE")  # the scratch fixture turns the cache off: here it is on
    procs = []
    for port in PORTS:
        env["LABCTL_PKGCACHE_PORT"] = port
        for argv, rc, expect in [
            (["status", "--all"], 0, "labs"),
            (["status", "-f", str(scratch / "lab.yml")], 2, "no lab named 'tl-port' is up"),
            (["graph", "-f", str(scratch / "lab.yml")], 0, "tl-port"),
        ]:
            procs.append((port, argv, rc, expect, _subprocess([sys.executable, "-m", "labctl.cli", *argv], dict(env))))
        code = [sys.executable, "-c", f"import sys; from labctl import cli; {USES_CACHE}"]
        procs.append(
            (port, ["ensure"], 1, f"LABCTL_PKGCACHE_PORT={port!r} is not a port", _subprocess(code, dict(env)))
        )
    for port, argv, rc, expect, proc in procs:
        out, err = proc.communicate(timeout=120)
        assert "ValueError" not in err and (argv == ["ensure"] or "Traceback" not in err), (port, argv, err)
        assert proc.returncode == rc, (port, argv, proc.returncode, err)
        assert expect in out + err, (port, argv, out, err)


def test_a_good_package_cache_port_is_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    from labctl.providers import pkgcache

    assert pkgcache._port_setting("3150") == (3150, "")
    assert pkgcache._port_setting(" 3150 ") == (3150, "")
    for bad in ("abc", "", "3149.5", "1e3", "0x10"):
        assert pkgcache._port_setting(bad) == (0, f"LABCTL_PKGCACHE_PORT={bad!r} is not a port number")
    for bad in ("0", "-1", "65536", "9" * 40):
        assert pkgcache._port_setting(bad) == (0, f"LABCTL_PKGCACHE_PORT={bad!r} is not a port from 1 to 65535")
    monkeypatch.setattr(pkgcache, "PORT_PROBLEM", "LABCTL_PKGCACHE_PORT='abc' is not a port number")
    monkeypatch.delenv("LABCTL_PKGCACHE", raising=False)
    with pytest.raises(LabError, match=r"is not a port number: .*Fix: set LABCTL_PKGCACHE_PORT to a free TCP port"):
        pkgcache.ensure()
    monkeypatch.setenv("LABCTL_PKGCACHE", "off")
    assert pkgcache.ensure() is False  # the cache turned off: its port is never used


# The bounded loader itself, on what every reader hands it (topology, inventory/, locks, the lab's own files).
LOADS: list[tuple[str, str | bytes, str]] = [
    ("billion laughs", LAUGHS, "refused: the document holds more than 200000 values"),
    ("recursive alias", "a: &a [*a]", "refers to a value that contains it"),
    ("too large", "a: 1\n" + "#" * yamlload.MAX_BYTES, "bytes of YAML, more than labctl reads"),
    ("nested too deeply", "[" * 20000 + "]" * 20000, "nested too deeply"),
    ("duplicate key", "a: 1\na: 2\n", "found duplicate key 'a' (first given on line 1)"),
    ("syntax", "a: [", "not valid YAML at line 1"),
    ("bad bytes", b"a: \xff", "not valid YAML"),
]


@pytest.mark.parametrize(("case", "text", "expect"), LOADS, ids=[c[0] for c in LOADS])
def test_the_bounded_loader_refuses(case: str, text: str | bytes, expect: str) -> None:
    with pytest.raises(yamlload.Refused) as err:
        yamlload.load(text, "x.yml")
    message = str(err.value)
    assert message.startswith("x.yml: ") and expect in message and "Fix:" in message and "\n" not in message


def test_the_bounded_loader_reads_what_safe_load_reads() -> None:
    text = "a: &a {k: [1, 2.5, null, true, '2001-02-03']}\nb: *a\nc: {<<: *a, z: 1}\n"
    assert yamlload.load(text, "x.yml") == yaml.safe_load(text)
    assert yamlload.load("", "x.yml") is None
    node = yaml.compose("[&a [1, 2], *a, *a]")
    assert node is not None and yamlload.expanded_size(node) == 10  # the list, and three times [1, 2]


def test_every_yaml_reader_uses_the_bounded_loader() -> None:
    """No yaml.safe_load / yaml.load of a file outside labctl/yamlload.py."""
    package = Path(__file__).resolve().parents[2] / "labctl"
    offenders = []
    for path in package.rglob("*.py"):
        if path.name == "yamlload.py":
            continue
        text = path.read_text()
        for needle in ("yaml.safe_load(", "yaml.load(", "yaml.full_load(", "yaml.unsafe_load("):
            if needle in text:
                offenders.append(f"{path.relative_to(package)}: {needle}")
    assert offenders == []


@pytest.mark.parametrize(
    ("ip", "prefix", "free"),
    [("198.18.212.5", 1, "255.255.255.254"), ("198.18.212.5", 24, "198.18.212.254"), ("fd00::5", 8, "fdff:")],
)
def test_a_host_reported_prefix_lists_no_whole_subnet(ip: str, prefix: int, free: str) -> None:
    """The sdn smoke picks an unused address near an emulated host from the prefix the host reports
    (data): a /1 listed two billion addresses before; now a bounded number are tried, from the top."""
    from labctl.bundles.sdn_controller.checks import Sdn

    sdn = object.__new__(Sdn)
    sdn.hosts = {"h1": {"ip": ip, "prefix": prefix}, "h2": {"ip": "198.18.212.255", "prefix": 24}}
    old = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    try:
        assert sdn.unused_ip("h1").startswith(free)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def test_the_inventory_reader_and_the_lock_reader_refuse_an_alias_bomb(tmp_path: Path) -> None:
    """inventory/ (group_vars, host_vars) and LAB.lock go through the bounded loader too."""
    from labctl.provisioning import inventory_vars
    from labctl.reproduce import lockfile

    path = tmp_path / "all.yml"
    path.write_text(LAUGHS)
    with pytest.raises(LabError, match=r"all.yml: refused: the document holds more than 200000 values"):
        inventory_vars._read(path)
    with pytest.raises(LabError, match=r"the lock file is damaged \(refused: the document holds more than"):
        lockfile.parse(LAUGHS, tmp_path / "lab.lock")
    with pytest.raises(LabError, match=r"the lock file is damaged \(refers|an alias \(\*name\) refers"):
        lockfile.parse("a: &a [*a]\n", tmp_path / "lab.lock")
