"""The shared package cache: how labctl recognises and starts apt-cacher-ng, and what hosts are told."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from labctl.lifecycle.model import Lab
from labctl.providers import pkgcache
from labctl.provisioning import inventory
from labctl.state import LabState
from labctl.topology import parse


@pytest.fixture
def server() -> Iterator[tuple[int, list[bytes]]]:
    """A one-shot HTTP server on a free port whose answer the test sets."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(4)
    answer: list[bytes] = [b""]

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(answer[0])

    threading.Thread(target=serve, daemon=True).start()
    yield sock.getsockname()[1], answer
    sock.close()


def test_only_apt_cacher_ng_counts_as_the_cache(server: tuple[int, list[bytes]]) -> None:
    port, answer = server
    answer[0] = b"HTTP/1.1 200 OK\r\n\r\n<title>Apt-Cacher NG Command And Control Page</title>"
    assert pkgcache.answering(port=port)
    answer[0] = b"HTTP/1.1 200 OK\r\n\r\n<title>some other web server</title>"
    assert not pkgcache.answering(port=port)
    free = socket.socket()
    free.bind(("127.0.0.1", 0))
    closed_port = free.getsockname()[1]
    free.close()
    assert not pkgcache.answering(port=closed_port)


def test_off_means_no_cache_and_nothing_started(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_PKGCACHE", "off")
    monkeypatch.setattr(pkgcache.subprocess, "run", lambda *a, **k: pytest.fail("must not start anything"))
    assert pkgcache.ensure() is False
    monkeypatch.setattr(pkgcache, "answering", lambda *a, **k: True)
    assert pkgcache.enabled() is False  # hosts are not told to use it either


def test_not_installed_is_said_once_and_not_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABCTL_PKGCACHE", raising=False)
    monkeypatch.setattr(pkgcache, "answering", lambda *a, **k: False)
    monkeypatch.setattr(pkgcache, "DAEMON", "/nonexistent/apt-cacher-ng")
    said: list[str] = []
    assert pkgcache.ensure(said.append) is False
    assert said == ["package cache: apt-cacher-ng is not installed (setup.sh installs it); hosts download directly"]


def test_the_daemon_command_line() -> None:
    assert pkgcache.command() == [pkgcache.DAEMON, "-c", str(pkgcache.CONFIG_DIR), "ForeGround:0"]
    conf = dict(line.split(": ", 1) for line in pkgcache.config().splitlines() if ": " in line)
    # issue 21 item 8: never every address, no report page (its expire/delete/import forms)
    assert conf["Port"] == str(pkgcache.PORT) and conf["BindAddress"] == "127.0.0.1"
    assert "ReportPage" not in conf
    gateways = dict(
        line.split(": ", 1) for line in pkgcache.config(["198.18.9.1", "10.3.0.1"]).splitlines() if ": " in line
    )
    assert gateways["BindAddress"] == "10.3.0.1 127.0.0.1 198.18.9.1"
    assert not any(k.startswith("Remap-") for k in conf)  # files come from the mirror the hosts name
    assert pkgcache.proxy_url("10.1.2.1") == f"http://10.1.2.1:{pkgcache.PORT}"


def test_hosts_get_the_proxy_in_their_inventory_vars(tmp_path: Path) -> None:
    raw = {
        "name": "pc",
        "networks": [{"name": "lab", "subnet": "198.18.7.0/24"}],
        "hosts": [{"name": h, "networks": ["lab"]} for h in ("a", "b")],
    }
    topo = parse(raw, tmp_path / "pc.yml", set())
    state = LabState("pc")
    text = inventory.render(topo, state, Lab(topo, state).addresses(), proxies={"a": "http://198.18.7.1:3142"})
    hosts = yaml.safe_load(text)["all"]["hosts"]
    assert hosts["a"]["labctl_package_proxy"] == "http://198.18.7.1:3142"
    assert "labctl_package_proxy" not in hosts["b"]


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "localhost", "198.18.9.1 0.0.0.0", "224.0.0.1", "fe80::1"])
def test_the_cache_never_listens_on_a_wildcard_or_a_name(address: str) -> None:
    with pytest.raises(ValueError):
        pkgcache.bind_list([address])


def test_an_older_labctls_configuration_is_not_taken_for_this_ones() -> None:
    pkgcache.CONFIG_DIR.mkdir(parents=True)
    conf = pkgcache.CONFIG_DIR / "acng.conf"
    assert pkgcache.configured_binds() is None
    old = pkgcache.config().replace("BindAddress: 127.0.0.1", "BindAddress: 0.0.0.0") + "ReportPage: acng-report.html\n"
    conf.write_text(old)
    assert pkgcache.configured_binds() is None
    conf.write_text(pkgcache.config().replace("ExThreshold: 4", "ReportPage: acng-report.html\nExThreshold: 4"))
    assert pkgcache.configured_binds() is None  # same addresses, but a report page: not ours
    conf.write_text(pkgcache.config(["198.18.9.1"]))
    assert pkgcache.configured_binds() == ["127.0.0.1", "198.18.9.1"]


