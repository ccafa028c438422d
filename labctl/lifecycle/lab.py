"""Lab lifecycle: reconcile hosts with the topology, converge with Ansible, tear down.

A :class:`Lab` is a topology with its state and the providers its hosts run on. This module talks to
providers through their interface only; it never shells out to podman and never asks what a host is."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import paths, yamlload
from labctl.access import control_dir, hostkeys
from labctl.access.remote import FabricRunner, Target, wait_for_ssh
from labctl.errors import Interrupted, LabError
from labctl.lifecycle.state import LabState, all_labs, state_root, usable_dir, write_atomic
from labctl.names import validate_lab_name
from labctl.netops import hostnet, iptables
from labctl.providers import HostInfo, HostSpec, NetworkSpec, Provider, get_provider, provider_names, teardown_order
from labctl.provisioning import fingerprint, inventory, inventory_vars
from labctl.provisioning.ansible_run import PlaybookRun, Progress, run_playbook
from labctl.topology import Topology, check_overlaps, load, parse, read_raw

SSH_TIMEOUT = 90.0
LIVENESS_EVERY = 2.0  # seconds between looks at the hosts' states while waiting for SSH
# the lab's own inventory.yml (labctl wrote it): bytes and expanded values it may hold
OWN_FILE_BOUNDS = (64 * 1024 * 1024, 20_000_000)
KEPT = ("locked", "restored", "images")  # state.json keys a Lab carries from one save to the next
WORKERS = 8  # hosts created, started, waited for at once (16 measured no faster on 2 cores)
Say = Callable[[str], None]


def _quiet(_message: str) -> None:
    return None


def _no(_spec: HostSpec) -> bool:
    return False


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
        start=[h for h in wanted if h in existing and existing[h].state not in ("running", "static")],
    )


class Lab:
    """One lab: its topology, its state on this machine, and a provider per host."""

    def __init__(self, topo: Topology, state: LabState | None = None) -> None:
        self.topo = topo
        self.state = state or LabState(topo.name)
        self._providers: dict[str, Provider] = {}
        # what state.json keeps across saves: "locked" (pins applied), "restored" (from an archive),
        # "images" (host -> the image a restored host is made from)
        self.extra: dict[str, Any] = {}
        if self.state.exists():
            with contextlib.suppress(LabError):
                old = self.state.read()
                self.extra = {k: old[k] for k in KEPT if k in old}

    @property
    def lock_copy(self) -> Path:
        """The lock the lab is held to (kept by `up --locked` and by a restore)."""
        return self.state.dir / "lab.lock"

    def pins(self) -> dict[str, dict[str, Any]]:
        """host -> common's pin variables, when the lab is locked (`up --locked`)."""
        if not self.extra.get("locked") or not self.lock_copy.exists():
            return {}
        from labctl.reproduce import lockfile  # the format module; imported here to keep lab.py's imports one-way

        held = lockfile.read(self.lock_copy)
        return {h: held.pins(h) for h in self.topo.hosts if h in held.hosts}

    def labctl_vars(self) -> dict[str, dict[str, Any]]:
        """host -> labctl's own inventory variables: the pins of a locked lab, and on a restored lab
        labctl_apt_refresh false (roles keep the apt lists it was saved with: they hold every version it
        runs, however old they are, and a restored lab may have no package source)."""
        out = self.pins()
        if self.extra.get("restored"):
            for host in self.topo.hosts:
                out.setdefault(host, {})["labctl_apt_refresh"] = False
        return out

    @property
    def name(self) -> str:
        return self.topo.name

    def provider_for(self, host: str) -> Provider:
        return self.backend(self.topo.hosts[host].provider)

    def backend(self, name: str) -> Provider:
        """The provider instance of this name (one per lab object)."""
        if name not in self._providers:
            self._providers[name] = get_provider(name)
        return self._providers[name]

    def providers(self) -> dict[str, list[HostSpec]]:
        """Provider name -> the specs of the hosts it runs, in topology order."""
        out: dict[str, list[HostSpec]] = {}
        for name, host in self.topo.hosts.items():
            out.setdefault(host.provider, []).append(self.spec(name))
        return out

    def spec(self, host: str) -> HostSpec:
        h = self.topo.hosts[host]
        return HostSpec(
            lab=self.name,
            name=host,
            networks=dict(h.addresses),
            image=(self.extra.get("images") or {}).get(host) or self.topo.image,
            extra_hosts={o: a for o in self.topo.hosts if o != host and (a := self.topo.reach(host, o)) is not None},
            address=h.address,
            user=h.user,
            authorized_key=self.state.pubkey.read_text() if self.state.pubkey.exists() else "",
            options=dict(h.vm),
        )

    def address(self, host: str) -> str:
        """Where labctl reaches the host (SSH)."""
        return self.provider_for(host).address(self.spec(host))

    def addresses(self) -> dict[str, str]:
        return {h: self.address(h) for h in self.topo.hosts}

    def require_host(self, host: str, what: str) -> None:
        """Fail with one clear error when a command names a host the lab does not have."""
        if host not in self.topo.hosts:
            raise LabError(
                f"{what}: no host {host!r} in lab {self.name!r}. Fix: use one of: {', '.join(self.topo.hosts)}."
            )

    def live(self) -> dict[str, HostInfo]:
        """Every host the providers have for this lab (stale ones included), by name."""
        out: dict[str, HostInfo] = {}
        for name, specs in self.providers().items():
            out.update(self.backend(name).list(self.name, specs))
        return out

    def runner(self) -> FabricRunner:
        self.ensure_host_keys()
        targets = {}
        for name, host in self.topo.hosts.items():
            key = str(Path(host.key).expanduser()) if host.key else str(self.state.key)
            changed = str(hostkeys.changed(self.name, name, host.provider, self.state.known_hosts))
            targets[name] = Target(name, self.address(name), host.user, key, str(self.state.known_hosts), changed)
        return FabricRunner(targets)

    def learn_host_key(self, host: str, again: bool = False) -> None:
        """Put the host's SSH host key into the lab's known_hosts unless it is there (again: replace it).

        The key comes from the host's provider, never from an SSH connection to a host labctl made (podman
        reads the container's files, qemu made the key itself); a host no provider can ask (static) is
        trusted on first use: ssh-keyscan, bounded, and checked on every later connection."""
        path, address = self.state.known_hosts, self.address(host)
        if not again and hostkeys.known(path, address):
            return
        read = getattr(self.provider_for(host), "host_keys", None)
        if read is None:
            keys = hostkeys.keyscan(address)
        else:
            keys = hostkeys.parse_keys(read(self.name, host), f"host {host!r} of lab {self.name!r}")
        hostkeys.learn(path, address, keys)

    def forget_host_key(self, host: str) -> bool:
        """Drop the host's entry from the lab's known_hosts (`labctl forget-key`, a re-created host)."""
        return hostkeys.forget(self.state.known_hosts, self.address(host))

    def refuse_changed_key(self, host: str) -> None:
        """After ssh failed to connect (exit 255): the changed-key error when the key the host serves now is not
        the one learnt (ssh-keyscan, only to compare); nothing when it is, or when the host cannot be asked."""
        known = hostkeys.known(self.state.known_hosts, self.address(host))
        if not known:
            return
        try:
            served = hostkeys.keyscan(self.address(host), timeout=5)
        except LabError:
            return
        if not set(served) & set(known):
            raise hostkeys.changed(self.name, host, self.topo.hosts[host].provider, self.state.known_hosts)

    def ensure_host_keys(self) -> None:
        """Learn the keys the lab's known_hosts lacks (a lab made by an older labctl, a forgotten static host's
        key); a host that cannot be asked now stays unknown, and connecting to it is refused."""
        for host in self.topo.hosts:
            with contextlib.suppress(LabError):
                self.learn_host_key(host)

    def write_config(self) -> None:
        control_dir.ensure_control_dir(self.state)
        user = inventory_vars.load()
        proxies: dict[str, str] = {}
        for name, specs in self.providers().items():
            # optional in the provider contract: a backend whose hosts can use the shared package cache
            find = getattr(self.backend(name), "package_proxies", None)
            if find is not None:
                proxies.update(find(specs))
        text = inventory.render(self.topo, self.state, self.addresses(), user, self.labctl_vars(), proxies)
        write_atomic(self.state.inventory, text)
        write_atomic(self.state.ansible_cfg, inventory.render_cfg(self.state, forks=max(10, len(self.topo.hosts))))

    def save(self, phase: str) -> None:
        topo = self.topo
        raw = read_raw(topo.path) if topo.path.exists() else {}
        if not isinstance(raw, dict):
            raw = {}
        raw["name"] = topo.name
        self.state.write(
            {
                "name": topo.name,
                "phase": phase,
                "provider": topo.provider,
                "topology_file": str(topo.path.resolve()),
                "topology": raw,
                "networks": {n.name: str(n.subnet) for n in topo.networks.values()},
                "updated": time.time(),
                **self.extra,
                "converged": self.state.read().get("converged", {}),
            }
        )

    def identities(self) -> dict[str, str]:
        """Host -> what makes it this host: its provider's id (a recreated container gets a new one)."""
        live = self.live()
        out = {}
        for host in self.topo.hosts:
            info = live.get(host)
            ident = info.id if info and info.id else ""
            out[host] = f"{self.topo.hosts[host].provider}:{ident or self.address(host)}"
        return out

    def converged(self) -> dict[str, fingerprint.Fingerprint | None]:
        """What went into each host's last successful converge (from the lab's state)."""
        data = self.state.read().get("converged") or {}
        return {h: fingerprint.Fingerprint.from_json(v) for h, v in data.items()}

    def record_converged(self, fps: dict[str, fingerprint.Fingerprint], ok: list[str], failed: list[str]) -> None:
        """Keep the fingerprints of the hosts that converged; forget those that failed (they run again)."""
        data = self.state.read()
        done = {h: v for h, v in (data.get("converged") or {}).items() if h in self.topo.hosts and h not in failed}
        done.update({h: fps[h].to_json() for h in ok})
        data["converged"] = done
        self.state.write(data)


