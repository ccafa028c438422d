"""Malformed input, table-driven, through the CLI entry point: exit 2, one paragraph naming the field
(or the file) and the fix, never a traceback.

Every case runs `labctl status -f FILE` (or the argv given) in-process through labctl.cli.main, with
a private state directory and no podman on PATH: a case that slipped through validation would end in
"no lab named ... is up" (or "podman is not installed"), which names no field, and fail here. The
FIFO and the unreadable file run as subprocesses (a FIFO hung the old loader; reading as root needs
its capabilities dropped to be refused)."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import cli, topology

BASE: dict[str, Any] = {
    "schema": 1,
    "name": "sn-bad",
    "networks": [
        {"name": "lan", "subnet": "198.18.78.0/24"},
        {"name": "dmz", "subnet": "198.18.77.0/24", "routes": [{"to": "lan", "via": "gw"}]},
    ],
    "groups": {"web": {"web_port": 80}},
    "vars": {"x": 1},
    "hosts": [
        {"name": "gw", "groups": [], "networks": ["lan", "dmz"]},
        {"name": "h1", "groups": ["web"], "networks": ["dmz"], "addresses": {"dmz": "198.18.77.50"}, "vars": {"y": 2}},
    ],
}
STATIC: dict[str, Any] = {
    "schema": 1,
    "name": "sn-static",
    "provider": "static",
    "hosts": [{"name": "vm", "address": "198.18.76.10", "user": "root", "key": "/nonexistent/id"}],
}


def change(fn: Callable[[dict[str, Any]], Any], base: dict[str, Any] = BASE) -> str:
    data = copy.deepcopy(base)
    fn(data)
    return yaml.safe_dump(data, sort_keys=False)


def host(i: int, **kv: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["hosts"][i].update(kv)


def net(i: int, **kv: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["networks"][i].update(kv)


def route(**kv: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d["networks"][1]["routes"][0].update(kv)


def top(**kv: Any) -> Callable[[dict[str, Any]], Any]:
    return lambda d: d.update(kv)


VALID = yaml.safe_dump(BASE, sort_keys=False)

# (case, file content: str, or bytes written as they are, expected text in the one-paragraph error)
FILES: list[tuple[str, str | bytes, str]] = [
    # the file itself
    ("empty file", "", "field 'name': lab name missing"),
    ("no schema, host named all", change(lambda d: (d.pop("schema"), host(1, name="all")(d))), "'hosts[1].name'"),
    ("non-UTF-8 bytes", b"schema: 1\nname: \xff\xfe\n", "is not UTF-8 text (byte 0xff on line 2)"),
    ("latin-1 comment", b"# caf\xe9\n" + VALID.encode(), "is not UTF-8 text"),
    ("NUL byte", "schema: 1\nname: a\x00b\n", "not valid YAML"),
    ("YAML syntax", "name: [unclosed\n", "not valid YAML at line"),
    ("tab indentation", "hosts:\n\t- name: a\n", "not valid YAML"),
    ("two documents", VALID + "---\n" + VALID, "not valid YAML"),
    ("python tag", "!!python/object/apply:os.system [true]\n", "not valid YAML"),
    ("unhashable key", "? [a, b]\n: 1\n", "not valid YAML"),
    ("duplicate top-level key", VALID + "name: sn-other\n", "found duplicate key 'name' (first given on line"),
    ("duplicate key in a host", VALID.replace("- name: gw\n", "- name: gw\n  name: gw2\n"), "duplicate key 'name'"),
    ("nested too deeply", "[" * 20000 + "]" * 20000, "nested too deeply"),
    ("file too large", "#" * (topology.MAX_FILE_BYTES + 1), "bytes, more than"),
    ("top level is a list", "- 1\n- 2\n", "field '(top level)'"),
    ("top level is a string", "hello\n", "field '(top level)'"),
    ("unknown top-level field", change(top(hostz=[])), "field 'hostz'"),
    # schema
    ("schema: true", change(top(schema=True)), "field 'schema'"),
    ("schema: 1.0", change(top(schema=1.0)), "field 'schema'"),
    ("schema: '1'", change(top(schema="1")), "field 'schema'"),
    ("schema: 2", change(top(schema=2)), "field 'schema'"),
    ("schema: null", change(top(schema=None)), "field 'schema'"),
    # lab name
    ("name with '_' and '.'", change(top(name="Bad_Name.x")), "field 'name': lab name 'Bad_Name.x'"),
    ("name is a number", change(top(name=42)), "field 'name'"),
    ("name is empty", change(top(name="")), "field 'name'"),
    ("name is a path", change(top(name="../x")), "field 'name'"),
    ("name with a newline", change(top(name="sn-x\n")), "field 'name'"),
    ("name too long", change(top(name="a" * 32)), "field 'name'"),
    ("name is rich markup", change(top(name="[/oops]")), "field 'name': lab name '[/oops]'"),
    # provider, image
    ("provider is a list", change(top(provider=["podman"])), "field 'provider'"),
    ("unknown provider", change(top(provider="docker")), "field 'provider'"),
    ("image is a number", change(top(image=5)), "field 'image'"),
    ("image is an option", change(top(image="--privileged")), "field 'image'"),
    ("image is empty", change(top(image="")), "field 'image'"),
    # networks
    ("networks is a mapping", change(top(networks={"lan": 1})), "field 'networks'"),
    ("network is a number", change(lambda d: d["networks"].append(5)), "field 'networks[2]'"),
    ("network name invalid", change(net(0, name="Bad_Net")), "field 'networks[0].name'"),
    ("network name is a list", change(net(0, name=["lan"])), "field 'networks[0].name'"),
    ("subnet is a list", change(net(0, subnet=[1])), "field 'networks[0].subnet'"),
    ("subnet missing", change(lambda d: d["networks"][0].pop("subnet")), "field 'networks[0].subnet'"),
    ("subnet too small", change(net(0, subnet="198.18.78.0/30")), "field 'networks[0].subnet'"),
    ("subnet IPv6", change(net(0, subnet="fd00::/64")), "field 'networks[0].subnet'"),
    ("unknown network field", change(net(0, mtu=9000)), "field 'networks[0].mtu'"),
    ("routes is a number", change(net(1, routes=5)), "field 'networks[1].routes'"),
    ("route is a number", change(net(1, routes=[5])), "field 'networks[1].routes[0]'"),
    ("route to: a list", change(route(to=["lan"])), "field 'networks[1].routes[0].to'"),
    ("route via: a mapping", change(route(via={"x": 1})), "field 'networks[1].routes[0].via'"),
    ("route to: unknown", change(route(to="nowhere")), "field 'networks[1].routes[0].to'"),
    ("route to: itself", change(route(to="dmz")), "field 'networks[1].routes[0].to'"),
    ("route via: not on the network", change(route(via="h9")), "field 'networks[1].routes[0].via'"),
    ("route unknown field", change(route(metric=1)), "field 'networks[1].routes[0].metric'"),
    # groups and vars
    ("groups is a list", change(top(groups=["web"])), "field 'groups'"),
    ("group name with '-'", change(top(groups={"Bad-Group": {}})), "field 'groups.Bad-Group'"),
    ("group named all", change(top(groups={"all": {"x": 1}})), "field 'groups.all'"),
    ("group vars a list", change(top(groups={"web": [1]})), "field 'groups.web'"),
    ("group var name with '-'", change(top(groups={"web": {"web-port": 1}})), "field 'groups.web.web-port'"),
    ("vars is a list", change(top(vars=[1])), "field 'vars'"),
    ("var name starts with a digit", change(top(vars={"1x": 1})), "field 'vars.1x'"),
    ("var name is a keyword", change(top(vars={"class": 1})), "field 'vars.class'"),
    ("var name with a space", change(top(vars={"a b": 1})), "field 'vars.a b'"),
    # hosts
    ("hosts is a mapping", change(top(hosts={"a": 1})), "field 'hosts'"),
    ("hosts empty", change(top(hosts=[])), "field 'hosts'"),
    ("host is a number", change(lambda d: d["hosts"].append(5)), "field 'hosts[2]'"),
    ("host name with '_'", change(host(0, name="under_score")), "field 'hosts[0].name'"),
    ("host name is a number", change(host(0, name=7)), "field 'hosts[0].name'"),
    ("host name missing", change(lambda d: d["hosts"][0].pop("name")), "field 'hosts[0].name'"),
    ("host name with a newline", change(host(1, name="h1\n")), "field 'hosts[1].name'"),
    ("host named all", change(host(1, name="all")), "field 'hosts[1].name': host name 'all'"),
    ("host named ungrouped", change(host(1, name="ungrouped")), "field 'hosts[1].name'"),
    ("host named localhost", change(host(1, name="localhost")), "field 'hosts[1].name'"),
    ("host named like a declared group", change(host(1, name="web")), "also the name of group 'web'"),
    ("host named like a role group", change(host(1, name="memcached")), "also the name of group 'memcached'"),
    ("duplicate host", change(lambda d: d["hosts"].append({"name": "gw", "networks": ["lan"]})), "field 'hosts.gw'"),
    ("host unknown field", change(host(0, ports=[80])), "field 'hosts[0].ports'"),
    ("host provider unknown", change(host(0, provider="docker")), "field 'hosts.gw.provider'"),
    ("host provider a list", change(host(0, provider=["static"])), "field 'hosts.gw.provider'"),
    ("static host in a podman lab without address", change(host(1, provider="static")), "field 'hosts.h1.address'"),
    ("host groups a string", change(host(0, groups="web")), "field 'hosts.gw.groups'"),
    ("host group a mapping", change(host(0, groups=[{"a": 1}])), "field 'hosts.gw.groups'"),
    ("host group unknown", change(host(0, groups=["nosuch"])), "field 'hosts.gw.groups'"),
    ("host networks a string", change(host(0, networks="lan")), "field 'hosts.gw.networks'"),
    ("host network a list", change(host(0, networks=[["lan"]])), "field 'hosts.gw.networks'"),
    ("host network unknown", change(host(0, networks=["nowhere"])), "field 'hosts.gw.networks'"),
    ("host on no network", change(host(0, networks=[])), "field 'hosts.gw.networks'"),
    ("host network twice", change(host(0, networks=["lan", "lan"])), "field 'hosts.gw.networks'"),
    ("host addresses a list", change(host(1, addresses=[1])), "field 'hosts.h1.addresses'"),
    ("address not IPv4", change(host(1, addresses={"dmz": "198.18.77.300"})), "field 'hosts.h1.addresses.dmz'"),
    ("address a list", change(host(1, addresses={"dmz": [1]})), "field 'hosts.h1.addresses.dmz'"),
    ("address outside subnet", change(host(1, addresses={"dmz": "198.18.78.5"})), "field 'hosts.h1.addresses.dmz'"),
    ("address is the gateway", change(host(1, addresses={"dmz": "198.18.77.1"})), "field 'hosts.h1.addresses.dmz'"),
    ("address on a network not joined", change(host(1, addresses={"lan": "198.18.78.5"})), "addresses.lan"),
    ("same address twice", change(host(0, addresses={"dmz": "198.18.77.50"})), "addresses.dmz"),
    ("host vars a list", change(host(1, vars=[1])), "field 'hosts.h1.vars'"),
    ("host var name invalid", change(host(1, vars={"a-b": 1})), "field 'hosts.h1.vars.a-b'"),
    ("address on a podman host", change(host(0, address="10.0.0.1")), "field 'hosts.gw.address'"),
    ("key on a podman host", change(host(0, key="/root/.ssh/id")), "field 'hosts.gw.key'"),
    ("user on a podman host", change(host(0, user="admin")), "field 'hosts.gw.user'"),
    # static hosts
    ("static host without address", change(lambda d: d["hosts"][0].pop("address"), STATIC), "'hosts.vm.address'"),
    ("static address a list", change(host(0, address=["a"]), STATIC), "field 'hosts.vm.address'"),
    ("static address an option", change(host(0, address="-oProxyCommand=x"), STATIC), "field 'hosts.vm.address'"),
    ("static user a list", change(host(0, user=["root"]), STATIC), "field 'hosts.vm.user'"),
    ("static key a number", change(host(0, key=5), STATIC), "field 'hosts.vm.key'"),
]

# (case, argv after a scratch file is known, expected text)
ARGV: list[tuple[str, list[str], str]] = [
    ("status --host without a value", ["status", "--host"], "status: argument --host: expected one argument"),
    ("unknown verb", ["bogus"], "argument VERB: invalid choice: 'bogus'"),
    ("no verb", [], "the following arguments are required: VERB"),
    ("exec --timeout not a number", ["exec", "h1", "--timeout", "x", "--", "true"], "argument --timeout"),
    ("exec --timeout nan", ["exec", "h1", "--timeout", "nan", "--", "true"], "argument --timeout"),
    ("exec --timeout 0", ["exec", "h1", "--timeout", "0", "--", "true"], "argument --timeout"),
    ("exec command option before --", ["exec", "h1", "ls", "-la"], "unrecognized arguments: -la"),
    ("exec words before --", ["exec", "h1", "ls", "--", "-la"], "'ls' comes before '--'"),
    ("exec without host", ["exec"], "required: host"),
    ("unknown option", ["status", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ("status --name ''", ["status", "--name", ""], "--name: lab name '' is invalid"),
    ("down --name ..", ["down", "--name", ".."], "--name: lab name '..' is invalid"),
    ("up --name Bad_Name.x", ["up", "-f", "VALID", "--name", "Bad_Name.x"], "--name: lab name 'Bad_Name.x'"),
    ("status --host of a lab not up", ["status", "--host", "h9", "--name", "sn-none"], "no lab named 'sn-none'"),
    ("exec unknown host, lab not up", ["exec", "--name", "sn-none", "h9", "--", "true"], "no lab named 'sn-none'"),
    ("-f names a missing file", ["status", "-f", "MISSING"], "no such topology file"),
    ("-f names a directory", ["status", "-f", "DIR"], "is a directory"),
    ("-f names a path under a file", ["status", "-f", "UNDER_FILE"], "cannot read the topology file (Not a directory)"),
    ("-f names a device", ["status", "-f", "/dev/null"], "is not a regular file"),
]


@pytest.fixture
def scratch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "nobin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "nobin"))  # nothing to run: no podman, no iptables
    return tmp_path


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    """labctl.cli.main in-process; any exception but SystemExit propagates (a traceback fails the test)."""
    try:
        rc = cli.main(argv)
    except SystemExit as exc:
        rc = int(exc.code or 0)
    return rc, capsys.readouterr().err


def assert_one_clear_error(rc: int, err: str, expect: str) -> None:
    assert rc == 2, (rc, err)
    assert "Traceback" not in err
    message = err.strip()
    assert len(message.splitlines()) == 1, message
    assert message.startswith("labctl: error: "), message
    assert expect in message, message
    assert "Fix:" in message, message


def test_the_base_topology_is_valid(scratch: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The control: unchanged, BASE passes validation and only the missing lab stops `status`."""
    for data in (BASE, STATIC):
        path = scratch / "ok.yml"
        path.write_text(yaml.safe_dump(data))
        rc, err = run_cli(["status", "-f", str(path)], capsys)
        assert rc == 2 and f"no lab named {data['name']!r} is up" in err, err


