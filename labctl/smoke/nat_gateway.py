"""NAT gateway (iptables): the seed's SNAT/MASQUERADE, DNAT, filter + LOG and TRAFFIC_ACCT, tested
with real traffic across real hosts.

The nat_gateway role configures the gateway (group ``nat_gateway``) between two lab networks
(``nat_gateway_inside_network`` / ``nat_gateway_outside_network``, default ``inside`` / ``outside``).
The checks use the other lab hosts on those networks as clients and servers: throwaway TCP
endpoints (files/nat_gateway_probe.py, started with ``systemd-run ... timeout``) so nothing is left
running. Every value comes from the context: addresses from the topology, settings from the
host's variables with the role's defaults.

Also provides :func:`forwards`, a pure function listing a gateway's port forwards (for
``labctl status --host <gw>``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
import shlex
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.iptables import COMMENT, Rule, forwards_from_rules, option, parse_counted_rules
from labctl.smoke.base import CheckFailed, CheckSkipped, Context, Result, check

SERVICE = "nat_gateway"
GROUP = "nat_gateway"

# The role's defaults (roles/nat_gateway/defaults/main.yml) for the variables the checks read.
DEFAULTS: dict[str, Any] = {
    "nat_gateway_outside_network": "outside",
    "nat_gateway_inside_network": "inside",
    "nat_gateway_snat_mode": "masquerade",
    "nat_gateway_forwards": [{"name": "web", "protocol": "tcp", "port": 80, "to_host": "web", "to_port": 6767}],
    "nat_gateway_filter_rules": [
        {
            "name": "block-outbound-2323",
            "protocol": "tcp",
            "source": "inside",
            "destination_port": 2323,
            "jump": "DROP",
            "log": True,
        }
    ],
    "nat_gateway_log_prefix": "labctl-drop: ",
    "nat_gateway_accounting_chain": "TRAFFIC_ACCT",
    "nat_gateway_accounting_protocols": ["tcp", "udp", "icmp"],
    "nat_gateway_sysctl_file": "/etc/sysctl.d/60-labctl-nat-gateway.conf",
    "nat_gateway_rules_file": "/etc/iptables/rules.v4",
}

_PROBE_TEXT = (Path(__file__).parent / "files" / "nat_gateway_probe.py").read_text()
_PROBE = "/tmp/labctl-nat-gateway-probe.py"
_SNAT_PORT = 47080  # port of the throwaway server for the SNAT check
_IPT = "iptables -w 5"


# ---------------------------------------------------------------------------------------------
# Pure helpers (unit-tested)


def setting(hostvars: Mapping[str, Any], name: str) -> Any:
    """A role variable as the host sets it, else the role default (templated values fall back too)."""
    value = hostvars.get(name, DEFAULTS.get(name))
    if isinstance(value, str) and "{{" in value:
        return DEFAULTS.get(name)
    return value


def host_address(addresses: Mapping[str, str], prefer: str) -> str | None:
    """A host's address on network `prefer`, else its first address."""
    if prefer in addresses:
        return addresses[prefer]
    return next(iter(addresses.values()), None)


def forwards(source: Context | Mapping[str, Any] | str, host: str | None = None) -> list[dict[str, Any]]:
    """A gateway's port forwards as a list of dicts, for ``labctl status --host <gw>``.

    ``source`` is one of:
      - the output of ``iptables -t nat -S`` (or ``iptables-save``) on the gateway: what is really
        in force; every DNAT rule is listed (the name comes from the role's rule comment, else
        ``<proto>/<port>``);
      - the gateway's inventory host variables (``nat_gateway_forwards`` with the role default,
        ``labctl_addresses``, and ``labctl_hosts`` if present to resolve ``to_host``): what is configured;
      - a smoke :class:`Context` (``host`` = the gateway; default: the first host of group nat_gateway).

    Each item: ``{"name", "protocol", "address", "port", "to_host", "to_address", "to_port"}``
    (``address`` is the gateway's outside address the forward listens on; unknown values are None).
    """
    if isinstance(source, str):
        return forwards_from_rules(source)
    if isinstance(source, Context):
        gw = host or next(iter(source.hosts(GROUP)), None)
        if gw is None:
            return []
        hostvars = dict(source.hostvars.get(gw, {}))
        hostvars.setdefault("labctl_addresses", source.addresses.get(gw, {}))
        hostvars.setdefault("labctl_hosts", source.addresses)
        return _forwards_from_vars(hostvars)
    return _forwards_from_vars(source)


