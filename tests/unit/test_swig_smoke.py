"""Pure logic of the swig smoke checks: C ctime() text parsing and comparison."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from labctl.bundles.swig import checks as swig

from labctl.checks.base import CheckFailed, CheckSkipped, Context
from tests.unit.conftest import FakeRunner, MakeCtx, lab_host_vars, role_fact


def test_parse_ctime_with_newline_and_padded_day() -> None:
    got = swig.parse_ctime("Wed Nov  5 14:13:09 2026\n")
    assert (got.year, got.month, got.day, got.hour, got.minute, got.second) == (2026, 11, 5, 14, 13, 9)


def test_parse_ctime_matches_python_ctime() -> None:
    now = time.time()
    assert swig.parse_ctime(time.ctime(now)).timestamp() == pytest.approx(int(now), abs=1)


def test_ctime_skew_seconds() -> None:
    assert swig.ctime_skew("Wed Nov 25 13:59:59 2026\n", "Wed Nov 25 14:00:01 2026") == 2
    assert swig.ctime_skew("Wed Nov 25 13:16:27 2026\n", "Wed Nov 25 14:16:27 2026") == 3600


def test_ctime_skew_rejects_garbage() -> None:
    with pytest.raises(ValueError):
        swig.ctime_skew("not a time", "Wed Nov 25 14:00:01 2026")


def test_probe_ships_as_package_data() -> None:
    assert "import example" in swig._PROBE
    compile(swig._PROBE, "swig_probe.py", "exec")


def _dev(runner: FakeRunner, make_ctx: MakeCtx, results: dict[str, Any], **role_vars: Any) -> Context:
    """A swig host whose probe answers `results` from the C++ build directory the role's fact names."""
    groups, addresses = {"swig": ["dev"]}, {"dev": {"lab": "198.18.60.12"}}
    host_vars = lab_host_vars("dev", groups, addresses)
    host_vars["__swig_python_paths"] = {"stdout": '{"include": "/usr/include/python3.11", "site": "/usr/lib/py"}'}
    fact = role_fact("swig", host_vars, **role_vars)
    runner.fact("dev", "swig", fact)
    build = fact.get("cxx_build_dir") or "/nowhere"
    answer = {"file": f"{build}/example.py", "ext": f"{build}/_example.so", "results": results}
    runner.on("python3 -c", json.dumps(answer) + "\n")
    runner.on("ldd ", "\tlibstdc++.so.6 => /lib/x86_64-linux-gnu/libstdc++.so.6\n")
    return make_ctx(groups, addresses)


def _ints(values: dict[str, int]) -> dict[str, Any]:
    return {expr: {"value": v, "repr": repr(v), "type": "int"} for expr, v in values.items()}


def test_cxx_example_calls_foo_in_its_build_dir(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    ctx = _dev(runner, make_ctx, _ints(swig.CXX_CASES))
    assert "example.foo() = 42" in swig.cxx_example(ctx)
    probe = next(cmd for cmd in runner.commands() if "python3 -c" in cmd)
    assert probe.startswith("cd /opt/swig-example-cxx && ") and "'example.foo()'" in probe


def test_cxx_example_fails_on_a_wrong_value(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    ctx = _dev(runner, make_ctx, _ints({**swig.CXX_CASES, "example.foo()": 41}))
    with pytest.raises(CheckFailed, match=r"example\.foo\(\) returned 41"):
        swig.cxx_example(ctx)


def test_cxx_example_skipped_when_turned_off(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    ctx = _dev(runner, make_ctx, {}, swig_cxx_example=False)
    with pytest.raises(CheckSkipped, match="swig_cxx_example: false"):
        swig.cxx_example(ctx)