def resolve(file: str | None, name: str | None) -> tuple[Topology | None, LabState]:
    """The lab a command acts on: -f FILE, else --name NAME (from its state), else the default lab."""
    if name is not None:
        validate_lab_name(name, "--name")
    if file is not None or name is None:
        topo = load(file or paths.DEFAULT_LAB, paths.known_groups())
        if name is not None:
            topo.name = name
        return topo, LabState(topo.name)
    state = LabState(name)
    data = state.read()
    if not data:
        return None, state
    return parse(data["topology"], Path(data["topology_file"]), paths.known_groups()), state


def require(topo: Topology | None, state: LabState) -> Lab:
    """The running lab a command acts on; one clear error when it is not up."""
    if topo is None or not state.exists():
        raise LabError(
            f"no lab named {state.name!r} is up. Fix: start it with 'labctl up -f LAB.yml', "
            "or name a running lab (see 'labctl status --all')."
        )
    return Lab(topo, state)


def _parallel(fn: Callable[[str], None], hosts: list[str]) -> None:
    """Run fn for every host at once (at most 8 at a time); raise one error naming every host that failed.

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
            return self.seen.get(host) in ("running", "static")


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
            if info is None or info.state not in ("running", "static"):
                raise exited(lab, h) from None
            raise

    _parallel(put, hosts)


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
        hostnet.check_reserved(lab.topo, lab.backend(name).reserved())


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


def reconcile(lab: Lab, say: Say = _quiet) -> Plan:
    """Make the providers' hosts match the topology: remove stale, create missing, start stopped."""
    todo = plan(list(lab.topo.hosts), lab.live())
    if todo.remove:
        say(f"removing {len(todo.remove)} host(s) no longer in the topology: {', '.join(todo.remove)}")
        _parallel(lambda h: _destroy_stale(lab, h), todo.remove)
    if todo.create:
        say(f"creating {len(todo.create)} host(s): {', '.join(todo.create)}")

        def create(h: str) -> None:
            provider = lab.provider_for(h)
            if provider.create(lab.spec(h)) is not True:  # True: created and started at once
                provider.start(lab.name, h)

        _parallel(create, todo.create)
    if todo.start:
        say(f"starting {len(todo.start)} stopped host(s): {', '.join(todo.start)}")
        _parallel(lambda h: lab.provider_for(h).start(lab.name, h), todo.start)
    return todo


