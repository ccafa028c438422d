"""The sliceable switch's REST API (labctl/sdn/controller/rest.py), called as a plain WSGI app."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from labctl.sdn.controller import rest, slices


class Client:
    def __init__(self) -> None:
        self.table = slices.SliceTable()
        self.changes = 0
        self.app = rest.RestApi(self.table, on_change=self._changed)

    def _changed(self) -> None:
        self.changes += 1

    def call(self, method: str, path: str, body: Any = None, raw: bytes | None = None) -> tuple[int, Any, dict]:
        data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(data)),
            "CONTENT_TYPE": "application/json",
            "wsgi.input": io.BytesIO(data),
        }
        got: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]]) -> None:
            got["status"] = int(status.split()[0])
            got["headers"] = dict(headers)

        out = b"".join(self.app(environ, start_response))
        return got["status"], (json.loads(out) if out else None), got["headers"]


@pytest.fixture
def api() -> Client:
    return Client()


def test_slice_lifecycle(api: Client) -> None:
    assert api.call("GET", "/networks")[:2] == (200, [])
    status, body, headers = api.call("POST", "/networks", {"id": "slice1", "description": "one"})
    assert status == 201 and body["id"] == "slice1"
    assert headers["Content-Type"] == "application/json"
    assert api.call("GET", "/networks")[1] == [{"id": "slice1", "description": "one"}]
    assert api.call("PUT", "/networks/slice1", {"description": "uno"})[1]["description"] == "uno"
    assert api.call("GET", "/networks/slice1")[1]["ports"] == []
    assert api.call("DELETE", "/networks/slice1")[:2] == (204, None)
    assert api.call("GET", "/networks/slice1")[0] == 404


def test_errors(api: Client) -> None:
    api.call("POST", "/networks", {"id": "s"})
    status, body, _ = api.call("POST", "/networks", {"id": "s"})
    assert status == 422 and "already exists" in body["error"]
    assert api.call("POST", "/networks", raw=b"{nope")[0] == 400
    assert api.call("POST", "/networks", raw=b"")[0] == 400
    assert api.call("POST", "/networks/s/attachments", {"mac": "ff:ff:ff:ff:ff:ff"})[0] == 400
    assert api.call("POST", "/networks/s/ports", {"datapath_id": 1, "port": "one"})[0] == 400
    assert api.call("POST", "/networks/missing/ports", {"datapath_id": 1, "port": 1})[0] == 404
    assert api.call("GET", "/nowhere")[0] == 404
    status, _, headers = api.call("DELETE", "/networks")
    assert status == 405 and headers["Allow"] == "GET, POST"
    assert api.call("PUT", "/config", {"loose": "yes"})[0] == 400


def test_bindings(api: Client) -> None:
    api.call("POST", "/networks", {"id": "s1"})
    api.call("POST", "/networks", {"id": "s2"})
    status, port, _ = api.call("POST", "/networks/s1/ports", {"id": "p1", "datapath_id": "0x1", "port": 1})
    assert status == 201 and port == {"id": "p1", "datapath_id": "0x1", "port": 1, "vid": 65535, "attachments": []}
    assert api.call("POST", "/networks/s2/ports", {"datapath_id": 1, "port": 1})[0] == 422
    status, att, _ = api.call("POST", "/networks/s1/ports/p1/attachments", {"id": "a", "mac": "02-00-00-00-00-01"})
    assert status == 201 and att == {"id": "a", "mac": "02:00:00:00:00:01"}
    assert api.call("GET", "/networks/s1/ports/p1/attachments/a")[1]["mac"] == "02:00:00:00:00:01"
    assert api.call("GET", "/networks/s1/ports/p1")[1]["attachments"] == [att]
    status, mac, _ = api.call("POST", "/networks/s2/attachments", {"mac": "02:00:00:00:00:03"})
    assert status == 201 and mac["id"] == "mac1"
    assert api.call("POST", "/networks/s1/attachments", {"mac": "02:00:00:00:00:03"})[0] == 422
    assert api.call("GET", "/networks/s2/attachments")[1] == [mac]
    assert api.table.lookup(1, 1, slices.UNTAGGED, "02:00:00:00:00:09") == "s1"
    assert api.table.lookup(1, 7, slices.UNTAGGED, "02:00:00:00:00:03") == "s2"
    assert api.call("DELETE", "/networks/s1/ports/p1/attachments/a")[0] == 204
    assert api.call("DELETE", "/networks/s1/ports/p1/attachments/a")[0] == 404
    assert api.call("DELETE", "/networks/s2/attachments/mac1")[0] == 204
    assert api.call("DELETE", "/networks/s1/ports/p1")[0] == 204
    assert api.call("GET", "/networks/s1/ports")[1] == []
    assert api.table.lookup(1, 1, slices.UNTAGGED, "02:00:00:00:00:09") is None


def test_config_and_change_hook(api: Client) -> None:
    assert api.call("GET", "/config")[1] == {"restrict_hosts_on_port": False, "loose": False}
    before = api.changes
    assert api.call("PUT", "/config", {"restrict_hosts_on_port": True})[1]["restrict_hosts_on_port"] is True
    assert api.table.config.restrict_hosts_on_port
    assert api.changes == before + 1
    api.call("GET", "/config")
    assert api.changes == before + 1  # reads do not persist
    assert api.call("GET", "/locations")[:2] == (200, [])
