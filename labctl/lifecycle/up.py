"""Bringing a lab up: reconcile its hosts with the topology, put the lab's key in, wait for SSH, converge.

Also restart (a host stopped and started as a reboot would) and the checks `up` makes before anything is made."""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import paths
from labctl.access import control_dir
from labctl.access.remote import wait_for_ssh
from labctl.errors import LabError
from labctl.lifecycle.converge import converge_changed, refuse_changed_keys
from labctl.lifecycle.model import Lab
from labctl.lifecycle.parallel import Say, in_parallel, quiet
from labctl.providers import UP_STATES, HostInfo, NetworkSpec
from labctl.provisioning import fingerprint, inventory
from labctl.provisioning.ansible_run import PlaybookRun, Progress
from labctl.state import all_labs, usable_dir, write_atomic
from labctl.topology import check_overlaps, check_reserved

SSH_TIMEOUT = 90.0
LIVENESS_EVERY = 2.0  # seconds between looks at the hosts' states while waiting for SSH


@dataclass
class UpReport:
    lab: str
    timings: dict[str, float] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    repaired: list[str] = field(default_factory=list)  # existing hosts given a new key (state was lost)
    converge: PlaybookRun | None = None
    todo: dict[str, fingerprint.HostPlan] = field(default_factory=dict)  # host -> roles run and why
    phases: dict[str, float] = field(default_factory=dict)  # the parts of timings["hosts"]
    fresh_key: bool = False  # the lab's SSH key was made by this up (its state was lost, or a new lab)


@dataclass(frozen=True)
class Plan:
    """What reconciling a lab's hosts with its topology does."""

    remove: list[str]  # hosts that exist but are no longer in the topology
    create: list[str]  # hosts in the topology that do not exist
    start: list[str]  # hosts that exist but are not running

    @property
    def empty(self) -> bool:
        return not (self.remove or self.create or self.start)


def plan(wanted: list[str], existing: dict[str, HostInfo]) -> Plan:
    """Compare the topology's hosts (in order) with what the providers have."""
    return Plan(
        remove=[h for h in existing if h not in wanted],
        create=[h for h in wanted if h not in existing],
        start=[h for h in wanted if h in existing and existing[h].state not in UP_STATES],
    )


class _Liveness:
    """The lab's host states, looked up at most every LIVENESS_EVERY seconds for all waiting threads."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.lock = threading.Lock()
        self.seen: dict[str, str] = {}
        self.when = 0.0

    def alive(self, host: str, fresh: bool = False) -> bool:
        with self.lock:
            if fresh or time.monotonic() - self.when > LIVENESS_EVERY:
                self.seen = {h: i.state for h, i in self.lab.live().items()}
                self.when = time.monotonic()
            return self.seen.get(host) in UP_STATES


def exited(lab: Lab, host: str) -> LabError:
    """The error for a host that stopped while starting: its exit code and the end of its console."""
    provider = lab.provider_for(host)
    code = provider.exit_code(lab.name, host)
    console = provider.console(lab.name, host).splitlines()[-15:]
    tail = "\n".join(f"    {line}" for line in console) or "    (the console is empty)"
    return LabError(
        f"host {host!r} exited during start (exit code {code}); the last lines of its console:\n{tail}\n"
        "Fix: correct what the console names (e.g. 'Too many open files': raise fs.inotify.max_user_instances), "
        "then run 'labctl up' again; it starts the stopped hosts."
    )


def _wait_ready(lab: Lab, host: str, after: str = "", watch: _Liveness | None = None) -> None:
    """Wait for the host's SSH; a host that exits meanwhile is named with its console, at once."""
    watch = watch or _Liveness(lab)
    addr = lab.address(host)
    if not wait_for_ssh(addr, SSH_TIMEOUT, alive=lambda: watch.alive(host)):
        if not watch.alive(host, fresh=True):
            raise exited(lab, host)
        raise LabError(f"SSH on {addr} did not answer within {SSH_TIMEOUT:.0f} s{after}")


def authorize(lab: Lab, hosts: list[str]) -> None:
    """Put the lab's public key into running hosts through their provider (not over SSH)."""
    pubkey = lab.state.pubkey.read_text()

    def put(h: str) -> None:
        try:
            lab.provider_for(h).authorize(lab.name, h, pubkey)
        except LabError:
            info = lab.live().get(h)
            if info is None or info.state not in UP_STATES:
                raise exited(lab, h) from None
            raise

    in_parallel(put, hosts)