def _fake_process(tmp_path: Path, name: str) -> subprocess.Popen[bytes]:
    """A long sleep whose process name is ``name`` (a copy of sleep under that name)."""
    program = tmp_path / name
    shutil.copy("/bin/sleep", program)
    proc = subprocess.Popen([str(program), "60"])
    comm = Path(f"/proc/{proc.pid}/comm")
    for _ in range(500):  # the child runs its exec after Popen returns: wait until it has
        if comm.read_text().strip() == name[:15]:
            break
        time.sleep(0.01)
    return proc


def test_only_the_daemon_named_in_labctls_pid_file_is_stopped(tmp_path: Path) -> None:
    """Fakes in a scratch RUN_DIR: a pid file naming another program is not labctl's daemon, and
    stop() ends exactly the pid it is given."""
    other = _fake_process(tmp_path, "not-the-cache")
    daemon = _fake_process(tmp_path, "apt-cacher-ng")
    try:
        pkgcache.RUN_DIR.mkdir(parents=True)
        (pkgcache.RUN_DIR / "pid").write_text(f"{other.pid}\n")
        assert pkgcache.ours() is None
        (pkgcache.RUN_DIR / "pid").write_text(f"{daemon.pid}\n")
        assert pkgcache.ours() == daemon.pid
        pkgcache.stop(daemon.pid)
        assert daemon.wait(timeout=5) is not None
        assert other.poll() is None  # untouched
    finally:
        for proc in (other, daemon):
            proc.kill()
            proc.wait()


def _free_low_port() -> int:
    """A free port below 32768 (apt-cacher-ng 3.7.4 cannot bind a higher one: "Error resolving address")."""
    for port in range(23100, 23400):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise AssertionError("no free port in 23100-23399")


def _get(port: int, path: str) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as conn:
        conn.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    return data


def _listeners(port: int) -> list[str]:
    out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True, text=True, check=True).stdout
    return sorted(line.split()[3] for line in out.splitlines())


