"""The mongrel2 smoke checks against a fake lab: they pass on right answers and fail on wrong ones."""

from __future__ import annotations

import hashlib
import json
import shlex

import pytest
from labctl.bundles.mongrel2 import checks as smoke

from labctl.checks.base import FACTS_DIR, CheckFailed, Context, Result

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


AB_OK = """This is ApacheBench, Version 2.3 <$Revision$>
Benchmarking web (be patient).....done

Document Path:          /handlers
Document Length:        21 bytes

Concurrency Level:      10
Time taken for tests:   0.223 seconds
Complete requests:      {n}
Failed requests:        0
{keep}Total transferred:      125000 bytes
HTML transferred:       {html} bytes
Requests per second:    {rps} [#/sec] (mean)
Time per request:       2.232 [ms] (mean)
"""
# The symptom: the handler never ends HTTP/1.0 responses, ab times out on the first request.
AB_HANG = """This is ApacheBench, Version 2.3 <$Revision$>
Benchmarking 198.18.63.10 (be patient)...apr_pollset_poll: The timeout specified has expired (70007)
"""
AB_PARTIAL = """Benchmarking web (be patient)
Completed 200 requests
apr_pollset_poll: The timeout specified has expired (70007)
Total of 251 requests completed
"""
# A server that closes connections without a response: ab calls every request complete.
AB_EMPTY = """Document Path:          /
Document Length:        0 bytes

Complete requests:      20
Failed requests:        0
Total transferred:      0 bytes
HTML transferred:       0 bytes
Requests per second:    3897.12 [#/sec] (mean)
"""
_DNAT = (
    '-d 198.18.64.10/32 -i eth0 -p tcp -m tcp --dport {port} -m comment --comment "labctl nat_gateway forward {name}"'
)
NAT_RULES = (
    "-P PREROUTING ACCEPT\n"
    f"-A PREROUTING {_DNAT.format(port=80, name='web')} -j DNAT --to-destination 198.18.63.10:6767\n"
    f"-A PREROUTING {_DNAT.format(port=2222, name='ssh')} -j DNAT --to-destination 198.18.63.10:22\n"
)


def conn_report(greeting: str, closes: bool = True, count: int = smoke.PIPELINE_REQUESTS) -> dict:
    def case(connection: str | None, responses: int, closed: bool, error: str = "") -> dict:
        headers = {"content-length": str(len(greeting))}
        if connection:
            headers["connection"] = connection
        return {
            "status": 200,
            "headers": headers,
            "body": greeting,
            "closed": closed,
            "responses": responses,
            "same_body": responses,
            "error": error,
        }

    if closes:
        return {
            "http10": case("close", 1, True),
            "http11_close": case("close", 1, True),
            "http10_keep": case("keep-alive", 2, False),
            "http11_keep": case(None, count, False),
        }
    hang = "timed out after 10 s waiting for the server to close the connection"
    return {
        "http10": case(None, 1, False, hang),
        "http11_close": case(None, 1, False, hang),
        "http10_keep": case(None, 2, False),
        "http11_keep": case(None, count, False),
    }