def _forwards_from_vars(hostvars: Mapping[str, Any]) -> list[dict[str, Any]]:
    addresses = hostvars.get("labctl_addresses") or {}
    outside = setting(hostvars, "nat_gateway_outside_network")
    inside = setting(hostvars, "nat_gateway_inside_network")
    listen = setting(hostvars, "nat_gateway_outside_address") if "nat_gateway_outside_address" in hostvars else None
    listen = listen or addresses.get(outside) or hostvars.get("ansible_host")
    lab_hosts = hostvars.get("labctl_hosts") or {}
    out = []
    for fwd in setting(hostvars, "nat_gateway_forwards") or []:
        to_host = fwd.get("to_host")
        to_address = fwd.get("to_address")
        if not to_address and to_host in lab_hosts:
            to_address = host_address(lab_hosts[to_host], inside)
        port = int(fwd["port"])
        out.append(
            {
                "name": fwd.get("name"),
                "protocol": fwd.get("protocol") or "tcp",
                "address": listen,
                "port": port,
                "to_host": to_host,
                "to_address": to_address,
                "to_port": int(fwd.get("to_port") or port),
            }
        )
    return out


def matches(spec: str | None, host: str, address: str, host_networks: set[str], networks: set[str]) -> bool:
    """Does a filter rule's source/destination (CIDR, address, lab network or lab host name) cover a host?"""
    if not spec:
        return True
    if spec in networks:
        return spec in host_networks
    if spec == host:
        return True
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_network(spec, strict=False)
    except ValueError:
        return False


def normalized_rules(text: str) -> list[str]:
    """iptables-save output without comments and counters, for comparing running and saved rules."""
    out = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        out.append(re.sub(r" \[\d+:\d+\]$", "", line.strip()))
    return out


# ---------------------------------------------------------------------------------------------
# The lab as the checks see it


@dataclass
class Gateway:
    host: str
    vars: dict[str, Any]
    outside_net: str
    inside_net: str
    outside_address: str
    inside_address: str
    inside_hosts: list[str]  # other hosts with an address on the inside network
    outside_hosts: list[str]  # other hosts with an address on the outside network

    def get(self, name: str) -> Any:
        return setting(self.vars, name)


def _gateways(ctx: Context) -> list[Gateway]:
    gws = []
    for gw in ctx.hosts(GROUP):
        hv = ctx.hostvars.get(gw, {})
        out_net = setting(hv, "nat_gateway_outside_network")
        in_net = setting(hv, "nat_gateway_inside_network")
        addrs = ctx.addresses.get(gw, {})
        if out_net not in addrs or in_net not in addrs:
            raise CheckFailed(f"{gw}: not on both networks {out_net!r} and {in_net!r} (it is on {sorted(addrs)})")
        others = [h for h in ctx.hosts("all") if h != gw and h not in ctx.hosts(GROUP)]
        gws.append(
            Gateway(
                host=gw,
                vars=dict(hv),
                outside_net=out_net,
                inside_net=in_net,
                outside_address=addrs[out_net],
                inside_address=addrs[in_net],
                inside_hosts=[h for h in others if in_net in ctx.addresses.get(h, {})],
                outside_hosts=[h for h in others if out_net in ctx.addresses.get(h, {})],
            )
        )
    return gws


def _need(gw: Gateway, inside: bool = True, outside: bool = True) -> None:
    if inside and not gw.inside_hosts:
        raise CheckSkipped(f"{gw.host}: no other host on the {gw.inside_net!r} network to test from")
    if outside and not gw.outside_hosts:
        raise CheckSkipped(f"{gw.host}: no other host on the {gw.outside_net!r} network to test with")


def _rules(ctx: Context, gw: str, chain: str, table: str = "filter") -> list[Rule]:
    return parse_counted_rules(ctx.sh(gw, f"{_IPT} -t {table} -v -S {shlex.quote(chain)}", timeout=20).stdout)


