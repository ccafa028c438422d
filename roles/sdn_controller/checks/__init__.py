"""Sliceable switch checks: real packets between the emulated hosts (network namespaces) on the sdn host.

The controller's address, bridge and emulated hosts come from the role's fact
(``ctx.fact(host, "sdn_controller")``). Which hosts should reach each other is computed from the
controller's live slices (read over its REST API) with the same slice function the controller runs
(files/controller/slices.py), and then proven with ping.
Checks that change slices or options put everything back and verify the state is as they found it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import shlex
import weakref
from itertools import combinations
from pathlib import Path
from typing import Any

from labctl.checks.base import CheckFailed, CheckSkipped, Context, check

from ..files.controller import slices as sl
from . import trema_features

SERVICE = "sdn_controller"
GROUP = "sdn_controller"
UNIT = "sdn-controller"  # what `labctl logs HOST UNIT` shows when a check fails
_SMOKE_MAC = "02:5a:5a:00:00:99"  # the temporary host of the restrict check, before it takes a bound MAC

FILES = Path(__file__).parent / "files"
# Runs on the sdn host: a batch of REST requests, ping sets and commands in one program (one SSH round
# trip), waits polled there rather than over SSH
_STEPS = (FILES / "sdn_steps.py").read_text()
Step = list[Any]
Pair = tuple[str, str, bool]  # source host, destination host (or address), whether it must reach


UNUSED_TRIES = 1024  # addresses unused_ip tries before it gives up


def rest_url(ctx: Context, host: str) -> str:
    """The controller's REST URL as labctl derives it, never the fact's rest_url (a host's fact is data:
    it does not choose where labctl connects): the address from the topology (the host's
    sdn_controller_rest_address when it is an IP address, else its lab address, which the role listens
    on by default) and the port the role resolved (its fact's rest_port, checked to be a port)."""
    port = ctx.fact(host, SERVICE).get("rest_port")
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise CheckFailed(
            f"{host}: the sdn_controller fact's rest_port {str(port)[:40]!r} is not a TCP port (1-65535); "
            f"Fix: labctl provision --name {ctx.lab}"
        )
    address = ctx.address(host)
    chosen = ctx.var(host, "sdn_controller_rest_address")
    if isinstance(chosen, str):
        with contextlib.suppress(ValueError):
            address = str(ipaddress.ip_address(chosen))
    return f"http://{address}:{port}"


class Sdn:
    """The sdn host as the checks see it: REST API, bridge, emulated hosts."""

    def __init__(self, ctx: Context, host: str) -> None:
        self.ctx, self.host = ctx, host
        fact = ctx.fact(host, SERVICE)
        self.url = rest_url(ctx, host)
        self.bridge = str(fact["bridge"])
        self.units = list(fact["units"])
        names = [h["name"] for h in fact["hosts"]]
        info = self.steps([["hosts", names, self.bridge]])[0]
        self.hosts: dict[str, dict[str, Any]] = info["hosts"]
        self.dpid = int(info["dpid"])

    def steps(self, steps: list[Step], timeout: float = 120) -> list[Any]:
        """Run steps on the host in one program (see files/sdn_steps.py); one result per step run.

        A REST step whose status is not the expected one ends the batch there: the steps after it do
        not run (and :meth:`http` raises on it)."""
        out = self.ctx.python(self.host, _STEPS, json.dumps(steps), timeout=timeout).stdout
        return list(json.loads(out))

    # -- REST
    def req(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 202)) -> Step:
        wanted = [expect] if isinstance(expect, int) else list(expect)
        return ["http", method, self.url + path, json.dumps(body) if body is not None else "", wanted]

    def http(self, step: Step, res: Any) -> Any:
        """The body of a REST step's result; CheckFailed when its status is not the expected one (or it
        did not run because an earlier request of its batch failed)."""
        _, method, url, payload, wanted = step
        if res is None:
            raise CheckFailed(f"{method} {url}: not sent (an earlier request failed)", f"{method} {url} {payload}")
        if res["status"] not in wanted:
            raise CheckFailed(
                f"{method} {url.removeprefix(self.url)}: HTTP {res['status']}, expected {tuple(wanted)}",
                f"{method} {url} {payload}",
                json.dumps(res["body"]),
            )
        return res["body"]

    def run(self, steps: list[Step], timeout: float = 120) -> list[Any]:
        """Run steps; REST results become their bodies (raising on an unexpected status), wait_pings
        results raise on a wrong outcome, sh results on a non-zero exit."""
        results = self.steps(steps, timeout=timeout)
        results += [None] * (len(steps) - len(results))
        out = []
        for step, res in zip(steps, results, strict=True):
            kind = step[0]
            if kind == "http":
                out.append(self.http(step, res))
            elif kind == "sh":
                if res is None:
                    raise CheckFailed(f"{self.host}: command not run (an earlier step failed)", step[1])
                if res["exit"] != 0:
                    raise CheckFailed(
                        f"{self.host}: command exited {res['exit']}", step[1], res["stdout"] + res["stderr"]
                    )
                out.append(res["stdout"])
            else:
                out.append(res)
        return out

    def api(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 202)) -> Any:
        return self.run([self.req(method, path, body, expect)])[0]

    def state_steps(self) -> list[Step]:
        return [self.req("GET", "/db"), self.req("GET", "/config")]

    @staticmethod
    def as_state(db: Any, config: Any) -> dict[str, Any]:
        """Everything the controller holds: options and Trema's tables (sorted for comparison)."""
        db["slices"].sort(key=lambda r: r["number"])
        db["bindings"].sort(key=lambda r: (r["slice_number"], r["id"]))
        db["filter"].sort(key=lambda r: r["id"])
        return {"config": config, "db": db}

    def state(self) -> dict[str, Any]:
        return self.as_state(*self.run(self.state_steps()))

    @staticmethod
    def table_of(state: dict[str, Any]) -> sl.SliceTable:
        t = sl.SliceTable()
        t.load({"config": state["config"], "tables": state["db"]})
        return t

    def table(self) -> sl.SliceTable:
        return self.table_of(self.state())

    def slice_of(self, table: sl.SliceTable) -> dict[str, str | None]:
        return {n: table.lookup(self.dpid, h["port"], sl.UNTAGGED, h["mac"]) for n, h in self.hosts.items()}

    def same_state(self, before: dict[str, Any], db: Any, config: Any, what: str) -> None:
        now = self.as_state(db, config)
        if now != before:
            raise CheckFailed(what, "GET /db, /config", json.dumps(now))

    # -- packets
    def _addr(self, dst: str) -> str:
        return str(self.hosts[dst]["ip"]) if dst in self.hosts else dst

    def pings_step(self, pairs: list[Pair]) -> Step:
        return ["pings", [[a, self._addr(b), want] for a, b, want in pairs]]

    def wait_step(self, pairs: list[Pair], timeout: float = 15) -> Step:
        return ["wait_pings", [[a, self._addr(b), want] for a, b, want in pairs], timeout]

    @staticmethod
    def wrong(pairs: list[Pair], got: list[bool], what: str) -> None:
        wrong = [
            f"{a}->{b} {'reached' if ok else 'did not reach'}"
            for (a, b, want), ok in zip(pairs, got, strict=True)
            if ok != want
        ]
        if wrong:
            raise CheckFailed(
                f"{what}: {', '.join(wrong)}",
                "ip netns exec SRC ping -c 1 -i 0.1 -w 5 (must reach) or 1 (must not) DST",
            )

    def expect_pings(self, pairs: list[Pair], what: str) -> None:
        self.wrong(pairs, self.steps([self.pings_step(pairs)], timeout=60)[0], what)

    def waited(self, pairs: list[Pair], res: dict[str, Any], what: str) -> None:
        """Raise with the details when a wait_pings step ended before every pair behaved."""
        if res is None:
            raise CheckFailed(f"{what}: not tried (an earlier step failed)", "ip netns exec SRC ping DST")
        if not res["ok"]:
            self.wrong(pairs, res["got"], f"{what} (after {res['seconds']} s)")

    def wait_pings(self, pairs: list[Pair], what: str, timeout: float = 15) -> None:
        self.waited(pairs, self.steps([self.wait_step(pairs, timeout)], timeout=timeout + 60)[0], what)

    def connected_step(self, timeout: float = 30) -> Step:
        """Poll (on the host) until the bridge is connected to its controller: {"ok", "seconds"}."""
        return ["wait_sh", f"ovs-vsctl get controller {shlex.quote(self.bridge)} is_connected", "true", timeout]

    def connected(self, res: dict[str, Any]) -> None:
        if res is None or not res["ok"]:
            raise CheckFailed(
                f"{self.host}: {self.bridge} not connected to its controller"
                + ("" if res is None else f" after {res['seconds']} s"),
                f"ovs-vsctl get controller {self.bridge} is_connected",
            )

    def unused_ip(self, near: str) -> str:
        h = self.hosts[near]
        net = ipaddress.ip_network(f"{h['ip']}/{h['prefix']}", strict=False)
        used = {x["ip"] for x in self.hosts.values()}
        # from the top of the subnet down, a bounded number of tries: the prefix is what the host reports,
        # and a /1 would otherwise list two billion addresses
        last = int(net.broadcast_address) - 1 if net.num_addresses > 2 else int(net.broadcast_address)
        for offset in range(min(UNUSED_TRIES, net.num_addresses)):
            cand = type(net.network_address)(last - offset)
            if cand in net and cand != net.network_address and str(cand) not in used:
                return str(cand)
        raise CheckSkipped(f"no free address in {net}")


