"""The user's own checks (the topology's `checks:` section), run after the role checks.

Each check becomes a :class:`~labctl.checks.base.Check` of service ``user``: its command runs on every
host it names (through the lab's runner, whatever the provider), and each host's result must meet
the check's ``expect``; a failing host is tried again ``retries`` times, ``wait`` seconds apart."""

from __future__ import annotations

import time

from labctl.checks.base import Check, CheckFailed, CheckSkipped, Context
from labctl.userchecks import UserCheck

SERVICE = "user"
GROUP = "all"


def as_check(uc: UserCheck) -> Check:
    """A smoke Check that runs one user check."""

    def run(ctx: Context) -> str | None:
        if not uc.hosts:
            raise CheckSkipped(f"no host in group {uc.group!r}")
        notes = [_on_host(ctx, uc, host) for host in uc.hosts]
        shown = sorted({n for n in notes if n})
        return "; ".join(shown) or None

    return Check(SERVICE, uc.name, run)


def _on_host(ctx: Context, uc: UserCheck, host: str) -> str:
    """Run the check on one host until it holds or the attempts are spent; the note to show."""
    attempts = uc.retries + 1
    for attempt in range(1, attempts + 1):
        res = ctx.run(host, uc.command, timeout=uc.timeout)
        problem, note = uc.expect.judge(res.exited, res.stdout)
        if not problem:
            return note if attempt == 1 else f"{note} (attempt {attempt})".strip()
        if attempt < attempts:
            time.sleep(uc.wait)
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    raise CheckFailed(f"{host}: {problem}{tries}", uc.command, res.output)