def _rule(rules: list[Rule], comment: str, gw: str, chain: str) -> Rule:
    for rule in rules:
        if rule.comment() == comment:
            return rule
    listing = "\n".join(f"-A {r.chain} {r.spec}" for r in rules)
    raise CheckFailed(f"{gw}: no rule with comment {comment!r} in {chain}", f"iptables -v -S {chain}", listing)


@dataclass
class Server:
    host: str
    token: str
    log: str

    def connections(self, ctx: Context) -> list[tuple[str, int]]:
        out = ctx.run(self.host, f"cat {self.log}", timeout=15).stdout
        conns = []
        for line in out.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[0] == "conn":
                conns.append((parts[1], int(parts[2])))
        return conns


def _put_probe(ctx: Context, host: str) -> None:
    ctx.put_text(host, _PROBE_TEXT, _PROBE, 0o644)


@contextlib.contextmanager
def _server(ctx: Context, host: str, ports: list[int], seconds: int = 25) -> Iterator[Server]:
    """A throwaway TCP server on host (a transient systemd unit under `timeout`), stopped afterwards."""
    token = secrets.token_hex(4)
    unit = f"labctl-nat-probe-{token}"
    log = f"/tmp/{unit}.log"
    _put_probe(ctx, host)
    port_args = " ".join(str(p) for p in ports)
    ctx.sh(
        host,
        f"systemd-run --quiet --collect --unit={unit} timeout {seconds + 5} "
        f"python3 {_PROBE} serve --seconds {seconds} --token {token} --log {log} {port_args}",
        timeout=30,
    )
    try:
        ctx.wait_until(
            f"{host}: probe server on port(s) {port_args}",
            lambda: "ready" in ctx.run(host, f"cat {log} 2>/dev/null", timeout=15).stdout,
            timeout=15,
        )
        yield Server(host, token, log)
    finally:
        ctx.run(host, f"systemctl stop {unit} 2>/dev/null; rm -f {log}", timeout=30)


def _connect(ctx: Context, client: str, address: str, port: int, timeout: float = 3, read: bool = True) -> Result:
    _put_probe(ctx, client)
    flag = "" if read else " --no-read"
    return ctx.run(
        client,
        f"timeout {int(timeout) + 10} python3 {_PROBE} connect {address} {port} --timeout {timeout}{flag}",
        timeout=timeout + 30,
    )


def _listening(ctx: Context, host: str, port: int) -> bool:
    return bool(ctx.run(host, f"ss -Hltn 'sport = :{port}'", timeout=15).stdout.strip())


# ---------------------------------------------------------------------------------------------
# Checks


@check("forwarding on, rules saved for boot")
def forwarding_and_saved(ctx: Context) -> None:
    for gw in _gateways(ctx):
        value = ctx.sh(gw.host, "sysctl -n net.ipv4.ip_forward", timeout=15).stdout.strip()
        if value != "1":
            raise CheckFailed(f"{gw.host}: net.ipv4.ip_forward is {value}", "sysctl -n net.ipv4.ip_forward", value)
        sysctl_file = gw.get("nat_gateway_sysctl_file")
        cmd = f"grep -Es '^net.ipv4.ip_forward *= *1' {shlex.quote(sysctl_file)}"
        if not ctx.run(gw.host, cmd, timeout=15).ok:
            raise CheckFailed(f"{gw.host}: {sysctl_file} does not enable forwarding at boot", cmd)
        enabled = ctx.run(gw.host, "systemctl is-enabled netfilter-persistent.service", timeout=15).stdout.strip()
        if enabled != "enabled":
            raise CheckFailed(f"{gw.host}: netfilter-persistent is {enabled!r}: the rules would not load at boot")
        rules_file = gw.get("nat_gateway_rules_file")
        running = normalized_rules(ctx.sh(gw.host, "iptables-save", timeout=20).stdout)
        saved = normalized_rules(ctx.sh(gw.host, f"cat {shlex.quote(rules_file)}", timeout=15).stdout)
        if running != saved:
            only_running = [r for r in running if r not in saved]
            only_saved = [r for r in saved if r not in running]
            raise CheckFailed(
                f"{gw.host}: running rules differ from {rules_file} (a reboot would change them)",
                f"iptables-save vs cat {rules_file}",
                "running only:\n" + "\n".join(only_running) + "\nsaved only:\n" + "\n".join(only_saved),
            )
        if not any(COMMENT in r for r in saved):
            raise CheckFailed(f"{gw.host}: {rules_file} holds none of the role's rules", f"cat {rules_file}")


