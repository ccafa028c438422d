"""Running one step for many hosts at once, and the `say` callback every lifecycle step takes."""

from __future__ import annotations

import threading
from collections.abc import Callable

from labctl.errors import LabError

WORKERS = 8  # hosts created, started, waited for at once (16 measured no faster on 2 cores)
Say = Callable[[str], None]


def quiet(_message: str) -> None:
    """A `say` that says nothing."""
    return None


def in_parallel(fn: Callable[[str], None], hosts: list[str]) -> None:
    """Run fn for every host at once (at most WORKERS at a time); raise one error naming every host that failed.

    Daemon threads: Ctrl-C returns at once instead of waiting for every host (a VM booting may take
    minutes); what was half-made is found again by 'labctl down'."""
    if not hosts:
        return
    errors: dict[str, str] = {}
    crashes: list[BaseException] = []
    slots = threading.Semaphore(WORKERS)

    def work(host: str) -> None:
        with slots:
            try:
                fn(host)
            except LabError as exc:
                errors[host] = str(exc)
            except Exception as exc:
                crashes.append(exc)  # a bug: re-raised below with its traceback

    threads = [threading.Thread(target=work, args=(h,), daemon=True, name=f"labctl-{h}") for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if crashes:
        raise crashes[0]
    if errors:
        sep = "\n" if any("\n" in m for m in errors.values()) else "; "
        detail = sep.join(f"{h}: {errors[h]}" for h in hosts if h in errors)
        raise LabError(f"{len(errors)} host(s) failed: {detail}")
