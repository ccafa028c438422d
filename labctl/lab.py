"""Lab lifecycle: reconcile hosts with the topology, converge with Ansible, tear down.

This module talks to providers through their interface only; it never shells out to podman."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from labctl import image, inventory, paths
from labctl.ansible_run import PlaybookRun, Progress, run_playbook
from labctl.errors import LabError
from labctl.providers import HostSpec, NetworkSpec, Provider, get_provider
from labctl.remote import FabricRunner, Target, wait_for_ssh
from labctl.smoke.base import Context
from labctl.state import LabState, all_labs, write_atomic
from labctl.topology import Topology, check_overlaps, load, parse

SSH_TIMEOUT = 90.0
Say = Callable[[str], None]


@dataclass
class UpReport:
    lab: str
    timings: dict[str, float] = field(default_factory=dict)
    created: list[str] = field(default_factory=list)
    started: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    converge: PlaybookRun | None = None


def resolve(file: str | None, name: str | None) -> tuple[Topology | None, LabState]:
    """The lab a command acts on: -f FILE, else --name NAME (from its state), else the default lab."""
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


def require(topo: Topology | None, state: LabState) -> Topology:
    if topo is None or not state.exists():
        raise LabError(
            f"no lab named {state.name!r} is up. Fix: start it with 'labctl up -f LAB.yml', "
            "or name a running lab (see 'labctl status --all')."
        )
    return topo


def require_host(topo: Topology, host: str, what: str) -> None:
    """Fail with one clear error when a command names a host the lab does not have."""
    if host not in topo.hosts:
        raise LabError(f"{what}: no host {host!r} in lab {topo.name!r}. Fix: use one of: {', '.join(topo.hosts)}.")


def _provider(topo: Topology) -> Provider:
    return get_provider(topo.provider)


def _specs(topo: Topology, state: LabState, tag: str) -> dict[str, HostSpec]:
    specs = {}
    for host in topo.hosts.values():
        extra = {other: topo.reach(host.name, other) for other in topo.hosts if other != host.name}
        specs[host.name] = HostSpec(
            lab=topo.name,
            name=host.name,
            image=topo.image or tag,
            networks=dict(host.addresses),
            extra_hosts=extra,
            pubkey=str(state.pubkey),
            address=host.address,
            user=host.user,
        )
    return specs


def _parallel(fn: Callable[[str], None], hosts: list[str]) -> None:
    """Run fn for every host at once; raise one error naming every host that failed."""
    if not hosts:
        return
    errors: dict[str, str] = {}
    with ThreadPoolExecutor(max_workers=min(8, len(hosts))) as pool:
        futures = {h: pool.submit(fn, h) for h in hosts}
        for host, fut in futures.items():
            try:
                fut.result()
            except LabError as exc:
                errors[host] = str(exc)
    if errors:
        detail = "; ".join(f"{h}: {m}" for h, m in errors.items())
        raise LabError(f"{len(errors)} host(s) failed: {detail}")


def write_config(topo: Topology, state: LabState) -> None:
    write_atomic(state.inventory, inventory.render(topo, state))
    write_atomic(state.ansible_cfg, inventory.render_cfg(state, forks=max(10, len(topo.hosts))))


def _save(topo: Topology, state: LabState, phase: str) -> None:
    raw = yaml.safe_load(topo.path.read_text()) if topo.path.exists() else {}
    raw["name"] = topo.name
    state.write(
        {
            "name": topo.name,
            "phase": phase,
            "provider": topo.provider,
            "topology_file": str(topo.path.resolve()),
            "topology": raw,
            "networks": {n.name: str(n.subnet) for n in topo.networks.values()},
            "updated": time.time(),
        }
    )


def up(
    topo: Topology,
    say: Say = lambda _m: None,
    converge: bool = True,
    progress: Progress = lambda _e: None,
    playbook: Path | None = None,
) -> UpReport:
    state = LabState(topo.name)
    report = UpReport(topo.name)
    provider = _provider(topo)
    with state.locked():
        others = {lab: data.get("networks", {}) for lab, data in all_labs().items()}
        for lab, nets in provider.networks().items():
            others.setdefault(lab, {}).update(nets)
        check_overlaps(topo, others)
        state.ensure_keypair()
        _save(topo, state, "creating")

        t0 = time.monotonic()
        tag = ""
        if topo.provider == "podman" and topo.image is None:
            tag = image.build(progress=say)
        report.timings["image"] = time.monotonic() - t0

        t0 = time.monotonic()
        for net in topo.networks.values():
            provider.create_network(NetworkSpec(topo.name, net.name, str(net.subnet)))
        provider.link_networks(topo.name, [str(n.subnet) for n in topo.networks.values()])
        existing = provider.list(topo.name)
        specs = _specs(topo, state, tag)
        stale = [h for h in existing if h not in topo.hosts]
        missing = [h for h in topo.hosts if h not in existing]
        stopped = [h for h, info in existing.items() if h in topo.hosts and info.state != "running"]
        if stale:
            say(f"removing {len(stale)} host(s) no longer in the topology: {', '.join(stale)}")
            _parallel(lambda h: provider.destroy(topo.name, h), stale)
        if missing:
            say(f"creating {len(missing)} host(s): {', '.join(missing)}")

            def create(h: str) -> None:
                provider.create(specs[h])
                provider.start(topo.name, h)

            _parallel(create, missing)
        if stopped:
            say(f"starting {len(stopped)} stopped host(s): {', '.join(stopped)}")
            _parallel(lambda h: provider.start(topo.name, h), stopped)
        report.created, report.started, report.removed = missing, stopped, stale
        write_config(topo, state)

        def ready(h: str) -> None:
            addr = inventory.connection_address(topo, h)
            if not wait_for_ssh(addr, SSH_TIMEOUT):
                raise LabError(f"SSH on {addr} did not answer within {SSH_TIMEOUT:.0f} s")

        say("waiting for SSH on every host")
        _parallel(ready, list(topo.hosts))
        report.timings["hosts"] = time.monotonic() - t0

        if converge:
            t0 = time.monotonic()
            run = run_playbook(state, playbook or paths.SITE_PLAYBOOK, progress=progress)
            report.converge = run
            report.timings["converge"] = time.monotonic() - t0
            if not run.ok:
                _save(topo, state, "failed")
                return report
        _save(topo, state, "up")
    return report


def down(name: str, provider_name: str | None = None, say: Say = lambda _m: None) -> list[str]:
    """Remove every container, network, key and state file of the lab; error if nothing was there."""
    state = LabState(name)
    with state.locked():
        data = state.read() if state.state_file.exists() else {}
        provider = get_provider(provider_name or data.get("provider", "podman"))
        removed = provider.destroy_lab(name)
        had_state = state.dir.exists()
        state.remove()
    if not removed and not had_state:
        raise LabError(
            f"no lab named {name!r}: nothing to remove (no containers, networks or state). "
            "Fix: check the name with 'labctl status --all'."
        )
    return removed


def restart(topo: Topology, hosts: list[str], say: Say = lambda _m: None) -> None:
    """Stop and start hosts (as a reboot would) and wait until SSH answers again."""
    for host in hosts:
        require_host(topo, host, "restart")
    provider = _provider(topo)
    state = LabState(topo.name)
    with state.locked():
        say(f"restarting {', '.join(hosts)}")

        def cycle(h: str) -> None:
            provider.stop(topo.name, h)
            provider.start(topo.name, h)
            addr = inventory.connection_address(topo, h)
            if not wait_for_ssh(addr, SSH_TIMEOUT):
                raise LabError(f"SSH on {addr} did not answer within {SSH_TIMEOUT:.0f} s after the restart")

        _parallel(cycle, hosts)


def status(topo: Topology) -> list[dict[str, Any]]:
    provider = _provider(topo)
    live = provider.list(topo.name)
    rows = []
    for host in topo.hosts.values():
        info = live.get(host.name)
        state = info.state if info else "missing"
        if topo.provider == "static":
            state = "static"
        addresses = dict(host.addresses) or ({"ssh": host.address} if host.address else {})
        rows.append({"name": host.name, "groups": list(host.groups), "addresses": addresses, "state": state})
    return rows


def runner(topo: Topology) -> FabricRunner:
    state = LabState(topo.name)
    targets = {}
    for name, host in topo.hosts.items():
        key = str(Path(host.key).expanduser()) if host.key else str(state.key)
        targets[name] = Target(name, inventory.connection_address(topo, name), host.user, key)
    return FabricRunner(targets)


def running_labs() -> dict[str, dict[str, Any]]:
    return all_labs()


def context(topo: Topology) -> Context:
    """What smoke checks see of this lab."""
    state = LabState(topo.name)
    groups = topo.group_hosts()
    groups["all"] = list(topo.hosts)
    hostvars = {}
    lab_vars = inventory.lab_vars(topo, state)
    for name in topo.hosts:
        hv = dict(lab_vars)
        hv.update(inventory.host_vars(topo, state, name))
        hv.update(topo.hostvars(name))
        hostvars[name] = hv
    addresses = {
        name: dict(h.addresses) or {"ssh": inventory.connection_address(topo, name)} for name, h in topo.hosts.items()
    }
    return Context(topo.name, groups, addresses, hostvars, runner(topo))


def host_details(topo: Topology, host: str) -> dict[str, Any]:
    """What `status --host` adds for one host: the port forwards in force on a NAT gateway."""
    if host not in topo.group_hosts().get("nat_gateway", []):
        return {}
    from labctl.smoke import nat_gateway

    conn = runner(topo)
    try:
        rules = conn.run(host, "iptables -w 5 -t nat -S", timeout=30)
    finally:
        conn.close()
    if not rules.ok:
        raise LabError(
            f"cannot read the NAT rules on {host!r}: {rules.output}. "
            f"Fix: check 'labctl exec {host} -- iptables -t nat -S'."
        )
    return {"forwards": nat_gateway.forwards(rules.stdout)}
