"""The shared package cache: how labctl recognises and starts apt-cacher-ng, and what hosts are told."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from labctl import inventory, pkgcache
from labctl.lab import Lab
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
    assert conf["Port"] == str(pkgcache.PORT) and conf["BindAddress"] == "0.0.0.0"
    assert conf["ReportPage"] == "acng-report.html"  # what answering() asks for
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
