"""The smoke-check framework: what a check is, what it may call, and what it returns.

A service module (``labctl/checks/<service>.py``) declares ``SERVICE`` (its name), ``GROUP``
(the inventory group whose hosts run it) and decorates its checks with ``@check("name")``.
A check takes a :class:`Context` and on success returns None or a short message (shown in the
table, e.g. a version or counts); it raises :class:`CheckFailed`
(with the command and its output) or :class:`CheckSkipped` (with the reason).
The same functions run from ``labctl smoke`` and from Molecule's verify step.

A check runs on the hosts of its service's group, which the role provisions. When it needs more — a
client host, a second host, a tool the role installs only on client hosts — it declares it:
``@check("name", needs=(CLIENT,))`` with ``CLIENT = Need("client", group="memcached_clients",
tools=(command("memcstat", "libmemcached-tools"),), fallback=("memcached", "all"))``. Before the
check runs, the runner resolves each need (:func:`resolve`): the hosts of ``group`` (the role installs
what the check needs there: trusted, not probed), else the hosts of the ``fallback`` groups that have
every tool (probed); the check reads its host with ``ctx.pick(CLIENT)``. When no host qualifies the
check is SKIPPED with a reason naming the group to add and what each host lacks — a lab without a
client group never fails on a missing tool. A check that declares nothing runs in any topology
that has its group (a one-host lab included).

Role settings come from the role itself, never from copies of its defaults: every role writes what it
resolved as a local fact (``/etc/ansible/facts.d/<role>.fact``) and checks read it with
:meth:`Context.fact`.
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from labctl.access import kernellog
from labctl.access.remote import Result, Runner

FACTS_DIR = "/etc/ansible/facts.d"

__all__ = [
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "Context",
    "Need",
    "Resolution",
    "Result",
    "Runner",
    "Tool",
    "check",
    "command",
    "pkg_config",
    "python_module",
    "resolve",
]


class CheckFailed(Exception):
    """A check found the service misbehaving."""

    def __init__(self, message: str, command: str = "", output: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.output = output


class CheckSkipped(Exception):
    """A check cannot run here (the reason says why); it is not a failure."""


@dataclass(frozen=True)
class Tool:
    """Something a check runs on a host, and how to tell that it is installed there."""

    name: str  # how a skip reason names it: "memcstat"
    probe: str  # a shell command that exits 0 where it is installed
    package: str  # the Debian package(s) that install it

    def __str__(self) -> str:
        return f"{self.name} ({self.package})"


def command(name: str, package: str) -> Tool:
    """A program on PATH."""
    return Tool(name, f"command -v {shlex.quote(name)}", package)


def pkg_config(module: str, package: str) -> Tool:
    """A library a C program links with (its pkg-config module must resolve, --libs included)."""
    return Tool(module, f"pkg-config --libs {shlex.quote(module)}", package)


def python_module(module: str, package: str) -> Tool:
    """A module python3 imports."""
    return Tool(f"python3 {module}", f"python3 -c {shlex.quote('import ' + module)}", package)


@dataclass(frozen=True)
class Need:
    """A host a check needs besides its service's own hosts (a client host, a second host).

    Candidates, best first: the hosts of ``group`` (the role installs what the check needs there, so
    they are used as they are: a missing tool there is the role's defect and fails the check), else
    the hosts of the ``fallback`` groups in order ("all" = every lab host) that have every tool in
    ``tools``, those outside group ``away`` first (e.g. a client that is not the server itself)."""

    what: str  # how results and skip reasons name the host: "client"
    group: str = ""
    tools: tuple[Tool, ...] = ()
    fallback: tuple[str, ...] = ()
    away: str = ""


@dataclass(frozen=True)
class Resolution:
    """The hosts a need resolved to (best first), or none and the reason the check is skipped."""

    hosts: tuple[str, ...]
    reason: str = ""


Probe = Callable[[str, tuple[Tool, ...]], list[Tool]]  # host, tools -> the tools it lacks


def fallback_hosts(need: Need, groups: dict[str, list[str]]) -> list[str]:
    """The hosts of need's fallback groups, in order, each once, those outside need.away first."""
    out: list[str] = []
    for group in need.fallback:
        for host in groups.get(group, []):
            if host not in out:
                out.append(host)
    if need.away:
        away = set(groups.get(need.away, []))
        out = [h for h in out if h not in away] + [h for h in out if h in away]
    return out


def resolve(need: Need, groups: dict[str, list[str]], lacks: Probe) -> Resolution:
    """Resolve a need against the lab's groups; ``lacks`` probes a host for tools (fallback hosts only)."""
    trusted = groups.get(need.group, []) if need.group else []
    if trusted:
        return Resolution(tuple(trusted))
    usable: list[str] = []
    lacking: dict[str, list[Tool]] = {}
    for host in fallback_hosts(need, groups):
        missing = lacks(host, need.tools) if need.tools else []
        if missing:
            lacking[host] = missing
        else:
            usable.append(host)
    if usable:
        return Resolution(tuple(usable))
    return Resolution((), skip_reason(need, lacking))


def skip_reason(need: Need, lacking: dict[str, list[Tool]]) -> str:
    """Why a need has no host: which group to add, what a fallback host must have, what each lacks."""
    ways = []
    if need.group:
        ways.append(f"a host in group {need.group} (add one)")
    if need.fallback:
        where = "any lab host" if "all" in need.fallback else "a host in group " + " or ".join(need.fallback)
        tools = f" with {', '.join(t.name for t in need.tools)} installed" if need.tools else ""
        ways.append(where + tools)
    text = f"needs a {need.what} host: " + (" or ".join(ways) or "none is declared")
    if lacking:
        shown = [f"{h} lacks {', '.join(str(t) for t in tools)}" for h, tools in list(lacking.items())[:3]]
        more = len(lacking) - len(shown)
        text += "; " + "; ".join(shown) + (f"; {more} more host(s) lack them too" if more > 0 else "")
    elif need.fallback:
        text += "; the lab has no such host"
    return text


@dataclass
class Context:
    """What a check sees of the lab: hosts by group, addresses, variables and a command runner."""

    lab: str
    groups: dict[str, list[str]]
    addresses: dict[str, dict[str, str]]  # host -> network -> address
    hostvars: dict[str, dict[str, Any]]  # host -> merged topology vars (group vars, then host vars)
    runner: Runner
    # (host, needle) -> lines of the host's kernel log holding needle, read where the host's provider
    # says it lands (labctl.access.kernellog); None: on the host itself (journalctl -k)
    kernel_log_reader: Callable[[str, str], list[str]] | None = field(default=None, repr=False)
    _facts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict, init=False, repr=False)
    _tools: dict[tuple[str, Tool], bool] = field(default_factory=dict, init=False, repr=False)
    _needs: dict[Need, Resolution] = field(default_factory=dict, init=False, repr=False)

    def hosts(self, group: str) -> list[str]:
        """Hosts of a group, in topology order (empty if the group has none)."""
        return list(self.groups.get(group, []))

    def address(self, host: str, network: str | None = None) -> str:
        """A host's address on a network (its first network when none is named)."""
        nets = self.addresses[host]
        if network is None:
            return next(iter(nets.values()))
        return nets[network]

    def reach(self, src: str, dst: str) -> str:
        """The address of dst that src should use: one on a network they share, else dst's first."""
        for net, addr in self.addresses[dst].items():
            if net in self.addresses[src]:
                return addr
        return self.address(dst)

    def var(self, host: str, name: str, default: Any = None) -> Any:
        """A labctl_* or topology variable as the inventory gives it to the host (never a role's setting:
        those are templated and resolved by Ansible; read them with :meth:`fact`)."""
        return self.hostvars.get(host, {}).get(name, default)

    def fact(self, host: str, role: str) -> dict[str, Any]:
        """The settings a role resolved on a host: its local fact /etc/ansible/facts.d/<role>.fact (JSON).

        Every role writes one; checks read role settings from it, never from role defaults. Read once
        per host and role, then cached. Fails the check when the role has not run on the host."""
        key = (host, role)
        if key not in self._facts:
            path = f"{FACTS_DIR}/{role}.fact"
            command = f"cat {path}"
            result = self.run(host, command, timeout=30)
            if not result.ok:
                raise CheckFailed(
                    f"role {role} has not run on host {host} (no {path}); Fix: labctl provision --name {self.lab}",
                    command,
                    result.output,
                )
            try:
                data = json.loads(result.stdout)
            except ValueError:
                data = None
            if not isinstance(data, dict):
                raise CheckFailed(
                    f"{host}: {path} is not a JSON object; Fix: labctl provision --name {self.lab}",
                    command,
                    result.stdout,
                )
            self._facts[key] = data
        return self._facts[key]

    def lacks(self, host: str, tools: tuple[Tool, ...]) -> list[Tool]:
        """The tools host does not have (one probe per host and tool, then cached)."""
        unknown = [t for t in tools if (host, t) not in self._tools]
        if unknown:
            script = "; ".join(f"if ({t.probe}) >/dev/null 2>&1; then echo yes; else echo no; fi" for t in unknown)
            result = self.run(host, script, timeout=30)
            answers = result.stdout.split()
            if not result.ok or len(answers) != len(unknown):
                missing = ", ".join(t.name for t in unknown)
                raise CheckFailed(f"{host}: cannot probe for {missing}", script, result.output)
            for tool, answer in zip(unknown, answers, strict=True):
                self._tools[(host, tool)] = answer == "yes"
        return [t for t in tools if not self._tools[(host, t)]]

    def resolve(self, need: Need) -> Resolution:
        """The hosts a need resolves to in this lab (resolved once, then cached)."""
        if need not in self._needs:
            self._needs[need] = resolve(need, self.groups, self.lacks)
        return self._needs[need]

    def picks(self, need: Need) -> list[str]:
        """Every host that meets a need, best first; skip the check when there is none."""
        resolution = self.resolve(need)
        if not resolution.hosts:
            raise CheckSkipped(resolution.reason)
        return list(resolution.hosts)

    def pick(self, need: Need) -> str:
        """The host a check uses for a need (see :meth:`picks`)."""
        return self.picks(need)[0]

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        return self.runner.run(host, command, timeout=timeout, stdin=stdin)

    def kernel_log(self, host: str, needle: str) -> list[str]:
        """Lines of the host's kernel log that contain needle, wherever they land (a container's go to
        the machine's kernel log, a VM's stay in its journal). Skips the check when it cannot be read."""
        try:
            if self.kernel_log_reader is not None:
                return self.kernel_log_reader(host, needle)
            return kernellog.host_lines(self.run(host, kernellog.host_command(needle), timeout=30), needle)
        except kernellog.KernelLogUnavailable as exc:
            raise CheckSkipped(f"{host}: {exc}") from None

    def sh(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        """Run a command and raise CheckFailed when it exits non-zero."""
        result = self.run(host, command, timeout=timeout, stdin=stdin)
        if not result.ok:
            raise CheckFailed(f"{host}: command exited {result.exited}", command=command, output=result.output)
        return result

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        self.runner.put_text(host, text, path, mode)

    def python(self, host: str, code: str, *args: str, timeout: float = 120) -> Result:
        """Run a Python 3 program on a host (fed on stdin) and fail the check if it fails."""
        argv = " ".join(shlex.quote(a) for a in args)
        return self.sh(host, f"python3 - {argv}", timeout=timeout, stdin=code)

    def wait_until(self, what: str, probe: Callable[[], bool], timeout: float = 30, interval: float = 0.5) -> None:
        """Poll probe() until it is true; fail the check after timeout seconds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return
            time.sleep(interval)
        raise CheckFailed(f"{what}: not true after {timeout:.0f} s")


CheckFn = Callable[[Context], str | None]


@dataclass(frozen=True)
class Check:
    service: str
    name: str
    fn: CheckFn
    needs: tuple[Need, ...] = ()


@dataclass
class CheckResult:
    service: str
    check: str
    hosts: list[str]
    status: str  # "passed" | "failed" | "skipped"
    seconds: float
    message: str = ""
    command: str = ""
    output: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)  # `labctl logs ...` commands to read after a failure

    @property
    def ok(self) -> bool:
        return self.status != "failed"


_REGISTRY: list[Check] = []


def check(name: str, service: str | None = None, needs: tuple[Need, ...] = ()) -> Callable[[CheckFn], CheckFn]:
    """Register a check; the service defaults to the SERVICE of the module it is defined in. ``needs``:
    the hosts it needs besides the service's own (see :class:`Need`); unmet, the check is skipped."""

    def register(fn: CheckFn) -> CheckFn:
        svc = service or fn.__globals__["SERVICE"]
        _REGISTRY.append(Check(svc, name, fn, tuple(needs)))
        return fn

    return register


def registered() -> Iterator[Check]:
    yield from _REGISTRY