def check_settings(lab: Lab) -> None:
    """The environment variables `up` reads later, checked before anything is made (one LabError each)."""
    if os.environ.get("LABCTL_RUNTIME_DIR"):
        usable_dir(control_dir.runtime_root(), "LABCTL_RUNTIME_DIR")
    control_dir.control_path_dir(lab.state)  # LABCTL_RUNTIME_DIR short enough for SSH's control sockets
    inventory.strategy_lines()  # LABCTL_STRATEGY (a provider's own variables: its prepare checks them)


def check_networks(lab: Lab) -> None:
    """Refuse subnets that overlap another lab's (from state and from the providers), or what the
    providers find on the host that is no lab's (other podman networks, the host's routes)."""
    others = {name: data.get("networks", {}) for name, data in all_labs().items()}
    for name in lab.providers():
        for other, nets in lab.backend(name).networks().items():
            others.setdefault(other, {}).update(nets)
    check_overlaps(lab.topo, others)
    for name in lab.providers():
        check_reserved(lab.topo, lab.backend(name).reserved())


def check_names(lab: Lab) -> None:
    """Refuse, before anything is made, a host or network name another lab (or no lab) already holds."""
    for name, specs in lab.providers().items():
        lab.backend(name).check_names(lab.name, [s.name for s in specs], list(lab.topo.networks))


def create_networks(lab: Lab) -> None:
    subnets = [str(n.subnet) for n in lab.topo.networks.values()]
    for name in lab.providers():
        provider = lab.backend(name)
        for net in lab.topo.networks.values():
            provider.create_network(NetworkSpec(lab.name, net.name, str(net.subnet)))
        provider.link_networks(lab.name, subnets)


def reconcile(lab: Lab, say: Say = quiet) -> Plan:
    """Make the providers' hosts match the topology: remove stale, create missing, start stopped."""
    todo = plan(list(lab.topo.hosts), lab.live())
    if todo.remove:
        say(f"removing {len(todo.remove)} host(s) no longer in the topology: {', '.join(todo.remove)}")
        in_parallel(lambda h: _destroy_stale(lab, h), todo.remove)
    if todo.create:
        say(f"creating {len(todo.create)} host(s): {', '.join(todo.create)}")

        def create(h: str) -> None:
            provider = lab.provider_for(h)
            if provider.create(lab.spec(h)) is not True:  # True: created and started at once
                provider.start(lab.name, h)

        in_parallel(create, todo.create)
    if todo.start:
        say(f"starting {len(todo.start)} stopped host(s): {', '.join(todo.start)}")
        in_parallel(lambda h: lab.provider_for(h).start(lab.name, h), todo.start)
    return todo


def _destroy_stale(lab: Lab, host: str) -> None:
    """A host no longer in the topology: every provider of the lab removes it if it has it."""
    for name in lab.providers():
        provider = lab.backend(name)
        if host in provider.list(lab.name, []):
            provider.destroy(lab.name, host)


def _no_progress(_event: Any) -> None:
    return None


@dataclass(frozen=True)
class UpOptions:
    """How `up` runs (the keywords of :func:`up`).

    lock_text: hold the lab to this lock (`up --locked`): it is kept in the state and every converge pins
    its versions; unlock: converge without pins (a plain `up`); neither: as the state says (`provision`).
    before_converge runs once every host answers SSH, before Ansible changes anything (the locked
    versions' availability check). Only the roles whose inputs changed since the last successful converge
    run (see labctl.provisioning.fingerprint); ``force`` (the reason, e.g. "provision") runs every role on every
    host."""

    converge: bool = True
    progress: Progress = _no_progress
    playbook: Path | None = None
    lock_text: str | None = None
    unlock: bool = False
    before_converge: Callable[[Lab], None] | None = None
    force: str = ""


def up(lab: Lab, say: Say = quiet, options: UpOptions | None = None, **keywords: Any) -> UpReport:
    """Create/start the hosts, converge, record the state; options (or the same as keywords): see UpOptions."""
    opts = dataclasses.replace(options or UpOptions(), **keywords)
    report = UpReport(lab.name)
    with lab.state.locked():
        before = _prepare(lab, opts, say, report)
        _bring_up_hosts(lab, say, report)
        _before_converge(lab, opts, before)
        if opts.converge and not _converge(lab, opts, say, report):
            return report
        lab.save("up")
    return report