class FakeLab:
    """Answers the commands the checks send, like a working web host would (unless told otherwise)."""

    def __init__(
        self, greeting: str = "Hi...This is Danny...", static: str = STATIC, closes: bool = True, has_ab: bool = True
    ) -> None:
        self.greeting = greeting
        self.static = static
        self.closes = closes
        self.has_ab = has_ab
        self.fact: dict = FACT
        self.calls: list[tuple[str, str]] = []

    def http(self, method: str, path: str, body: str) -> dict:
        if path.startswith("/handlers/echo/"):
            text = f"{self.greeting}\nmethod: {method}\npath: {path}\nquery: \nhost: web\nbody-bytes: {len(body)}\n"
            status = 200
        elif path.startswith("/handlers/") or path == "/handlers":
            text, status = self.greeting, 200
        elif path == "/media/hello.txt":
            status, text = 200, self.static
        else:
            status, text = 404, "Not Found"
        data = text.encode()
        return {"status": status, "length": len(data), "sha256": hashlib.sha256(data).hexdigest(), "body": text}

    def ab(self, command: str) -> Result:
        n = int(shlex.split(command)[shlex.split(command).index("-n") + 1])
        if not self.closes:
            return Result(command, 119, AB_HANG, "")
        keep = f"Keep-Alive requests:    {n}\n" if " -k " in command else ""
        rps = "2503.10" if "198.18.64.10" in command else "2872.44"
        size = len(self.greeting.encode())
        return Result(
            command, 0, AB_OK.format(n=n, keep=keep, html=n * size, rps=rps).replace("21 bytes", f"{size} bytes"), ""
        )

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        self.calls.append((host, command))
        if command == f"cat {FACTS_DIR}/mongrel2.fact":
            return Result(command, 0, json.dumps(self.fact), "")
        if command.startswith("python3 - "):
            args = shlex.split(command)[2:]
            if len(args) == 4:  # the connection probe: ADDR PORT PATH COUNT
                return Result(command, 0, json.dumps(conn_report(self.greeting, self.closes, int(args[3]))), "")
            method, _addr, _port, path, body, _headers = args
            return Result(command, 0, json.dumps(self.http(method, path, body)), "")
        if command.startswith("sha256sum "):
            return Result(command, 0, hashlib.sha256(STATIC.encode()).hexdigest() + "  f\n", "")
        if command.startswith("grep -c "):
            return Result(command, 0, "1\n", "")
        if command == "command -v ab":
            return Result(command, 0 if self.has_ab else 1, "/usr/bin/ab\n" if self.has_ab else "", "")
        if "apt-get install" in command:
            self.has_ab = True
            return Result(command, 0, "", "")
        if command.startswith("ab "):
            return self.ab(command)
        if command.startswith("iptables -w 5 -t nat -S"):
            return Result(command, 0, NAT_RULES, "")
        raise AssertionError(f"unexpected command {command!r}")

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        raise AssertionError("no files")


def make_ctx(lab: FakeLab, gateway: bool = False) -> Context:
    ctx = Context(
        lab="t",
        groups={"all": ["web", "client"], "mongrel2": ["web"]},
        addresses={"web": {"lab": "198.18.63.10"}, "client": {"lab": "198.18.63.11"}},
        hostvars={},
        runner=lab,
    )
    if gateway:  # gw between `lab` and `out`, ext on `out` only (the default lab's shape)
        ctx.groups = {"all": ["gw", "web", "client", "ext"], "mongrel2": ["web"], "nat_gateway": ["gw"]}
        ctx.addresses["gw"] = {"out": "198.18.64.10", "lab": "198.18.63.254"}
        ctx.addresses["ext"] = {"out": "198.18.64.11"}
    return ctx


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
    with pytest.raises(CheckFailed, match="did not answer exactly"):
        smoke.handler_answers(make_ctx(FakeLab(greeting="Hello")))


def test_wrong_static_content_fails() -> None:
    with pytest.raises(CheckFailed, match="does not serve"):
        smoke.static_files(make_ctx(FakeLab(static="something else\n")))


def test_web_host_is_the_client_when_alone() -> None:
    ctx = make_ctx(FakeLab())
    ctx.groups["all"] = ["web"]
    assert smoke._client(ctx, "web") == "web"


def test_debug_lines_after_the_greeting_fail() -> None:
    """Today's handler put 5 debug lines after the seed's greeting: the reply must be the greeting only."""
    lab = FakeLab()
    lab.http = lambda method, path, body: {  # type: ignore[method-assign]
        "status": 200,
        "body": "Hi...This is Danny...\nmethod: GET\npath: /handlers\n",
    }
    with pytest.raises(CheckFailed, match="did not answer exactly"):
        smoke.handler_answers(make_ctx(lab))


def test_post_goes_to_the_echo_path() -> None:
    lab = FakeLab()
    smoke.handler_answers(make_ctx(lab))
    posts = [shlex.split(cmd) for _h, cmd in lab.calls if cmd.startswith("python3 - POST")]
    assert len(posts) == 1 and posts[0][5].startswith("/handlers/echo/smoke-")


def test_connections_pass_when_http10_closes() -> None:
    lab = FakeLab()
    message = smoke.connections(make_ctx(lab))
    assert "100 HTTP/1.1 requests" in message
    probes = [shlex.split(cmd)[2:] for _h, cmd in lab.calls if cmd.startswith("python3 - ") and cmd.count(" ") == 5]
    assert probes == [["198.18.63.10", "6767", "/handlers", str(smoke.PIPELINE_REQUESTS)]]


def test_connections_fail_when_the_handler_never_closes() -> None:
    with pytest.raises(CheckFailed, match=r"HTTP/1\.0: timed out") as exc:
        smoke.connections(make_ctx(FakeLab(closes=False)))
    assert "Connection: close: timed out" in str(exc.value)
    assert "HTTP/1.0 keep-alive: Connection header None" in str(exc.value)


