"""Sliceable switch checks: real packets between the emulated hosts (network namespaces) on the sdn host.

The controller's address, bridge and emulated hosts come from the role's fact
(``ctx.fact(host, "sdn_controller")``). Which hosts should reach each other is computed from the
controller's live slices (read over its REST API) with the same slice function the controller runs
(labctl.sdn.controller.slices), and then proven with ping.
Checks that change slices or options put everything back and verify the state is as they found it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import shlex
from itertools import combinations
from pathlib import Path
from typing import Any

from labctl.sdn import trema_features
from labctl.sdn.controller import slices as sl
from labctl.smoke.base import CheckFailed, CheckSkipped, Context, check

SERVICE = "sdn_controller"
GROUP = "sdn_controller"
UNIT = "sdn-controller"  # what `labctl logs HOST UNIT` shows when a check fails
_SMOKE_MAC = "02:5a:5a:00:00:99"  # the temporary host of the restrict check, before it takes a bound MAC

FILES = Path(__file__).parent / "files"
_HTTP = (FILES / "sdn_http.py").read_text()  # one REST request, run on the sdn host
_PINGS = (FILES / "sdn_pings.py").read_text()  # pings in parallel between emulated hosts
_HOSTS = (FILES / "sdn_hosts.py").read_text()  # port, MAC and address of each emulated host


class Sdn:
    """The sdn host as the checks see it: REST API, bridge, emulated hosts."""

    def __init__(self, ctx: Context, host: str) -> None:
        self.ctx, self.host = ctx, host
        fact = ctx.fact(host, SERVICE)
        self.url = str(fact["rest_url"])
        self.bridge = str(fact["bridge"])
        self.units = list(fact["units"])
        names = [h["name"] for h in fact["hosts"]]
        self.hosts: dict[str, dict[str, Any]] = json.loads(ctx.python(host, _HOSTS, json.dumps(names)).stdout)
        raw = ctx.sh(host, f"ovs-vsctl get bridge {shlex.quote(self.bridge)} datapath_id").stdout
        self.dpid = int(raw.strip().strip('"'), 16)

    # -- REST
    def api(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 202)) -> Any:
        payload = json.dumps(body) if body is not None else ""
        res = json.loads(self.ctx.python(self.host, _HTTP, method, self.url + path, payload).stdout)
        wanted = (expect,) if isinstance(expect, int) else expect
        if res["status"] not in wanted:
            raise CheckFailed(
                f"{method} {path}: HTTP {res['status']}, expected {wanted}",
                f"{method} {self.url}{path} {payload}",
                json.dumps(res["body"]),
            )
        return res["body"]

    def state(self) -> dict[str, Any]:
        """Everything the controller holds: options and Trema's tables (sorted for comparison)."""
        db = self.api("GET", "/db")
        db["slices"].sort(key=lambda r: r["number"])
        db["bindings"].sort(key=lambda r: (r["slice_number"], r["id"]))
        db["filter"].sort(key=lambda r: r["id"])
        return {"config": self.api("GET", "/config"), "db": db}

    def table(self) -> sl.SliceTable:
        t = sl.SliceTable()
        state = self.state()
        t.load({"config": state["config"], "tables": state["db"]})
        return t

    def slice_of(self, table: sl.SliceTable) -> dict[str, str | None]:
        return {n: table.lookup(self.dpid, h["port"], sl.UNTAGGED, h["mac"]) for n, h in self.hosts.items()}

    # -- packets
    def pings(self, pairs: list[tuple[str, str]]) -> list[bool]:
        arg = json.dumps([[src, self.hosts[dst]["ip"] if dst in self.hosts else dst] for src, dst in pairs])
        return json.loads(self.ctx.python(self.host, _PINGS, arg, timeout=180).stdout)

    def expect_pings(self, pairs: list[tuple[str, str, bool]], what: str) -> None:
        got = self.pings([(a, b) for a, b, _ in pairs])
        wrong = [
            f"{a}->{b} {'reached' if ok else 'did not reach'}"
            for (a, b, want), ok in zip(pairs, got, strict=True)
            if ok != want
        ]
        if wrong:
            raise CheckFailed(f"{what}: {', '.join(wrong)}", "ip netns exec SRC ping -c 3 DST")

    def wait_pings(self, pairs: list[tuple[str, str, bool]], what: str, timeout: float = 15) -> None:
        def probe() -> bool:
            got = self.pings([(a, b) for a, b, _ in pairs])
            return all(ok == want for (_, _, want), ok in zip(pairs, got, strict=True))

        try:
            self.ctx.wait_until(what, probe, timeout=timeout, interval=1)
        except CheckFailed:
            self.expect_pings(pairs, what)  # raises with the details
            raise

    def rx_packets(self, name: str) -> int:
        return int(
            self.ctx.sh(self.host, f"ip netns exec {name} cat /sys/class/net/{name}/statistics/rx_packets").stdout
        )

    def connected(self) -> bool:
        res = self.ctx.run(self.host, f"ovs-vsctl get controller {shlex.quote(self.bridge)} is_connected")
        return res.ok and res.stdout.strip() == "true"

    def unused_ip(self, near: str) -> str:
        h = self.hosts[near]
        net = ipaddress.ip_network(f"{h['ip']}/{h['prefix']}", strict=False)
        used = {x["ip"] for x in self.hosts.values()}
        for cand in reversed(list(net.hosts())):
            if str(cand) not in used:
                return str(cand)
        raise CheckSkipped(f"no free address in {net}")


