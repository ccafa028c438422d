"""Every scenario of Trema's REST feature files (roles/sdn_controller/checks/trema_rest_if.json) against the WSGI app.

The same table runs against the live controller in the smoke check "REST API is Trema's" (Molecule
scenario sdn_controller).
"""

from __future__ import annotations

from typing import Any

import pytest
from labctl.bundles.sdn_controller.checks import trema_features
from labctl.bundles.sdn_controller.files.controller import rest, slices

TABLE = trema_features.load_table()
SCENARIOS = TABLE["scenarios"]


def fresh() -> trema_features.Call:
    return trema_features.wsgi_caller(rest.RestApi(slices.SliceTable()))


def test_the_table_holds_every_scenario_of_the_three_feature_files() -> None:
    assert set(TABLE["source"]["files"]) == {
        f"sliceable_switch/features/rest_if_{name}.feature" for name in ("networks", "ports", "filters")
    }
    counts = {
        f: sum(s["feature"] == f for s in SCENARIOS) for f in ("rest_if_networks", "rest_if_ports", "rest_if_filters")
    }
    assert counts == {"rest_if_networks": 4, "rest_if_ports": 6, "rest_if_filters": 3}
    steps = [step for s in SCENARIOS for step in s["steps"]]
    assert sum(step["step"] == "request" for step in steps) == 73  # grep -c "I try to send request": 23+22+28
    assert all(s["steps"][0]["step"] == "reset" for s in SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[f"{s['feature']}: {s['name']}" for s in SCENARIOS])
def test_trema_scenario(scenario: dict[str, Any]) -> None:
    result = trema_features.run_scenario(scenario, fresh())
    assert result["passed"], result.get("failure")
    # bodies are even the same text as Trema's (compact JSON, its key order)
    assert result["text_mismatches"] == []


def test_a_different_api_fails_the_scenarios() -> None:
    """The runner notices a wrong status, body or table: today's 201/204 API would fail."""

    def old_statuses(method: str, path: str, body: str | None) -> tuple[int, str]:
        status, out = call(method, path, body)
        return (201 if method == "POST" else 204 if method == "DELETE" else status), out

    call = fresh()
    results = trema_features.run_all(old_statuses, TABLE)
    writing = [any(st.get("method") in ("POST", "DELETE") for st in s["steps"]) for s in SCENARIOS]
    assert [not r["passed"] for r in results] == writing and sum(writing) == 10

    def hex_dpids(method: str, path: str, body: str | None) -> tuple[int, str]:
        status, out = call(method, path, body)
        return status, out.replace('"4660"', '"0x1234"')

    call = fresh()
    ports = next(s for s in SCENARIOS if s["name"] == "list and get port objects via REST API")
    result = trema_features.run_scenario(ports, hex_dpids)
    assert not result["passed"] and "0x1234" in result["failure"]

    def no_filters(method: str, path: str, body: str | None) -> tuple[int, str]:
        return (404, "") if path.startswith("/filters") else call(method, path, body)

    call = fresh()
    results = trema_features.run_all(no_filters, TABLE)
    assert [r["feature"] for r in results if not r["passed"]] == ["rest_if_filters"] * 3


def test_run_all_puts_the_tables_back() -> None:
    table = slices.SliceTable()
    table.load({"slices": [{"id": "keep", "ports": [{"id": "p", "datapath_id": 1, "port": 1}]}]})
    table.set_config({"loose": True})
    before = table.to_dict()
    results = trema_features.run_all(trema_features.wsgi_caller(rest.RestApi(table)), TABLE)
    assert all(r["passed"] for r in results)
    assert table.to_dict() == before


def test_converter_reads_the_gherkin_subset() -> None:
    text = '''Feature: x

  Scenario: one
    Given the REST interface for sliceable_switch
    And the following records were inserted into slices table
      | number | id  | description |
      | 1      | n-1 | N 1         |
    When I try to send request PUT /networks/n-1 with
      """
      {"description":"d"}
      """
    Then the response status shoud be 202
    When I try to send request GET /networks
    Then the response body shoud be like:
      """
      \\[\\{"id":"n-1"
      """
    And the binding records shoud be:
      | type | id |
'''
    [scenario] = trema_features.parse_feature(text, "x")
    assert scenario["name"] == "one"
    assert scenario["steps"] == [
        {"step": "reset"},
        {"step": "insert", "table": "slices", "rows": [{"number": "1", "id": "n-1", "description": "N 1"}]},
        {"step": "request", "method": "PUT", "path": "/networks/n-1", "body": '{"description":"d"}'},
        {"step": "status", "status": 202},
        {"step": "request", "method": "GET", "path": "/networks", "body": None},
        {"step": "body_like", "regex": '\\[\\{"id":"n-1"'},
        {"step": "records", "table": "bindings", "rows": []},
    ]
    with pytest.raises(ValueError, match="unknown step"):
        trema_features.parse_feature("  Scenario: s\n    Then the moon is full\n", "x")