def _prepare(lab: Lab, opts: UpOptions, say: Say, report: UpReport) -> str:
    """The checks before anything is made, the providers' preparation, the key; the phase the lab had."""
    check_networks(lab)
    check_names(lab)
    check_settings(lab)
    t0 = time.monotonic()
    for name, specs in lab.providers().items():
        lab.backend(name).prepare(specs, say)  # host limits, the image: before anything is made
    report.timings["image"] = time.monotonic() - t0
    before = str(lab.state.read().get("phase", "")) if lab.state.exists() else ""
    report.fresh_key = lab.state.ensure_keypair()
    if opts.unlock:
        lab.extra["locked"] = False
    lab.save("creating")
    return before


class _Phases:
    """The time each part of bringing the hosts up took (report.phases)."""

    def __init__(self, report: UpReport) -> None:
        self.report = report
        self.start = self.mark = time.monotonic()

    def __call__(self, name: str) -> None:
        now = time.monotonic()
        self.report.phases[name] = now - self.mark
        self.mark = now


def _bring_up_hosts(lab: Lab, say: Say, report: UpReport) -> None:
    """Networks, hosts made or started, the lab's key in every host that lacks it, the inventory, SSH."""
    phase = _Phases(report)
    create_networks(lab)
    phase("networks")
    todo = reconcile(lab, say)
    phase("create+start")
    report.created, report.started, report.removed = todo.create, todo.start, todo.remove
    for h in todo.create:  # made again: whatever key its address had is not its key
        lab.forget_host_key(h)
    if report.fresh_key:
        report.repaired = [h for h in lab.topo.hosts if h not in todo.create]
    if report.repaired:
        say(
            f"the lab's state was lost (a new SSH key was made): putting the new key into "
            f"{len(report.repaired)} existing host(s) through their provider"
        )
    # a new host that took the key at creation needs no second step (one podman exec per host)
    given = [h for h in todo.create if lab.provider_for(h).key_at_create(lab.spec(h))]
    authorize(lab, [h for h in todo.create if h not in given] + report.repaired)
    phase("keys")
    lab.write_config()
    phase("inventory")
    say("waiting for SSH on every host")
    watch = _Liveness(lab)
    in_parallel(lambda h: _wait_ready(lab, h, watch=watch), list(lab.topo.hosts))
    in_parallel(lab.learn_host_key, list(lab.topo.hosts))
    phase("ssh")
    report.timings["hosts"] = time.monotonic() - phase.start


def _before_converge(lab: Lab, opts: UpOptions, before: str) -> None:
    """The caller's check before Ansible runs (the lab is left as it was when it fails), then the lock."""
    if opts.before_converge is not None:
        try:
            opts.before_converge(lab)
        except LabError:  # nothing was converged: the lab is as it was
            lab.save(before if before in ("up", "failed") else "created")
            raise
    if opts.lock_text is not None:  # held to this lock from now on: the inventory gets its pins
        write_atomic(lab.lock_copy, opts.lock_text, 0o600)
        lab.extra["locked"] = True
        lab.write_config()


def _converge(lab: Lab, opts: UpOptions, say: Say, report: UpReport) -> bool:
    """Run what changed; False (the phase saved "failed") when the playbook failed."""
    t0 = time.monotonic()
    playbook = opts.playbook or paths.SITE_PLAYBOOK
    report.converge, report.todo = converge_changed(lab, playbook, opts.force, say, opts.progress)
    report.timings["converge"] = time.monotonic() - t0
    if report.converge is not None and not report.converge.ok:
        lab.save("failed")
        refuse_changed_keys(lab, report.converge)
        return False
    return True


def restart(lab: Lab, hosts: list[str], say: Say = quiet) -> None:
    """Stop and start hosts (as a reboot would) and wait until SSH answers again."""
    for host in hosts:
        lab.require_host(host, "restart")
    with lab.state.locked():
        say(f"restarting {', '.join(hosts)}")

        def cycle(h: str) -> None:
            provider = lab.provider_for(h)
            provider.stop(lab.name, h)
            provider.start(lab.name, h)
            _wait_ready(lab, h, " after the restart")

        in_parallel(cycle, hosts)
