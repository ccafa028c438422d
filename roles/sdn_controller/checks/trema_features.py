"""Trema's REST scenarios for the sliceable switch, as data, and a runner for them.

The scenarios are those of trema/apps ``sliceable_switch/features/rest_if_{networks,ports,filters}.feature``
(networks, ports, MAC attachments, port attachments, filters), converted to ``trema_rest_if.json``
beside this module by
``python -m labctl.bundles.sdn_controller.checks.trema_features convert FEATURES_DIR > trema_rest_if.json``.
A scenario is a list of steps:

    {"step": "reset"}                                Given the REST interface for sliceable_switch
    {"step": "insert", "table": T, "rows": [...]}    Given the following records were inserted into T table
    {"step": "request", "method": M, "path": P, "body": TEXT or null}
    {"step": "status", "status": N}                  Then the response status shoud be N
    {"step": "body", "text": TEXT}                   Then the response body shoud be: (compared as JSON)
    {"step": "body_like", "regex": RE}               Then the response body shoud be like: (searched, as
                                                     Ruby's =~, in the body re-serialised as compact JSON)
    {"step": "records", "table": T, "rows": [...]}   Then the T records shoud be: (rows in order, numbers
                                                     compared as numbers, '' is SQL NULL)

Trema's steps read and write its SQLite tables directly; here they go through the controller's
``GET/PUT /db`` (the same three tables as records). ``run_all`` saves the tables and options first and
puts them back afterwards, so it can run against a live controller.

Standard library only: the smoke check ships this file to the controller host and runs it there as
``python3 - run URL TABLE_JSON`` (prints the results as JSON).
"""

from __future__ import annotations

import json
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

Call = Callable[[str, str, str | None], tuple[int, str]]  # (method, path, body) -> (status, body)

COLUMNS = {
    "slices": ("number", "id", "description"),
    "bindings": ("type", "datapath_id", "port", "vid", "mac", "id", "slice_number"),
    "filter": (
        "priority",
        "ofp_wildcards",
        "in_port",
        "dl_src",
        "dl_dst",
        "dl_vlan",
        "dl_vlan_pcp",
        "dl_type",
        "nw_tos",
        "nw_proto",
        "nw_src",
        "nw_dst",
        "tp_src",
        "tp_dst",
        "wildcards",
        "in_datapath_id",
        "slice_number",
        "action",
        "id",
    ),
}
TEXT_COLUMNS = {"id", "description"}
RECORDS_TABLE = {"binding": "bindings", "filter": "filter", "slice": "slices"}
TABLE_FILE = Path(__file__).with_name("trema_rest_if.json") if "__file__" in globals() else None


# --- scenarios -----------------------------------------------------------------------------------


