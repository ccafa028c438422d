"""The smoke-check framework: what a check is, what it may call, and what it returns.

A service module (``labctl/smoke/<service>.py``) declares ``SERVICE`` (its name), ``GROUP``
(the inventory group whose hosts run it) and decorates its checks with ``@check("name")``.
A check takes a :class:`Context` and on success returns None or a short message (shown in the
table, e.g. a version or counts); it raises :class:`CheckFailed`
(with the command and its output) or :class:`CheckSkipped` (with the reason).
The same functions run from ``labctl smoke`` and from Molecule's verify step.

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

from labctl import kernellog
from labctl.remote import Result, Runner

FACTS_DIR = "/etc/ansible/facts.d"

__all__ = ["CheckFailed", "CheckResult", "CheckSkipped", "Context", "Result", "Runner", "check"]


class CheckFailed(Exception):
    """A check found the service misbehaving."""

    def __init__(self, message: str, command: str = "", output: str = "") -> None:
        super().__init__(message)
        self.command = command
        self.output = output


class CheckSkipped(Exception):
    """A check cannot run here (the reason says why); it is not a failure."""


@dataclass
class Context:
    """What a check sees of the lab: hosts by group, addresses, variables and a command runner."""

    lab: str
    groups: dict[str, list[str]]
    addresses: dict[str, dict[str, str]]  # host -> network -> address
    hostvars: dict[str, dict[str, Any]]  # host -> merged topology vars (group vars, then host vars)
    runner: Runner
    # (host, needle) -> lines of the host's kernel log holding needle, read where the host's provider
    # says it lands (labctl.kernellog); None: on the host itself (journalctl -k)
    kernel_log_reader: Callable[[str, str], list[str]] | None = field(default=None, repr=False)
    _facts: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict, init=False, repr=False)

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


def check(name: str, service: str | None = None) -> Callable[[CheckFn], CheckFn]:
    """Register a check; the service defaults to the SERVICE of the module it is defined in."""

    def register(fn: CheckFn) -> CheckFn:
        svc = service or fn.__globals__["SERVICE"]
        _REGISTRY.append(Check(svc, name, fn))
        return fn

    return register


def registered() -> Iterator[Check]:
    yield from _REGISTRY
