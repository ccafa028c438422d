"""Fixtures for unit tests of smoke checks: a fake lab runner, a Context around it, and the facts
the roles really write (their templates rendered with their defaults)."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import pytest
import yaml
from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar, trust_as_template

from labctl import paths
from labctl.checks.base import FACTS_DIR, Context, Result
from labctl.providers import pkgcache

Answer = Result | Callable[[str, str, str | None], Result]


@pytest.fixture(autouse=True)
def _private_package_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No unit test reaches the machine's shared package cache daemon (ensure() may stop and restart
    labctl's daemon): its directories are scratch ones and its port one nothing listens on."""
    root = tmp_path_factory.mktemp("acng")
    for name in ("CONFIG_DIR", "RUN_DIR", "LOG_DIR", "CACHE_DIR"):
        monkeypatch.setattr(pkgcache, name, Path(root / name.lower()))
    monkeypatch.setattr(pkgcache, "PORT", 9)  # discard: nothing answers there
    monkeypatch.setattr(pkgcache, "DAEMON", "/nonexistent/apt-cacher-ng")  # a test that starts one says so
    # its filter's iptables calls reach a fake that records them (FAKE_IPTABLES_LOG), never the machine's
    bin_dir = root / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "iptables"
    fake.write_text(FAKE_IPTABLES.replace("PYTHON", sys.executable))
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_IPTABLES_LOG", str(root / "iptables.log"))


# records each call; "-C" (check) finds a rule only when FAKE_IPTABLES_HAS names it
FAKE_IPTABLES = r"""#!PYTHON
import os, sys
args = sys.argv[1:]
with open(os.environ["FAKE_IPTABLES_LOG"], "a") as log:
    log.write(" ".join(args) + "\n")
if "-C" in args:
    sys.exit(0 if " ".join(args) in os.environ.get("FAKE_IPTABLES_HAS", "").split("|") else 1)
"""


class FakeRunner:
    """Stands in for the SSH runner: answers commands from rules, serves role facts, records everything.

    - ``on(needle, stdout, exited)`` (or ``on(needle, fn)`` with ``fn(host, command, stdin) -> Result``):
      the first rule whose needle is in the command answers it; ``on_host`` limits a rule to one host;
    - ``fact(host, role, data)``: what ``cat /etc/ansible/facts.d/<role>.fact`` prints on host (a fact
      not given is missing: ``cat`` exits 1);
    - any other command fails the test (``strict``), or exits 1 with ``strict=False``.
    ``calls`` lists (host, command, stdin); ``files`` maps (host, path) to what put_text wrote.
    """

    def __init__(self) -> None:
        self.rules: list[tuple[str, str | None, Answer]] = []
        self.facts: dict[tuple[str, str], Any] = {}
        self.calls: list[tuple[str, str, str | None]] = []
        self.files: dict[tuple[str, str], str] = {}
        self.strict = True

    def on(self, needle: str, answer: Answer | str = "", exited: int = 0, on_host: str | None = None) -> FakeRunner:
        if isinstance(answer, str):
            answer = Result(needle, exited, answer, "")
        self.rules.append((needle, on_host, answer))
        return self

    def fact(self, host: str, role: str, data: Any) -> FakeRunner:
        self.facts[(host, role)] = data
        return self

    def commands(self, host: str | None = None) -> list[str]:
        return [cmd for h, cmd, _stdin in self.calls if host is None or h == host]

    def run(self, host: str, command: str, timeout: float = 120, stdin: str | None = None) -> Result:
        self.calls.append((host, command, stdin))
        if command.startswith(f"cat {FACTS_DIR}/") and command.endswith(".fact"):
            role = command.rsplit("/", 1)[1].removesuffix(".fact")
            if (host, role) not in self.facts:
                return Result(command, 1, "", f"cat: {command[4:]}: No such file or directory")
            data = self.facts[(host, role)]
            return Result(command, 0, data if isinstance(data, str) else json.dumps(data), "")
        for needle, only, answer in self.rules:
            if needle in command and only in (None, host):
                if isinstance(answer, Result):
                    return Result(command, answer.exited, answer.stdout, answer.stderr)
                return answer(host, command, stdin)
        if self.strict:
            raise AssertionError(f"unexpected command on {host}: {command}")
        return Result(command, 1, "", "not found")

    def put_text(self, host: str, text: str, path: str, mode: int = 0o644) -> None:
        self.files[(host, path)] = text

    def close(self) -> None:
        pass


class MakeCtx(Protocol):
    def __call__(
        self,
        groups: dict[str, list[str]],
        addresses: dict[str, dict[str, str]],
        hostvars: dict[str, dict[str, Any]] | None = None,
    ) -> Context: ...


@pytest.fixture
def runner() -> FakeRunner:
    return FakeRunner()


@pytest.fixture
def make_ctx(runner: FakeRunner) -> MakeCtx:
    """A smoke Context of a lab with these groups and addresses, run by the `runner` fixture
    (group "all" is every host, in address order, unless given)."""

    def make(
        groups: dict[str, list[str]],
        addresses: dict[str, dict[str, str]],
        hostvars: dict[str, dict[str, Any]] | None = None,
    ) -> Context:
        groups = {"all": list(addresses), **groups}
        hv = {h: dict((hostvars or {}).get(h, {})) for h in addresses}
        return Context("t", groups, addresses, hv, runner)

    return make


def _trusted(value: Any) -> Any:
    if isinstance(value, str):
        return trust_as_template(value)
    if isinstance(value, dict):
        return {k: _trusted(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trusted(v) for v in value]
    return value


def role_fact(role: str, host_vars: dict[str, Any], **role_vars: Any) -> dict[str, Any]:
    """The fact a role writes on a host (roles/<role>/templates/etc/ansible/facts.d/<role>.fact.j2)
    rendered by Ansible's templar with the role's defaults and vars, the values its tasks set_fact at
    top level (lazily, as Ansible would), the host's inventory vars and role_vars (set by the user)."""
    role_dir = paths.ROLES_DIR / role
    variables: dict[str, Any] = {}
    for name in ("defaults/main.yml", "vars/main.yml"):
        if (role_dir / name).is_file():
            variables.update(_trusted(yaml.safe_load((role_dir / name).read_text()) or {}))
    for tasks in sorted((role_dir / "tasks").glob("*.yml")):
        for task in yaml.safe_load(tasks.read_text()) or []:
            facts = task.get("ansible.builtin.set_fact")
            if isinstance(facts, dict) and "loop" not in task:
                variables.update(_trusted(facts))
    variables.update(host_vars)
    variables.update(_trusted(role_vars))
    source = (role_dir / "templates" / "etc" / "ansible" / "facts.d" / f"{role}.fact.j2").read_text()
    text = Templar(loader=DataLoader(), variables=variables).template(trust_as_template(source))
    fact: dict[str, Any] = json.loads(text)
    return fact


def lab_host_vars(host: str, groups: dict[str, list[str]], addresses: dict[str, dict[str, str]]) -> dict[str, Any]:
    """The inventory vars labctl gives a host (the labctl_* ones Ansible's templates use)."""
    mine = addresses[host]
    return {
        "inventory_hostname": host,
        "ansible_host": next(iter(mine.values())),
        "group_names": sorted(g for g, members in groups.items() if host in members),
        "groups": {"all": list(addresses), **groups},
        "labctl_address": next(iter(mine.values())),
        "labctl_addresses": mine,
        "labctl_hosts": addresses,
        "labctl_networks": {},
        "labctl_state_dir": "/root/.local/state/labctl/t",
        "playbook_dir": str(paths.PROJECT_DIR / "playbooks"),
    }
