#!/usr/bin/python3
"""A Mongrel2 handler (ZeroMQ): PULL requests from send_spec, PUB replies to recv_spec.

Wire format (Mongrel2 1.12):
  request  = SENDER " " CONN_ID " " PATH " " LEN ":" HEADERS ("," | "}") LEN ":" BODY ","
             (HEADERS is JSON with protocol='json', a tnetstring dict ending in "}" with 'tnetstring')
  reply    = SENDER " " LEN ":" CONN_ID [" " CONN_ID ...] "," " " HTTP-RESPONSE
  close    = SENDER " " LEN ":" CONN_ID "," " "      (an empty body: mongrel2 closes the connection)
Disconnect notices (METHOD "JSON", body {"type":"disconnect"}) are never answered.

Connections (mongrel2 leaves it to the handler; a client reading to end-of-connection waits until the
handler closes): HTTP/1.0 without `Connection: keep-alive`, and any request with `Connection: close`,
get `Connection: close` and then the close message; HTTP/1.0 with keep-alive gets `Connection: keep-alive`;
HTTP/1.1 stays open (its default).

Replies: 200 with exactly the greeting (the seed's "Hi...This is Danny...") on every handler route;
below ROUTE/<echo_subpath> (default /handlers/echo) the greeting is followed by a debug echo of the
request; paths outside the routes get 404.

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


def header(headers: dict[str, Any], name: str) -> str:
    """A request header by case-insensitive name ("" when absent); mongrel2 lower-cases HTTP headers."""
    want = name.lower()
    for key, value in headers.items():
        if key.lower() == want:
            return str(value)
    return ""


def connection_tokens(headers: dict[str, Any]) -> set[str]:
    """The tokens of the Connection header, lower-cased ("Keep-Alive, Upgrade" -> {"keep-alive", "upgrade"})."""
    return {t.strip().lower() for t in header(headers, "connection").split(",") if t.strip()}


def keep_alive(req: Request) -> bool:
    """Does the connection stay open after the reply (RFC 9112 section 9.3)?

    `Connection: close` always closes; HTTP/1.0 stays open only with `Connection: keep-alive`;
    HTTP/1.1 and later stay open by default; anything older (HTTP/0.9) closes.
    """
    tokens = connection_tokens(req.headers)
    if "close" in tokens:
        return False
    version = str(req.headers.get("VERSION") or "HTTP/1.1").strip().upper()
    if version == "HTTP/1.0":
        return "keep-alive" in tokens
    major, _, minor = version.removeprefix("HTTP/").partition(".")
    try:
        return (int(major), int(minor or 0)) >= (1, 1)
    except ValueError:
        return False


def connection_header(req: Request) -> str | None:
    """The Connection header of the reply: close, keep-alive (HTTP/1.0 only, where it is not the default), or none."""
    if not keep_alive(req):
        return "close"
    if str(req.headers.get("VERSION") or "").strip().upper() == "HTTP/1.0":
        return "keep-alive"
    return None


def http_response(
    status: int,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
    connection: str | None = None,
    head: bool = False,
) -> bytes:
    """An HTTP/1.1 response; head=True leaves the body out (HEAD) but keeps its Content-Length."""
    lines = [
        f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Unknown')}",
        f"Content-Type: {content_type}",
        f"Content-Length: {len(body)}",
    ]
    if connection:
        lines.append(f"Connection: {connection}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + (b"" if head else body)


def reply_message(sender: bytes, conn_ids: list[bytes], payload: bytes) -> bytes:
    """Frame a reply for Mongrel2: 'SENDER LEN:ID ID, PAYLOAD'."""
    ids = b" ".join(conn_ids)
    return sender + b" " + str(len(ids)).encode() + b":" + ids + b", " + payload


def close_message(sender: bytes, conn_ids: list[bytes]) -> bytes:
    """The message that makes Mongrel2 close connections: a reply with an empty body."""
    return reply_message(sender, conn_ids, b"")


def route_matches(path: str, routes: list[str]) -> bool:
    """True when path is one of the routes or below one of them (routes are path prefixes)."""
    for route in routes:
        base = route.rstrip("/")
        if path in (route, base) or path.startswith(base + "/"):
            return True
    return False


def echo_requested(path: str, routes: list[str], echo_subpath: str) -> bool:
    """True when path is ROUTE/<echo_subpath> or below it, for one of the routes (never when echo_subpath is empty)."""
    sub = echo_subpath.strip("/")
    if not sub:
        return False
    return route_matches(path, [route.rstrip("/") + "/" + sub for route in routes])


def echo_text(req: Request) -> str:
    """The debug echo of a request (one `name: value` line each)."""
    return (
        f"method: {req.method}\n"
        f"path: {req.path}\n"
        f"query: {req.headers.get('QUERY', '')}\n"
        f"version: {req.headers.get('VERSION', '')}\n"
        f"host: {header(req.headers, 'host')}\n"
        f"connection: {header(req.headers, 'connection')}\n"
        f"body-bytes: {len(req.body)}\n"
    )


def respond(req: Request, routes: list[str], greeting: str, echo_subpath: str = "echo") -> list[bytes]:
    """The messages to send Mongrel2 for a request, in order: the reply, then the close message when the
    connection must end. Nothing for disconnect notices."""
    if req.is_disconnect():
        return []
    if not route_matches(req.path, routes):
        status, text = 404, f"404 Not Found: no handler route for {req.path}\n"
    elif echo_requested(req.path, routes, echo_subpath):
        status, text = 200, f"{greeting}\n{echo_text(req)}"
    else:
        status, text = 200, greeting
    payload = http_response(status, text.encode("utf-8"), connection=connection_header(req), head=req.method == "HEAD")
    messages = [reply_message(req.sender, [req.conn_id], payload)]
    if not keep_alive(req):
        messages.append(close_message(req.sender, [req.conn_id]))
    return messages


def load_config(path: str) -> dict[str, Any]:
    with open(path, encoding="utf-8") as fh:
        cfg = json.load(fh)
    for key in ("send_spec", "recv_spec"):
        if not cfg.get(key):
            raise SystemExit(f"{path}: {key} is required")
    cfg.setdefault("routes", ["/"])
    cfg.setdefault("greeting", "Hi...This is Danny...")
    cfg.setdefault("echo_subpath", "echo")
    cfg.setdefault("log_level", "INFO")
    return cfg


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--config", required=True, help="JSON file: send_spec, recv_spec, routes, greeting, echo_subpath"
    )
    args = parser.parse_args(argv)
    cfg = load_config(args.config)
    # DEBUG logs every request (and whether its connection was closed); INFO only start-up and errors.
    logging.basicConfig(level=str(cfg["log_level"]).upper(), format="%(levelname)s %(message)s", stream=sys.stderr)

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
        messages = respond(req, cfg["routes"], cfg["greeting"], cfg["echo_subpath"])
        if not messages:
            LOG.debug("connection %s disconnected", req.conn_id.decode(errors="replace"))
            continue
        for message in messages:
            pub.send(message)
        if LOG.isEnabledFor(logging.DEBUG):
            status = messages[0].split(b" ", 4)[3].decode(errors="replace")
            LOG.debug("%s %s -> %s%s", req.method, req.path, status, " (closed)" if len(messages) > 1 else "")


if __name__ == "__main__":
    sys.exit(main())
