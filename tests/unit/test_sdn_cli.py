"""`labctl sdn` on top of the Trema-shaped REST API: the real client over HTTP to the real WSGI app."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest
from labctl.bundles.sdn_controller.files.controller import rest, slices

from labctl import cli


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def url() -> Iterator[str]:
    table = slices.SliceTable()
    table.load({"slices": []})
    server = make_server("127.0.0.1", 0, rest.RestApi(table), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def sdn(url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, object]:
    code = cli.main(["sdn", "--url", url, *args])
    out = capsys.readouterr().out
    return code, (json.loads(out) if out.strip() else None)


def test_slices_bindings_and_filters(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert sdn(url, capsys, "create", "s1", "--description", "one") == (0, {"id": "s1", "description": "one"})
    assert sdn(url, capsys, "add-port", "s1", "--port", "3", "--dpid", "0x1234", "--vid", "1024") == (0, None)
    assert sdn(url, capsys, "add-mac", "s1", "02:00:00:00:00:07", "--id", "m7") == (0, None)
    assert sdn(url, capsys, "add-port-mac", "s1", "000000001234:0003:0400", "02:00:00:00:00:08") == (0, None)
    code, shown = sdn(url, capsys, "show", "s1")
    assert code == 0 and shown == {
        "bindings": [
            {"id": "000000001234:0003:0400", "type": 1, "datapath_id": "4660", "port": 3, "vid": 1024},
            {"id": "m7", "type": 2, "mac": "02:00:00:00:00:07"},
            {
                "id": "020000000008",
                "type": 4,
                "datapath_id": "4660",
                "port": 3,
                "vid": 1024,
                "mac": "02:00:00:00:00:08",
            },
        ],
        "description": "one",
    }
    assert sdn(url, capsys, "add-filter", "no-ssh", "priority=10", "tp_dst=22", "dl_type=0x0800", "nw_proto=6") == (
        0,
        None,
    )
    code, shown = sdn(url, capsys, "show-filter", "no-ssh")
    assert code == 0 and (shown["action"], shown["tp_dst"], shown["priority"]) == ("DENY", 22, 10)  # type: ignore[index]
    code, listed = sdn(url, capsys, "filters")
    assert [f["id"] for f in listed] == ["default", "no-ssh"]  # type: ignore[union-attr]
    assert sdn(url, capsys, "remove-filter", "no-ssh") == (0, None)
    assert sdn(url, capsys, "remove-mac", "s1", "m7") == (0, None)
    assert sdn(url, capsys, "delete", "s1") == (0, None)
    assert sdn(url, capsys, "list") == (0, [])


def test_api_errors_are_one_line_exit_2(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["sdn", "--url", url, "show", "nope"]) == 2
    assert "sdn show: HTTP 404: no slice 'nope'" in capsys.readouterr().err
    assert cli.main(["sdn", "--url", url, "add-filter", "f", "slice=nope"]) == 2
    assert "HTTP 422" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["sdn", "--url", url, "add-filter", "f", "colour=red"])
    assert exc.value.code == 2 and "FIELD=VALUE" in capsys.readouterr().err
