"""The topology file: load, validate, and give addresses to every host.

Every error names the file, the field and the fix, as one paragraph (a LabError)."""

from __future__ import annotations

import ipaddress
import itertools
import keyword
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labctl import yamlload
from labctl.errors import LabError, printable
from labctl.names import HOST_NAME, LAB_NAME, described, validate_lab_name
from labctl.providers import base as provider_base
from labctl.providers import provider_class, provider_names
from labctl.userchecks import UserCheck
from labctl.userchecks import parse as parse_checks

SCHEMA = 1
FIRST_HOST_OFFSET = 10  # dynamic addresses start at .10; .1 is the podman bridge
MAX_FILE_BYTES = 4 * 1024 * 1024
_HOSTNAME = HOST_NAME
_NAME = LAB_NAME  # network names follow the lab name rule
_GROUP = re.compile(r"^[a-z_][a-z0-9_]*$")
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
# Names Ansible gives a meaning of its own: a host called so would not be this lab's host.
RESERVED_HOSTS = ("all", "ungrouped", "localhost")
RESERVED_GROUPS = ("all", "ungrouped")
# Bounds on what one topology makes labctl allocate (addresses listed, containers, networks).
MIN_PREFIX = 16  # a network is at most a /16
MAX_NETWORKS = 64
MAX_HOSTS = 512
SPECIAL_RANGES = tuple(
    (ipaddress.IPv4Network(net), what)
    for net, what in (
        ("0.0.0.0/8", "'this network' (RFC 791), never a host's address"),
        ("127.0.0.0/8", "the loopback range: it never leaves a host"),
        ("169.254.0.0/16", "the link-local range (RFC 3927)"),
        ("224.0.0.0/4", "the multicast range"),
        ("240.0.0.0/4", "the reserved range (RFC 1112)"),
    )
)


@dataclass(frozen=True)
class Network:
    name: str
    subnet: ipaddress.IPv4Network
    routes: tuple[tuple[str, str], ...] = ()  # (to network or DEFAULT, via host)


# `to: default` in a network's routes: the hosts on that network use the via host as their default
# route (every flow leaving the network crosses it, e.g. a NAT gateway), not the provider's bridge.
DEFAULT = "default"


@dataclass
class Host:
    name: str
    groups: list[str]
    networks: list[str]
    addresses: dict[str, str] = field(default_factory=dict)  # network -> address (all, after assign)
    vars: dict[str, Any] = field(default_factory=dict)
    # static provider only
    address: str | None = None
    user: str = "root"
    key: str | None = None
    provider: str = "podman"  # the lab's provider unless the host names another
    vm: dict[str, Any] = field(default_factory=dict)  # VM sizes (providers that run VMs): cpus, memory, kernel_args


