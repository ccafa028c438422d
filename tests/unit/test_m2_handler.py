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
    assert m2.respond(req, ["/handlers"], "Hi") is None


def test_json_message_that_is_not_a_disconnect() -> None:
    req = m2.parse_request(SENDER + b' 1 /handlers 17:{"METHOD":"JSON"},16:{"type":"other"},')
    assert not req.is_disconnect()


def test_tnetstring_headers() -> None:
    hdrs = ns(b"METHOD", b",") + ns(b"GET", b",") + ns(b"PATH", b",") + ns(b"/handlers", b",")
    msg = SENDER + b" 5 /handlers " + ns(hdrs, b"}") + b"0:,"
    req = m2.parse_request(msg)
    assert req.headers == {"METHOD": "GET", "PATH": "/handlers"}
    assert req.body == b""


def test_reply_exact_bytes() -> None:
    req = m2.parse_request(request(b"7", b"/handlers", {"METHOD": "GET", "host": "web:6767"}, b""))
    reply = m2.respond(req, ["/handlers"], "Hi...This is Danny...")
    text = b"Hi...This is Danny...\nmethod: GET\npath: /handlers\nquery: \nhost: web:6767\nbody-bytes: 0\n"
    assert reply == (
        SENDER + b" 1:7, HTTP/1.1 200 OK\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Content-Length: " + str(len(text)).encode() + b"\r\n\r\n" + text
    )


def test_reply_message_many_ids() -> None:
    assert m2.reply_message(b"S", [b"1", b"23"], b"X") == b"S 4:1 23, X"


def test_unrouted_path_gets_404() -> None:
    req = m2.parse_request(request(b"9", b"/handlersfoo", {"METHOD": "GET"}, b""))
    reply = m2.respond(req, ["/handlers"], "Hi")
    assert reply is not None
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