def _destroy_stale(lab: Lab, host: str) -> None:
    """A host no longer in the topology: every provider of the lab removes it if it has it."""
    for name in lab.providers():
        provider = lab.backend(name)
        if host in provider.list(lab.name, []):
            provider.destroy(lab.name, host)


def up(
    lab: Lab,
    say: Say = _quiet,
    converge: bool = True,
    progress: Progress = lambda _e: None,
    playbook: Path | None = None,
    lock_text: str | None = None,
    unlock: bool = False,
    before_converge: Callable[[Lab], None] | None = None,
    force: str = "",
) -> UpReport:
    """Create/start the hosts, converge, record the state.

    lock_text: hold the lab to this lock (`up --locked`): it is kept in the state and every converge pins
    its versions; unlock: converge without pins (a plain `up`); neither: as the state says (`provision`).
    before_converge runs once every host answers SSH, before Ansible changes anything (the locked
    versions' availability check). Only the roles whose inputs changed since the last successful converge
    run (see labctl.provisioning.fingerprint); ``force`` (the reason, e.g. "provision") runs every role on every
    host."""
    report = UpReport(lab.name)
    with lab.state.locked():
        check_networks(lab)
        check_names(lab)
        check_settings(lab)
        t0 = time.monotonic()
        for name, specs in lab.providers().items():
            lab.backend(name).prepare(specs, say)  # host limits, the image: before anything is made
        report.timings["image"] = time.monotonic() - t0
        before = str(lab.state.read().get("phase", "")) if lab.state.exists() else ""
        fresh_key = lab.state.ensure_keypair()
        if unlock:
            lab.extra["locked"] = False
        lab.save("creating")

        t0 = mark = time.monotonic()

        def phase(name: str) -> None:
            nonlocal mark
            now = time.monotonic()
            report.phases[name] = now - mark
            mark = now

        create_networks(lab)
        phase("networks")
        todo = reconcile(lab, say)
        phase("create+start")
        report.created, report.started, report.removed = todo.create, todo.start, todo.remove
        for h in todo.create:  # made again: whatever key its address had is not its key
            lab.forget_host_key(h)
        if fresh_key:
            report.repaired = [h for h in lab.topo.hosts if h not in todo.create]
        if report.repaired:
            say(
                f"the lab's state was lost (a new SSH key was made): putting the new key into "
                f"{len(report.repaired)} existing host(s) through their provider"
            )
        # a new host that took the key at creation needs no second step (one podman exec per host)
        given = [h for h in todo.create if getattr(lab.provider_for(h), "key_at_create", _no)(lab.spec(h))]
        authorize(lab, [h for h in todo.create if h not in given] + report.repaired)
        phase("keys")
        lab.write_config()
        phase("inventory")
        say("waiting for SSH on every host")
        watch = _Liveness(lab)
        _parallel(lambda h: _wait_ready(lab, h, watch=watch), list(lab.topo.hosts))
        _parallel(lab.learn_host_key, list(lab.topo.hosts))
        phase("ssh")
        report.timings["hosts"] = time.monotonic() - t0
        if before_converge is not None:
            try:
                before_converge(lab)
            except LabError:  # nothing was converged: the lab is as it was
                lab.save(before if before in ("up", "failed") else "created")
                raise
        if lock_text is not None:  # held to this lock from now on: the inventory gets its pins
            write_atomic(lab.lock_copy, lock_text, 0o600)
            lab.extra["locked"] = True
            lab.write_config()

        if converge:
            t0 = time.monotonic()
            report.converge, report.todo = converge_changed(lab, playbook or paths.SITE_PLAYBOOK, force, say, progress)
            report.timings["converge"] = time.monotonic() - t0
            if report.converge is not None and not report.converge.ok:
                lab.save("failed")
                refuse_changed_keys(lab, report.converge)
                return report
        lab.save("up")
    return report


