"""Run ansible-playbook against a lab, following its events for progress and a failure summary."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import procs
from labctl.errors import LabError
from labctl.state import LabState


@dataclass
class Failure:
    host: str
    task: str
    msg: str


@dataclass
class PlaybookRun:
    returncode: int
    log: Path
    failures: list[Failure] = field(default_factory=list)
    changed: dict[str, int] = field(default_factory=dict)
    tasks: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


Progress = Callable[[dict[str, Any]], None]


def _bin(name: str) -> str:
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else name


def run_playbook(
    state: LabState,
    playbook: Path,
    progress: Progress = lambda _e: None,
    extra_args: list[str] | None = None,
    label: str = "converge",
    env: dict[str, str] | None = None,
) -> PlaybookRun:
    """Run a playbook with the lab's ansible.cfg; stdout goes to a log file, events to progress()."""
    state.log_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log = state.log_dir / f"{label}-{stamp}.log"
    events = state.log_dir / f"{label}-{stamp}.events"
    events.write_text("")
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(state.ansible_cfg),
        LABCTL_EVENTS=str(events),
        ANSIBLE_FORCE_COLOR="0",
        **(env or {}),
    )
    cmd = [_bin("ansible-playbook"), str(playbook), *(extra_args or [])]
    run = PlaybookRun(returncode=-1, log=log)
    with open(log, "w") as out, open(events) as feed:
        try:
            # own process group (a Ctrl-C reaches labctl only) and dies with labctl, even on SIGKILL
            proc = procs.popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL)
        except FileNotFoundError:
            raise LabError("ansible-playbook is not installed. Fix: pip install ansible-core (see README).") from None
        try:
            while True:
                done = proc.poll() is not None
                for line in feed:
                    _consume(run, json.loads(line), progress)
                if done:
                    break
                time.sleep(0.2)
        except BaseException:
            procs.stop(proc)
            raise
        run.returncode = proc.returncode
    return run


def _consume(run: PlaybookRun, event: dict[str, Any], progress: Progress) -> None:
    if event["event"] == "task":
        run.tasks += 1
    elif event["event"] == "result":
        if event["status"] in ("failed", "unreachable"):
            run.failures.append(Failure(event["host"], event["task"], event["msg"]))
        if event["changed"]:
            run.changed[event["host"]] = run.changed.get(event["host"], 0) + 1
    progress(event)
