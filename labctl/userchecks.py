"""User checks: the `checks:` section of a topology file, parsed and validated.

Each check names the hosts it runs on (``hosts:`` or ``group:``), a shell command, and what must hold
of the result (``expect:``): the exit code, text the stdout contains, a regex it matches, a number in
it compared with bounds. ``retries``/``wait`` repeat a failing check. Running them is
labctl/checks/user.py's job; this module only reads the file (pure logic, no I/O)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from labctl.errors import LabError

Fail = Callable[[str, str, str], LabError]  # where, problem, fix -> the error to raise

BOUNDS = {"lt": "<", "le": "<=", "gt": ">", "ge": ">=", "eq": "=="}
_FIELDS = {"name", "hosts", "group", "command", "expect", "retries", "wait", "timeout"}
_EXPECT = {"exit_code", "stdout_contains", "stdout_regex", "number"}
_NUMBER = {"match", *BOUNDS}
FIRST_NUMBER = r"[-+]?\d+(?:\.\d+)?"


@dataclass(frozen=True)
class NumberBound:
    """A number taken from stdout (the regex's first group, else its whole match) and its bounds."""

    match: str
    bounds: tuple[tuple[str, float], ...]  # (op key of BOUNDS, value)

    def judge(self, stdout: str) -> tuple[float | None, str]:
        """(the number found or None, the problem or '')."""
        found = re.search(self.match, stdout, re.MULTILINE)
        if found is None:
            return None, f"no number matching /{self.match}/ in stdout"
        text = found.group(1) if found.re.groups else found.group(0)
        try:
            value = float(text)
        except (TypeError, ValueError):
            return None, f"/{self.match}/ matched {text!r}, not a number"
        for op, bound in self.bounds:
            if not _compare(op, value, bound):
                return value, f"number {value:g} is not {BOUNDS[op]} {bound:g}"
        return value, ""

    def describe(self) -> str:
        return " and ".join(f"{BOUNDS[op]} {b:g}" for op, b in self.bounds)


def _compare(op: str, value: float, bound: float) -> bool:
    return {
        "lt": value < bound,
        "le": value <= bound,
        "gt": value > bound,
        "ge": value >= bound,
        "eq": value == bound,
    }[op]


@dataclass(frozen=True)
class Expect:
    exit_code: int = 0
    stdout_contains: tuple[str, ...] = ()
    stdout_regex: str | None = None
    number: NumberBound | None = None

    def judge(self, exit_code: int, stdout: str) -> tuple[str, str]:
        """(the problem or '' when everything holds, a short note such as the number found)."""
        if exit_code != self.exit_code:
            return f"exit code {exit_code}, expected {self.exit_code}", ""
        for text in self.stdout_contains:
            if text not in stdout:
                return f"stdout does not contain {text!r}", ""
        if self.stdout_regex is not None and not re.search(self.stdout_regex, stdout, re.MULTILINE):
            return f"stdout does not match /{self.stdout_regex}/", ""
        if self.number is not None:
            value, problem = self.number.judge(stdout)
            if problem:
                return problem, ""
            return "", f"{value:g} {self.number.describe()}"
        return "", ""


@dataclass(frozen=True)
class UserCheck:
    name: str
    hosts: tuple[str, ...]
    command: str
    expect: Expect = field(default_factory=Expect)
    retries: int = 0
    wait: float = 2.0  # seconds between attempts
    timeout: float = 60.0
    group: str | None = None  # when the hosts came from a group (for messages)


def parse(
    fail: Fail,
    value: Any,
    hosts: list[str],
    group_hosts: dict[str, list[str]],
    known_groups: set[str],
) -> list[UserCheck]:
    """The checks: section. hosts: the lab's host names; group_hosts: group -> its hosts;
    known_groups: groups a check may name (those with a role or declared), possibly without hosts."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise fail("checks", f"expected a list, got {type(value).__name__}", "write each check as a list item")
    if len(value) > MAX_CHECKS:
        raise fail("checks", f"{len(value)} checks, more than labctl runs ({MAX_CHECKS})", "keep those that matter")
    out: list[UserCheck] = []
    names: set[str] = set()
    for i, item in enumerate(value):
        where = f"checks[{i}]"
        if not isinstance(item, dict):
            raise fail(where, "expected a mapping", "give name, hosts (or group), command and expect")
        for key in item:
            if key not in _FIELDS:
                raise fail(f"{where}.{key}", "unknown field", f"remove it or use one of: {', '.join(sorted(_FIELDS))}")
        name = item.get("name")
        if not isinstance(name, str) or not name.strip() or "\n" in name:
            raise fail(f"{where}.name", f"{name!r} is not a check name", "give a short one-line name")
        if name in names:
            raise fail(f"{where}.name", f"duplicate check name {name!r}", "give every check its own name")
        names.add(name)
        where = f"checks[{i}] ({name})"
        targets, group = _targets(fail, item, where, hosts, group_hosts, known_groups)
        out.append(
            UserCheck(
                name=name,
                hosts=tuple(targets),
                command=_command(fail, item.get("command"), f"{where}.command"),
                expect=_expect(fail, item.get("expect"), f"{where}.expect"),
                retries=_int(fail, item.get("retries", 0), f"{where}.retries", 0, 100),
                wait=_seconds(fail, item.get("wait", 2.0), f"{where}.wait", 0.0),
                timeout=_seconds(fail, item.get("timeout", 60.0), f"{where}.timeout", 0.001),
                group=group,
            )
        )
    return out


def _targets(
    fail: Fail,
    item: dict[str, Any],
    where: str,
    hosts: list[str],
    group_hosts: dict[str, list[str]],
    known_groups: set[str],
) -> tuple[list[str], str | None]:
    if ("hosts" in item) == ("group" in item):
        raise fail(
            where,
            "a check needs either 'hosts' or 'group'",
            "name the hosts (hosts: [db]) or a group (group: memcached)",
        )
    if "group" in item:
        group = item["group"]
        if group == "all":
            return list(hosts), "all"
        if not isinstance(group, str) or (group not in known_groups and group not in group_hosts):
            raise fail(
                f"{where}.group",
                f"unknown group {group!r}",
                f"use one of: {', '.join(sorted({'all', *group_hosts}))}",
            )
        return list(group_hosts.get(group, [])), group
    raw = item["hosts"]
    names = [raw] if isinstance(raw, str) else raw
    if not isinstance(names, list) or not names or not all(isinstance(h, str) for h in names):
        raise fail(f"{where}.hosts", f"{raw!r} is not a list of host names", "write it like hosts: [db, web]")
    for host in names:
        if host not in hosts:
            raise fail(f"{where}.hosts", f"unknown host {host!r}", f"use one of: {', '.join(hosts)}")
    return list(dict.fromkeys(names)), None


def _command(fail: Fail, value: Any, where: str) -> str:
    if isinstance(value, str) and value.strip():
        return value
    raise fail(where, f"{value!r} is not a command", "give the shell command to run on each host, as a string")


def _expect(fail: Fail, value: Any, where: str) -> Expect:
    if value is None:
        return Expect()
    if not isinstance(value, dict):
        raise fail(where, "expected a mapping", f"use keys among: {', '.join(sorted(_EXPECT))}")
    for key in value:
        if key not in _EXPECT:
            raise fail(f"{where}.{key}", "unknown field", f"remove it or use one of: {', '.join(sorted(_EXPECT))}")
    code = _int(fail, value.get("exit_code", 0), f"{where}.exit_code", 0, 255)
    contains = value.get("stdout_contains", [])
    contains = [contains] if isinstance(contains, str) else contains
    if not isinstance(contains, list) or not all(isinstance(c, str) and c for c in contains):
        raise fail(f"{where}.stdout_contains", f"{contains!r} is not text", "give a string or a list of strings")
    regex = value.get("stdout_regex")
    if regex is not None:
        regex = _regex(fail, regex, f"{where}.stdout_regex")
    number = value.get("number")
    return Expect(code, tuple(contains), regex, None if number is None else _number(fail, number, f"{where}.number"))


def _number(fail: Fail, value: Any, where: str) -> NumberBound:
    if not isinstance(value, dict):
        raise fail(where, "expected a mapping", "write it like number: {match: 'time=([0-9.]+)', lt: 5}")
    for key in value:
        if key not in _NUMBER:
            raise fail(f"{where}.{key}", "unknown field", f"use 'match' and bounds among: {', '.join(BOUNDS)}")
    bounds = []
    for op in BOUNDS:
        if op in value:
            bound = value[op]
            if isinstance(bound, bool) or not isinstance(bound, int | float) or not math.isfinite(bound):
                raise fail(f"{where}.{op}", f"{bound!r} is not a number", "give a number, e.g. lt: 5")
            bounds.append((op, float(bound)))
    if not bounds:
        raise fail(where, "no bound given", f"add at least one of: {', '.join(BOUNDS)} (e.g. lt: 5)")
    match = _regex(fail, value.get("match", FIRST_NUMBER), f"{where}.match")
    return NumberBound(match, tuple(bounds))


def _regex(fail: Fail, value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise fail(where, f"{value!r} is not a regular expression", "give a Python regex as a string")
    try:
        re.compile(value)
    except re.error as exc:
        raise fail(where, f"bad regex {value!r}: {exc}", "correct it (Python 're' syntax; quote it in YAML)") from None
    return value


def _int(fail: Fail, value: Any, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value <= high:
        raise fail(
            where, f"{value!r} is not a whole number from {low} to {high}", f"give a number from {low} to {high}"
        )
    return value


MAX_SECONDS = 3600.0  # a check's wait and timeout: at most an hour
MAX_CHECKS = 1000


def _seconds(fail: Fail, value: Any, where: str, low: float) -> float:
    number = isinstance(value, int | float) and not isinstance(value, bool)
    if number and (value > MAX_SECONDS or value == math.inf):  # compared as it is: a huge int is no float
        raise fail(where, f"{str(value)[:40]} seconds is more than an hour", f"give at most {MAX_SECONDS:g} seconds")
    if not number or not math.isfinite(value) or value < low:
        raise fail(where, f"{value!r} is not a number of seconds", "give seconds as a number, e.g. 2")
    return float(value)
