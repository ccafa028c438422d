"""The Lab: a topology with its state on this machine and a provider per host, and what follows from them
(specs, addresses, connections, the resolved model, the inventory, the known host keys, the converge record).

This module talks to providers through their interface only; it never shells out to podman and never asks
what a host is."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from labctl.access import control_dir, hostkeys
from labctl.access.connection import Connection, connection_for
from labctl.access.remote import FabricRunner, Target
from labctl.errors import LabError
from labctl.lifecycle.resolved import ResolvedHost, ResolvedLab
from labctl.providers import HostInfo, HostSpec, Provider, get_provider
from labctl.provisioning import fingerprint, inventory, inventory_vars
from labctl.state import LabState, write_atomic
from labctl.topology import Topology, read_raw

KEPT = ("locked", "restored", "images")  # state.json keys a Lab carries from one save to the next


class Lab:
    """One lab: its topology, its state on this machine, and a provider per host."""

    def __init__(self, topo: Topology, state: LabState | None = None) -> None:
        self.topo = topo
        self.state = state or LabState(topo.name)
        self._providers: dict[str, Provider] = {}
        self._resolved: ResolvedLab | None = None
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
        from labctl.reproduce import lockfile  # the format module; imported here to keep imports one-way

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

    def connection(self, host: str, address: str | None = None) -> Connection:
        """How labctl reaches the host: the resolved lab's when it is resolved, else made from its address
        (address: when the caller already asked the provider)."""
        if address is None and self._resolved is not None:
            return self._resolved.hosts[host].connection
        return connection_for(self.topo, self.state, host, address if address is not None else self.address(host))

    def connections(self) -> dict[str, Connection]:
        return {h: self.connection(h) for h in self.topo.hosts}

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
            c = self.connection(name)
            changed = str(hostkeys.changed(self.name, name, host.provider, self.state.known_hosts))
            targets[name] = Target(name, c.address, c.user, c.key, c.known_hosts, changed)
        return FabricRunner(targets)

    def learn_host_key(self, host: str, again: bool = False) -> None:
        """Put the host's SSH host key into the lab's known_hosts unless it is there (again: replace it).

        The key comes from the host's provider, never from an SSH connection to a host labctl made (podman
        reads the container's files, qemu made the key itself); a host whose provider reads no key (static)
        is trusted on first use: ssh-keyscan, bounded, and checked on every later connection."""
        path, address = self.state.known_hosts, self.address(host)
        if not again and hostkeys.known(path, address):
            return
        provider = self.provider_for(host)
        if provider.reads_host_keys:  # the text of the host's public keys (an empty one is refused: no key)
            keys = hostkeys.parse_keys(provider.host_keys(self.name, host), f"host {host!r} of lab {self.name!r}")
        else:  # a provider that cannot ask its hosts (static): trust on first use
            keys = hostkeys.keyscan(address)
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

    def resolve(self, proxies_too: bool = True) -> ResolvedLab:
        """Every host's connection, addresses, provider options and variables, and the inventory they make.

        proxies_too: ask the providers for the shared package cache's URLs (asking may start the cache:
        write_config does, a command that only reads the lab does not)."""
        proxies: dict[str, str] = {}
        for name, specs in self.providers().items() if proxies_too else ():
            # the hosts that use the shared package cache
            proxies.update(self.backend(name).package_proxies(specs))
        ssh = self.addresses()
        conns = {h: self.connection(h, ssh[h]) for h in self.topo.hosts}
        doc = inventory.document(
            self.topo, self.state, ssh, inventory_vars.load(), self.labctl_vars(), proxies, connections=conns
        )
        hosts = {
            name: ResolvedHost(
                name=name,
                connection=conns[name],
                addresses=dict(h.addresses) or {"ssh": ssh[name]},
                options=dict(h.vm),
                variables=inventory.seen_by(doc, self.topo, name),
            )
            for name, h in self.topo.hosts.items()
        }
        self._resolved = ResolvedLab(self.name, hosts, doc)
        return self._resolved

    def resolved(self) -> ResolvedLab:
        """The lab resolved once for this command (write_config resolves it anew: the hosts may have changed);
        resolved here first, it names no package cache (labctl_package_proxy, which no check reads)."""
        return self._resolved or self.resolve(proxies_too=False)

    def write_config(self) -> ResolvedLab:
        """Resolve the lab and write what Ansible reads of it: inventory.yml and ansible.cfg."""
        control_dir.ensure_control_dir(self.state)
        resolved = self.resolve()
        write_atomic(self.state.inventory, inventory.to_text(self.topo, resolved.inventory))
        write_atomic(self.state.ansible_cfg, inventory.render_cfg(self.state, forks=max(10, len(self.topo.hosts))))
        return resolved

    def save(self, phase: str) -> None:
        """Record the lab's phase, topology and networks in state.json (the converge record is kept)."""
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