@check("inside host reaches outside, source NATed to the gateway")
def snat(ctx: Context) -> None:
    for gw in _gateways(ctx):
        _need(gw)
        client, server_host = gw.inside_hosts[0], gw.outside_hosts[0]
        target = ctx.address(server_host, gw.outside_net)
        mode = gw.get("nat_gateway_snat_mode")
        comment = f"{COMMENT} {mode}"
        before = _rule(_rules(ctx, gw.host, "POSTROUTING", "nat"), comment, gw.host, "POSTROUTING")
        with _server(ctx, server_host, [_SNAT_PORT]) as srv:
            res = _connect(ctx, client, target, _SNAT_PORT)
            conns = srv.connections(ctx)
        reply = res.stdout.strip().split()
        if res.exited != 0 or len(reply) != 4 or reply[1] != srv.token:
            raise CheckFailed(
                f"{client} -> {server_host} ({target}:{_SNAT_PORT}) through {gw.host} failed", res.command, res.output
            )
        if reply[2] != gw.outside_address:
            raise CheckFailed(
                f"{server_host} saw the connection from {reply[2]}, not from the gateway's outside address "
                f"{gw.outside_address} (no {mode.upper()})",
                res.command,
                f"{res.output}\nserver log: {conns}",
            )
        _check_arrived_unchanged(ctx, gw, client, res, target)
        after = _rule(_rules(ctx, gw.host, "POSTROUTING", "nat"), comment, gw.host, "POSTROUTING")
        if after.packets <= before.packets:
            raise CheckFailed(
                f"{gw.host}: the {mode} rule counted nothing ({before.packets} -> {after.packets} packets)",
                "iptables -t nat -v -S POSTROUTING",
                after.spec,
            )
        if mode == "snat" and f"--to-source {gw.outside_address}" not in after.spec:
            raise CheckFailed(f"{gw.host}: SNAT rule does not use {gw.outside_address}", "", after.spec)


def conntrack_source(table: str, dst: str, sport: int, dport: int) -> str | None:
    """The original source address of a TCP flow in /proc/net/nf_conntrack text (None if absent)."""
    for line in table.splitlines():
        first: dict[str, str] = {}  # the original direction's fields come first
        for f in line.split():
            key, sep, value = f.partition("=")
            if sep and key not in first:
                first[key] = value
        if first.get("dst") == dst and first.get("sport") == str(sport) and first.get("dport") == str(dport):
            return first.get("src")
    return None


def _check_arrived_unchanged(ctx: Context, gw: Gateway, client: str, res: Result, target: str) -> None:
    """The gateway must see the client's own address: nothing between them may NAT the flow."""
    local = next((ln.split() for ln in res.stderr.splitlines() if ln.startswith("local ")), None)
    table = ctx.run(gw.host, "cat /proc/net/nf_conntrack", timeout=15)
    if local is None or not table.ok:
        return  # no conntrack table to look at
    seen = conntrack_source(table.stdout, target, int(local[2]), _SNAT_PORT)
    if seen is not None and seen != local[1]:
        raise CheckFailed(
            f"{gw.host} received {client}'s flow from {seen}, not from {client}'s address {local[1]}: something "
            "between them NATs it (on podman hosts with bridge-nf-call-iptables=1, the host's masquerade of "
            "bridged traffic between lab networks; labctl must exempt lab-to-lab traffic)",
            "cat /proc/net/nf_conntrack",
            "\n".join(ln for ln in table.stdout.splitlines() if f"dport={_SNAT_PORT}" in ln),
        )


