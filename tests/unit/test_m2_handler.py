"""Byte-exact tests of the Mongrel2 handler's parser and reply framing (roles/mongrel2/files/m2_handler.py)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

_PATH = Path(__file__).resolve().parents[2] / "roles" / "mongrel2" / "files" / "m2_handler.py"
_SPEC = importlib.util.spec_from_file_location("m2_handler", _PATH)
assert _SPEC and _SPEC.loader
m2 = importlib.util.module_from_spec(_SPEC)
sys.modules["m2_handler"] = m2  # dataclasses look the module up by name
_SPEC.loader.exec_module(m2)

SENDER = b"f400bf85-4538-4f7a-8908-67e313d515c2"


def ns(payload: bytes, tag: bytes = b",") -> bytes:
    return str(len(payload)).encode() + b":" + payload + tag


def request(conn: bytes, path: bytes, headers: dict, body: bytes) -> bytes:
    raw = json.dumps(headers, separators=(",", ":")).encode()
    return SENDER + b" " + conn + b" " + path + b" " + ns(raw) + ns(body)


def test_parse_get_exact_bytes() -> None:
    msg = (
        b'f400bf85-4538-4f7a-8908-67e313d515c2 7 /handlers 53:{"PATH":"/handlers","METHOD":"GET","host":"web:6767"},0:,'
    )
    req = m2.parse_request(msg)
    assert req.sender == SENDER
    assert req.conn_id == b"7"
    assert req.path == "/handlers"
    assert req.method == "GET"
    assert req.headers["host"] == "web:6767"
    assert req.body == b""
    assert not req.is_disconnect()


def test_body_and_header_with_spaces() -> None:
    body = b"a body with  spaces, commas, and 12:colons,"
    headers = {"METHOD": "POST", "PATH": "/handlers/x", "user-agent": "curl 8.0 (x86_64 linux)"}
    req = m2.parse_request(request(b"42", b"/handlers/x", headers, body))
    assert req.body == body
    assert req.headers["user-agent"] == "curl 8.0 (x86_64 linux)"
    assert req.method == "POST"
    assert req.conn_id == b"42"


def test_utf8_lengths_are_bytes() -> None:
    body = "héllo wörld".encode()
    req = m2.parse_request(request(b"3", b"/handlers", {"METHOD": "POST", "x-name": "Zoë B"}, body))
    assert req.body == body
    assert req.headers["x-name"] == "Zoë B"


def test_disconnect_notice_is_ignored() -> None:
    msg = SENDER + b' 12 @* 17:{"METHOD":"JSON"},21:{"type":"disconnect"},'
    req = m2.parse_request(msg)
    assert req.path == "@*"
    assert req.is_disconnect()
    assert m2.respond(req, ["/handlers"], "Hi") == []


def test_json_message_that_is_not_a_disconnect() -> None:
    req = m2.parse_request(SENDER + b' 1 /handlers 17:{"METHOD":"JSON"},16:{"type":"other"},')
    assert not req.is_disconnect()


def test_tnetstring_headers() -> None:
    hdrs = ns(b"METHOD", b",") + ns(b"GET", b",") + ns(b"PATH", b",") + ns(b"/handlers", b",")
    msg = SENDER + b" 5 /handlers " + ns(hdrs, b"}") + b"0:,"
    req = m2.parse_request(msg)
    assert req.headers == {"METHOD": "GET", "PATH": "/handlers"}
    assert req.body == b""


GREETING = "Hi...This is Danny..."


def reply_bytes(conn: bytes, status: str, body: bytes, connection: str | None = None) -> bytes:
    head = f"HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {len(body)}\r\n"
    if connection:
        head += f"Connection: {connection}\r\n"
    return SENDER + b" " + str(len(conn)).encode() + b":" + conn + b", " + head.encode() + b"\r\n" + body


def test_http11_reply_is_exactly_the_greeting_and_keeps_the_connection() -> None:
    req = m2.parse_request(request(b"7", b"/handlers", {"METHOD": "GET", "VERSION": "HTTP/1.1", "host": "web"}, b""))
    assert m2.respond(req, ["/handlers"], GREETING) == [reply_bytes(b"7", "200 OK", GREETING.encode())]


def test_http10_without_keep_alive_is_answered_then_closed() -> None:
    req = m2.parse_request(request(b"7", b"/handlers", {"METHOD": "GET", "VERSION": "HTTP/1.0"}, b""))
    assert m2.respond(req, ["/handlers"], GREETING) == [
        reply_bytes(b"7", "200 OK", GREETING.encode(), "close"),
        SENDER + b" 1:7, ",  # the close message: an empty body to the connection id
    ]


def test_http10_with_keep_alive_stays_open_and_says_so() -> None:
    headers = {"METHOD": "GET", "VERSION": "HTTP/1.0", "connection": "Keep-Alive"}
    req = m2.parse_request(request(b"31", b"/handlers", headers, b""))
    assert m2.respond(req, ["/handlers"], GREETING) == [reply_bytes(b"31", "200 OK", GREETING.encode(), "keep-alive")]


def test_http11_connection_close_is_answered_then_closed() -> None:
    headers = {"METHOD": "GET", "VERSION": "HTTP/1.1", "Connection": "Upgrade, CLOSE"}
    req = m2.parse_request(request(b"12", b"/handlers", headers, b""))
    assert m2.respond(req, ["/handlers"], GREETING) == [
        reply_bytes(b"12", "200 OK", GREETING.encode(), "close"),
        SENDER + b" 2:12, ",
    ]


def test_404_also_closes_an_http10_connection() -> None:
    req = m2.parse_request(request(b"9", b"/handlersfoo", {"METHOD": "GET", "VERSION": "HTTP/1.0"}, b""))
    messages = m2.respond(req, ["/handlers"], GREETING)
    assert len(messages) == 2
    assert messages[0].startswith(SENDER + b" 1:9, HTTP/1.1 404 Not Found\r\n")
    assert b"\r\nConnection: close\r\n" in messages[0]
    assert messages[1] == SENDER + b" 1:9, "


@pytest.mark.parametrize(
    ("version", "connection", "keep"),
    [
        ("HTTP/1.1", "", True),
        ("HTTP/1.1", "keep-alive", True),
        ("HTTP/1.1", "close", False),
        ("HTTP/1.1", "Close", False),
        ("HTTP/1.1", "keep-alive, close", False),
        ("HTTP/1.0", "", False),
        ("HTTP/1.0", "keep-alive", True),
        ("HTTP/1.0", "Keep-Alive", True),
        ("HTTP/1.0", "close", False),
        ("HTTP/1.0", "upgrade", False),
        ("HTTP/0.9", "", False),
        ("HTTP/2.0", "", True),
        ("", "", True),  # no VERSION (not sent by mongrel2 for HTTP): HTTP/1.1 rules
        ("junk", "keep-alive", False),
    ],
)
def test_keep_alive_rules(version: str, connection: str, keep: bool) -> None:
    headers = {"METHOD": "GET"}
    if version:
        headers["VERSION"] = version
    if connection:
        headers["connection"] = connection
    req = m2.parse_request(request(b"1", b"/handlers", headers, b""))
    assert m2.keep_alive(req) is keep


def test_head_gets_headers_only() -> None:
    req = m2.parse_request(request(b"4", b"/handlers", {"METHOD": "HEAD", "VERSION": "HTTP/1.1"}, b""))
    assert m2.respond(req, ["/handlers"], GREETING) == [
        SENDER + b" 1:4, HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(GREETING)).encode() + b"\r\n\r\n"
    ]


def test_debug_echo_lives_below_the_echo_subpath() -> None:
    headers = {"METHOD": "POST", "VERSION": "HTTP/1.1", "host": "web:6767", "QUERY": "a=1"}
    req = m2.parse_request(request(b"7", b"/handlers/echo/x", headers, b"abc"))
    text = (
        GREETING + "\nmethod: POST\npath: /handlers/echo/x\nquery: a=1\nversion: HTTP/1.1\n"
        "host: web:6767\nconnection: \nbody-bytes: 3\n"
    )
    assert m2.respond(req, ["/handlers"], GREETING, "echo") == [reply_bytes(b"7", "200 OK", text.encode())]
    # without an echo sub-path, or elsewhere in the route, only the greeting
    assert m2.respond(req, ["/handlers"], GREETING, "") == [reply_bytes(b"7", "200 OK", GREETING.encode())]
    other = m2.parse_request(request(b"7", b"/handlers/echoes", headers, b"abc"))
    assert m2.respond(other, ["/handlers"], GREETING, "echo") == [reply_bytes(b"7", "200 OK", GREETING.encode())]


@pytest.mark.parametrize(
    ("path", "ok"),
    [("/handlers/echo", True), ("/handlers/echo/", True), ("/handlers/echo/a/b", True), ("/handlers/echox", False)],
)
def test_echo_requested(path: str, ok: bool) -> None:
    assert m2.echo_requested(path, ["/handlers"], "/echo/") is ok
    assert m2.echo_requested(path, ["/handlers/"], "echo") is ok


def test_reply_message_many_ids() -> None:
    assert m2.reply_message(b"S", [b"1", b"23"], b"X") == b"S 4:1 23, X"


def test_unrouted_path_gets_404() -> None:
    req = m2.parse_request(request(b"9", b"/handlersfoo", {"METHOD": "GET", "VERSION": "HTTP/1.1"}, b""))
    (reply,) = m2.respond(req, ["/handlers"], "Hi")
    assert reply.startswith(SENDER + b" 1:9, HTTP/1.1 404 Not Found\r\n")


@pytest.mark.parametrize(
    ("path", "ok"),
    [("/handlers", True), ("/handlers/", True), ("/handlers/a/b", True), ("/handlersx", False), ("/", False)],
)
def test_route_matches(path: str, ok: bool) -> None:
    assert m2.route_matches(path, ["/handlers"]) is ok


@pytest.mark.parametrize(
    "msg",
    [
        b"",
        SENDER + b" 1 /x",
        SENDER + b" 1 /x 5:{},0:,",  # length says 5, payload is 2 bytes + terminators
        SENDER + b" 1 /x 2:{},3:ab,",  # body shorter than announced
        SENDER + b" 1 /x 2:{};0:,",  # bad header terminator
        SENDER + b" 1 /x 2:{},0:,junk",  # trailing bytes
        SENDER + b" 1 /x 2:[],0:,",  # headers not a dict
        SENDER + b" 1 /x x:{},0:,",  # no length
    ],
)
def test_malformed_messages_raise(msg: bytes) -> None:
    with pytest.raises(m2.ParseError):
        m2.parse_request(msg)