def refuse_changed_keys(lab: Lab, run: PlaybookRun) -> None:
    """Ansible (ssh or mitogen) found a host whose key is not the one learnt: that error, not its unreachable output."""
    hosts = sorted({f.host for f in run.failures if f.host in lab.topo.hosts and hostkeys.says_mismatch(f.msg)})
    if hosts:
        errors = [str(hostkeys.changed(lab.name, h, lab.topo.hosts[h].provider, lab.state.known_hosts)) for h in hosts]
        raise LabError("\n".join(errors))


def converge_changed(
    lab: Lab, playbook: Path, force: str, say: Say, progress: Progress
) -> tuple[PlaybookRun | None, dict[str, fingerprint.HostPlan]]:
    """Run the playbook for what changed since the last successful converge (all of it when forced);
    no ansible-playbook at all when nothing did. Records what each host converged from."""
    inv = yamlload.load(lab.state.inventory.read_text(), str(lab.state.inventory), *OWN_FILE_BOUNDS)
    new = fingerprint.fingerprints(playbook, paths.ROLES_DIR, inv, lab.identities())
    todo = fingerprint.full_plan(new, force) if force else fingerprint.plan(lab.converged(), new)
    if not todo:
        say(f"converge: nothing changed since the last converge of {len(new)} host(s); ansible-playbook not run")
        return None, todo
    for line in fingerprint.describe(todo):
        say(f"converge {line}")
    book, env = playbook, {}
    if not force and (set(todo) != set(new) or any(hp.roles.keys() != new[h].roles.keys() for h, hp in todo.items())):
        book = lab.state.dir / "converge-changed.yml"
        write_atomic(book, fingerprint.partial_playbook(playbook, todo, list(lab.topo.hosts)))
        env["ANSIBLE_ROLES_PATH"] = fingerprint.roles_path(playbook, paths.ROLES_DIR)
    run = run_playbook(lab.state, book, progress=progress, env=env)
    failed = sorted({f.host for f in run.failures})
    ok = [h for h in new if h not in failed] if run.ok or failed else []
    lab.record_converged(new, ok, failed if failed or run.ok else list(todo))
    return run, todo