@check("outside host reaches inside services through port forwards (DNAT)")
def dnat(ctx: Context) -> None:
    tested = 0
    for gw in _gateways(ctx):
        _need(gw, inside=False)
        client = gw.outside_hosts[0]
        client_addr = ctx.address(client, gw.outside_net)
        hostvars = dict(gw.vars, labctl_addresses=ctx.addresses[gw.host], labctl_hosts=ctx.addresses)
        for fwd in forwards(hostvars):
            if fwd["protocol"] != "tcp":
                continue
            target = fwd["to_host"] if fwd["to_host"] in ctx.addresses else None
            if target is None:
                target = next((h for h, a in ctx.addresses.items() if fwd["to_address"] in a.values()), None)
            comment = f"{COMMENT} forward {fwd['name']}"
            before = _rule(_rules(ctx, gw.host, "PREROUTING", "nat"), comment, gw.host, "PREROUTING")
            what = f"{client} -> {gw.host} {gw.outside_address}:{fwd['port']} -> {fwd['to_address']}:{fwd['to_port']}"
            if target is not None and not _listening(ctx, target, fwd["to_port"]):
                with _server(ctx, target, [fwd["to_port"]]) as srv:
                    res = _connect(ctx, client, gw.outside_address, fwd["port"])
                reply = res.stdout.strip().split()
                if res.exited != 0 or len(reply) != 4 or reply[1] != srv.token:
                    raise CheckFailed(f"{what}: no answer from the forward's target", res.command, res.output)
                if reply[2] != client_addr:
                    raise CheckFailed(
                        f"{what}: {target} saw the client as {reply[2]}, expected {client_addr}",
                        res.command,
                        res.output,
                    )
            else:
                # A real service already listens there (e.g. mongrel2): connect only.
                res = _connect(ctx, client, gw.outside_address, fwd["port"], read=False)
                if res.exited != 0:
                    raise CheckFailed(f"{what}: connection failed", res.command, res.output)
            after = _rule(_rules(ctx, gw.host, "PREROUTING", "nat"), comment, gw.host, "PREROUTING")
            if after.packets <= before.packets:
                raise CheckFailed(
                    f"{gw.host}: forward {fwd['name']} counted nothing ({before.packets} -> {after.packets})",
                    "iptables -t nat -v -S PREROUTING",
                    after.spec,
                )
            tested += 1
    if not tested:
        raise CheckSkipped("no TCP port forward configured")


@check("filtered flow is dropped and logged, a similar flow passes")
def filtered(ctx: Context) -> None:
    tested = 0
    for gw in _gateways(ctx):
        _need(gw)
        rules = [
            r
            for r in gw.get("nat_gateway_filter_rules") or []
            if (r.get("protocol") or "") == "tcp"
            and r.get("destination_port")
            and (r.get("jump") or "DROP") in ("DROP", "REJECT")
        ]
        blocked = {int(r["destination_port"]) for r in rules}
        networks = {n for addrs in ctx.addresses.values() for n in addrs}
        for rule in rules:
            client = _pick(ctx, gw.inside_hosts, gw.inside_net, rule.get("source"), networks)
            server_host = _pick(ctx, gw.outside_hosts, gw.outside_net, rule.get("destination"), networks)
            if client is None or server_host is None:
                continue
            port = int(rule["destination_port"])
            passing = next(p for p in range(port + 1, port + 100) if p not in blocked)
            target = ctx.address(server_host, gw.outside_net)
            comment = f"{COMMENT} filter {rule['name']}"
            before = _rules(ctx, gw.host, "FORWARD")
            with _server(ctx, server_host, [port, passing]) as srv:
                dropped = _connect(ctx, client, target, port, timeout=3)
                passed = _connect(ctx, client, target, passing, timeout=5)
                conns = srv.connections(ctx)
            after = _rules(ctx, gw.host, "FORWARD")
            want = "timeout" if (rule.get("jump") or "DROP") == "DROP" else "refused"
            if dropped.stdout.strip() != want or any(p == port for _, p in conns):
                raise CheckFailed(
                    f"{client} -> {target}:{port} should be {rule.get('jump') or 'DROP'}ped by {gw.host} "
                    f"(expected {want!r}), got {dropped.stdout.strip()!r}",
                    dropped.command,
                    f"{dropped.output}\nserver log: {conns}",
                )
            reply = passed.stdout.strip().split()
            if passed.exited != 0 or len(reply) != 4 or reply[1] != srv.token:
                raise CheckFailed(
                    f"{client} -> {target}:{passing} (not filtered) should pass but did not",
                    passed.command,
                    passed.output,
                )
            for suffix in (" log", "") if rule.get("log") else ("",):
                b = _rule(before, comment + suffix, gw.host, "FORWARD")
                a = _rule(after, comment + suffix, gw.host, "FORWARD")
                if a.packets <= b.packets:
                    raise CheckFailed(
                        f"{gw.host}: rule {comment + suffix!r} counted nothing ({b.packets} -> {a.packets} packets)",
                        "iptables -v -S FORWARD",
                        a.spec,
                    )
                if suffix and "-j LOG" not in a.spec:
                    raise CheckFailed(f"{gw.host}: {comment + suffix!r} is not a LOG rule", "", a.spec)
            tested += 1
    if not tested:
        raise CheckSkipped("no TCP filter rule with a destination port that a lab host pair can exercise")


