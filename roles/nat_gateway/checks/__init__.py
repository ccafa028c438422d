"""NAT gateway (iptables): the seed's SNAT/MASQUERADE, DNAT, filter + LOG and TRAFFIC_ACCT, tested
with real traffic across real hosts.

The nat_gateway role configures the gateway (group ``nat_gateway``) between two lab networks
(``nat_gateway_inside_network`` / ``nat_gateway_outside_network``, default ``inside`` / ``outside``).
The checks use the other lab hosts on those networks as clients and servers: throwaway TCP
endpoints (files/nat_gateway_probe.py, started with ``systemd-run ... timeout``) so nothing is left
running. Addresses of the other hosts come from the topology; the gateway's settings (networks,
forwards with their resolved targets, filter rules, accounting chain, files) from the role's fact
``ctx.fact(gw, "nat_gateway")``.

Also provides :func:`forwards`, a pure function listing a gateway's port forwards (for
``labctl status --host <gw>``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import secrets
import shlex
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labctl.checks.base import CheckFailed, CheckSkipped, Context, Result, check

from .iptables import COMMENT, Rule, forwards_from_rules, option, parse_counted_rules

SERVICE = "nat_gateway"
GROUP = "nat_gateway"
# the port forwards reach services that mongrel2's checks restart: run after them, not beside them
AFTER = ("mongrel2",)

_PROBE_TEXT = (Path(__file__).parent / "files" / "nat_gateway_probe.py").read_text()
_PROBE = "/tmp/labctl-nat-gateway-probe.py"
_SNAT_PORT = 47080  # port of the throwaway server for the SNAT check
_IPT = "iptables -w 5"


# ---------------------------------------------------------------------------------------------
# Pure helpers (unit-tested)


def forwards(rules: str) -> list[dict[str, Any]]:
    """A gateway's port forwards in force, for ``labctl status --host <gw>``, from the output of
    ``iptables -t nat -S`` (or ``iptables-save``) on it: every DNAT rule is listed (the name comes
    from the role's rule comment, else ``<proto>/<port>``).

    Each item: ``{"name", "protocol", "address", "port", "to_host", "to_address", "to_port"}``
    (``address`` is the address the forward listens on; unknown values are None).
    """
    return forwards_from_rules(rules)


def configured_forwards(fact: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The forwards the role configured (its fact), in the same shape as :func:`forwards`."""
    return [dict(fwd, address=fact["outside_address"]) for fwd in fact.get("forwards", [])]


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
    fact: dict[str, Any]  # what the role resolved on the gateway
    outside_net: str
    inside_net: str
    outside_address: str
    inside_address: str
    inside_hosts: list[str]  # other hosts with an address on the inside network
    outside_hosts: list[str]  # other hosts with an address on the outside network


def _gateways(ctx: Context) -> list[Gateway]:
    gws = []
    for gw in ctx.hosts(GROUP):
        fact = ctx.fact(gw, SERVICE)
        out_net, in_net = fact["outside_network"], fact["inside_network"]
        addrs = ctx.addresses.get(gw, {})
        if out_net not in addrs or in_net not in addrs:
            raise CheckFailed(f"{gw}: not on both networks {out_net!r} and {in_net!r} (it is on {sorted(addrs)})")
        others = [h for h in ctx.hosts("all") if h != gw and h not in ctx.hosts(GROUP)]
        gws.append(
            Gateway(
                host=gw,
                fact=fact,
                outside_net=out_net,
                inside_net=in_net,
                outside_address=fact["outside_address"],
                inside_address=fact["inside_address"],
                inside_hosts=[h for h in others if in_net in ctx.addresses.get(h, {})],
                outside_hosts=[h for h in others if out_net in ctx.addresses.get(h, {})],
            )
        )
    return gws


def _need(gw: Gateway, inside: bool = True, outside: bool = True) -> None:
    """Skip unless the gateway has another host on each side to test with (hosts on networks the role's
    fact names, so this is resolved here rather than declared as a Need)."""
    if inside and not gw.inside_hosts:
        raise CheckSkipped(
            f"needs an inside host: a host besides {gw.host} on its {gw.inside_net!r} network (add one) to test from"
        )
    if outside and not gw.outside_hosts:
        raise CheckSkipped(
            f"needs an outside host: a host besides {gw.host} on its {gw.outside_net!r} network (add one) to test with"
        )


def _rules(ctx: Context, gw: str, chain: str, table: str = "filter") -> list[Rule]:
    return parse_counted_rules(ctx.sh(gw, f"{_IPT} -t {table} -v -S {shlex.quote(chain)}", timeout=20).stdout)


def _rule(rules: list[Rule], comment: str, gw: str, chain: str) -> Rule:
    for rule in rules:
        if rule.comment() == comment:
            return rule
    listing = "\n".join(f"-A {r.chain} {r.spec}" for r in rules)
    raise CheckFailed(f"{gw}: no rule with comment {comment!r} in {chain}", f"iptables -v -S {chain}", listing)


class Counters:
    """Packet counters of a chain on the gateway, read now (before the traffic): one per rule comment,
    or with ``by_protocol`` one per protocol. :meth:`grown` reads them again and fails the check
    unless every one of them grew."""

    def __init__(
        self, ctx: Context, gw: str, chain: str, keys: list[str], table: str = "filter", by_protocol: bool = False
    ) -> None:
        self.ctx, self.gw, self.chain, self.keys, self.table = ctx, gw, chain, keys, table
        self.by_protocol = by_protocol
        self.command = f"iptables -t {table} -v -S {chain}"
        self.rules: list[Rule] = []
        self.before = self.after = self._read()

    def _read(self) -> dict[str, int]:
        self.rules = _rules(self.ctx, self.gw, self.chain, self.table)
        if not self.by_protocol:
            return {key: self.rule(key).packets for key in self.keys}
        counts = _counts(self.rules)
        missing = [key for key in self.keys if key not in counts]
        if missing:
            raise CheckFailed(f"{self.gw}: {self.chain} has no counter for {missing}", self.command, str(counts))
        return {key: counts[key] for key in self.keys}

    def rule(self, comment: str) -> Rule:
        """The rule with this comment, as last read."""
        return _rule(self.rules, comment, self.gw, self.chain)

    def grown(self, what: str, wait: float = 0) -> None:
        """Fail unless every counter grew since construction (polling up to `wait` seconds)."""

        def grew() -> bool:
            self.after = self._read()
            return all(self.after[key] > self.before[key] for key in self.keys)

        if grew():
            return
        if wait:
            with contextlib.suppress(CheckFailed):
                self.ctx.wait_until(f"{self.gw}: {what} grows", grew, timeout=wait)
                return
        stuck = [
            f"{key!r} {self.before[key]} -> {self.after[key]}"
            for key in self.keys
            if self.after[key] <= self.before[key]
        ]
        raise CheckFailed(
            f"{self.gw}: {what} counted nothing ({'; '.join(stuck)} packets)",
            self.command,
            "\n".join(f"-A {r.chain} {r.spec}" for r in self.rules),
        )


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
        sysctl_file = gw.fact["sysctl_file"]
        cmd = f"grep -Es '^net.ipv4.ip_forward *= *1' {shlex.quote(sysctl_file)}"
        if not ctx.run(gw.host, cmd, timeout=15).ok:
            raise CheckFailed(f"{gw.host}: {sysctl_file} does not enable forwarding at boot", cmd)
        enabled = ctx.run(gw.host, "systemctl is-enabled netfilter-persistent.service", timeout=15).stdout.strip()
        if enabled != "enabled":
            raise CheckFailed(f"{gw.host}: netfilter-persistent is {enabled!r}: the rules would not load at boot")
        rules_file = gw.fact["rules_file"]
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
        mode = gw.fact["snat_mode"]
        comment = f"{COMMENT} {mode}"
        counter = Counters(ctx, gw.host, "POSTROUTING", [comment], table="nat")
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
        counter.grown(f"the {mode} rule")
        spec = counter.rule(comment).spec
        if mode == "snat" and f"--to-source {gw.outside_address}" not in spec:
            raise CheckFailed(f"{gw.host}: SNAT rule does not use {gw.outside_address}", "", spec)


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
        for fwd in configured_forwards(gw.fact):
            if fwd["protocol"] != "tcp":
                continue
            target = fwd["to_host"] if fwd["to_host"] in ctx.addresses else None
            if target is None:
                target = next((h for h, a in ctx.addresses.items() if fwd["to_address"] in a.values()), None)
            comment = f"{COMMENT} forward {fwd['name']}"
            counter = Counters(ctx, gw.host, "PREROUTING", [comment], table="nat")
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
            counter.grown(f"forward {fwd['name']}")
            tested += 1
    if not tested:
        raise CheckSkipped("no TCP port forward configured")


def log_lines(lines: list[str], prefix: str, src: str, dst: str, port: int) -> list[str]:
    """Kernel log lines of a LOG rule with this prefix for one TCP flow (src -> dst:port)."""
    want = (f"SRC={src} ", f"DST={dst} ", "PROTO=TCP ", f"DPT={port} ")
    return [ln for ln in lines if prefix in ln and all(w in ln for w in want)]


def _logged(ctx: Context, gw: Gateway, rule: dict[str, Any], client: str, target: str, port: int) -> str:
    """The kernel log line the rule's LOG rule wrote for the blocked flow (found where the gateway's
    kernel log lands: the machine's for a container, the gateway's own journal for a VM)."""
    prefix = str(rule.get("log_prefix") or gw.fact["log_prefix"])
    src = ctx.address(client, gw.inside_net)
    found: list[str] = []

    def logged() -> bool:
        nonlocal found
        found = log_lines(ctx.kernel_log(gw.host, prefix), prefix, src, target, port)
        return bool(found)

    try:
        ctx.wait_until(f"{gw.host}: a kernel log line {prefix!r} for {src} -> {target}:{port}", logged, timeout=10)
    except CheckFailed as exc:
        raise CheckFailed(str(exc), f"kernel log of {gw.host} | grep -F {prefix!r}") from None
    line = found[-1]
    return line[line.index(prefix) :]


@check("filtered flow is dropped and logged, a similar flow passes")
def filtered(ctx: Context) -> str:
    tested = 0
    shown = ""
    networks = {n for addrs in ctx.addresses.values() for n in addrs}
    for gw in _gateways(ctx):
        _need(gw)
        rules = _blocking_tcp_rules(gw)
        blocked = {int(r["destination_port"]) for r in rules}
        for rule in rules:
            logged = _exercise_filter(ctx, gw, rule, blocked, networks, show_log=not shown)
            if logged is None:
                continue
            shown = shown or logged
            tested += 1
    if not tested:
        raise CheckSkipped("no TCP filter rule with a destination port that a lab host pair can exercise")
    return shown or f"{tested} filter rule(s) drop and pass as configured (none logs)"


def _blocking_tcp_rules(gw: Gateway) -> list[dict[str, Any]]:
    """The gateway's TCP filter rules with a destination port that drop or reject."""
    return [
        r
        for r in gw.fact["filter_rules"]
        if (r.get("protocol") or "") == "tcp"
        and r.get("destination_port")
        and (r.get("jump") or "DROP") in ("DROP", "REJECT")
    ]


def _exercise_filter(
    ctx: Context, gw: Gateway, rule: dict[str, Any], blocked: set[int], networks: set[str], show_log: bool
) -> str | None:
    """Prove one filter rule: its port is dropped or refused, the next free port passes, its counter
    grows (and its LOG rule logs). None when no lab host pair can exercise it; else what was logged
    (read only when show_log; empty when the rule does not log)."""
    client = _pick(ctx, gw.inside_hosts, gw.inside_net, rule.get("source"), networks)
    server_host = _pick(ctx, gw.outside_hosts, gw.outside_net, rule.get("destination"), networks)
    if client is None or server_host is None:
        return None
    port = int(rule["destination_port"])
    passing = next(p for p in range(port + 1, port + 100) if p not in blocked)
    target = ctx.address(server_host, gw.outside_net)
    comment = f"{COMMENT} filter {rule['name']}"
    counter = Counters(ctx, gw.host, "FORWARD", [comment + " log", comment] if rule.get("log") else [comment])
    with _server(ctx, server_host, [port, passing]) as srv:
        dropped = _connect(ctx, client, target, port, timeout=3)
        passed = _connect(ctx, client, target, passing, timeout=5)
        conns = srv.connections(ctx)
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
    counter.grown(f"filter rule {rule['name']}")
    if not rule.get("log"):
        return ""
    if "-j LOG" not in (log := counter.rule(comment + " log")).spec:
        raise CheckFailed(f"{gw.host}: {comment + ' log'!r} is not a LOG rule", "", log.spec)
    return f"{gw.host} logged: {_logged(ctx, gw, rule, client, target, port)}" if show_log else ""


_BEYOND = "198.51.100.1"  # TEST-NET-2: an address outside every lab network (RFC 5737)
_BEYOND_PORT = 9


@check("inside hosts route everything through the gateway (default route, NATed)")
def default_route(ctx: Context) -> str:
    shown = []
    for gw in _gateways(ctx):
        _need(gw, outside=False)
        routed = [
            h
            for h in gw.inside_hosts
            if {"to": "default", "via": gw.inside_address} in (ctx.var(h, "labctl_routes") or [])
        ]
        if not routed:
            raise CheckSkipped(
                f"no host on {gw.inside_net!r} has {gw.host} as its default route "
                f"(the topology's routes: {{to: default, via: {gw.host}}})"
            )
        comment = f"{COMMENT} {gw.fact['snat_mode']}"
        for host in routed:
            got = ctx.sh(host, f"ip -4 route get {_BEYOND}", timeout=15).stdout
            if f" via {gw.inside_address} " not in f" {got} ":
                raise CheckFailed(
                    f"{host}: traffic to {_BEYOND} does not go through {gw.host} ({gw.inside_address})",
                    f"ip -4 route get {_BEYOND}",
                    got,
                )
        # A flow to an address beyond every lab network crosses the gateway's NAT (its first packet
        # is counted by the masquerade/SNAT rule), whether or not anything answers out there.
        counter = Counters(ctx, gw.host, "POSTROUTING", [comment], table="nat")
        _connect(ctx, routed[0], _BEYOND, _BEYOND_PORT, timeout=2, read=False)
        counter.grown(f"the {gw.fact['snat_mode']} rule for {routed[0]} -> {_BEYOND}", wait=5)
        gw_route = ctx.sh(gw.host, f"ip -4 route get {_BEYOND}", timeout=15).stdout
        out_if = gw.fact.get("outside_interface")
        if gw.fact.get("default_route_outside") and out_if and f" dev {out_if} " not in f" {gw_route} ":
            raise CheckFailed(
                f"{gw.host}: its own default route does not leave through the outside interface {out_if}",
                f"ip -4 route get {_BEYOND}",
                gw_route,
            )
        shown.append(f"{', '.join(routed)} -> default via {gw.host} {gw.inside_address}, NATed out {out_if}")
    return "; ".join(shown)


@check("gateway accepts its inside network (INPUT -i inside -s subnet -j ACCEPT)")
def input_inside(ctx: Context) -> str:
    shown = []
    for gw in _gateways(ctx):
        if not gw.fact.get("input_accept_inside"):
            raise CheckSkipped(f"{gw.host}: nat_gateway_input_accept_inside is false")
        _need(gw, outside=False)
        comment = f"{COMMENT} input inside"
        counter = Counters(ctx, gw.host, "INPUT", [comment])
        spec = counter.rule(comment).spec
        want = [f"-s {gw.fact['inside_subnet']}", f"-i {gw.fact['inside_interface']}", "-j ACCEPT"]
        if not all(w in spec for w in want):
            raise CheckFailed(f"{gw.host}: INPUT rule {comment!r} is not {' '.join(want)}", "iptables -S INPUT", spec)
        # Anything an inside host sends the gateway passes this rule (a refused port still counts).
        _connect(ctx, gw.inside_hosts[0], gw.inside_address, _SNAT_PORT + 2, timeout=2, read=False)
        counter.grown(f"INPUT rule {comment!r}")
        shown.append(f"{gw.host}: -A INPUT {' '.join(want)}")
    return "; ".join(shown)


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


@check("accounting chain counts forwarded traffic")
def accounting(ctx: Context) -> None:
    for gw in _gateways(ctx):
        _need(gw)
        chain = gw.fact["accounting_chain"]
        protocols = list(gw.fact["accounting_protocols"])
        first = next(
            (ln for ln in ctx.sh(gw.host, f"{_IPT} -S FORWARD", timeout=15).stdout.splitlines() if ln.startswith("-A")),
            "",
        )
        if first.strip() != f"-A FORWARD -j {chain}":
            raise CheckFailed(f"{gw.host}: FORWARD does not jump to {chain} first", "iptables -S FORWARD", first)
        client, server_host = gw.inside_hosts[0], gw.outside_hosts[0]
        target = ctx.address(server_host, gw.outside_net)
        counter = Counters(ctx, gw.host, chain, protocols, by_protocol=True)
        with _server(ctx, server_host, [_SNAT_PORT]) as srv:
            res = _connect(ctx, client, target, _SNAT_PORT)
        if srv.token not in res.stdout:
            raise CheckFailed(f"{client} -> {target}:{_SNAT_PORT} failed", res.command, res.output)
        # UDP to a closed port: the datagrams count as udp, the port-unreachable answers as icmp.
        ctx.sh(client, f"timeout 20 python3 {_PROBE} udp {target} {_SNAT_PORT + 1} --count 3", timeout=30)
        counter.grown(f"{chain} (counters per protocol)", wait=5)
