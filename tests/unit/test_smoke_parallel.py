"""Smoke checks of independent services run concurrently; a service's checks keep their order, the
results keep registration order, AFTER orders services (pure logic: fake services and runner)."""

from __future__ import annotations

import threading
import types
from typing import Any

import pytest

from labctl.checks import base, runner
from labctl.checks.base import CheckFailed, Context, Result


class ForkingRunner:
    """A runner that can fork (as FabricRunner does); counts forks and closes."""

    def __init__(self, parent: ForkingRunner | None = None) -> None:
        self.root = parent.root if parent else self
        self.forks = 0
        self.closed = 0

    def fork(self) -> ForkingRunner:
        self.root.forks += 1
        return ForkingRunner(self)

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        return Result(command, 0, "", "")

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        return None

    def close(self) -> None:
        self.root.closed += 1


class PlainRunner(ForkingRunner):
    fork = None  # type: ignore[assignment]


def install(monkeypatch: pytest.MonkeyPatch, services: dict[str, dict[str, Any]]) -> None:
    """services: name -> {"checks": [(name, fn)], "after": (...)}; all in group `g`."""
    registry: list[base.Check] = []
    modules = {}
    for name, spec in services.items():
        modules[name] = types.SimpleNamespace(SERVICE=name, GROUP="g", AFTER=spec.get("after", ()))
        registry += [base.Check(name, check, fn) for check, fn in spec["checks"]]
    monkeypatch.setattr(runner, "service_modules", lambda: modules)
    monkeypatch.setattr(base, "_REGISTRY", registry)


def ctx(run: Any) -> Context:
    return Context("t", {"g": ["h1"]}, {"h1": {"lab": "10.0.0.1"}}, {}, run)


def test_services_run_at_once_in_order_within_and_reported_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    both = threading.Barrier(2, timeout=20)  # passes only when alpha and beta wait on it at the same time
    log: list[str] = []

    def meet(tag: str) -> Any:
        def fn(_ctx: Context) -> str:
            both.wait()
            log.append(tag)
            return tag

        return fn

    def step(tag: str) -> Any:
        def fn(_ctx: Context) -> None:
            log.append(tag)

        return fn

    def fail(_ctx: Context) -> None:
        raise CheckFailed("no", "cmd", "out")

    install(
        monkeypatch,
        {
            "alpha": {"checks": [("a1", meet("a1")), ("a2", step("a2")), ("a3", fail)]},
            "beta": {"checks": [("b1", meet("b1")), ("b2", step("b2"))]},
            "gamma": {"checks": [("c1", step("c1"))], "after": ("alpha", "nosuch")},
        },
    )
    seen: list[str] = []
    run = ForkingRunner()
    results = runner.run_checks(ctx(run), on_result=lambda r: seen.append(r.check))
    assert [r.check for r in results] == seen == ["a1", "a2", "a3", "b1", "b2", "c1"]
    assert [r.status for r in results] == ["passed", "passed", "failed", "passed", "passed", "passed"]
    assert log.index("a1") < log.index("a2") and log.index("b1") < log.index("b2")
    assert log.index("a2") < log.index("c1")  # gamma waited for alpha
    assert run.forks == 3 and run.closed == 3  # one runner of its own per service, closed after


def test_a_runner_that_cannot_fork_runs_one_service_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    active: list[int] = [0]
    peak: list[int] = [0]
    lock = threading.Lock()

    def fn(_ctx: Context) -> None:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        threading.Event().wait(0.05)
        with lock:
            active[0] -= 1

    install(monkeypatch, {name: {"checks": [(f"{name}1", fn)]} for name in ("alpha", "beta", "gamma")})
    results = runner.run_checks(ctx(PlainRunner()))
    assert [r.status for r in results] == ["passed"] * 3 and peak[0] == 1


def test_an_unexpected_error_in_a_check_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(_ctx: Context) -> None:
        raise RuntimeError("bug in a check")

    install(monkeypatch, {"alpha": {"checks": [("a1", boom)]}})
    with pytest.raises(RuntimeError, match="bug in a check"):
        runner.run_checks(ctx(ForkingRunner()))