def _pick(ctx: Context, hosts: list[str], net: str, spec: str | None, networks: set[str]) -> str | None:
    for host in hosts:
        if matches(spec, host, ctx.address(host, net), set(ctx.addresses[host]), networks):
            return host
    return None


def _counts(rules: list[Rule]) -> dict[str, int]:
    out: dict[str, int] = {}
    for rule in rules:
        proto = option(rule.spec, "-p", "--protocol") or "all"
        out[proto] = out.get(proto, 0) + rule.packets
    return out


def _grown(
    ctx: Context, gw: str, chain: str, protocols: list[str], before: dict[str, int], after: dict[str, int]
) -> Callable[[], bool]:
    """A probe: have the chain's counters of every protocol grown? (fills `after`)"""

    def probe() -> bool:
        after.clear()
        after.update(_counts(_rules(ctx, gw, chain)))
        return all(after.get(p, 0) > before.get(p, 0) for p in protocols)

    return probe


@check("accounting chain counts forwarded traffic")
def accounting(ctx: Context) -> None:
    for gw in _gateways(ctx):
        _need(gw)
        chain = gw.get("nat_gateway_accounting_chain")
        protocols = list(gw.get("nat_gateway_accounting_protocols") or [])
        first = next(
            (ln for ln in ctx.sh(gw.host, f"{_IPT} -S FORWARD", timeout=15).stdout.splitlines() if ln.startswith("-A")),
            "",
        )
        if first.strip() != f"-A FORWARD -j {chain}":
            raise CheckFailed(f"{gw.host}: FORWARD does not jump to {chain} first", "iptables -S FORWARD", first)
        client, server_host = gw.inside_hosts[0], gw.outside_hosts[0]
        target = ctx.address(server_host, gw.outside_net)
        before = _counts(_rules(ctx, gw.host, chain))
        missing = [p for p in protocols if p not in before]
        if missing:
            raise CheckFailed(
                f"{gw.host}: {chain} has no counter for {missing}", f"iptables -v -S {chain}", str(before)
            )
        with _server(ctx, server_host, [_SNAT_PORT]) as srv:
            res = _connect(ctx, client, target, _SNAT_PORT)
        if srv.token not in res.stdout:
            raise CheckFailed(f"{client} -> {target}:{_SNAT_PORT} failed", res.command, res.output)
        # UDP to a closed port: the datagrams count as udp, the port-unreachable answers as icmp.
        ctx.sh(client, f"timeout 20 python3 {_PROBE} udp {target} {_SNAT_PORT + 1} --count 3", timeout=30)
        after: dict[str, int] = {}
        try:
            ctx.wait_until(f"{chain} counters grow", _grown(ctx, gw.host, chain, protocols, before, after), timeout=5)
        except CheckFailed as exc:
            raise CheckFailed(
                f"{gw.host}: {chain} counters did not all grow with traffic",
                f"iptables -v -S {chain}",
                f"before {before}\nafter  {after}",
            ) from exc