@dataclass
class Topology:
    path: Path
    name: str
    provider: str
    image: str | None
    networks: dict[str, Network]
    hosts: dict[str, Host]
    groups: dict[str, dict[str, Any]]  # group -> vars
    vars: dict[str, Any]  # all-hosts vars
    checks: list[UserCheck] = field(default_factory=list)  # the user's own checks (`checks:`)

    def group_hosts(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for host in self.hosts.values():
            for group in host.groups:
                out.setdefault(group, []).append(host.name)
        return out

    def hostvars(self, host: str) -> dict[str, Any]:
        """Topology vars as the host sees them: all, then its groups in order, then its own."""
        merged = dict(self.vars)
        for group in self.hosts[host].groups:
            merged.update(self.groups.get(group, {}))
        merged.update(self.hosts[host].vars)
        return merged

    def routes(self, host: str) -> list[dict[str, str]]:
        """Routes a host needs: for each network it is on with routes, unless it is on the target or is
        the via host itself; a default route (``to: default``) once, from the host's first such network."""
        h = self.hosts[host]
        out = []
        has_default = False
        for net in h.networks:
            for to, via in self.networks[net].routes:
                if via == host or to in h.networks or (to == DEFAULT and has_default):
                    continue
                has_default = has_default or to == DEFAULT
                dest = DEFAULT if to == DEFAULT else str(self.networks[to].subnet)
                out.append({"to": dest, "via": self.hosts[via].addresses[net]})
        return out

    def default_via(self, host: str) -> str | None:
        """The lab host a host routes everything through (a ``to: default`` route), if any."""
        h = self.hosts[host]
        for net in h.networks:
            for to, via in self.networks[net].routes:
                if to == DEFAULT and via != host:
                    return via
        return None

    def reach(self, src: str, dst: str) -> str | None:
        """The address src uses for dst: on a network they share, else dst's first address; a static
        host on no lab network: its own address when that is an IP address (None when it is a DNS name)."""
        for net in self.hosts[dst].networks:
            if net in self.hosts[src].networks:
                return self.hosts[dst].addresses[net]
        first = next(iter(self.hosts[dst].addresses.values()), None)
        if first is not None:
            return first
        try:
            return str(ipaddress.ip_address(self.hosts[dst].address or ""))
        except ValueError:
            return None


class _Errors:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, where: str, problem: str, fix: str) -> LabError:
        return LabError(f"{self.path}: field '{where}': {problem}. Fix: {fix}.")


def _mapping(err: _Errors, value: Any, where: str) -> dict[str, Any]:
    return provider_base.mapping(value, where, err.fail)


