"""roles/sdn_controller/checks/files/sdn_steps.py, the sdn checks' batch program, run as they run it (python3 - STEPS)
against a real HTTP server on a local socket: results in order, a REST status the batch did not expect
ends it there, an API that does not answer is status 0, waits poll until true or time out."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import pytest
from labctl.bundles.sdn_controller import checks as sdn_checks

PROGRAM = (Path(sdn_checks.__file__).parent / "files" / "sdn_steps.py").read_text()


class _Api(BaseHTTPRequestHandler):
    seen: ClassVar[list[str]] = []

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        _Api.seen.append(f"{self.command} {self.path} {body}")
        status = 404 if self.path.startswith("/missing") else 200
        raw = json.dumps({"path": self.path, "body": body}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = do_DELETE = _answer

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    _Api.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def run(steps: list[list[Any]]) -> list[Any]:
    out = subprocess.run(
        [sys.executable, "-", json.dumps(steps)], input=PROGRAM, capture_output=True, text=True, check=True
    ).stdout
    return list(json.loads(out))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_steps_run_in_order_with_their_results(api: str) -> None:
    res = run(
        [
            ["http", "POST", f"{api}/filters", '{"id": "x"}', [200, 202]],
            ["sh", "echo hello; exit 3"],
            ["http", "GET", f"{api}/db", "", [200]],
        ]
    )
    assert res[0] == {"status": 200, "body": {"path": "/filters", "body": '{"id": "x"}'}}
    assert res[1] == {"exit": 3, "stdout": "hello\n", "stderr": ""}
    assert res[2]["body"]["path"] == "/db"
    assert _Api.seen == ['POST /filters {"id": "x"}', "GET /db "]


def test_an_unexpected_status_ends_the_batch(api: str) -> None:
    res = run(
        [
            ["http", "DELETE", f"{api}/missing/1", "", [202]],
            ["http", "POST", f"{api}/networks", "{}", [202]],
        ]
    )
    assert [r["status"] for r in res] == [404]
    assert _Api.seen == ["DELETE /missing/1 "]  # the POST after it was never sent


def test_an_api_that_does_not_answer_is_status_0() -> None:
    url = f"http://127.0.0.1:{free_port()}/config"
    (res,) = run([["http", "GET", url, "", [200]]])
    assert res["status"] == 0 and "refused" in res["body"].lower()
    (waited,) = run([["wait_http", url, 0.3]])
    assert waited["ok"] is False


def test_waits_poll_until_true(api: str, tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    later = f"sleep 0.3; echo true > {flag}"
    writer = subprocess.Popen(["sh", "-c", later])
    wait_sh, wait_http = run([["wait_sh", f"cat {flag} 2>/dev/null", "true", 10], ["wait_http", f"{api}/config", 5]])
    writer.wait()
    assert wait_sh["ok"] is True
    assert wait_http["ok"] is True
    (never,) = run([["wait_sh", "echo false", "true", 0.2]])
    assert never["ok"] is False
