#!/usr/bin/python3
"""A Mongrel2 handler (ZeroMQ): PULL requests from send_spec, PUB replies to recv_spec.

Wire format (Mongrel2 1.12):
  request  = SENDER " " CONN_ID " " PATH " " LEN ":" HEADERS ("," | "}") LEN ":" BODY ","
             (HEADERS is JSON with protocol='json', a tnetstring dict ending in "}" with 'tnetstring')
  reply    = SENDER " " LEN ":" CONN_ID [" " CONN_ID ...] "," " " HTTP-RESPONSE
Disconnect notices (METHOD "JSON", body {"type":"disconnect"}) are never answered.

The parsing and reply building are pure functions (no ZeroMQ needed) so they can be unit-tested;
pyzmq is imported only by main().
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass, field
from typing import Any

LOG = logging.getLogger("m2_handler")

STATUS_TEXT = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}


class ParseError(ValueError):
    """The message is not a well-formed Mongrel2 request."""


@dataclass(frozen=True)
class Request:
    sender: bytes
    conn_id: bytes
    path: str
    headers: dict[str, Any] = field(default_factory=dict)
    body: bytes = b""

    @property
    def method(self) -> str:
        return str(self.headers.get("METHOD", ""))

    def is_disconnect(self) -> bool:
        if self.method != "JSON":
            return False
        try:
            return json.loads(self.body.decode("utf-8")).get("type") == "disconnect"
        except (ValueError, AttributeError):
            return False


def parse_netstring(data: bytes, pos: int = 0) -> tuple[bytes, bytes, int]:
    """Read one LEN:PAYLOAD<terminator> at pos; return (payload, terminator, position after it)."""
    colon = data.find(b":", pos)
    if colon < 0 or colon == pos or colon - pos > 10:
        raise ParseError(f"no length prefix at byte {pos}")
    digits = data[pos:colon]
    if not digits.isdigit():
        raise ParseError(f"bad length {digits!r} at byte {pos}")
    length = int(digits)
    start = colon + 1
    end = start + length
    if end >= len(data):
        raise ParseError(f"netstring at byte {pos} runs past the end ({length} bytes announced)")
    return data[start:end], data[end : end + 1], end + 1


def parse_tnetstring(data: bytes, pos: int = 0) -> tuple[Any, int]:
    """Decode one tnetstring value at pos; return (value, position after it)."""
    payload, tag, nxt = parse_netstring(data, pos)
    if tag == b",":
        return payload.decode("utf-8", "replace"), nxt
    if tag == b"#":
        return int(payload), nxt
    if tag == b"!":
        return payload == b"true", nxt
    if tag == b"~":
        return None, nxt
    if tag in (b"}", b"]"):
        items: list[Any] = []
        i = 0
        while i < len(payload):
            value, i = parse_tnetstring(payload, i)
            items.append(value)
        if tag == b"]":
            return items, nxt
        if len(items) % 2:
            raise ParseError("tnetstring dict with an odd number of items")
        return {str(items[k]): items[k + 1] for k in range(0, len(items), 2)}, nxt
    raise ParseError(f"unknown tnetstring type {tag!r}")


def parse_request(msg: bytes) -> Request:
    """Split a raw Mongrel2 request into its parts (lengths are byte counts, bodies may hold spaces)."""
    try:
        sender, conn_id, path, rest = msg.split(b" ", 3)
    except ValueError as exc:
        raise ParseError("expected 'SENDER ID PATH NETSTRINGS'") from exc
    if not sender or not conn_id or not path:
        raise ParseError("empty sender, connection id or path")
    raw_headers, tag, pos = parse_netstring(rest)
    if tag == b",":
        try:
            headers = json.loads(raw_headers.decode("utf-8"))
        except ValueError as exc:
            raise ParseError(f"headers are not JSON: {exc}") from exc
    elif tag == b"}":
        headers, _ = parse_tnetstring(rest)
    else:
        raise ParseError(f"headers end with {tag!r}, expected ',' or '}}'")
    if not isinstance(headers, dict):
        raise ParseError("headers are not a dictionary")
    body, tag, pos = parse_netstring(rest, pos)
    if tag != b",":
        raise ParseError(f"body ends with {tag!r}, expected ','")
    if pos != len(rest):
        raise ParseError(f"{len(rest) - pos} trailing bytes after the body")
    return Request(sender, conn_id, path.decode("utf-8", "replace"), headers, body)


def http_response(status: int, body: bytes, content_type: str = "text/plain; charset=utf-8") -> bytes:
    head = (
        f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Unknown')}\r\n"
        f"Content-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("ascii") + body


def reply_message(sender: bytes, conn_ids: list[bytes], payload: bytes) -> bytes:
    """Frame a reply for Mongrel2: 'SENDER LEN:ID ID, PAYLOAD'."""
    ids = b" ".join(conn_ids)
    return sender + b" " + str(len(ids)).encode() + b":" + ids + b", " + payload


def route_matches(path: str, routes: list[str]) -> bool:
    """True when path is one of the routes or below one of them (routes are path prefixes)."""
    for route in routes:
        base = route.rstrip("/")
        if path in (route, base) or path.startswith(base + "/"):
            return True
    return False


def respond(req: Request, routes: list[str], greeting: str) -> bytes | None:
    """The Mongrel2 reply for a request, or None for messages that must not be answered."""
    if req.is_disconnect():
        return None
    if not route_matches(req.path, routes):
        status, text = 404, f"404 Not Found: no handler route for {req.path}\n"
    else:
        status = 200
        query = req.headers.get("QUERY", "")
        text = (
            f"{greeting}\n"
            f"method: {req.method}\n"
            f"path: {req.path}\n"
            f"query: {query}\n"
            f"host: {req.headers.get('host', '')}\n"
            f"body-bytes: {len(req.body)}\n"
        )
    return reply_message(req.sender, [req.conn_id], http_response(status, text.encode("utf-8")))


def load_config(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        cfg = json.load(fh)
    for key in ("send_spec", "recv_spec"):
        if not cfg.get(key):
            raise SystemExit(f"{path}: {key} is required")
    cfg.setdefault("routes", ["/"])
    cfg.setdefault("greeting", "Hi...This is Danny...")
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="JSON file: send_spec, recv_spec, routes, greeting")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    cfg = load_config(args.config)

    import zmq  # type: ignore[import-not-found]  # here so the pure functions above need no pyzmq

    ctx = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.connect(cfg["send_spec"])
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 1000)
    pub.connect(cfg["recv_spec"])
    LOG.info("PULL %s, PUB %s, routes %s", cfg["send_spec"], cfg["recv_spec"], cfg["routes"])
    while True:
        msg = pull.recv()
        try:
            req = parse_request(msg)
        except ParseError as exc:
            LOG.warning("dropping malformed message (%s): %r", exc, msg[:200])
            continue
        reply = respond(req, cfg["routes"], cfg["greeting"])
        if reply is None:
            LOG.debug("connection %s disconnected", req.conn_id.decode(errors="replace"))
            continue
        pub.send(reply)
        LOG.info("%s %s -> %s", req.method, req.path, reply.split(b" ", 4)[3].decode(errors="replace"))


if __name__ == "__main__":
    sys.exit(main())