# The sdn hosts as the first check of a smoke run read them (emulated hosts' ports, MACs, addresses;
# the bridge's datapath id: the checks put back what they change), kept for that run's later checks.
_SEEN: dict[int, tuple[weakref.ref[Context], list[Sdn]]] = {}


def _sdn(ctx: Context) -> list[Sdn]:
    hosts = ctx.hosts(GROUP)
    if not hosts:
        raise CheckSkipped("no sdn_controller host")
    seen = _SEEN.get(id(ctx))
    if seen is not None and seen[0]() is ctx:
        return seen[1]
    sdns = [Sdn(ctx, h) for h in hosts]
    for key in [k for k, (ref, _) in _SEEN.items() if ref() is None]:
        del _SEEN[key]
    _SEEN[id(ctx)] = (weakref.ref(ctx), sdns)
    return sdns


def _matrix(sdn: Sdn, table: sl.SliceTable) -> list[Pair]:
    member = sdn.slice_of(table)
    pairs = []
    for a, b in combinations(sorted(sdn.hosts), 2):
        same = member[a] is not None and member[a] == member[b]
        pairs.append((a, b, same))
        if not same:
            pairs.append((b, a, False))  # isolation holds both ways
    return pairs


@check("controller connected")
def controller_connected(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        _, connected, mode, networks = sdn.run(
            [
                ["sh", "systemctl is-active " + " ".join(shlex.quote(u) for u in sdn.units)],
                sdn.connected_step(timeout=30),
                ["sh", f"ovs-vsctl get bridge {shlex.quote(sdn.bridge)} fail_mode datapath_type protocols"],
                sdn.req("GET", "/networks"),
            ],
            timeout=90,
        )
        sdn.connected(connected)
        mode = mode.split()
        if mode[:2] != ["secure", "netdev"] or "OpenFlow13" not in mode[2]:
            raise CheckFailed(f"{sdn.host}: bridge settings {mode}", "ovs-vsctl get bridge ...")
        if not networks:
            raise CheckFailed(f"{sdn.host}: the controller has no slices", f"GET {sdn.url}/networks")


@check("slices isolate hosts")
def slices_isolate(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        pairs = _matrix(sdn, sdn.table())
        if not any(want for _, _, want in pairs) or all(want for _, _, want in pairs):
            raise CheckSkipped("the slices do not give both reachable and isolated pairs")
        sdn.expect_pings(pairs, f"{sdn.host}: reachability does not follow the slices")


@check("broadcast stays in its slice")
def broadcast_isolated(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        member = sdn.slice_of(sdn.table())
        trio = [
            (a, b, c)
            for a in sorted(sdn.hosts)
            for b in sorted(sdn.hosts)
            for c in sorted(sdn.hosts)
            if a != b and member[a] is not None and member[a] == member[b] and member[c] not in (None, member[a])
        ]
        if not trio:
            raise CheckSkipped("needs two hosts in one slice and one in another")
        a, b, c = trio[0]
        a_ip, c_ip = sdn.hosts[a]["ip"], sdn.hosts[c]["ip"]
        rx = f"ip netns exec {b} cat /sys/class/net/{b}/statistics/rx_packets"
        # a asks who has c's address: ARP broadcasts that must reach a's slice only. Had one reached c,
        # c would have answered (a would reach it) and learned a's address.
        _, before, reached, after, neigh = sdn.run(
            [
                ["sh", f"ip -n {b} neigh flush all && ip -n {c} neigh flush all"],
                ["sh", rx],
                sdn.pings_step([(a, c, False)]),
                ["sh", rx],
                ["sh", f"ip -n {c} neigh show {a_ip}"],
            ]
        )
        if reached != [False]:
            raise CheckFailed(f"{a} ({member[a]}) reached {c} ({member[c]})", f"ip netns exec {a} ping {c_ip}")
        grew = int(after) - int(before)
        neigh = neigh.strip()
        if grew < 1:
            raise CheckFailed(f"{b} (same slice as {a}) saw none of {a}'s ARP broadcasts", "rx_packets", str(grew))
        if neigh:
            raise CheckFailed(
                f"{c} ({member[c]}) received {a}'s ({member[a]}) ARP broadcast", f"ip -n {c} neigh show {a_ip}", neigh
            )


@check("moving a binding moves the host")
def move_binding(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        before = sdn.state()
        table = sdn.table_of(before)
        member = sdn.slice_of(table)
        by_port = {h["port"]: n for n, h in sdn.hosts.items()}
        move = None
        for pb in table.bindings:
            sid = table.slice_id_of(pb.slice_number)
            name = by_port.get(pb.port or 0)
            if pb.type != sl.PORT or name is None or member.get(name) != sid or pb.dpid != sdn.dpid:
                continue
            mates = [n for n in sorted(member) if n != name and member[n] == sid]
            others = [n for n in sorted(member) if member[n] not in (None, sid)]
            if mates and others:
                move = (str(sid), pb, name, mates[0], others[0], member[others[0]])
                break
        if move is None:
            raise CheckSkipped("needs a port-bound host with a slice mate and a host in another slice")
        src_slice, pb, name, mate, other, dst_slice = move
        binding = {"id": pb.id, "datapath_id": pb.dpid, "port": pb.port, "vid": pb.vid}
        home: list[Pair] = [(name, mate, True), (name, other, False)]
        moved: list[Pair] = [(name, other, True), (name, mate, False)]
        sdn.expect_pings(home, f"before moving {name}")
        try:
            res = sdn.run(
                [
                    sdn.req("DELETE", f"/networks/{src_slice}/ports/{pb.id}", expect=202),
                    sdn.req("POST", f"/networks/{dst_slice}/ports", binding, expect=202),
                    sdn.wait_step(moved, timeout=15),
                ],
                timeout=90,
            )
            sdn.waited(moved, res[2], f"{name} moved to {dst_slice}")
        finally:
            res = sdn.run(
                [
                    sdn.req("DELETE", f"/networks/{dst_slice}/ports/{pb.id}", expect=(202, 404)),
                    sdn.req("POST", f"/networks/{src_slice}/ports", binding, expect=(202, 422)),
                    sdn.wait_step(home, timeout=15),
                    *sdn.state_steps(),
                ],
                timeout=90,
            )
        sdn.waited(home, res[2], f"{name} back in {src_slice}")
        sdn.same_state(before, res[3], res[4], "the slices differ from before the check")


@check("restrict hosts on port")
def restrict_hosts(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        before = sdn.state()
        table = sdn.table_of(before)
        ports = {h["port"]: n for n, h in sdn.hosts.items()}
        # a host admitted by a port-MAC binding, and another port-bound host of the same slice
        chosen = None
        for s in table.slices.values():
            pbs = [pb for pb in table.bindings_of(s.id, sl.PORT) if pb.dpid == sdn.dpid and pb.port in ports]
            bound = [
                pb
                for pb in pbs
                if table.port_mac_owner(sdn.dpid, pb.port or 0, pb.vid or 0, sdn.hosts[ports[pb.port]]["mac"]) == s.id
            ]
            plain = [pb for pb in pbs if pb not in bound]
            if bound and len(plain) >= 2:
                chosen = (s.id, bound[0], plain[0], plain[1])
                break
        if chosen is None:
            raise CheckSkipped("needs a slice with a port-MAC-bound host and two port-bound hosts")
        sid, pm_pb, q_pb, r_pb = chosen
        p, q, r = ports[pm_pb.port], ports[q_pb.port], ports[r_pb.port]
        xname, xip = "sdnsmoke", sdn.unused_ip(p)
        x_prefix = sdn.hosts[p]["prefix"]
        add_x = "; ".join(
            [
                "set -e",
                f"ip netns add {xname}",
                f"ovs-vsctl add-port {sdn.bridge} {xname} -- set interface {xname} type=internal",
                f"ip link set {xname} netns {xname}",
                f"ip netns exec {xname} sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
                f"ip -n {xname} link set {xname} address {_SMOKE_MAC}",
                f"ip -n {xname} addr add {xip}/{x_prefix} dev {xname}",
                f"ip -n {xname} link set {xname} up",
                f"ovs-vsctl get interface {xname} ofport",
            ]
        )
        open_port: list[Pair] = [(xname, q, True)]
        restricted: list[Pair] = [(p, q, True), (xname, q, False), (r, q, False)]
        restored: list[Pair] = [(r, q, True), (p, q, True)]
        try:
            # q also gets a port-MAC binding; x is a new port of the slice (its own MAC at first)
            attach = {"id": "smoke-q", "mac": sdn.hosts[q]["mac"]}
            xport = int(
                sdn.run([sdn.req("POST", f"/networks/{sid}/ports/{q_pb.id}/attachments", attach), ["sh", add_x]])[1]
            )
            res = sdn.run(
                [
                    sdn.req(
                        "POST", f"/networks/{sid}/ports", {"id": "smoke-x", "datapath_id": sdn.dpid, "port": xport}
                    ),
                    # without the option the new port admits whatever is on it
                    sdn.wait_step(open_port),
                ],
                timeout=90,
            )
            sdn.waited(open_port, res[1], "unrestricted: port binding admits the host on the new port")
            # now the new port carries p's MAC: p's port-MAC binding must not admit it there
            res = sdn.run(
                [
                    sdn.req("PUT", "/config", {"restrict_hosts_on_port": True}),
                    ["sh", f"ip -n {xname} link set {xname} address {sdn.hosts[p]['mac']}"],
                    sdn.wait_step(restricted),
                ],
                timeout=90,
            )
            sdn.waited(
                restricted,
                res[2],
                f"restrict_hosts_on_port: {p} admitted on its bound port only; port-bound {r} refused",
            )
        finally:
            sdn.run(
                [
                    sdn.req("PUT", "/config", before["config"]),
                    sdn.req("DELETE", f"/networks/{sid}/ports/smoke-x", expect=(202, 404)),
                    sdn.req("DELETE", f"/networks/{sid}/ports/{q_pb.id}/attachments/smoke-q", expect=(202, 404)),
                    ["sh", f"ovs-vsctl --if-exists del-port {sdn.bridge} {xname}; ip netns delete {xname} || true"],
                ]
            )
        res = sdn.run([sdn.wait_step(restored), *sdn.state_steps()], timeout=90)
        sdn.waited(restored, res[0], "options restored")
        sdn.same_state(before, res[1], res[2], "the slices differ from before the check")


@check("controller restart keeps isolation")
def controller_restart(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        before = sdn.state()
        matrix = _matrix(sdn, sdn.table_of(before))
        pid = "systemctl show -P MainPID sdn-controller.service"
        old, _, new, api, connected, db, config, isolated = sdn.run(
            [
                ["sh", pid],
                ["sh", "systemctl restart sdn-controller.service"],
                ["sh", pid],
                ["wait_http", sdn.url + "/config", 30],
                sdn.connected_step(timeout=30),
                *sdn.state_steps(),
                sdn.wait_step(matrix, timeout=20),
            ],
            timeout=150,
        )
        old, new = old.strip(), new.strip()
        if new in ("0", old):
            raise CheckFailed(f"sdn-controller did not restart (pid {old} -> {new})", "systemctl restart")
        if not api["ok"]:
            raise CheckFailed(f"REST API not back {api['seconds']} s after the restart", f"GET {sdn.url}/config")
        sdn.connected(connected)
        sdn.same_state(before, db, config, "slices changed across the restart")
        sdn.waited(matrix, isolated, "isolation after the controller restart")


@check("REST API is Trema's")
def trema_rest(ctx: Context) -> str:
    """Every scenario of Trema's REST feature files, run on the controller host against the live API."""
    messages = []
    for sdn in _sdn(ctx):
        before = sdn.state()
        table = trema_features.load_table()
        program = Path(trema_features.__file__).read_text(encoding="utf-8")
        argv = ("run", sdn.url, json.dumps(table, separators=(",", ":")))
        results = json.loads(ctx.python(sdn.host, program, *argv, timeout=300).stdout)
        failed = [
            f"{r['feature']}: {r['name']}: step {r['failed_step']}: {r['failure']}" for r in results if not r["passed"]
        ]
        if failed:
            raise CheckFailed(
                f"{sdn.host}: {len(failed)} of {len(results)} Trema REST scenarios fail",
                "python3 - run URL TABLE (roles/sdn_controller/checks/trema_features.py)",
                "\n".join(failed),
            )
        matrix = _matrix(sdn, sdn.table_of(before))
        db, config, isolated = sdn.run([*sdn.state_steps(), sdn.wait_step(matrix, timeout=20)], timeout=90)
        sdn.same_state(before, db, config, "the tables differ from before the check")
        sdn.waited(matrix, isolated, "isolation after the tables were restored")
        messages.append(f"{sdn.host}: {len(results)}/{len(results)} Trema REST scenarios pass")
    return "; ".join(messages)


@check("filters allow and deny")
def filters_allow_deny(ctx: Context) -> str:
    """A DENY filter on one host's ICMP becomes drop flows; a higher-priority ALLOW wins over it."""
    for sdn in _sdn(ctx):
        before = sdn.state()
        member = sdn.slice_of(sdn.table_of(before))
        trio = [
            (a, b, c)
            for a in sorted(sdn.hosts)
            for b in sorted(sdn.hosts)
            for c in sorted(sdn.hosts)
            if len({a, b, c}) == 3 and member[a] is not None and member[a] == member[b] == member[c]
        ]
        if not trio:
            raise CheckSkipped("needs three hosts in one slice")
        a, b, c = trio[0]
        mac = {n: sdn.hosts[n]["mac"] for n in (a, b, c)}
        deny = {"id": "smoke-deny", "priority": 100, "dl_src": mac[a], "dl_type": "0x0800", "nw_proto": 1}
        allow = {"id": "smoke-allow", "priority": 200, "dl_src": mac[a], "dl_dst": mac[b], "action": "ALLOW"}
        denied: list[Pair] = [(a, b, False), (a, c, False), (c, b, True)]
        allowed: list[Pair] = [(a, b, True), (a, c, False)]
        removed: list[Pair] = [(a, b, True), (a, c, True)]
        dump = f"ovs-ofctl -O OpenFlow13 dump-flows {shlex.quote(sdn.bridge)}"
        try:
            _, res, flows = sdn.run(
                [
                    sdn.req("POST", "/filters", [deny | {"action": "DENY"}], expect=202),
                    sdn.wait_step(denied),
                    ["sh", dump],
                ],
                timeout=90,
            )
            sdn.waited(denied, res, f"DENY filter on {a}'s ICMP")
            drops = [f for f in flows.splitlines() if "icmp" in f and f"dl_src={mac[a]}" in f and "drop" in f]
            if not drops:
                raise CheckFailed(f"no drop flow for {a}'s ICMP on {sdn.bridge}", dump, flows)
            res = sdn.run([sdn.req("POST", "/filters", allow, expect=202), sdn.wait_step(allowed)], timeout=90)[1]
            sdn.waited(allowed, res, f"ALLOW filter {a}->{b} above the DENY")
        finally:
            sdn.run([sdn.req("DELETE", f"/filters/{fid}", expect=(202, 404)) for fid in ("smoke-allow", "smoke-deny")])
        res, db, config = sdn.run([sdn.wait_step(removed), *sdn.state_steps()], timeout=90)
        sdn.waited(removed, res, "filters removed")
        sdn.same_state(before, db, config, "the tables differ from before the check")
    return f"{a}'s ICMP denied by drop flows ({len(drops)} on {sdn.bridge}), allowed to {b} by priority 200"
