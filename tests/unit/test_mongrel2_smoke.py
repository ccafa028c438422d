"""The mongrel2 smoke checks against a fake lab: they pass on right answers and fail on wrong ones."""

from __future__ import annotations

import hashlib
import json
import shlex

import pytest

from labctl.smoke import mongrel2 as smoke
from labctl.smoke.base import CheckFailed, Context, Result

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


class FakeLab:
    """Answers the commands the checks send, like a working web host would (unless told otherwise)."""

    def __init__(self, greeting: str = "Hi...This is Danny...", static: str = STATIC) -> None:
        self.greeting = greeting
        self.static = static
        self.calls: list[tuple[str, str]] = []

    def http(self, method: str, path: str, body: str) -> dict:
        if path.startswith("/handlers/") or path == "/handlers":
            text = f"{self.greeting}\nmethod: {method}\npath: {path}\nquery: \nhost: web\nbody-bytes: {len(body)}\n"
            status = 200
        elif path == "/media/hello.txt":
            status, text = 200, self.static
        else:
            status, text = 404, "Not Found"
        data = text.encode()
        return {"status": status, "length": len(data), "sha256": hashlib.sha256(data).hexdigest(), "body": text}

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        self.calls.append((host, command))
        if command.startswith("cat "):
            return Result(command, 0, json.dumps(FACT), "")
        if command.startswith("python3 - "):
            method, _addr, _port, path, body, _headers = shlex.split(command)[2:]
            return Result(command, 0, json.dumps(self.http(method, path, body)), "")
        if command.startswith("sha256sum "):
            return Result(command, 0, hashlib.sha256(STATIC.encode()).hexdigest() + "  f\n", "")
        if command.startswith("grep -c "):
            return Result(command, 0, "1\n", "")
        raise AssertionError(f"unexpected command {command!r}")

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        raise AssertionError("no files")


def make_ctx(lab: FakeLab) -> Context:
    return Context(
        lab="t",
        groups={"all": ["web", "client"], "mongrel2": ["web"]},
        addresses={"web": {"lab": "198.18.63.10"}, "client": {"lab": "198.18.63.11"}},
        hostvars={},
        runner=lab,
    )


def test_checks_pass_on_a_working_lab() -> None:
    lab = FakeLab()
    ctx = make_ctx(lab)
    smoke.handler_answers(ctx)
    smoke.static_files(ctx)
    smoke.not_found(ctx)
    # requests come from the host outside the mongrel2 group
    assert all(host == "client" for host, cmd in lab.calls if cmd.startswith("python3 - "))
    paths = [shlex.split(cmd)[5] for host, cmd in lab.calls if cmd.startswith("python3 - ")]
    assert "/media/hello.txt" in paths
    assert any(p.startswith("/labctl-no-route-") for p in paths)
    assert any(p.startswith("/media/no-such-file-") for p in paths)


def test_wrong_greeting_fails() -> None:
    with pytest.raises(CheckFailed, match="no handler greeting"):
        smoke.handler_answers(make_ctx(FakeLab(greeting="Hello")))


def test_wrong_static_content_fails() -> None:
    with pytest.raises(CheckFailed, match="does not serve"):
        smoke.static_files(make_ctx(FakeLab(static="something else\n")))


def test_web_host_is_the_client_when_alone() -> None:
    ctx = make_ctx(FakeLab())
    ctx.groups["all"] = ["web"]
    assert smoke._client(ctx, "web") == "web"
