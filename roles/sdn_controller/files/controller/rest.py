"""The sliceable switch's REST API as a plain WSGI callable (no WebOb, no os_ken): Trema's.

Paths, methods, status codes and bodies are those of Trema's sliceable_switch REST API (trema/apps
sliceable_switch config.cgi, restapi.psgi; proven by its features/rest_if_*.feature scenarios, which
tests/unit/test_sdn_trema_features.py runs against this module):

    GET  POST        /networks                        [{id, description}] / {id?, description?} -> 202 {id, description}
    GET  PUT  DELETE /networks/{id}                   {bindings: [...], description} / {description} -> 202 / 202
    GET  POST        /networks/{id}/ports             [{vid, datapath_id, id, port}] / {id?, datapath_id, port, vid}
    GET  DELETE      /networks/{id}/ports/{bid}       {config: {vid, datapath_id, port}, attachments?: [...]} / 202
    GET  POST        /networks/{id}/attachments       [{id, mac}] / {id?, mac} (MAC bindings)
    GET  DELETE      /networks/{id}/attachments/{bid}
    GET  POST        /networks/{id}/ports/{pbid}/attachments          port-MAC bindings on that port
    GET  DELETE      /networks/{id}/ports/{pbid}/attachments/{bid}
    GET  POST        /filters                         [filter, ...] / a filter or a list of them -> 202
    GET  DELETE      /filters/{id}

Writes answer 202 Accepted (POST /networks with the created {id, description}, the others with no
body); datapath ids are decimal strings. Errors: 400 invalid input (Trema has no 400: it fails with
500), 404 unknown slice/binding/filter/path, 405 wrong method, 422 duplicate id, a binding already
taken, a port binding or slice that a new binding or filter names but that does not exist. Error
bodies are {"error": message}.

labctl's additions (not Trema's): GET/PUT /config {restrict_hosts_on_port, loose} (Trema's command line
options -r and -m), GET /locations (where MAC-bound hosts were last seen), GET/PUT /db (Trema's three
database tables as records: {slices, bindings, filter}; PUT replaces them all).
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
    202: "Accepted",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
}


class HttpError(Exception):
    def __init__(self, status: int, message: str, allow: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.allow = tuple(allow)


ACCEPTED: tuple[int, Any] = (202, None)


# --- Trema's representations (key order as in its feature files) ---------------------------------


def _port(b: sl.Binding) -> dict[str, Any]:
    return {"vid": b.vid, "datapath_id": str(b.dpid), "id": b.id, "port": b.port}


def _mac(b: sl.Binding) -> dict[str, Any]:
    return {"id": b.id, "mac": b.mac}


def _binding(b: sl.Binding) -> dict[str, Any]:
    """An entry of GET /networks/{id}'s bindings (config.cgi show_network)."""
    out: dict[str, Any] = {"id": b.id, "type": b.type}
    if b.type in (sl.PORT, sl.PORT_MAC):
        out.update(datapath_id=str(b.dpid), port=b.port, vid=b.vid)
    if b.type in (sl.MAC, sl.PORT_MAC):
        out["mac"] = b.mac
    return out


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
            (re.compile(r"^/filters/?$"), {"GET": self.list_filters, "POST": self.add_filters}),
            (re.compile(rf"^/filters/{seg}/?$"), {"GET": self.show_filter, "DELETE": self.remove_filter}),
            (re.compile(r"^/config/?$"), {"GET": self.get_config, "PUT": self.set_config}),
            (re.compile(r"^/locations/?$"), {"GET": self.list_locations}),
            (re.compile(r"^/db/?$"), {"GET": self.get_db, "PUT": self.set_db}),
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
        if payload is None:  # Trema's bodiless replies
            body = b""
            headers.append(("Content-Type", "text/plain"))
        else:  # compact JSON and a newline, as Trema prints it
            body = (json.dumps(payload, separators=(",", ":")) + "\n").encode()
            headers.append(("Content-Type", "application/json"))
        headers.append(("Content-Length", str(len(body))))
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
            raise HttpError(400, "a JSON body is required")
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HttpError(400, f"body is not valid JSON: {exc}") from None

    # -- networks (slices)
    def list_slices(self) -> tuple[int, Any]:
        return 200, [{"id": s.id, "description": s.description} for s in self.table.slices.values()]

    def create_slice(self, body: Any) -> tuple[int, Any]:
        s = self.table.create_slice(body)
        return 202, {"id": s.id, "description": s.description}

    def show_slice(self, sid: str) -> tuple[int, Any]:
        s = self.table.get(sid)
        return 200, {"bindings": [_binding(b) for b in self.table.bindings_of(sid)], "description": s.description}

    def update_slice(self, sid: str, body: Any) -> tuple[int, Any]:
        self.table.update_slice(sid, body)
        return ACCEPTED

    def delete_slice(self, sid: str) -> tuple[int, Any]:
        self.table.delete_slice(sid)
        return ACCEPTED

    # -- port bindings
    def list_ports(self, sid: str) -> tuple[int, Any]:
        return 200, [_port(b) for b in self.table.bindings_of(sid, sl.PORT)]

    def add_port(self, sid: str, body: Any) -> tuple[int, Any]:
        self.table.add_port(sid, body)
        return ACCEPTED

    def show_port(self, sid: str, bid: str) -> tuple[int, Any]:
        b = self.table.binding(sid, bid, sl.PORT)
        out: dict[str, Any] = {"config": {"vid": b.vid, "datapath_id": str(b.dpid), "port": b.port}}
        macs = self.table.port_macs(sid, bid)
        if macs:
            out["attachments"] = [_mac(m) for m in macs]
        return 200, out

    def remove_port(self, sid: str, bid: str) -> tuple[int, Any]:
        self.table.remove_binding(sid, bid, sl.PORT)
        return ACCEPTED

    # -- MAC bindings
    def list_macs(self, sid: str) -> tuple[int, Any]:
        return 200, [_mac(b) for b in self.table.bindings_of(sid, sl.MAC)]

    def add_mac(self, sid: str, body: Any) -> tuple[int, Any]:
        self.table.add_mac(sid, body)
        return ACCEPTED

    def show_mac(self, sid: str, bid: str) -> tuple[int, Any]:
        return 200, _mac(self.table.binding(sid, bid, sl.MAC))

    def remove_mac(self, sid: str, bid: str) -> tuple[int, Any]:
        self.table.remove_binding(sid, bid, sl.MAC)
        return ACCEPTED

    # -- port-MAC bindings
    def list_port_macs(self, sid: str, pbid: str) -> tuple[int, Any]:
        return 200, [_mac(b) for b in self.table.port_macs(sid, pbid)]

    def add_port_mac(self, sid: str, pbid: str, body: Any) -> tuple[int, Any]:
        self.table.add_port_mac(sid, pbid, body)
        return ACCEPTED

    def show_port_mac(self, sid: str, pbid: str, bid: str) -> tuple[int, Any]:
        # Trema looks the binding up in the slice whatever the port binding in the path
        return 200, _mac(self.table.binding(sid, bid, sl.PORT_MAC))

    def remove_port_mac(self, sid: str, pbid: str, bid: str) -> tuple[int, Any]:
        self.table.remove_binding(sid, bid, sl.PORT_MAC)
        return ACCEPTED

    # -- filters
    def list_filters(self) -> tuple[int, Any]:
        return 200, [f.to_rest(self.table.slice_id_of(f.slice_number)) for f in self.table.filters]

    def add_filters(self, body: Any) -> tuple[int, Any]:
        self.table.add_filters(body)
        return ACCEPTED

    def show_filter(self, fid: str) -> tuple[int, Any]:
        f = self.table.get_filter(fid)
        return 200, f.to_rest(self.table.slice_id_of(f.slice_number))

    def remove_filter(self, fid: str) -> tuple[int, Any]:
        self.table.remove_filter(fid)
        return ACCEPTED

    # -- labctl's additions: options, state, the tables
    def get_config(self) -> tuple[int, Any]:
        return 200, self.table.config.to_dict()

    def set_config(self, body: Any) -> tuple[int, Any]:
        return 200, self.table.set_config(body).to_dict()

    def list_locations(self) -> tuple[int, Any]:
        return 200, self.table.to_dict(with_locations=True)["locations"]

    def get_db(self) -> tuple[int, Any]:
        return 200, self.table.records()

    def set_db(self, body: Any) -> tuple[int, Any]:
        self.table.load_records(body)
        return 200, self.table.records()
