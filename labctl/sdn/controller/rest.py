"""The sliceable switch's REST API as a plain WSGI callable (no WebOb, no os_ken), shaped like Trema's.

    GET  POST        /networks                                   list (id, description) / create {id, description}
    GET  PUT  DELETE /networks/{id}                              one slice with its bindings
    GET  POST        /networks/{id}/ports                        port bindings {id?, datapath_id, port, vid?}
    GET  DELETE      /networks/{id}/ports/{bid}
    GET  POST        /networks/{id}/attachments                  MAC bindings {id?, mac}
    GET  DELETE      /networks/{id}/attachments/{bid}
    GET  POST        /networks/{id}/ports/{pbid}/attachments     port-MAC bindings {id?, mac}
    GET  DELETE      /networks/{id}/ports/{pbid}/attachments/{bid}
    GET  PUT         /config                                     {restrict_hosts_on_port, loose}
    GET              /locations                                  where MAC-bound hosts were last seen

JSON in and out. Errors are {"error": message}: 400 invalid input, 404 unknown slice/binding/path,
405 wrong method, 422 duplicate id or binding already taken.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterable
from typing import Any

from . import slices as sl

StartResponse = Callable[..., Any]
MAX_BODY = 1 << 20

_REASONS = {
    200: "OK",
    201: "Created",
    204: "No Content",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    411: "Length Required",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}


class HttpError(Exception):
    def __init__(self, status: int, message: str, allow: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.allow = tuple(allow)


def _mac_binding(bid: str, mac: str) -> dict[str, str]:
    return {"id": bid, "mac": mac}


class RestApi:
    """WSGI app over a SliceTable. ``on_change`` runs after every successful write (e.g. persist)."""

    def __init__(self, table: sl.SliceTable, lock: Any = None, on_change: Callable[[], None] | None = None) -> None:
        self.table = table
        self.lock = lock if lock is not None else threading.RLock()
        self.on_change = on_change
        seg = r"([^/]+)"
        self.routes: list[tuple[re.Pattern[str], dict[str, Callable[..., tuple[int, Any]]]]] = [
            (re.compile(r"^/networks/?$"), {"GET": self.list_slices, "POST": self.create_slice}),
            (
                re.compile(rf"^/networks/{seg}/?$"),
                {"GET": self.show_slice, "PUT": self.update_slice, "DELETE": self.delete_slice},
            ),
            (re.compile(rf"^/networks/{seg}/ports/?$"), {"GET": self.list_ports, "POST": self.add_port}),
            (re.compile(rf"^/networks/{seg}/ports/{seg}/?$"), {"GET": self.show_port, "DELETE": self.remove_port}),
            (
                re.compile(rf"^/networks/{seg}/ports/{seg}/attachments/?$"),
                {"GET": self.list_port_macs, "POST": self.add_port_mac},
            ),
            (
                re.compile(rf"^/networks/{seg}/ports/{seg}/attachments/{seg}/?$"),
                {"GET": self.show_port_mac, "DELETE": self.remove_port_mac},
            ),
            (re.compile(rf"^/networks/{seg}/attachments/?$"), {"GET": self.list_macs, "POST": self.add_mac}),
            (
                re.compile(rf"^/networks/{seg}/attachments/{seg}/?$"),
                {"GET": self.show_mac, "DELETE": self.remove_mac},
            ),
            (re.compile(r"^/config/?$"), {"GET": self.get_config, "PUT": self.set_config}),
            (re.compile(r"^/locations/?$"), {"GET": self.list_locations}),
        ]

    # -- WSGI
    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> list[bytes]:
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path = environ.get("PATH_INFO", "/") or "/"
        headers: list[tuple[str, str]] = []
        try:
            status, payload = self.dispatch(method, path, environ)
        except HttpError as exc:
            status, payload = exc.status, {"error": str(exc)}
            if exc.allow:
                headers.append(("Allow", ", ".join(exc.allow)))
        except sl.SliceError as exc:
            status, payload = exc.status, {"error": str(exc)}
        except Exception as exc:  # pragma: no cover - last resort, keep the server alive
            status, payload = 500, {"error": f"internal error: {exc.__class__.__name__}: {exc}"}
        body = b"" if status == 204 else (json.dumps(payload, indent=1) + "\n").encode()
        headers += [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_REASONS.get(status, 'Status')}", headers)
        return [body] if body else []

    def dispatch(self, method: str, path: str, environ: dict[str, Any]) -> tuple[int, Any]:
        for pattern, methods in self.routes:
            m = pattern.match(path)
            if not m:
                continue
            handler = methods.get(method)
            if handler is None:
                raise HttpError(405, f"{method} not allowed on {path}", allow=sorted(methods))
            args = m.groups()
            with self.lock:
                if method in ("POST", "PUT"):
                    status, payload = handler(*args, body=self._body(environ))
                else:
                    status, payload = handler(*args)
                if method != "GET" and self.on_change is not None:
                    self.on_change()
            return status, payload
        raise HttpError(404, f"no such resource: {path}")

    @staticmethod
    def _body(environ: dict[str, Any]) -> Any:
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            raise HttpError(400, "bad Content-Length") from None
        if length > MAX_BODY:
            raise HttpError(413, "request body too large")
        raw = environ["wsgi.input"].read(length) if length else b""
        if not raw.strip():
            raise HttpError(400, "a JSON object body is required")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"body is not valid JSON: {exc}") from None

    # -- slices
    def list_slices(self) -> tuple[int, Any]:
        return 200, [s.summary() for s in self.table.slices.values()]

    def create_slice(self, body: Any) -> tuple[int, Any]:
        return 201, self.table.create_slice(body).to_dict()

    def show_slice(self, sid: str) -> tuple[int, Any]:
        return 200, self.table.get(sid).to_dict()

    def update_slice(self, sid: str, body: Any) -> tuple[int, Any]:
        return 200, self.table.update_slice(sid, body).to_dict()

    def delete_slice(self, sid: str) -> tuple[int, Any]:
        self.table.delete_slice(sid)
        return 204, None

    # -- port bindings
    def list_ports(self, sid: str) -> tuple[int, Any]:
        return 200, [p.to_dict() for p in self.table.get(sid).ports.values()]

    def add_port(self, sid: str, body: Any) -> tuple[int, Any]:
        return 201, self.table.add_port(sid, body).to_dict()

    def show_port(self, sid: str, bid: str) -> tuple[int, Any]:
        return 200, self.table.get_port(sid, bid).to_dict()

    def remove_port(self, sid: str, bid: str) -> tuple[int, Any]:
        self.table.remove_port(sid, bid)
        return 204, None

    # -- MAC bindings
    def list_macs(self, sid: str) -> tuple[int, Any]:
        return 200, [_mac_binding(b, m) for b, m in self.table.get(sid).attachments.items()]

    def add_mac(self, sid: str, body: Any) -> tuple[int, Any]:
        return 201, _mac_binding(*self.table.add_mac(sid, body))

    def show_mac(self, sid: str, bid: str) -> tuple[int, Any]:
        return 200, _mac_binding(bid, self.table.get_mac(sid, bid))

    def remove_mac(self, sid: str, bid: str) -> tuple[int, Any]:
        self.table.remove_mac(sid, bid)
        return 204, None

    # -- port-MAC bindings
    def list_port_macs(self, sid: str, pbid: str) -> tuple[int, Any]:
        return 200, [_mac_binding(b, m) for b, m in self.table.get_port(sid, pbid).attachments.items()]

    def add_port_mac(self, sid: str, pbid: str, body: Any) -> tuple[int, Any]:
        return 201, _mac_binding(*self.table.add_port_mac(sid, pbid, body))

    def show_port_mac(self, sid: str, pbid: str, bid: str) -> tuple[int, Any]:
        return 200, _mac_binding(bid, self.table.get_port_mac(sid, pbid, bid))

    def remove_port_mac(self, sid: str, pbid: str, bid: str) -> tuple[int, Any]:
        self.table.remove_port_mac(sid, pbid, bid)
        return 204, None

    # -- options and state
    def get_config(self) -> tuple[int, Any]:
        return 200, self.table.config.to_dict()

    def set_config(self, body: Any) -> tuple[int, Any]:
        return 200, self.table.set_config(body).to_dict()

    def list_locations(self) -> tuple[int, Any]:
        return 200, self.table.to_dict(with_locations=True)["locations"]