def down(name: str, say: Say = _quiet) -> list[str]:
    """Remove every host, network, key, state file and control socket directory of the lab; error if
    nothing was there.

    Every provider is asked: each finds its own resources by the lab's label, so this works from the
    name alone, whatever the state file says. Stopped midway (Ctrl-C, an error), it says what is left
    and that running it again finishes."""
    state = LabState(validate_lab_name(name, "--name"))
    with state.locked():
        removed: list[str] = []
        had_state = state.dir.exists()
        try:
            for provider_name in teardown_order():
                removed += get_provider(provider_name).destroy_lab(name)
            if control_dir.remove_control_dir(state):
                removed.append("SSH control socket directory")
            state.remove()
        except KeyboardInterrupt:
            raise Interrupted(_unfinished(name, state, "was interrupted")) from None
        except LabError as exc:
            raise LabError(_unfinished(name, state, f"stopped: {exc}")) from None
    if not removed and not had_state:
        raise LabError(
            f"no lab named {name!r}: nothing to remove (no containers, networks or state). "
            "Fix: check the name with 'labctl status --all'."
        )
    return removed


def leftovers(name: str, state: LabState) -> list[str]:
    """What of the lab is still there: hosts, networks, the control socket directory, the state."""
    left = []
    hosts: set[str] = set()
    nets: set[str] = set()
    for provider_name in provider_names():
        provider = get_provider(provider_name)
        try:
            hosts |= set(provider.list(name))
            nets |= set(provider.networks(name).get(name, {}))
        except LabError:
            left.append(f"possibly hosts and networks ({provider_name} did not answer)")
    if hosts:
        left.append(f"{len(hosts)} host(s) ({', '.join(sorted(hosts))})")
    if nets:
        left.append(f"{len(nets)} network(s) ({', '.join(sorted(nets))})")
    for provider_name in teardown_order():
        with contextlib.suppress(LabError):
            left += get_provider(provider_name).remains(name)
    if control_dir.control_path_dir(state).exists():
        left.append(f"the SSH control socket directory {control_dir.control_path_dir(state)}")
    if state.dir.exists():
        left.append(f"the state directory {state.dir}")
    return left