def test_connection_problems_catch_each_case() -> None:
    greeting = "Hi...This is Danny..."
    assert smoke.connection_problems(conn_report(greeting), greeting, 100) == []
    bad = conn_report(greeting)
    bad["http10"]["closed"] = False
    bad["http11_keep"]["same_body"] = 99
    bad["http11_keep"]["error"] = "ConnectionError: connection closed before a full response (0 bytes)"
    problems = smoke.connection_problems(bad, greeting, 100)
    assert problems == [
        "HTTP/1.0: the connection stayed open after the reply",
        "HTTP/1.1: 99/100 greetings on one connection ConnectionError: connection closed before a full response "
        "(0 bytes)",
    ]
    bad = conn_report(greeting)
    bad["http11_close"]["headers"].pop("connection")
    assert smoke.connection_problems(bad, greeting, 100) == [
        "HTTP/1.1 with Connection: close: Connection header None, expected close"
    ]


def test_parse_ab_success() -> None:
    text = AB_OK.format(n=1000, keep="Keep-Alive requests:    1000\n", html=21000, rps="4479.46")
    report = smoke.parse_ab(text)
    assert report == smoke.AbReport(1000, 0, 0, 1000, 4479.46, None, 21, 21000)
    assert report.problem(1000, "Hi...This is Danny...", keep_alive=True) == ""
    assert report.problem(2000, "Hi...This is Danny...") == "1000/2000 complete, 0 failed, 0 non-2xx"


def test_parse_ab_hang_and_partial() -> None:
    assert smoke.parse_ab(AB_HANG).problem(2000, "x") == "ab gave up after 0 of 2000 requests"
    assert smoke.parse_ab(AB_PARTIAL).problem(2000, "x") == "ab gave up after 251 of 2000 requests"


def test_parse_ab_connections_closed_without_a_response() -> None:
    assert smoke.parse_ab(AB_EMPTY).problem(20, "Hi...This is Danny...") == (
        "bodies of 0 bytes (0 in all), expected 21 (420 in all)"
    )


def test_parse_ab_keep_alive_not_honoured() -> None:
    text = AB_OK.format(n=1000, keep="Keep-Alive requests:    0\n", html=21000, rps="900.0")
    assert smoke.parse_ab(text).problem(1000, "Hi...This is Danny...", keep_alive=True) == (
        "only 0 of 1000 requests were kept alive"
    )


def test_load_direct_and_through_dnat() -> None:
    lab = FakeLab(has_ab=False)
    message = smoke.load(make_ctx(lab, gateway=True))
    assert message == (
        "2000 requests, 0 failed: client -> web:6767 2872 req/s (1000 keep-alive at 2872 req/s); "
        "ext -> gw:80 (DNAT) 2503 req/s"
    )
    abs_ = [(h, cmd) for h, cmd in lab.calls if cmd.startswith("ab ")]
    assert [h for h, _cmd in abs_] == ["client", "client", "ext"]
    assert abs_[1][1].endswith("-n 2000 -c 10 http://198.18.63.10:6767/handlers")
    assert abs_[2][1].endswith("-n 2000 -c 10 http://198.18.64.10:80/handlers")
    assert any("apt-get install" in cmd and "apache2-utils" in cmd for _h, cmd in lab.calls)


def test_load_without_a_gateway_says_so() -> None:
    message = smoke.load(make_ctx(FakeLab()))
    assert message.endswith("no NAT gateway forwards to web:6767 (DNAT not measured)")


def test_load_fails_when_ab_gives_up() -> None:
    with pytest.raises(CheckFailed, match="ab gave up after 0 of 1000 requests"):
        smoke.load(make_ctx(FakeLab(closes=False), gateway=True))


def test_client_prefers_hosts_that_are_not_gateways() -> None:
    ctx = make_ctx(FakeLab(), gateway=True)
    assert smoke._client(ctx, "web") == "client"
    ctx.groups["all"] = ["gw", "web", "ext"]
    assert smoke._client(ctx, "web") == "gw"  # ext shares no network with web


def test_a_fact_without_servers_fails() -> None:
    lab = FakeLab()
    lab.fact = {**FACT, "servers": []}
    with pytest.raises(CheckFailed, match="lists no servers"):
        smoke.handler_answers(make_ctx(lab))
