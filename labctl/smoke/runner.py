"""Find the service modules, pick the checks that apply to a lab, run them, collect results."""

from __future__ import annotations

import importlib
import pkgutil
import time
from collections.abc import Callable, Sequence
from types import ModuleType

from labctl import journal
from labctl.errors import LabError
from labctl.smoke import base, user
from labctl.smoke.base import Check, CheckFailed, CheckResult, CheckSkipped, Context
from labctl.userchecks import UserCheck

_FRAMEWORK = {"base", "context", "runner"}


def service_modules() -> dict[str, ModuleType]:
    """SERVICE name -> module, for every labctl/smoke/<service>.py."""
    import labctl.smoke as pkg

    out: dict[str, ModuleType] = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        if info.name in _FRAMEWORK or info.name.startswith("_") or info.ispkg:
            continue
        try:
            module = importlib.import_module(f"labctl.smoke.{info.name}")
        except Exception as exc:  # a broken check module must not hide the others
            raise LabError(f"smoke module labctl/smoke/{info.name}.py does not load: {exc!r}") from None
        if hasattr(module, "SERVICE"):
            out[module.SERVICE] = module
    return out


def run_checks(
    ctx: Context,
    only: list[str] | None = None,
    on_result: Callable[[CheckResult], None] = lambda _r: None,
    user_checks: Sequence[UserCheck] = (),
) -> list[CheckResult]:
    modules = service_modules()
    for name in only or []:
        if name not in modules:
            raise LabError(
                f"--only: no smoke checks for service {name!r}. Fix: use one of: {', '.join(sorted(modules))}."
            )
    results: list[CheckResult] = []
    for chk in base.registered():
        module = modules.get(chk.service)
        if module is None or (only and chk.service not in only):
            continue
        hosts = ctx.hosts(module.GROUP)
        if not hosts:
            if only:
                res = CheckResult(chk.service, chk.name, [], "skipped", 0.0, f"no host in group {module.GROUP!r}")
                results.append(res)
                on_result(res)
            continue
        results.append(run_one(ctx, chk, hosts, getattr(module, "UNIT", None), on_result))
    if not only or user.SERVICE in only:  # the topology's own checks, after the roles'
        for uc in user_checks:
            results.append(run_one(ctx, user.as_check(uc), list(uc.hosts), None, on_result))
    return results


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
