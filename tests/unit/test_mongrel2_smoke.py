"""The mongrel2 smoke checks against a fake lab: they pass on right answers and fail on wrong ones."""

from __future__ import annotations

import hashlib
import json
import shlex
from collections.abc import Callable

import pytest

from labctl.smoke import mongrel2 as smoke
from labctl.smoke.base import CheckFailed, Context, Result
from tests.unit.conftest import FakeRunner, MakeCtx

STATIC = "Hello from Mongrel2 on web.\n"
FACT = {
    "chroot": "/srv/mongrel2",
    "greeting": "Hi...This is Danny...",
    "servers": [
        {
            "name": "main",
            "unit": "mongrel2@main.service",
            "port": 6767,
            "bind_addr": "0.0.0.0",
            "access_log": "/srv/mongrel2/logs/main.access.log",
            "routes": {"/media/": "media_dir", "/handlers": "brubeck_handler"},
        }
    ],
    "handlers": [{"name": "brubeck_handler", "unit": "mongrel2-handler@brubeck_handler.service"}],
    "dirs": [{"name": "media_dir", "base": "media/"}],
    "static_files": ["media/hello.txt"],
}


def http(greeting: str, static: str, method: str, path: str, body: str) -> dict:
    """What the web host answers, like a working one would (with this greeting and static file)."""
    if path.startswith("/handlers/") or path == "/handlers":
        text = f"{greeting}\nmethod: {method}\npath: {path}\nquery: \nhost: web\nbody-bytes: {len(body)}\n"
        status = 200
    elif path == "/media/hello.txt":
        status, text = 200, static
    else:
        status, text = 404, "Not Found"
    data = text.encode()
    return {"status": status, "length": len(data), "sha256": hashlib.sha256(data).hexdigest(), "body": text}


@pytest.fixture
def web(runner: FakeRunner, make_ctx: MakeCtx) -> Callable[..., Context]:
    """The lab: a web host (the mongrel2 role's fact, HTTP answers) and a client host."""

    def make(greeting: str = "Hi...This is Danny...", static: str = STATIC) -> Context:
        def request(_host: str, command: str, _stdin: str | None) -> Result:
            method, _addr, _port, path, body, _headers = shlex.split(command)[2:]
            return Result(command, 0, json.dumps(http(greeting, static, method, path, body)), "")

        runner.fact("web", "mongrel2", FACT)
        runner.on("python3 - ", request)
        runner.on("sha256sum ", hashlib.sha256(STATIC.encode()).hexdigest() + "  f\n")
        runner.on("grep -c ", "1\n")
        return make_ctx({"mongrel2": ["web"]}, {"web": {"lab": "198.18.63.10"}, "client": {"lab": "198.18.63.11"}})

    return make


def test_checks_pass_on_a_working_lab(web: Callable[..., Context], runner: FakeRunner) -> None:
    ctx = web()
    smoke.handler_answers(ctx)
    smoke.static_files(ctx)
    smoke.not_found(ctx)
    # requests come from the host outside the mongrel2 group
    assert all(host == "client" for host, cmd, _ in runner.calls if cmd.startswith("python3 - "))
    paths = [shlex.split(cmd)[5] for cmd in runner.commands() if cmd.startswith("python3 - ")]
    assert "/media/hello.txt" in paths
    assert any(p.startswith("/labctl-no-route-") for p in paths)
    assert any(p.startswith("/media/no-such-file-") for p in paths)


def test_wrong_greeting_fails(web: Callable[..., Context]) -> None:
    with pytest.raises(CheckFailed, match="no handler greeting"):
        smoke.handler_answers(web(greeting="Hello"))


def test_wrong_static_content_fails(web: Callable[..., Context]) -> None:
    with pytest.raises(CheckFailed, match="does not serve"):
        smoke.static_files(web(static="something else\n"))


def test_a_fact_without_servers_fails(web: Callable[..., Context], runner: FakeRunner) -> None:
    ctx = web()
    runner.fact("web", "mongrel2", {**FACT, "servers": []})
    with pytest.raises(CheckFailed, match="lists no servers"):
        smoke.handler_answers(ctx)


def test_web_host_is_the_client_when_alone(web: Callable[..., Context]) -> None:
    ctx = web()
    ctx.groups["all"] = ["web"]
    assert smoke._client(ctx, "web") == "web"
