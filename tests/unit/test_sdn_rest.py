"""The sliceable switch's REST API (roles/sdn_controller/files/controller/rest.py), called as a plain WSGI app."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from labctl.bundles.sdn_controller.files.controller import rest, slices


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
    assert (status, body) == (202, {"id": "slice1", "description": "one"})
    assert headers["Content-Type"] == "application/json"
    assert api.call("GET", "/networks")[1] == [{"id": "slice1", "description": "one"}]
    assert api.call("PUT", "/networks/slice1", {"description": "uno"})[:2] == (202, None)
    assert api.call("GET", "/networks/slice1")[1] == {"bindings": [], "description": "uno"}
    assert api.call("DELETE", "/networks/slice1")[:2] == (202, None)
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
    assert api.call("POST", "/filters", [{"id": "f", "slice": "nope"}])[0] == 422
    assert api.call("POST", "/filters", [{"id": "f", "action": "MAYBE"}])[0] == 400
    assert api.call("PUT", "/filters/x", {})[0] == 405


def test_bindings_have_tremas_shapes(api: Client) -> None:
    api.call("POST", "/networks", {"id": "s1"})
    api.call("POST", "/networks", {"id": "s2"})
    assert api.call("POST", "/networks/s1/ports", {"id": "p1", "datapath_id": "0x1234", "port": 1})[:2] == (202, None)
    assert api.call("GET", "/networks/s1/ports")[1] == [{"vid": 65535, "datapath_id": "4660", "id": "p1", "port": 1}]
    assert api.call("POST", "/networks/s2/ports", {"datapath_id": 4660, "port": 1})[0] == 422  # port taken
    assert api.call("POST", "/networks/s1/ports/p1/attachments", {"id": "a", "mac": "02-00-00-00-00-01"})[0] == 202
    assert api.call("POST", "/networks/s1/ports/p9/attachments", {"mac": "02:00:00:00:00:02"})[0] == 422
    assert api.call("GET", "/networks/s1/ports/p1/attachments/a")[1] == {"id": "a", "mac": "02:00:00:00:00:01"}
    assert api.call("GET", "/networks/s1/ports/p1")[1] == {
        "config": {"vid": 65535, "datapath_id": "4660", "port": 1},
        "attachments": [{"id": "a", "mac": "02:00:00:00:00:01"}],
    }
    assert api.call("POST", "/networks/s2/attachments", {"mac": "02:00:00:00:00:03"})[0] == 202
    assert api.call("GET", "/networks/s2/attachments")[1] == [{"id": "02:00:00:00:00:03", "mac": "02:00:00:00:00:03"}]
    assert api.call("POST", "/networks/s1/attachments", {"mac": "02:00:00:00:00:03"})[0] == 422  # MAC taken
    assert api.call("GET", "/networks/s1")[1] == {
        "bindings": [
            {"id": "p1", "type": 1, "datapath_id": "4660", "port": 1, "vid": 65535},
            {"id": "a", "type": 4, "datapath_id": "4660", "port": 1, "vid": 65535, "mac": "02:00:00:00:00:01"},
        ],
        "description": "",
    }
    assert api.table.lookup(4660, 1, slices.UNTAGGED, "02:00:00:00:00:09") == "s1"
    assert api.table.lookup(4660, 7, slices.UNTAGGED, "02:00:00:00:00:03") == "s2"
    assert api.call("DELETE", "/networks/s1/ports/p1/attachments/a")[0] == 202
    assert api.call("DELETE", "/networks/s1/ports/p1/attachments/a")[0] == 404
    assert api.call("DELETE", "/networks/s2/attachments/02:00:00:00:00:03")[0] == 202
    assert api.call("DELETE", "/networks/s1/ports/p1")[0] == 202
    assert api.call("GET", "/networks/s1/ports")[1] == []
    assert api.table.lookup(4660, 1, slices.UNTAGGED, "02:00:00:00:00:09") is None


def test_filters(api: Client) -> None:
    api.call("POST", "/networks", {"id": "s1"})
    deny = {"id": "d", "priority": "10", "dl_src": "02:00:00:00:00:01", "slice": "s1", "action": "DENY"}
    assert api.call("POST", "/filters", deny)[:2] == (202, None)  # one object, or a list of them
    status, body, _ = api.call("GET", "/filters/d")
    assert status == 200 and body["dl_src"] == "02:00:00:00:00:01" and body["slice"] == "s1"
    assert body["wildcards"] == "in_datapath_id" and body["action"] == "DENY" and body["priority"] == 10
    # all or nothing: the duplicate id in the list refuses both
    assert api.call("POST", "/filters", [{"id": "a", "action": "ALLOW"}, {"id": "d"}])[0] == 422
    assert [f["id"] for f in api.call("GET", "/filters")[1]] == ["d"]
    api.call("DELETE", "/networks/s1")  # the filter stays, its slice is gone
    assert api.call("GET", "/filters/d")[1]["slice"] == "UNDEFINED (0x1)"
    assert api.call("DELETE", "/filters/d")[:2] == (202, None)
    assert api.call("DELETE", "/filters/d")[0] == 404


def test_db_is_tremas_tables(api: Client) -> None:
    api.call("POST", "/networks", {"id": "s1", "description": "one"})
    api.call("POST", "/networks/s1/attachments", {"id": "m", "mac": "00:00:00:00:01:00"})
    status, db, _ = api.call("GET", "/db")
    assert status == 200 and db["slices"] == [{"number": 1, "id": "s1", "description": "one"}]
    assert db["bindings"] == [
        {"type": 2, "datapath_id": None, "port": None, "vid": None, "mac": 256, "id": "m", "slice_number": 1}
    ]
    assert api.call("PUT", "/db", {"slices": [], "bindings": db["bindings"]})[0] == 400  # slice 1 is missing
    assert api.call("GET", "/db")[1] == db
    assert api.call("PUT", "/db", {})[:2] == (200, {"slices": [], "bindings": [], "filter": []})


def test_config_and_change_hook(api: Client) -> None:
    assert api.call("GET", "/config")[1] == {"restrict_hosts_on_port": False, "loose": False}
    before = api.changes
    assert api.call("PUT", "/config", {"restrict_hosts_on_port": True})[1]["restrict_hosts_on_port"] is True
    assert api.table.config.restrict_hosts_on_port
    assert api.changes == before + 1
    api.call("GET", "/config")
    assert api.changes == before + 1  # reads do not persist
    assert api.call("GET", "/locations")[:2] == (200, [])