@pytest.mark.parametrize(("case", "content", "expect"), FILES, ids=[c[0] for c in FILES])
def test_malformed_file(
    case: str, content: str | bytes, expect: str, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = scratch / "lab.yml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    rc, err = run_cli(["status", "-f", str(path)], capsys)
    assert_one_clear_error(rc, err, expect)
    assert str(path) in err


@pytest.mark.parametrize(("case", "argv", "expect"), ARGV, ids=[c[0] for c in ARGV])
def test_malformed_command_line(
    case: str, argv: list[str], expect: str, scratch: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (scratch / "valid.yml").write_text(VALID)
    (scratch / "dir").mkdir()
    (scratch / "file").write_text("")
    paths = {
        "VALID": scratch / "valid.yml",
        "MISSING": scratch / "missing.yml",
        "DIR": scratch / "dir",
        "UNDER_FILE": scratch / "file" / "lab.yml",
    }
    rc, err = run_cli([str(paths.get(a, a)) for a in argv], capsys)
    assert_one_clear_error(rc, err, expect)
    assert not (scratch / "state").exists() or not any((scratch / "state").iterdir())


def _labctl(args: list[str], env_dir: Path, prefix: list[str] | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, LABCTL_STATE_DIR=str(env_dir / "state"))
    return subprocess.run(
        [*(prefix or []), sys.executable, "-m", "labctl.cli", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,  # guards against a hang only (the old loader waited on a FIFO for ever)
        stdin=subprocess.DEVNULL,
    )


def test_a_fifo_is_refused_without_being_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "lab.yml"
    os.mkfifo(fifo)
    res = _labctl(["status", "-f", str(fifo)], tmp_path)
    assert_one_clear_error(res.returncode, res.stderr, "is not a regular file (a FIFO, socket or device)")


@pytest.mark.skipif(shutil.which("setpriv") is None, reason="setpriv (util-linux) is not installed")
def test_an_unreadable_file_is_one_clear_error(tmp_path: Path) -> None:
    """Root reads any file; without CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH it reads as others do."""
    path = tmp_path / "lab.yml"
    path.write_text(VALID)
    path.chmod(0o000)
    tmp_path.chmod(0o755)
    drop = "-dac_override,-dac_read_search"
    prefix = ["setpriv", f"--bounding-set={drop}", f"--inh-caps={drop}"] if os.geteuid() == 0 else []
    res = _labctl(["status", "-f", str(path)], tmp_path, prefix)
    assert_one_clear_error(res.returncode, res.stderr, "cannot read the topology file (Permission denied)")


def test_the_table_is_large_and_its_names_unique() -> None:
    """The count the issue asks for: malformed inputs tried here, each exit 2 and no traceback."""
    names = [c[0] for c in FILES] + [c[0] for c in ARGV] + ["FIFO", "unreadable file"]
    assert len(names) == len(set(names))
    assert len(names) >= 100, len(names)
