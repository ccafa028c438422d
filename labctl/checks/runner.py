"""Find the service modules, pick the checks that apply to a lab, run them, collect results."""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType

from labctl import bundles
from labctl.access import journal
from labctl.checks import base, user
from labctl.checks.base import Check, CheckFailed, CheckResult, CheckSkipped, Context
from labctl.errors import LabError
from labctl.userchecks import UserCheck


def service_modules() -> dict[str, ModuleType]:
    """SERVICE name -> checks package, for every role that has one (roles/<role>/checks/, found through
    :mod:`labctl.bundles`)."""
    out: dict[str, ModuleType] = {user.SERVICE: user}  # the topology's own checks
    for role in bundles.names():
        try:
            module = bundles.checks(role)
        except Exception as exc:  # a broken check module must not hide the others
            raise LabError(f"smoke module roles/{role}/checks does not load: {exc!r}") from None
        if hasattr(module, "SERVICE"):
            out[module.SERVICE] = module
    return out


def run_checks(
    ctx: Context,
    only: list[str] | None = None,
    on_result: Callable[[CheckResult], None] = lambda _r: None,
    user_checks: Sequence[UserCheck] = (),
    workers: int = 8,
) -> list[CheckResult]:
    """Run the checks that apply to the lab; results (and on_result calls) in registration order.

    Services run concurrently, each on its own connections (when the runner can ``fork()``; a runner
    that cannot runs everything in order), the checks of one service in their order. A service module
    may name services it must wait for in ``AFTER`` (e.g. nat_gateway, whose port forward reaches the
    web server that mongrel2's checks restart)."""
    modules = service_modules()
    for name in only or []:
        if name not in modules:
            raise LabError(
                f"--only: no smoke checks for service {name!r}. Fix: use one of: {', '.join(sorted(modules))}."
            )
    slots, todo = _plan(ctx, modules, only)
    _Scheduler(ctx, todo, slots, on_result, workers).run()
    results = [r for r in slots if r is not None]
    if not only or user.SERVICE in only:  # the topology's own checks, after the roles', in their order
        for uc in user_checks:
            results.append(run_one(ctx, user.as_check(uc), list(uc.hosts), None, on_result))
    return results


_Todo = dict[str, list[tuple[int, Check, ModuleType, list[str]]]]  # service -> (slot, check, module, hosts)


def _plan(
    ctx: Context, modules: dict[str, ModuleType], only: list[str] | None
) -> tuple[list[CheckResult | None], _Todo]:
    """A slot per result in registration order (filled now for a check skipped for want of hosts) and,
    per service, the checks to run with their slot."""
    slots: list[CheckResult | None] = []
    todo: _Todo = {}
    for chk in base.registered():
        module = modules.get(chk.service)
        if module is None or (only and chk.service not in only):
            continue
        hosts = ctx.hosts(module.GROUP)
        if not hosts:
            if only:
                why = f"no host in group {module.GROUP!r}"
                slots.append(CheckResult(chk.service, chk.name, [], "skipped", 0.0, why))
            continue
        todo.setdefault(chk.service, []).append((len(slots), chk, module, hosts))
        slots.append(None)
    return slots, todo


class _Scheduler:
    """Runs each service's checks in a thread of its own (at most ``workers`` at once; one when the
    runner cannot fork), a service after those in its ``AFTER``; emits the results in slot order."""

    def __init__(
        self,
        ctx: Context,
        todo: _Todo,
        slots: list[CheckResult | None],
        on_result: Callable[[CheckResult], None],
        workers: int,
    ) -> None:
        self.ctx, self.todo, self.slots, self.on_result = ctx, todo, slots, on_result
        self.fork = getattr(ctx.runner, "fork", None)
        self.workers = workers if self.fork else 1
        self.done: queue.Queue[BaseException | None] = queue.Queue()
        self.after = {
            name: {a for a in getattr(todo[name][0][2], "AFTER", ()) if a in todo and a != name} for name in todo
        }
        self.emitted = 0

    def service(self, name: str) -> None:
        sctx = dataclasses.replace(self.ctx, runner=self.fork()) if self.fork else self.ctx
        try:
            for index, chk, module, hosts in self.todo[name]:
                self.slots[index] = run_one(sctx, chk, hosts, getattr(module, "UNIT", None), _ignore)
                self.done.put(None)
        except BaseException as exc:  # handed to the caller's thread
            self.done.put(exc)
        finally:
            if sctx is not self.ctx:
                sctx.runner.close()
            self.done.put(None)  # wakes the scheduler: this service is over

    def emit(self) -> None:
        while self.emitted < len(self.slots) and self.slots[self.emitted] is not None:
            self.on_result(self.slots[self.emitted])  # type: ignore[arg-type]
            self.emitted += 1

    def ready(self, started: dict[str, threading.Thread], finished: set[str]) -> list[str]:
        running = len(started) - len(finished)
        ready = [n for n in self.todo if n not in started and self.after[n] <= finished]
        if not ready and not running and len(started) < len(self.todo):  # a cycle in AFTER: break it
            ready = [next(n for n in self.todo if n not in started)]
        return ready[: max(0, self.workers - running)]

    def run(self) -> None:
        finished: set[str] = set()
        started: dict[str, threading.Thread] = {}
        while True:
            finished |= {n for n, t in started.items() if not t.is_alive()}
            for name in self.ready(started, finished):
                started[name] = threading.Thread(target=self.service, args=(name,), name=f"smoke-{name}", daemon=True)
                started[name].start()
            self.emit()
            if len(finished) == len(self.todo):
                break
            try:
                failure = self.done.get(timeout=0.2)
            except queue.Empty:
                continue
            if failure is not None:
                raise failure
        self.emit()


def _ignore(_res: CheckResult) -> None:
    return None


def run_one(
    ctx: Context, chk: Check, hosts: list[str], unit: str | None, on_result: Callable[[CheckResult], None]
) -> CheckResult:
    """Run one check and turn what it raised into its result."""
    t0 = time.monotonic()
    picked: dict[str, str] = {}
    try:
        picked = met_needs(ctx, chk)
        hosts = hosts + [h for h in picked.values() if h not in hosts]
        message = chk.fn(ctx)
        res = CheckResult(chk.service, chk.name, hosts, "passed", 0.0, message or "")
    except CheckSkipped as exc:
        res = CheckResult(chk.service, chk.name, hosts, "skipped", 0.0, str(exc))
    except CheckFailed as exc:
        res = CheckResult(chk.service, chk.name, hosts, "failed", 0.0, str(exc), exc.command, exc.output)
    except LabError as exc:
        res = CheckResult(chk.service, chk.name, hosts, "failed", 0.0, str(exc))
    res.seconds = time.monotonic() - t0
    if picked:
        res.extra["needs"] = picked
    if res.status == "failed":
        res.logs = logs_hints(ctx.lab, res, unit)
    on_result(res)
    return res


def met_needs(ctx: Context, chk: Check) -> dict[str, str]:
    """The host each of the check's needs resolved to ({what: host}); CheckSkipped with the reason
    when one has none."""
    return {need.what: ctx.pick(need) for need in chk.needs}


def logs_hints(lab: str, res: CheckResult, unit: str | None) -> list[str]:
    """The `labctl logs` commands to read after a failed check: the hosts its message names
    (``host: ...``), else every host it ran on; with the service's unit when it has one."""
    named = [h for h in res.hosts if f"{h}:" in res.message]
    lab_args = "" if lab == "default" else f"--name {lab}"
    return [journal.logs_hint(h, unit, lab_args) for h in (named or res.hosts)[:3]]
