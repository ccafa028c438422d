"""Terminal output: progress for long work, tables, failure summaries (rich)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from labctl.checks.base import CheckResult
from labctl.providers import UP_STATES
from labctl.provisioning.ansible_run import PlaybookRun

out = Console()
err = Console(stderr=True)
# Text from outside (file paths, names, Ansible and command output) is escaped before rich sees it:
# a '[/x]' in it would be read as markup and stop labctl with a MarkupError.


def say(message: str, wrap: bool = True) -> None:
    """One line of progress on stderr; wrap=False keeps it whole (paths a script greps for)."""
    err.print(f"[bold blue]»[/] {escape(message)}", highlight=False, soft_wrap=not wrap)


def error(message: str) -> None:
    """The one-paragraph error line (no wrapping, no markup from the message)."""
    err.print(f"[bold red]labctl: error:[/] {escape(message)}", highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


class ConvergeProgress:
    """Live per-host view of an Ansible run: current task, ok/changed/failed counts."""

    def __init__(self) -> None:
        self.task = ""
        self.play = ""
        self.hosts: dict[str, dict[str, Any]] = {}
        self.live: Live | None = None
        self.interactive = err.is_terminal

    def _table(self) -> Table:
        table = Table(title=f"converge: {self.play}", title_justify="left", expand=False)
        for col in ("host", "ok", "changed", "failed", "last task"):
            table.add_column(col)
        for host, row in sorted(self.hosts.items()):
            table.add_row(host, str(row["ok"]), str(row["changed"]), str(row["failed"]), row["task"][:60])
        table.caption = f"task: {self.task}"
        return table

    def __call__(self, event: dict[str, Any]) -> None:
        kind = event["event"]
        if kind == "play":
            self.play = event["name"]
            if not self.interactive:
                say(f"play: {self.play}")
        elif kind == "task":
            self.task = event["name"]
        elif kind == "result":
            row = self.hosts.setdefault(event["host"], {"ok": 0, "changed": 0, "failed": 0, "task": ""})
            row["task"] = event["task"]
            if event["status"] in ("failed", "unreachable"):
                row["failed"] += 1
            elif event["status"] == "ok":
                row["ok"] += 1
                row["changed"] += int(event["changed"])
        if self.live is not None:
            self.live.update(self._table())

    @contextlib.contextmanager
    def shown(self) -> Iterator[ConvergeProgress]:
        if not self.interactive:
            yield self
            return
        with Live(self._table(), console=err, refresh_per_second=4, transient=True) as live:
            self.live = live
            try:
                yield self
            finally:
                self.live = None


def converge_summary(run: PlaybookRun) -> None:
    if run.ok:
        changed = sum(run.changed.values())
        say(f"converge ok: {run.tasks} tasks, {changed} changes (log {run.log})")
        return
    table = Table(title="converge failed", title_style="bold red", show_lines=True)
    for col in ("host", "task", "message"):
        table.add_column(col, overflow="fold")
    for f in run.failures[:20]:
        table.add_row(escape(f.host), escape(f.task), escape(f.msg.strip()[:600]))
    err.print(table)
    err.print(f"full log: {escape(str(run.log))}")


def status_table(lab: str, rows: list[dict[str, Any]]) -> None:
    table = Table(title=f"lab {lab}", title_justify="left")
    for col in ("host", "groups", "addresses", "provider", "state"):
        table.add_column(col)
    for row in rows:
        addrs = ", ".join(f"{net}={ip}" for net, ip in row["addresses"].items())
        color = "green" if row["state"] in UP_STATES else "red"
        state = escape(row["state"])
        provider = str(row.get("provider") or "-")
        if row.get("accelerator"):
            provider += f" ({row['accelerator']})"
        table.add_row(
            escape(row["name"]),
            escape(", ".join(row["groups"]) or "-"),
            escape(addrs),
            escape(provider),
            f"[{color}]{state}[/]",
        )
    out.print(table)


def labs_table(labs: list[dict[str, Any]]) -> None:
    table = Table(title="labs", title_justify="left")
    for col in ("lab", "phase", "containers", "topology file / problem"):
        table.add_column(col, overflow="fold")
    for row in labs:
        color = {"up": "green", "damaged": "red", "no state": "red"}.get(row["phase"], "yellow")
        detail = row["problem"] or row["topology_file"] or "-"
        table.add_row(row["name"], f"[{color}]{row['phase']}[/]", str(row["containers"]), detail)
    out.print(table)


def impairments_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        say("no impairments")
        return
    table = Table(title="impairments (on what the host sends)")
    for col in ("host", "interface", "network", "impairment", "how", "in force"):
        table.add_column(col)
    for r in rows:
        what = ", ".join(f"{k} {r[k]}" for k in ("delay", "jitter", "loss", "rate") if r.get(k))
        active = "yes" if r.get("active") else "[red]no (lost: restart?)[/]"
        table.add_row(
            escape(str(r.get("host"))),
            escape(str(r.get("iface"))),
            escape(str(r.get("network") or "")),
            escape(what),
            escape(str(r.get("backend"))),
            active,
        )
    out.print(table)


def smoke_line(result: CheckResult) -> None:
    if not err.is_terminal:
        return
    mark = {"passed": "[green]✓[/]", "failed": "[red]✗[/]", "skipped": "[yellow]-[/]"}[result.status]
    err.print(f"  {mark} {escape(result.service)}: {escape(result.check)} ({result.seconds:.1f} s)", highlight=False)


def smoke_table(results: list[CheckResult]) -> None:
    table = Table(title="smoke", title_justify="left", show_lines=any(not r.ok for r in results))
    for col in ("service", "check", "host(s)", "result", "time"):
        table.add_column(col, overflow="fold")
    for r in results:
        color = {"passed": "green", "failed": "red", "skipped": "yellow"}[r.status]
        result = f"[{color}]{r.status}[/]"
        if r.message:
            result += f"\n{escape(r.message)}"
        if r.status == "failed" and r.command:
            result += f"\n$ {escape(r.command)}\n{escape(r.output[-1500:])}"
        if r.logs:
            result += "\nlogs: " + escape("; ".join(r.logs))
        where = ", ".join(r.hosts)
        needs = r.extra.get("needs") or {}
        if needs:
            where += "\n" + ", ".join(f"{what}: {host}" for what, host in needs.items())
        table.add_row(escape(r.service), escape(r.check), escape(where), result, f"{r.seconds:.1f}s")
    out.print(table)
    total = sum(r.seconds for r in results)
    failed = sum(not r.ok for r in results)
    passed = sum(r.status == "passed" for r in results)
    skipped = sum(r.status == "skipped" for r in results)
    out.print(f"smoke: {passed} passed, {failed} failed, {skipped} skipped ({total:.1f} s of checks, services at once)")


def timings(values: dict[str, float]) -> None:
    parts = ", ".join(f"{k} {v:.1f} s" for k, v in values.items())
    say(f"timings: {parts}, total {sum(values.values()):.1f} s")


def drift_table(lab: str, report: Any) -> None:
    """The differences between a running lab and its lock (labctl.reproduce.locked.CheckReport), one per line:
    host: kind package: locked → running."""
    out.print(f"[bold red]lab {escape(lab)} drifted from {escape(str(report.lock_file))}[/]", highlight=False)
    for d in report.drift:
        out.print(f"  {escape(d.line())}", highlight=False, soft_wrap=True)
    err.print(f"{len(report.drift)} difference(s): 'labctl up --locked' installs the locked versions")


def reproduction_lines(info: dict[str, Any]) -> None:
    """status: restored from which archive, held to which lock, drifted or not."""
    restored = info.get("restored")
    if restored:
        say(
            f"restored from {restored.get('archive')} (lab {restored.get('from_lab')!r} saved {restored.get('saved')}) "
            f"at {restored.get('at')}"
        )
    if info.get("lock"):
        held = "locked to" if info.get("locked") else "lock"
        if info.get("drifted") is None:
            verdict = "drift not checked (not every host runs)"
        elif info["drifted"]:
            verdict = f"[red]drifted[/]: {len(info['drift'])} difference(s) (labctl lock --check lists them)"
        else:
            verdict = "[green]matches[/]"
        out.print(f"{held} {escape(str(info['lock']))}: {verdict}", highlight=False)
    else:
        say("no lock (labctl lock writes one)")
