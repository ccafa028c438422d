"""Ansible callback: append one JSON line per event to $LABCTL_EVENTS, for labctl's progress display.

It runs beside the normal stdout callback (which labctl sends to a log file). Results of tasks
marked no_log carry no message."""

from __future__ import annotations

import json
import os
from typing import Any

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
    name: labctl_events
    type: notification
    short_description: JSON-lines events for labctl
    description: Writes play, task and per-host result events to the file named by LABCTL_EVENTS.
    requirements:
      - LABCTL_EVENTS set in the environment
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "notification"
    CALLBACK_NAME = "labctl_events"
    CALLBACK_NEEDS_ENABLED = False

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get("LABCTL_EVENTS")
        self._out = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    def _emit(self, **event: Any) -> None:
        if self._out is not None:
            self._out.write(json.dumps(event, default=str) + "\n")

    def v2_playbook_on_play_start(self, play: Any) -> None:
        self._emit(event="play", name=play.get_name())

    def v2_playbook_on_task_start(self, task: Any, is_conditional: bool) -> None:
        self._emit(event="task", name=task.get_name())

    def v2_playbook_on_handler_task_start(self, task: Any) -> None:
        self._emit(event="task", name=task.get_name())

    def _result(self, status: str, result: Any) -> None:
        res = result._result
        msg = ""
        if status in ("failed", "unreachable") and not res.get("_ansible_no_log"):
            msg = str(res.get("msg") or res.get("stderr") or res.get("reason") or "")[:2000]
        elif res.get("_ansible_no_log") and status == "failed":
            msg = "(output hidden: no_log)"
        self._emit(
            event="result",
            status=status,
            host=result._host.get_name(),
            task=result._task.get_name(),
            changed=bool(res.get("changed")),
            msg=msg,
        )

    def v2_runner_on_ok(self, result: Any) -> None:
        self._result("ok", result)

    def v2_runner_on_failed(self, result: Any, ignore_errors: bool = False) -> None:
        self._result("ignored" if ignore_errors else "failed", result)

    def v2_runner_on_unreachable(self, result: Any) -> None:
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result: Any) -> None:
        self._result("skipped", result)

    def v2_playbook_on_stats(self, stats: Any) -> None:
        summary = {h: stats.summarize(h) for h in sorted(stats.processed)}
        self._emit(event="stats", hosts=summary)
