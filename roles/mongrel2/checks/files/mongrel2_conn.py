"""How an HTTP server ends (or keeps) connections, seen on raw sockets; prints one JSON line.

Usage: python3 - HOST PORT PATH COUNT
Cases (each on its own connection; a server that never closes is caught by a socket timeout):
  http10         GET PATH HTTP/1.0, no Connection header: read to end-of-connection.
  http11_close   GET PATH HTTP/1.1 with `Connection: close`: read to end-of-connection.
  http10_keep    GET PATH HTTP/1.0 with `Connection: keep-alive`, twice on one connection.
  http11_keep    COUNT x GET PATH HTTP/1.1 on one connection (its default is keep-alive).
Output: {"CASE": {"status", "headers" (lower-case names), "body", "closed" (the server closed the
connection after the response), "responses", "same_body" (responses equal to the first), "error"}}
"""

import json
import socket
import sys

TIMEOUT = 10.0

host, port, path, count = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])


def request(version, connection=None):
    lines = [f"GET {path} {version}", f"Host: {host}:{port}", "User-Agent: labctl-smoke"]
    if connection:
        lines.append(f"Connection: {connection}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class Reader:
    """Reads HTTP responses off one socket; knows whether the peer has closed it."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.eof = False

    def fill(self):
        data = self.sock.recv(65536)
        if not data:
            self.eof = True
        self.buf += data
        return bool(data)

    def response(self):
        while b"\r\n\r\n" not in self.buf:
            if not self.fill():
                raise ConnectionError(f"connection closed before a full response ({len(self.buf)} bytes)")
        head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "-1"))
        if length < 0:  # no length: the body runs to end-of-connection
            while self.fill():
                pass
            length = len(self.buf)
        while len(self.buf) < length:
            if not self.fill():
                raise ConnectionError("connection closed in the middle of a body")
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body.decode("utf-8", "replace")

    def closed_after(self):
        """True when the server closes the connection with nothing more to say (waits up to TIMEOUT)."""
        while not self.eof:
            try:
                self.fill()
            except (ConnectionResetError, BrokenPipeError):
                return True
        return not self.buf


def run(requests, wait_close):
    out = {"status": None, "headers": {}, "body": "", "closed": False, "responses": 0, "same_body": 0, "error": ""}
    try:
        with socket.create_connection((host, port), timeout=TIMEOUT) as sock:
            reader = Reader(sock)
            for data in requests:
                sock.sendall(data)
                status, headers, body = reader.response()
                if out["responses"] == 0:
                    out.update(status=status, headers=headers, body=body)
                out["responses"] += 1
                out["same_body"] += int(status == out["status"] and body == out["body"])
            if wait_close:
                out["closed"] = reader.closed_after()
    except TimeoutError:
        out["error"] = f"timed out after {TIMEOUT:.0f} s" + (
            " waiting for the server to close the connection" if out["responses"] else ""
        )
    except Exception as exc:  # report every failure as data: the caller decides
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out


print(
    json.dumps(
        {
            "http10": run([request("HTTP/1.0")], wait_close=True),
            "http11_close": run([request("HTTP/1.1", "close")], wait_close=True),
            "http10_keep": run([request("HTTP/1.0", "keep-alive")] * 2, wait_close=False),
            "http11_keep": run([request("HTTP/1.1")] * count, wait_close=False),
        }
    )
)