def _unfinished(name: str, state: LabState, how: str) -> str:
    return (
        f"'down' of lab {name!r} {how}. Left: {'; '.join(leftovers(name, state)) or 'nothing that labctl can see'}. "
        f"Fix: run 'labctl down --name {name}' again; it removes what is left."
    )


def restart(lab: Lab, hosts: list[str], say: Say = _quiet) -> None:
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

        _parallel(cycle, hosts)


def status(lab: Lab) -> list[dict[str, Any]]:
    live = lab.live()
    rows = []
    for host in lab.topo.hosts.values():
        info = live.get(host.name)
        addresses = dict(host.addresses) or ({"ssh": host.address} if host.address else {})
        row: dict[str, Any] = {
            "name": host.name,
            "groups": list(host.groups),
            "addresses": addresses,
            "state": info.state if info else "missing",
            "provider": host.provider,
        }
        if info and info.details:
            row.update(info.details)
        rows.append(row)
    return rows


def all_up(rows: list[dict[str, Any]]) -> bool:
    """True when every host of a status listing is running (or a static host)."""
    return all(r["state"] in ("running", "static") for r in rows)


def all_lab_rows() -> list[dict[str, Any]]:
    """Every lab, found by its state and by its labels: a lab with containers but no state, or with a
    damaged state file, is listed with its problem, never hidden."""
    labs = all_labs()
    found: dict[str, dict[str, list[str]]] = {}
    for provider_name in provider_names():
        try:
            for name, res in get_provider(provider_name).labs().items():
                entry = found.setdefault(name, {"hosts": [], "networks": []})
                entry["hosts"] += res["hosts"]
                entry["networks"] += res["networks"]
        except LabError:  # e.g. podman is not installed: what the state says still shows
            continue
    rows = []
    for name in sorted(set(labs) | set(found)):
        data = labs.get(name)
        problem = ""
        if data is None:
            phase = "no state"
            problem = (
                f"no state in {state_root()} (lost, or kept under another LABCTL_STATE_DIR); "
                f"'labctl up -f LAB.yml' repairs it, 'labctl down --name {name}' removes it"
            )
        elif data.get("phase") == "damaged":
            phase = "damaged"
            problem = f"its state file is damaged; 'labctl down --name {name}' removes the lab"
        else:
            phase = str(data.get("phase"))
        rows.append(
            {
                "name": name,
                "phase": phase,
                "containers": len(found.get(name, {}).get("hosts", [])),
                "topology_file": (data or {}).get("topology_file"),
                "problem": problem,
            }
        )
    return rows


def status_from_labels(name: str, topo: Topology | None) -> list[dict[str, Any]]:
    """Status of a lab that has no state: its hosts, found by their labels."""
    live: dict[str, HostInfo] = {}
    for provider_name in provider_names():
        with contextlib.suppress(LabError):
            live.update(get_provider(provider_name).list(name))
    if not live:
        require(None, LabState(name))
    if topo is not None:
        return status(Lab(topo))
    return [{"name": h, "groups": [], "addresses": {}, "state": i.state} for h, i in sorted(live.items())]


def host_details(lab: Lab, host: str) -> dict[str, Any]:
    """What `status --host` adds for one host: the port forwards in force on a NAT gateway."""
    if host not in lab.topo.group_hosts().get("nat_gateway", []):
        return {}
    conn = lab.runner()
    try:
        rules = conn.run(host, "iptables -w 5 -t nat -S", timeout=30)
    finally:
        conn.close()
    if not rules.ok:
        raise LabError(
            f"cannot read the NAT rules on {host!r}: {rules.output}. "
            f"Fix: check 'labctl exec {host} -- iptables -t nat -S'."
        )
    return {"forwards": iptables.forwards_from_rules(rules.stdout)}