def _list(err: _Errors, value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise err.fail(where, f"expected a list, got {type(value).__name__}", "write it as a YAML list")
    return value


def _vars(err: _Errors, value: Any, where: str) -> dict[str, Any]:
    """A mapping of Ansible variables: every key a valid variable name."""
    out = _mapping(err, value, where)
    for key in out:
        if not isinstance(key, str) or not _VAR.fullmatch(key) or keyword.iskeyword(key):
            raise err.fail(
                f"{where}.{key}",
                f"{described(key)} is not a valid variable name",
                "use letters, digits and '_', starting with a letter or '_'",
            )
    return out


def _strings(err: _Errors, value: Any, where: str, what: str) -> list[str]:
    items = _list(err, value, where)
    for item in items:
        if not isinstance(item, str):
            raise err.fail(where, f"{described(item)} is not a {what} name", f"list {what} names, e.g. [{what}1]")
    return items


def _bound(err: _Errors, where: str, items: list[Any], limit: int, what: str) -> None:
    if len(items) > limit:
        problem = f"{len(items)} {what}, more than labctl makes for one lab ({limit})"
        raise err.fail(where, problem, f"split it into labs of {limit} {what} or fewer")


def _check_keys(err: _Errors, data: dict[str, Any], where: str, allowed: set[str]) -> None:
    provider_base.check_keys(data, where, allowed, err.fail)


def _read_text(path: Path) -> str:
    """The file's text: only a readable regular file of UTF-8 text, never opened if it is anything else."""
    shown = printable(str(path))
    try:
        info = path.stat()  # stat first: opening a FIFO for reading would wait for a writer
    except FileNotFoundError:
        raise LabError(
            f"{shown}: no such topology file. Fix: pass an existing file with -f, e.g. labs/default.yml."
        ) from None
    except OSError as exc:
        raise LabError(
            f"{shown}: cannot read the topology file ({exc.strerror}). Fix: pass the path of a readable YAML file."
        ) from None
    if stat.S_ISDIR(info.st_mode):
        raise LabError(f"{shown}: is a directory, not a topology file. Fix: pass a YAML file, e.g. {shown}/lab.yml.")
    if not stat.S_ISREG(info.st_mode):
        raise LabError(
            f"{shown}: is not a regular file (a FIFO, socket or device). Fix: pass a topology file saved on disk."
        )
    if info.st_size > MAX_FILE_BYTES:
        raise LabError(
            f"{shown}: the topology file is {info.st_size} bytes, more than {MAX_FILE_BYTES}. "
            "Fix: pass the lab's topology file (a few kilobytes of YAML)."
        )
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):  # replaced since the stat above
                raise LabError(f"{shown}: is not a regular file. Fix: pass a topology file saved on disk.")
            data = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise LabError(
            f"{shown}: cannot read the topology file ({exc.strerror}). "
            "Fix: make it readable by the user running labctl, or pass another file."
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise LabError(
            f"{shown}: is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}). Fix: save the file as UTF-8."
        ) from None


def load(path: str | Path, known_groups: set[str] | frozenset[str] = frozenset()) -> Topology:
    """Load and validate a topology file. known_groups: groups that have a role (besides declared ones)."""
    path = Path(path)
    return parse(read_raw(path), path, known_groups)


def read_raw(path: Path) -> Any:
    """The topology file's YAML as it was written (not validated), read and parsed within labctl's bounds."""
    return yamlload.load(_read_text(path), str(path))


def parse(raw: Any, path: Path, known_groups: set[str] | frozenset[str] = frozenset()) -> Topology:
    err = _Errors(path)
    data = _mapping(err, raw, "(top level)")
    _check_keys(err, data, "", {"schema", "name", "provider", "image", "networks", "groups", "hosts", "vars", "checks"})
    schema = data.get("schema", SCHEMA)  # no schema: the current one, as compose files do
    if type(schema) is not int or schema != SCHEMA:  # not isinstance: True and 1.0 equal 1 in Python
        raise err.fail("schema", f"unsupported schema {schema!r}", f"set 'schema: {SCHEMA}' or leave it out")
    name = validate_lab_name(data.get("name"), printable(f"{path}: field 'name'"))
    provider = _provider(err, data.get("provider", "podman"), "provider")
    image = data.get("image")
    if image is not None and (not isinstance(image, str) or not _IMAGE.fullmatch(image)):
        raise err.fail(
            "image",
            f"{image!r} is not an image reference",
            "give a podman image (e.g. localhost/x:tag) or leave it out",
        )

    networks = _parse_networks(err, data)
    groups_raw = _mapping(err, data.get("groups"), "groups")
    groups: dict[str, dict[str, Any]] = {}
    for gname, gvars in groups_raw.items():
        if not isinstance(gname, str) or not _GROUP.fullmatch(gname) or gname in RESERVED_GROUPS:
            raise err.fail(
                f"groups.{gname}",
                f"{described(gname)} is not a valid group name",
                f"use lower-case letters, digits and '_' (not {' or '.join(RESERVED_GROUPS)}: Ansible's own groups)",
            )
        groups[gname] = _vars(err, gvars, f"groups.{gname}")
    allowed_groups = set(known_groups) | set(groups)
    hosts = _parse_hosts(err, data, networks, allowed_groups, provider)
    _parse_routes(err, data, networks, hosts)
    topo = Topology(
        path=path,
        name=name,
        provider=provider,
        image=image,
        networks=networks,
        hosts=hosts,
        groups=groups,
        vars=_vars(err, data.get("vars"), "vars"),
    )
    _assign_addresses(err, topo)
    topo.checks = parse_checks(err.fail, data.get("checks"), list(hosts), topo.group_hosts(), allowed_groups)
    return topo


def _provider(err: _Errors, value: Any, where: str) -> str:
    names = provider_names()
    if value not in names:
        raise err.fail(where, f"unknown provider {value!r}", f"use one of: {', '.join(names)}")
    return str(value)


def _parse_networks(err: _Errors, data: dict[str, Any]) -> dict[str, Network]:
    networks: dict[str, Network] = {}
    items = _list(err, data.get("networks"), "networks")
    _bound(err, "networks", items, MAX_NETWORKS, "networks")
    for i, item in enumerate(items):
        where = f"networks[{i}]"
        item = _mapping(err, item, where)
        _check_keys(err, item, where, {"name", "subnet", "routes"})
        nname = item.get("name")
        if not isinstance(nname, str) or not _NAME.fullmatch(nname):
            raise err.fail(
                f"{where}.name", f"network name {described(nname)} is invalid", "use lower-case letters, digits, '-'"
            )
        if nname in networks:
            raise err.fail(f"{where}.name", f"duplicate network name {nname!r}", "give every network its own name")
        if nname == DEFAULT:
            raise err.fail(
                f"{where}.name", f"{DEFAULT!r} names the default route in 'routes:'", "give the network another name"
            )
        try:
            subnet = ipaddress.IPv4Network(str(item.get("subnet")), strict=True)
        except ValueError as exc:
            raise err.fail(
                f"{where}.subnet", f"invalid IPv4 subnet {item.get('subnet')!r} ({exc})", "write it like 198.18.1.0/24"
            ) from None
        if subnet.num_addresses < 16:
            raise err.fail(f"{where}.subnet", f"subnet {subnet} is too small", "use a /28 or larger")
        _check_subnet(err, f"{where}.subnet", nname, subnet)
        for other in networks.values():
            if subnet.overlaps(other.subnet):
                raise err.fail(
                    f"{where}.subnet",
                    f"{subnet} overlaps network {other.name!r} ({other.subnet})",
                    "pick a disjoint subnet",
                )
        networks[nname] = Network(nname, subnet)
    if not networks and provider_class(data.get("provider", "podman")).needs_networks:
        raise err.fail("networks", "no networks defined", "add at least one network with a name and a subnet")
    return networks


def _check_subnet(err: _Errors, where: str, name: str, subnet: ipaddress.IPv4Network) -> None:
    """A lab network is a private bridge of at most a /16 (65536 addresses), in no range with a meaning of
    its own (loopback, link-local, multicast, 'this network', reserved). podman's own network (10.88.0.0/16)
    and the host's routes are refused when the lab comes up (labctl.netops.hostnet: they are this machine's)."""
    if subnet.prefixlen < MIN_PREFIX:
        raise err.fail(
            where,
            f"network {name!r}: subnet {subnet} has {subnet.num_addresses} addresses, more than a /{MIN_PREFIX}",
            f"use a /{MIN_PREFIX} or smaller subnet (a lab needs a few addresses), e.g. 198.18.1.0/24",
        )
    for special, what in SPECIAL_RANGES:
        if subnet.overlaps(special):
            raise err.fail(
                where,
                f"network {name!r}: subnet {subnet} lies in {special}, {what}",
                "pick a private subnet outside it, e.g. from 198.18.0.0/15",
            )


COMMON_HOST_KEYS = frozenset({"name", "groups", "networks", "addresses", "vars", "provider"})


def _parse_hosts(
    err: _Errors, data: dict[str, Any], networks: dict[str, Network], allowed_groups: set[str], provider: str
) -> dict[str, Host]:
    hosts: dict[str, Host] = {}
    items = _list(err, data.get("hosts"), "hosts")
    if not items:
        raise err.fail("hosts", "no hosts defined", "add at least one host with a name")
    _bound(err, "hosts", items, MAX_HOSTS, "hosts")
    host_keys = set(COMMON_HOST_KEYS).union(*(provider_class(p).host_settings for p in provider_names()))
    for i, item in enumerate(items):
        where = f"hosts[{i}]"
        item = _mapping(err, item, where)
        _check_keys(err, item, where, host_keys)
        hname = _host_name(err, item.get("name"), where, allowed_groups)
        where = f"hosts.{hname}"
        host_provider = _provider(err, item.get("provider", provider), f"{where}.provider")
        if hname in hosts:
            raise err.fail(where, f"duplicate host name {hname!r}", "give every host its own name")
        groups = _strings(err, item.get("groups"), f"{where}.groups", "group")
        for g in groups:
            if g not in allowed_groups:
                raise err.fail(
                    f"{where}.groups",
                    f"unknown group {g!r}",
                    f"use a group that has a role ({', '.join(sorted(allowed_groups))}) or declare it under 'groups:'",
                )
        nets = _host_networks(err, item, where, networks, host_provider)
        addresses = _host_addresses(err, item, where, networks, nets)
        options = _host_options(err, item, where, host_provider)
        hosts[hname] = Host(
            name=hname,
            groups=groups,
            networks=nets,
            addresses=addresses,
            vars=_vars(err, item.get("vars"), f"{where}.vars"),
            provider=host_provider,
            **options,
        )
    return hosts


def _host_name(err: _Errors, hname: Any, where: str, allowed_groups: set[str]) -> str:
    if not isinstance(hname, str) or not _HOSTNAME.fullmatch(hname):
        raise err.fail(
            f"{where}.name",
            f"{described(hname)} is not a valid host name",
            "use lower-case letters, digits and '-' (not at either end), at most 63 characters",
        )
    if hname in RESERVED_HOSTS or hname in allowed_groups:
        what = "a name Ansible reserves" if hname in RESERVED_HOSTS else f"also the name of group {hname!r}"
        raise err.fail(
            f"{where}.name",
            f"host name {hname!r} is {what}: Ansible would not tell the host from it",
            f"rename the host (e.g. {hname}1)",
        )
    return hname


def _host_networks(
    err: _Errors, item: dict[str, Any], where: str, networks: dict[str, Network], host_provider: str
) -> list[str]:
    nets = _strings(err, item.get("networks"), f"{where}.networks", "network")
    for n in nets:
        if n not in networks:
            raise err.fail(
                f"{where}.networks",
                f"unknown network {n!r}",
                f"use one of the networks defined under 'networks:' ({', '.join(networks) or 'none yet'})",
            )
    if len(set(nets)) != len(nets):
        raise err.fail(f"{where}.networks", "a network is listed twice", "list each network once")
    if provider_class(host_provider).needs_networks and not nets:
        raise err.fail(f"{where}.networks", "the host is on no network", "list at least one network")
    return nets


def _host_addresses(
    err: _Errors, item: dict[str, Any], where: str, networks: dict[str, Network], nets: list[str]
) -> dict[str, str]:
    addresses: dict[str, str] = {}
    for net, addr in _mapping(err, item.get("addresses"), f"{where}.addresses").items():
        if net not in nets:
            raise err.fail(
                f"{where}.addresses.{net}", f"the host is not on network {net!r}", "add it to the host's networks"
            )
        try:
            ip = ipaddress.IPv4Address(str(addr))
        except ValueError:
            raise err.fail(
                f"{where}.addresses.{net}", f"{addr!r} is not an IPv4 address", "write it like 198.18.1.5"
            ) from None
        subnet = networks[net].subnet
        if ip not in subnet or ip in (subnet.network_address, subnet.broadcast_address, subnet.network_address + 1):
            raise err.fail(
                f"{where}.addresses.{net}",
                f"{ip} is not a usable address in {net}'s subnet {subnet}",
                f"pick an address from {subnet.network_address + 2} to {subnet.broadcast_address - 1}",
            )
        addresses[net] = str(ip)
    return addresses


def _host_options(err: _Errors, item: dict[str, Any], where: str, host_provider: str) -> dict[str, Any]:
    """The host's provider-specific options (static: address, user, key; qemu: vm), as Host fields: each
    provider validates its own (Provider.parse_host_options); an option of another provider is refused with
    that provider's words (Provider.refuse_host_options)."""
    own = provider_class(host_provider)
    options = own.parse_host_options(item, where, err.fail)
    for name in provider_names():
        other = provider_class(name)
        if not other.host_settings <= own.host_settings:
            other.refuse_host_options(item, host_provider, where, err.fail)
    return options


def _parse_routes(err: _Errors, data: dict[str, Any], networks: dict[str, Network], hosts: dict[str, Host]) -> None:
    for i, item in enumerate(_list(err, data.get("networks"), "networks")):
        net = networks[item["name"]]
        routes = []
        for j, route in enumerate(_list(err, item.get("routes"), f"networks[{i}].routes")):
            where = f"networks[{i}].routes[{j}]"
            route = _mapping(err, route, where)
            _check_keys(err, route, where, {"to", "via"})
            to, via = route.get("to"), route.get("via")
            if not isinstance(to, str) or (to not in networks and to != DEFAULT):
                raise err.fail(
                    f"{where}.to",
                    f"unknown network {to!r}",
                    f"name a network defined under 'networks:', or '{DEFAULT}' for the default route",
                )
            if to == net.name:
                raise err.fail(f"{where}.to", f"a route from {to!r} to itself", "name another network")
            if not isinstance(via, str) or via not in hosts or net.name not in hosts[via].networks:
                raise err.fail(
                    f"{where}.via",
                    f"{via!r} is not a host on network {net.name!r}",
                    "name the gateway host on this network",
                )
            routes.append((str(to), str(via)))
        networks[net.name] = Network(net.name, net.subnet, tuple(routes))


def _assign_addresses(err: _Errors, topo: Topology) -> None:
    """Give every host without a fixed address the next free one from .10 on, in file order."""
    for net in topo.networks.values():
        taken: dict[str, str] = {}
        for host in topo.hosts.values():
            addr = host.addresses.get(net.name)
            if addr is not None:
                if addr in taken:
                    raise err.fail(
                        f"hosts.{host.name}.addresses.{net.name}",
                        f"{addr} is also given to host {taken[addr]!r}",
                        "give every host its own address",
                    )
                taken[addr] = host.name
        # lazily: a /16 has 65534 addresses and a host needs one
        candidates = (str(ip) for ip in itertools.islice(net.subnet.hosts(), FIRST_HOST_OFFSET - 1, None))
        for host in topo.hosts.values():
            if net.name in host.networks and net.name not in host.addresses:
                for addr in candidates:
                    if addr not in taken:
                        host.addresses[net.name] = addr
                        taken[addr] = host.name
                        break
                else:
                    raise err.fail(
                        f"networks.{net.name}.subnet", "the subnet has no free address left", "use a larger subnet"
                    )
        # keep each host's addresses in the order of its networks
    for host in topo.hosts.values():
        host.addresses = {n: host.addresses[n] for n in host.networks}


def check_overlaps(topo: Topology, others: dict[str, dict[str, str]]) -> None:
    """Reject subnets that overlap another running lab's networks. others: lab -> {network: subnet}."""
    for lab, nets in others.items():
        if lab == topo.name:
            continue
        for other_net, other_subnet in nets.items():
            theirs = ipaddress.IPv4Network(other_subnet)
            for net in topo.networks.values():
                if net.subnet.overlaps(theirs):
                    raise LabError(
                        f"{topo.path}: field 'networks.{net.name}.subnet': {net.subnet} overlaps network "
                        f"{other_net!r} ({theirs}) of the running lab {lab!r}. Fix: pick a disjoint subnet, "
                        f"or take that lab down first (labctl down --name {lab})."
                    )


def check_reserved(topo: Topology, reserved: list[tuple[str, str]]) -> None:
    """Reject a lab subnet that overlaps something on the host that is not a labctl lab (``reserved``: what
    and its subnet, as a provider lists them)."""
    for what, subnet in reserved:
        try:
            theirs = ipaddress.IPv4Network(subnet, strict=False)
        except ValueError:
            continue
        for net in topo.networks.values():
            if net.subnet.overlaps(theirs):
                raise LabError(
                    f"{topo.path}: field 'networks.{net.name}.subnet': {net.subnet} overlaps {what} ({theirs}); "
                    "the lab's hosts could not reach it, or podman would refuse the network. Fix: pick a subnet "
                    "that nothing on this host uses (see 'ip route' and 'podman network ls'), e.g. from 198.18.0.0/15."
                )