@pytest.mark.skipif(not Path("/usr/sbin/apt-cacher-ng").exists(), reason="apt-cacher-ng is not installed")
def test_a_daemon_left_by_an_older_labctl_is_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real apt-cacher-ng, on a free port with scratch directories: started with the old
    configuration (every address, report page on), ensure() stops it and starts labctl's own."""
    port = _free_low_port()
    monkeypatch.setattr(pkgcache, "PORT", port)
    monkeypatch.setattr(pkgcache, "DAEMON", "/usr/sbin/apt-cacher-ng")
    monkeypatch.delenv("LABCTL_PKGCACHE", raising=False)
    for directory in (pkgcache.CONFIG_DIR, pkgcache.RUN_DIR, pkgcache.LOG_DIR, pkgcache.CACHE_DIR):
        directory.mkdir(parents=True)
    old = pkgcache.config().replace("BindAddress: 127.0.0.1", "BindAddress: 0.0.0.0")
    (pkgcache.CONFIG_DIR / "acng.conf").write_text(old + "ReportPage: acng-report.html\n")
    subprocess.run(pkgcache.command(), check=True, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 10
        while not pkgcache.answering() and time.monotonic() < deadline:
            time.sleep(0.1)
        first = pkgcache.ours()
        assert first and _listeners(port) == [f"0.0.0.0:{port}"]
        assert b"200 OK" in _get(port, "/acng-report.html").split(b"\r\n", 1)[0]  # the forms are open
        said: list[str] = []
        assert pkgcache.ensure(said.append, listen={})
        second = pkgcache.ours()
        assert second and second != first and not pkgcache._alive(first)  # gone (or a zombie of init)
        assert _listeners(port) == [f"127.0.0.1:{port}"]
        assert b"200 OK" not in _get(port, "/acng-report.html").split(b"\r\n", 1)[0]
        assert b"doExpire" not in _get(port, "/acng-report.html?doExpire=Start+Expiration")
        assert pkgcache.answering()  # still tells it is apt-cacher-ng
        assert said and "started apt-cacher-ng on 127.0.0.1" in said[0]
        assert pkgcache.ensure(said.append) and pkgcache.ours() == second and len(said) == 1  # no restart
    finally:
        running = pkgcache.ours()
        if running:
            pkgcache.stop(running)


def _iptables_calls() -> list[str]:
    log = Path(os.environ["FAKE_IPTABLES_LOG"])
    calls = log.read_text().splitlines() if log.exists() else []
    log.unlink(missing_ok=True)
    return [c.removeprefix("-w 5 ") for c in calls]


def test_the_filter_admits_each_gateway_from_its_own_subnet_only() -> None:
    rules = pkgcache.filter_rules({"198.18.9.1": "198.18.9.0/24", "10.3.0.1": "10.3.0.0/16"})
    assert rules == [
        ["-d", "127.0.0.1", "-s", "127.0.0.0/8", "-j", "RETURN"],
        ["-d", "10.3.0.1", "-s", "10.3.0.0/16", "-j", "RETURN"],
        ["-d", "198.18.9.1", "-s", "198.18.9.0/24", "-j", "RETURN"],
        ["-p", "tcp", "-j", "REJECT", "--reject-with", "tcp-reset"],
    ]


def test_the_filter_touches_only_its_own_chain_and_jump(monkeypatch: pytest.MonkeyPatch) -> None:
    """Against the fake iptables first on PATH (tests/unit/conftest.py): writing the filter creates and
    refills labctl's chain for the port and inserts the one jump when it is missing; removing it
    deletes only that jump and that chain."""
    chain, jump = "LABCTL-ACNG-9", "INPUT -p tcp --dport 9 -j LABCTL-ACNG-9"
    assert pkgcache.apply_filter({"198.18.9.1": "198.18.9.0/24"}, lambda _m: None)
    assert _iptables_calls() == [
        f"-N {chain}",
        f"-C {jump}",
        f"-F {chain}",
        f"-A {chain} -d 127.0.0.1 -s 127.0.0.0/8 -j RETURN",
        f"-A {chain} -d 198.18.9.1 -s 198.18.9.0/24 -j RETURN",
        f"-A {chain} -p tcp -j REJECT --reject-with tcp-reset",
        f"-I {jump}",
    ]
    monkeypatch.setenv("FAKE_IPTABLES_HAS", f"-w 5 -C {jump}")
    assert pkgcache.apply_filter({}, lambda _m: None)
    assert not [c for c in _iptables_calls() if c.startswith("-I")]  # the jump is there: not added twice
    pkgcache.remove_filter()
    calls = _iptables_calls()
    assert {c for c in calls if c.startswith("-D")} == {f"-D {jump}"} and len(calls) <= 12
    assert calls[-2:] == [f"-F {chain}", f"-X {chain}"]
    assert all(chain in c for c in calls)  # nothing else is named


def test_a_new_gateway_rewrites_the_filter_of_a_running_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    """labctl's daemon runs with the right addresses: a gateway the filter does not admit yet is added
    (no restart), and the next call with nothing new writes nothing."""
    monkeypatch.delenv("LABCTL_PKGCACHE", raising=False)
    monkeypatch.setattr(pkgcache, "ours", lambda: 4242)
    monkeypatch.setattr(pkgcache, "answering", lambda *a, **k: True)
    monkeypatch.setattr(pkgcache, "local_addresses", lambda: {"127.0.0.1", "198.18.9.1"})
    monkeypatch.setattr(pkgcache, "stop", lambda _pid: pytest.fail("no restart"))
    pkgcache.CONFIG_DIR.mkdir(parents=True)
    (pkgcache.CONFIG_DIR / "acng.conf").write_text(pkgcache.config(["198.18.9.1"]))
    assert pkgcache.ensure(listen={"198.18.9.1": "198.18.9.0/24"})
    assert "-A LABCTL-ACNG-9 -d 198.18.9.1 -s 198.18.9.0/24 -j RETURN" in _iptables_calls()
    assert pkgcache.admitted_networks() == {"198.18.9.1": "198.18.9.0/24"}
    assert pkgcache.ensure(listen={"198.18.9.1": "198.18.9.0/24"}) and pkgcache.ensure()
    assert _iptables_calls() == []


def test_a_ctrl_c_during_a_restart_waits_until_the_cache_runs_again(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fakes: the old daemon is stopped and a Ctrl-C arrives then; the new one is still started (else every
    running lab would be left without its cache), and the Ctrl-C takes effect after."""
    done: list[str] = []
    monkeypatch.setattr(pkgcache, "require_port", lambda: None)
    monkeypatch.setattr(pkgcache, "local_addresses", lambda: {"127.0.0.1", "198.18.9.1"})
    monkeypatch.setattr(pkgcache, "ours", lambda: 4242)
    monkeypatch.setattr(pkgcache, "configured_binds", lambda: ["127.0.0.1"])
    monkeypatch.setattr(pkgcache, "answering", lambda *a, **k: True)
    monkeypatch.setattr(pkgcache, "_filter", lambda *a: None)
    monkeypatch.setattr(pkgcache, "DAEMON", "/bin/sh")  # installed

    def stop(_pid: int) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.1)
        done.append("stopped")

    monkeypatch.setattr(pkgcache, "stop", stop)
    monkeypatch.setattr(pkgcache, "_start", lambda binds, _say: done.append(f"started {binds}") is None)
    with pytest.raises(KeyboardInterrupt):
        pkgcache.ensure(listen={"198.18.9.1": "198.18.9.0/24"})
    assert done == ["stopped", "started ['127.0.0.1', '198.18.9.1']"]