def load_table(path: Path | None = None) -> dict[str, Any]:
    source = path or TABLE_FILE
    if source is None:
        raise FileNotFoundError("no scenario table: pass one")
    return json.loads(source.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _cell(table: str, column: str, text: str) -> Any:
    """A table cell as the database value: '' is NULL, numbers (decimal or 0x) are integers."""
    if column in TEXT_COLUMNS:
        return text
    if text == "":
        return None
    return int(text, 0)


def _row(table: str, row: dict[str, str]) -> dict[str, Any]:
    return {c: _cell(table, c, row[c]) for c in COLUMNS[table]}


def _normal(table: str, record: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in COLUMNS[table]:
        value = record.get(c)
        out[c] = "" if value is None and c in TEXT_COLUMNS else value
    return out


class StepFailed(Exception):
    pass


def run_scenario(scenario: dict[str, Any], call: Call) -> dict[str, Any]:
    """Run one scenario's steps in order; the first failing step ends it (as in Cucumber)."""
    status, body, last = 0, "", "(no request yet)"
    text_mismatches: list[str] = []
    result: dict[str, Any] = {"feature": scenario["feature"], "name": scenario["name"], "passed": True}
    for n, step in enumerate(scenario["steps"], 1):
        kind = step["step"]
        try:
            if kind == "reset":
                _put_db(call, {"slices": [], "bindings": [], "filter": []})
            elif kind == "insert":
                db = _get_db(call)
                db[step["table"]] += [_row(step["table"], r) for r in step["rows"]]
                _put_db(call, db)
            elif kind == "request":
                status, body = call(step["method"], step["path"], step["body"])
                last = f"{step['method']} {step['path']}"
            elif kind == "status":
                if status != step["status"]:
                    raise StepFailed(f"{last}: status {status}, expected {step['status']} (body {body.strip()!r})")
            elif kind == "body":
                expected = json.loads(step["text"])
                got = _json(body, last)
                if got != expected:
                    raise StepFailed(f"{last}: body {json.dumps(got)}, expected {json.dumps(expected)}")
                if body.rstrip("\n") != step["text"].rstrip("\n"):
                    text_mismatches.append(f"{last}: {body.rstrip()!r} is {step['text']!r} as JSON, not as text")
            elif kind == "body_like":
                compact = json.dumps(_json(body, last), separators=(",", ":"), ensure_ascii=False)
                if not re.search(step["regex"], compact):
                    raise StepFailed(f"{last}: body {compact} does not match {step['regex']}")
            elif kind == "records":
                table = step["table"]
                got_rows = [_normal(table, r) for r in _get_db(call)[table]]
                want = [_normal(table, _row(table, r)) for r in step["rows"]]
                if got_rows != want:
                    raise StepFailed(f"{table} records {json.dumps(got_rows)}, expected {json.dumps(want)}")
            else:
                raise StepFailed(f"unknown step {kind!r}")
        except StepFailed as exc:
            result.update(passed=False, failed_step=n, failure=str(exc))
            break
    result["text_mismatches"] = text_mismatches
    return result


def _json(body: str, what: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        raise StepFailed(f"{what}: body is not JSON: {body[:200]!r}") from None


def _get_db(call: Call) -> dict[str, Any]:
    status, body = call("GET", "/db", None)
    if status != 200:
        raise StepFailed(f"GET /db: status {status}: {body.strip()}")
    return json.loads(body)  # type: ignore[no-any-return]


def _put_db(call: Call, db: dict[str, Any]) -> None:
    status, body = call("PUT", "/db", json.dumps(db))
    if status != 200:
        raise StepFailed(f"PUT /db: status {status}: {body.strip()}")


def run_all(call: Call, table: dict[str, Any]) -> list[dict[str, Any]]:
    """Every scenario; the tables and options found are put back afterwards."""
    saved_db = _get_db(call)
    status, saved_config = call("GET", "/config", None)
    try:
        return [run_scenario(s, call) for s in table["scenarios"]]
    finally:
        _put_db(call, saved_db)
        if status == 200:
            call("PUT", "/config", saved_config)


# --- transports ----------------------------------------------------------------------------------


def http_caller(base_url: str, timeout: float = 10) -> Call:
    base = base_url.rstrip("/")

    def call(method: str, path: str, body: str | None) -> tuple[int, str]:
        data = body.encode() if body is not None else None
        req = urllib.request.Request(base + path, data=data, method=method)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    return call


def wsgi_caller(app: Callable[..., Iterable[bytes]]) -> Call:
    """Call a WSGI app in-process, as a server would."""
    import io

    def call(method: str, path: str, body: str | None) -> tuple[int, str]:
        data = (body or "").encode()
        environ = {
            "REQUEST_METHOD": method,
            "PATH_INFO": path,
            "CONTENT_LENGTH": str(len(data)),
            "CONTENT_TYPE": "application/json",
            "wsgi.input": io.BytesIO(data),
        }
        got: list[int] = []
        out = b"".join(app(environ, lambda status, headers: got.append(int(status.split()[0]))))
        return got[0], out.decode()

    return call


# --- converter: Cucumber feature files -> scenarios ----------------------------------------------

_STEP_RE = re.compile(r"^\s*(Given|When|Then|And|But)\s+(.*)$")


def parse_feature(text: str, feature: str) -> list[dict[str, Any]]:
    """The scenarios of one feature file (the subset of Gherkin these files use)."""
    lines = text.splitlines()
    scenarios: list[dict[str, Any]] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.match(r"^\s*Scenario:\s*(.*)$", line)
        if m:
            scenarios.append({"feature": feature, "name": m.group(1).strip(), "steps": []})
            i += 1
            continue
        m = _STEP_RE.match(line)
        if not m:
            i += 1
            continue
        if not scenarios:
            raise ValueError(f"{feature}:{i + 1}: step outside a scenario")
        phrase = m.group(2).strip()
        i += 1
        doc, rows = None, None
        if i < len(lines) and lines[i].strip() == '"""':
            indent = len(lines[i]) - len(lines[i].lstrip())
            i += 1
            body: list[str] = []
            while lines[i].strip() != '"""':
                body.append(lines[i][indent:] if lines[i][:indent].strip() == "" else lines[i].lstrip())
                i += 1
            i += 1
            doc = "\n".join(body)
        elif i < len(lines) and lines[i].strip().startswith("|"):
            table: list[list[str]] = []
            while i < len(lines) and lines[i].strip().startswith("|"):
                table.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            rows = [dict(zip(table[0], r, strict=True)) for r in table[1:]]
        scenarios[-1]["steps"].append(_step(phrase, doc, rows, f"{feature}:{i}"))
    return scenarios


def _step(phrase: str, doc: str | None, rows: list[dict[str, str]] | None, where: str) -> dict[str, Any]:
    if phrase == "the REST interface for sliceable_switch":
        return {"step": "reset"}
    m = re.fullmatch(r"the following records were inserted into (\w+) table", phrase)
    if m and rows is not None:
        return {"step": "insert", "table": m.group(1), "rows": rows}
    m = re.fullmatch(r"I try to send request (GET|DELETE) (\S+)", phrase)
    if m:
        return {"step": "request", "method": m.group(1), "path": m.group(2), "body": None}
    m = re.fullmatch(r"I try to send request (POST|PUT) (\S+) with", phrase)
    if m and doc is not None:
        return {"step": "request", "method": m.group(1), "path": m.group(2), "body": doc}
    m = re.fullmatch(r"the response status shoud be (\d+)", phrase)
    if m:
        return {"step": "status", "status": int(m.group(1))}
    if phrase == "the response body shoud be:" and doc is not None:
        return {"step": "body", "text": doc}
    if phrase == "the response body shoud be like:" and doc is not None:
        return {"step": "body_like", "regex": doc}
    m = re.fullmatch(r"the (\w+) records shoud be:", phrase)
    if m and rows is not None and m.group(1) in RECORDS_TABLE:
        return {"step": "records", "table": RECORDS_TABLE[m.group(1)], "rows": rows}
    raise ValueError(f"{where}: unknown step {phrase!r}")


SOURCE = {
    "repository": "https://github.com/trema/apps",
    "license": "GPL-2.0 (trema/apps, Copyright (C) 2013 NEC Corporation); scenarios transcribed as data",
    "files": {
        "sliceable_switch/features/rest_if_networks.feature": "782e2c12218f2d6ccc4e1f18ec48c45601bd2538",
        "sliceable_switch/features/rest_if_ports.feature": "75c797774982d1c69a4df70c16df1cc6ada3d653",
        "sliceable_switch/features/rest_if_filters.feature": "257b96ff02eb55e1f979b9e572936b099aa981cd",
    },
}


def convert(features_dir: Path) -> dict[str, Any]:
    scenarios: list[dict[str, Any]] = []
    for path in SOURCE["files"]:  # type: ignore[union-attr]
        name = Path(path).name
        scenarios += parse_feature((features_dir / name).read_text(encoding="utf-8"), name.removesuffix(".feature"))
    return {"source": SOURCE, "scenarios": scenarios}


def main(argv: list[str]) -> int:
    if len(argv) == 2 and argv[0] == "convert":
        sys.stdout.write(json.dumps(convert(Path(argv[1])), indent=1, ensure_ascii=False) + "\n")
        return 0
    if len(argv) in (2, 3) and argv[0] == "run":
        table = json.loads(argv[2]) if len(argv) == 3 else load_table()
        results = run_all(http_caller(argv[1]), table)
        sys.stdout.write(json.dumps(results) + "\n")
        return 0
    sys.stderr.write("usage: trema_features.py convert FEATURES_DIR | run URL [TABLE_JSON]\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