def _sdn(ctx: Context) -> list[Sdn]:
    hosts = ctx.hosts(GROUP)
    if not hosts:
        raise CheckSkipped("no sdn_controller host")
    return [Sdn(ctx, h) for h in hosts]


def _matrix(sdn: Sdn) -> list[tuple[str, str, bool]]:
    member = sdn.slice_of(sdn.table())
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
        ctx.sh(sdn.host, "systemctl is-active " + " ".join(sdn.units))
        ctx.wait_until(f"{sdn.host}: {sdn.bridge} connected to its controller", sdn.connected, timeout=30)
        mode = ctx.sh(sdn.host, f"ovs-vsctl get bridge {sdn.bridge} fail_mode datapath_type protocols").stdout.split()
        if mode[:2] != ["secure", "netdev"] or "OpenFlow13" not in mode[2]:
            raise CheckFailed(f"{sdn.host}: bridge settings {mode}", "ovs-vsctl get bridge ...")
        if not sdn.api("GET", "/networks"):
            raise CheckFailed(f"{sdn.host}: the controller has no slices", f"GET {sdn.url}/networks")


@check("slices isolate hosts")
def slices_isolate(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        pairs = _matrix(sdn)
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
        for n in (b, c):
            ctx.sh(sdn.host, f"ip -n {n} neigh flush all")
        before = sdn.rx_packets(b)
        # a asks who has c's address: ARP broadcasts that must reach a's slice only. Had one reached c,
        # c would have answered (a would reach it) and learned a's address.
        if sdn.pings([(a, c)]) != [False]:
            raise CheckFailed(f"{a} ({member[a]}) reached {c} ({member[c]})", f"ip netns exec {a} ping {c_ip}")
        grew = sdn.rx_packets(b) - before
        neigh = ctx.sh(sdn.host, f"ip -n {c} neigh show {a_ip}").stdout.strip()
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
        table = sdn.table()
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
        sdn.expect_pings([(name, mate, True), (name, other, False)], f"before moving {name}")
        try:
            sdn.api("DELETE", f"/networks/{src_slice}/ports/{pb.id}", expect=202)
            sdn.api("POST", f"/networks/{dst_slice}/ports", binding, expect=202)
            sdn.wait_pings([(name, other, True), (name, mate, False)], f"{name} moved to {dst_slice}", timeout=15)
        finally:
            sdn.api("DELETE", f"/networks/{dst_slice}/ports/{pb.id}", expect=(202, 404))
            sdn.api("POST", f"/networks/{src_slice}/ports", binding, expect=(202, 422))
        sdn.wait_pings([(name, mate, True), (name, other, False)], f"{name} back in {src_slice}", timeout=15)
        if sdn.state() != before:
            raise CheckFailed("the slices differ from before the check", "GET /db, /config", json.dumps(sdn.state()))


@check("restrict hosts on port")
def restrict_hosts(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        before = sdn.state()
        table = sdn.table()
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
        try:
            # q also gets a port-MAC binding; x is a new port of the slice (its own MAC at first)
            sdn.api(
                "POST", f"/networks/{sid}/ports/{q_pb.id}/attachments", {"id": "smoke-q", "mac": sdn.hosts[q]["mac"]}
            )
            ctx.sh(
                sdn.host,
                "; ".join(
                    [
                        "set -e",
                        f"ip netns add {xname}",
                        f"ovs-vsctl add-port {sdn.bridge} {xname} -- set interface {xname} type=internal",
                        f"ip link set {xname} netns {xname}",
                        f"ip netns exec {xname} sysctl -qw net.ipv6.conf.all.disable_ipv6=1",
                        f"ip -n {xname} link set {xname} address {_SMOKE_MAC}",
                        f"ip -n {xname} addr add {xip}/{x_prefix} dev {xname}",
                        f"ip -n {xname} link set {xname} up",
                    ]
                ),
            )
            xport = int(ctx.sh(sdn.host, f"ovs-vsctl get interface {xname} ofport").stdout)
            sdn.api("POST", f"/networks/{sid}/ports", {"id": "smoke-x", "datapath_id": sdn.dpid, "port": xport})
            # without the option the new port admits whatever is on it
            sdn.wait_pings([(xname, q, True)], "unrestricted: port binding admits the host on the new port")
            sdn.api("PUT", "/config", {"restrict_hosts_on_port": True})
            # now the new port carries p's MAC: p's port-MAC binding must not admit it there
            ctx.sh(sdn.host, f"ip -n {xname} link set {xname} address {sdn.hosts[p]['mac']}")
            sdn.wait_pings(
                [(p, q, True), (xname, q, False), (r, q, False)],
                f"restrict_hosts_on_port: {p} admitted on its bound port only; port-bound {r} refused",
            )
        finally:
            sdn.api("PUT", "/config", before["config"])
            sdn.api("DELETE", f"/networks/{sid}/ports/smoke-x", expect=(202, 404))
            sdn.api("DELETE", f"/networks/{sid}/ports/{q_pb.id}/attachments/smoke-q", expect=(202, 404))
            ctx.run(sdn.host, f"ovs-vsctl --if-exists del-port {sdn.bridge} {xname}; ip netns delete {xname}")
        sdn.wait_pings([(r, q, True), (p, q, True)], "options restored")
        if sdn.state() != before:
            raise CheckFailed("the slices differ from before the check", "GET /db, /config", json.dumps(sdn.state()))


@check("controller restart keeps isolation")
def controller_restart(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        before = sdn.state()
        pid = ctx.sh(sdn.host, "systemctl show -P MainPID sdn-controller.service").stdout.strip()
        ctx.sh(sdn.host, "systemctl restart sdn-controller.service")
        new_pid = ctx.sh(sdn.host, "systemctl show -P MainPID sdn-controller.service").stdout.strip()
        if new_pid in ("0", pid):
            raise CheckFailed(f"sdn-controller did not restart (pid {pid} -> {new_pid})", "systemctl restart")
        ctx.wait_until("REST API back", functools.partial(_api_up, sdn), timeout=30)
        ctx.wait_until(f"{sdn.bridge} reconnected", sdn.connected, timeout=30)
        if sdn.state() != before:
            raise CheckFailed("slices changed across the restart", "GET /db, /config", json.dumps(sdn.state()))
        sdn.wait_pings(_matrix(sdn), "isolation after the controller restart", timeout=20)


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
                "python3 - run URL TABLE (labctl/sdn/trema_features.py)",
                "\n".join(failed),
            )
        if sdn.state() != before:
            raise CheckFailed("the tables differ from before the check", "GET /db, /config", json.dumps(sdn.state()))
        sdn.wait_pings(_matrix(sdn), "isolation after the tables were restored", timeout=20)
        messages.append(f"{sdn.host}: {len(results)}/{len(results)} Trema REST scenarios pass")
    return "; ".join(messages)


@check("filters allow and deny")
def filters_allow_deny(ctx: Context) -> str:
    """A DENY filter on one host's ICMP becomes drop flows; a higher-priority ALLOW wins over it."""
    for sdn in _sdn(ctx):
        before = sdn.state()
        member = sdn.slice_of(sdn.table())
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
        try:
            sdn.api("POST", "/filters", [deny | {"action": "DENY"}], expect=202)
            sdn.wait_pings([(a, b, False), (a, c, False), (c, b, True)], f"DENY filter on {a}'s ICMP")
            flows = ctx.sh(sdn.host, f"ovs-ofctl -O OpenFlow13 dump-flows {shlex.quote(sdn.bridge)}").stdout
            drops = [f for f in flows.splitlines() if "icmp" in f and f"dl_src={mac[a]}" in f and "drop" in f]
            if not drops:
                raise CheckFailed(f"no drop flow for {a}'s ICMP on {sdn.bridge}", "ovs-ofctl dump-flows", flows)
            sdn.api("POST", "/filters", allow, expect=202)
            sdn.wait_pings([(a, b, True), (a, c, False)], f"ALLOW filter {a}->{b} above the DENY")
        finally:
            for fid in ("smoke-allow", "smoke-deny"):
                sdn.api("DELETE", f"/filters/{fid}", expect=(202, 404))
        sdn.wait_pings([(a, b, True), (a, c, True)], "filters removed")
        if sdn.state() != before:
            raise CheckFailed("the tables differ from before the check", "GET /db, /config", json.dumps(sdn.state()))
    return f"{a}'s ICMP denied by drop flows ({len(drops)} on {sdn.bridge}), allowed to {b} by priority 200"


def _api_up(sdn: Sdn) -> bool:
    try:
        sdn.api("GET", "/config", expect=200)
    except CheckFailed:
        return False
    return True
