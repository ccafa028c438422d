"""The topology's `checks:` section: validation (file, field, fix) and how the runner judges results."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from labctl import paths
from labctl.checks.base import Context, Result
from labctl.checks.runner import run_checks
from labctl.errors import LabError
from labctl.topology import load, parse
from tests.unit.conftest import FakeRunner, MakeCtx

BASE: dict[str, Any] = {
    "name": "t",
    "networks": [{"name": "lab", "subnet": "198.18.1.0/24"}],
    "groups": {"app": {}, "empty": {}},
    "hosts": [
        {"name": "a", "groups": ["app"], "networks": ["lab"]},
        {"name": "b", "groups": ["app"], "networks": ["lab"]},
        {"name": "c", "networks": ["lab"]},
    ],
}
PATH = Path("lab.yml")


def topo_with(*checks: dict[str, Any]) -> Any:
    data = copy.deepcopy(BASE)
    data["checks"] = list(checks)
    return parse(data, PATH, paths.known_groups())


def test_checks_parse_hosts_groups_and_expectations() -> None:
    topo = topo_with(
        {"name": "one", "hosts": "c", "command": "true"},
        {
            "name": "two",
            "group": "app",
            "command": "ping -c1 c",
            "expect": {"exit_code": 1, "stdout_contains": "x", "number": {"match": r"time=([\d.]+)", "lt": 5}},
            "retries": 3,
            "wait": 0.5,
        },
        {"name": "three", "group": "all", "command": "true"},
    )
    one, two, three = topo.checks
    assert one.hosts == ("c",) and one.expect.exit_code == 0 and one.retries == 0
    assert two.hosts == ("a", "b") and two.expect.stdout_contains == ("x",) and two.retries == 3
    assert two.expect.number is not None and two.expect.number.bounds == (("lt", 5.0),)
    assert three.hosts == ("a", "b", "c")


@pytest.mark.parametrize(
    ("check", "field", "fix"),
    [
        ({"name": "x", "hosts": ["nohost"], "command": "true"}, "checks[0] (x).hosts", "use one of: a, b, c"),
        ({"name": "x", "group": "nogroup", "command": "true"}, "checks[0] (x).group", "use one of:"),
        ({"name": "x", "command": "true"}, "checks[0] (x)", "either 'hosts' or 'group'"),
        ({"name": "x", "hosts": ["a"], "group": "app", "command": "t"}, "checks[0] (x)", "either 'hosts' or"),
        (
            {"name": "x", "hosts": ["a"], "command": "t", "expect": {"stdout_regex": "("}},
            "checks[0] (x).expect.stdout_regex",
            "bad regex",
        ),
        (
            {"name": "x", "hosts": ["a"], "command": "t", "expect": {"number": {"match": "a[", "lt": 1}}},
            "checks[0] (x).expect.number.match",
            "bad regex",
        ),
        ({"name": "x", "hosts": ["a"], "command": "t", "expect": {"number": {}}}, "expect.number", "no bound"),
        ({"name": "x", "hosts": ["a"], "command": "t", "expect": {"stdout": "y"}}, "expect.stdout", "unknown field"),
        ({"name": "x", "hosts": ["a"], "command": ""}, "checks[0] (x).command", "not a command"),
        ({"name": "x", "hosts": ["a"], "command": "t", "retries": -1}, "checks[0] (x).retries", "whole number"),
        ({"name": "x", "hosts": ["a"], "command": "t", "wait": "2s"}, "checks[0] (x).wait", "seconds"),
        ({"name": "x", "hosts": ["a"], "command": "t", "when": 1}, "checks[0].when", "unknown field"),
        ({"hosts": ["a"], "command": "t"}, "checks[0].name", "not a check name"),
    ],
)
def test_bad_checks_name_file_field_and_fix(check: dict[str, Any], field: str, fix: str) -> None:
    with pytest.raises(LabError) as err:
        topo_with(check)
    text = str(err.value)
    assert text.startswith("lab.yml: field '") and field in text and fix in text and "Fix:" in text


def test_duplicate_names_and_a_non_list_are_refused() -> None:
    with pytest.raises(LabError, match="duplicate check name 'x'"):
        topo_with({"name": "x", "hosts": ["a"], "command": "t"}, {"name": "x", "hosts": ["b"], "command": "t"})
    data = copy.deepcopy(BASE)
    data["checks"] = {"name": "x"}
    with pytest.raises(LabError, match="field 'checks': expected a list"):
        parse(data, PATH, paths.known_groups())


def test_the_default_lab_carries_its_two_user_checks() -> None:
    topo = load(paths.DEFAULT_LAB, paths.known_groups())
    names = [c.name for c in topo.checks]
    assert names[0] == "ext reaches the Mongrel2 handler through gw"
    assert topo.checks[0].hosts == ("ext",) and topo.checks[0].expect.stdout_regex == "Danny"
    assert topo.checks[-1].hosts == ("db",) and topo.checks[-1].expect.stdout_contains == ("from-dev",)


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> Context:
    return make_ctx({"app": ["a", "b"]}, {h: {"lab": f"198.18.1.{i}"} for i, h in enumerate("abc", 10)})


def _run(ctx: Context, *checks: dict[str, Any], only: list[str] | None = None) -> list[Any]:
    return run_checks(ctx, only or ["user"], user_checks=topo_with(*checks).checks)


def test_results_join_the_table_as_service_user(ctx: Context, runner: FakeRunner) -> None:
    runner.on("ping", "rtt min/avg/max/mdev = 0.1/0.25/0.4/0.1 ms")
    runner.on("greet", "Hi...This is Danny...\npath: /handlers")
    results = _run(
        ctx,
        {
            "name": "rtt",
            "group": "app",
            "command": "ping -c3 c",
            "expect": {"number": {"match": r"= [\d.]+/([\d.]+)/", "lt": 1, "ge": 0}},
        },
        {"name": "greet", "hosts": ["c"], "command": "greet", "expect": {"stdout_regex": "Dan+y"}},
    )
    assert [(r.service, r.check, r.hosts, r.status) for r in results] == [
        ("user", "rtt", ["a", "b"], "passed"),
        ("user", "greet", ["c"], "passed"),
    ]
    assert results[0].message == "0.25 < 1 and >= 0"
    assert runner.commands() == ["ping -c3 c", "ping -c3 c", "greet"]


@pytest.mark.parametrize(
    ("stdout", "exited", "expect", "problem"),
    [
        ("", 3, {}, "a: exit code 3, expected 0"),
        ("hello", 0, {"stdout_contains": ["hello", "bye"]}, "a: stdout does not contain 'bye'"),
        ("hello", 0, {"stdout_regex": "^bye"}, "a: stdout does not match /^bye/"),
        ("took 12.5 ms", 0, {"number": {"lt": 10}}, "a: number 12.5 is not < 10"),
        ("no digits", 0, {"number": {"gt": 1}}, "a: no number matching"),
    ],
)
def test_a_failing_expectation_names_host_problem_command_and_output(
    ctx: Context, runner: FakeRunner, stdout: str, exited: int, expect: dict[str, Any], problem: str
) -> None:
    runner.on("probe", stdout, exited)
    (res,) = _run(ctx, {"name": "x", "hosts": ["a"], "command": "probe --now", "expect": expect})
    assert res.status == "failed" and res.message.startswith(problem)
    assert res.command == "probe --now" and res.output == stdout


def test_retries_until_it_holds_then_says_which_attempt(ctx: Context, runner: FakeRunner) -> None:
    answers = iter([1, 1, 0])
    runner.on("flaky", lambda _h, c, _s: Result(c, next(answers), "", ""))
    (res,) = _run(ctx, {"name": "x", "hosts": ["a"], "command": "flaky", "retries": 2, "wait": 0})
    assert res.status == "passed" and "attempt 3" in res.message
    assert len(runner.commands()) == 3


def test_spent_retries_fail_with_the_count(ctx: Context, runner: FakeRunner) -> None:
    runner.on("never", "", 1)
    (res,) = _run(ctx, {"name": "x", "hosts": ["b"], "command": "never", "retries": 1, "wait": 0})
    assert res.status == "failed" and res.message == "b: exit code 1, expected 0 after 2 attempts"


def test_a_group_without_hosts_is_skipped_and_only_filters(ctx: Context, runner: FakeRunner) -> None:
    (res,) = _run(ctx, {"name": "x", "group": "empty", "command": "true"})
    assert res.status == "skipped" and "no host in group 'empty'" in res.message
    runner.strict = False
    others = _run(ctx, {"name": "x", "hosts": ["a"], "command": "true"}, only=["common"])
    assert others and {r.service for r in others} == {"common"}
