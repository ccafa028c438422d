"""Sliceable switch checks: real packets between the emulated hosts (network namespaces) on the sdn host.

Which hosts should reach each other is computed from the controller's live slices (read over its REST
API) with the same slice function the controller runs (labctl.sdn.controller.slices), and then proven with ping.
Checks that change slices or options put everything back and verify the state is as they found it.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import shlex
from itertools import combinations
from typing import Any

from labctl.sdn.controller import slices as sl
from labctl.smoke.base import CheckFailed, CheckSkipped, Context, check

SERVICE = "sdn_controller"
GROUP = "sdn_controller"
UNIT = "sdn-controller"  # what `labctl logs HOST UNIT` shows when a check fails
_SMOKE_MAC = "02:5a:5a:00:00:99"  # the temporary host of the restrict check, before it takes a bound MAC

# Runs on the sdn host: one HTTP request to the REST API, prints {"status", "body"}.
_HTTP = r"""
import json, sys, urllib.error, urllib.request
method, url, body = sys.argv[1], sys.argv[2], sys.argv[3]
req = urllib.request.Request(url, method=method, data=body.encode() if body else None,
                             headers={"Content-Type": "application/json"})
try:
    with urllib.request.urlopen(req, timeout=10) as r:
        status, raw = r.status, r.read()
except urllib.error.HTTPError as e:
    status, raw = e.code, e.read()
print(json.dumps({"status": status, "body": json.loads(raw) if raw.strip() else None}))
"""

# Runs on the sdn host: pings [[netns, address], ...] in parallel, prints a list of booleans.
_PINGS = r"""
import json, subprocess, sys
from concurrent.futures import ThreadPoolExecutor
pairs = json.loads(sys.argv[1])
def ping(p):
    cmd = ["ip", "netns", "exec", p[0], "ping", "-n", "-q", "-c", "3", "-i", "0.3", "-W", "1", p[1]]
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0
with ThreadPoolExecutor(8) as pool:
    print(json.dumps(list(pool.map(ping, pairs))))
"""

# Runs on the sdn host: facts about every emulated host: {name: {port, mac, ip, prefix}}.
_HOSTS = r"""
import json, subprocess, sys
out = {}
for name in json.loads(sys.argv[1]):
    run = lambda *c: subprocess.run(c, capture_output=True, text=True, check=True).stdout
    port = int(run("ovs-vsctl", "get", "interface", name, "ofport"))
    link = json.loads(run("ip", "-n", name, "-j", "link", "show", name))[0]
    addr = [a for a in json.loads(run("ip", "-n", name, "-j", "-4", "addr", "show", name))[0]["addr_info"]]
    out[name] = {"port": port, "mac": link["address"], "ip": addr[0]["local"], "prefix": addr[0]["prefixlen"]}
print(json.dumps(out))
"""


class Sdn:
    """The sdn host as the checks see it: REST API, bridge, emulated hosts."""

    def __init__(self, ctx: Context, host: str) -> None:
        self.ctx, self.host = ctx, host
        address = ctx.var(host, "sdn_controller_rest_address")
        if not isinstance(address, str) or "{" in address:
            address = ctx.address(host)
        self.url = f"http://{address}:{int(ctx.var(host, 'sdn_controller_rest_port', 8080))}"
        self.bridge = ctx.var(host, "sdn_controller_bridge", "br0")
        hosts = ctx.var(host, "sdn_controller_hosts")
        names = [h["name"] for h in hosts] if hosts else ["h1", "h2", "h3", "h4", "h5"]
        self.hosts: dict[str, dict[str, Any]] = json.loads(ctx.python(host, _HOSTS, json.dumps(names)).stdout)
        raw = ctx.sh(host, f"ovs-vsctl get bridge {shlex.quote(self.bridge)} datapath_id").stdout
        self.dpid = int(raw.strip().strip('"'), 16)

    # -- REST
    def api(self, method: str, path: str, body: Any = None, expect: int | tuple[int, ...] = (200, 201, 204)) -> Any:
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
        """Everything the controller holds: options and full slices (sorted for comparison)."""
        slices = [self.api("GET", f"/networks/{s['id']}") for s in self.api("GET", "/networks")]
        for s in slices:
            s["attachments"].sort(key=lambda a: a["id"])
            s["ports"].sort(key=lambda p: p["id"])
            for p in s["ports"]:
                p["attachments"].sort(key=lambda a: a["id"])
        return {"config": self.api("GET", "/config"), "slices": sorted(slices, key=lambda s: s["id"])}

    def table(self) -> sl.SliceTable:
        t = sl.SliceTable()
        t.load(self.state())
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
        ctx.sh(sdn.host, "systemctl is-active sdn-controller.service sdn-hosts.service openvswitch-switch.service")
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
        member = sdn.slice_of(sdn.table())
        by_port = {h["port"]: n for n, h in sdn.hosts.items()}
        move = None
        for s in before["slices"]:
            for pb in s["ports"]:
                name = by_port.get(pb["port"])
                if name is None or member.get(name) != s["id"] or sl.parse_dpid(pb["datapath_id"]) != sdn.dpid:
                    continue
                mates = [n for n in sorted(member) if n != name and member[n] == s["id"]]
                others = [n for n in sorted(member) if member[n] not in (None, s["id"])]
                if mates and others:
                    move = (s["id"], pb, name, mates[0], others[0], member[others[0]])
                    break
            if move:
                break
        if move is None:
            raise CheckSkipped("needs a port-bound host with a slice mate and a host in another slice")
        src_slice, pb, name, mate, other, dst_slice = move
        binding = {k: pb[k] for k in ("id", "datapath_id", "port", "vid", "attachments")}
        sdn.expect_pings([(name, mate, True), (name, other, False)], f"before moving {name}")
        try:
            sdn.api("DELETE", f"/networks/{src_slice}/ports/{pb['id']}")
            sdn.api("POST", f"/networks/{dst_slice}/ports", binding, expect=201)
            sdn.wait_pings([(name, other, True), (name, mate, False)], f"{name} moved to {dst_slice}", timeout=15)
        finally:
            sdn.api("DELETE", f"/networks/{dst_slice}/ports/{pb['id']}", expect=(204, 404))
            sdn.api("POST", f"/networks/{src_slice}/ports", binding, expect=(201, 422))
        sdn.wait_pings([(name, mate, True), (name, other, False)], f"{name} back in {src_slice}", timeout=15)
        if sdn.state() != before:
            raise CheckFailed("the slices differ from before the check", "GET /networks", json.dumps(sdn.state()))


@check("restrict hosts on port")
def restrict_hosts(ctx: Context) -> None:
    for sdn in _sdn(ctx):
        before = sdn.state()
        table = sdn.table()
        ports = {h["port"]: n for n, h in sdn.hosts.items()}
        # a host admitted by a port-MAC binding, and another port-bound host of the same slice
        chosen = None
        for s in table.slices.values():
            pbs = [pb for pb in s.ports.values() if pb.dpid == sdn.dpid and pb.port in ports]
            bound = [pb for pb in pbs if sdn.hosts[ports[pb.port]]["mac"] in pb.attachments.values()]
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
            sdn.api("DELETE", f"/networks/{sid}/ports/smoke-x", expect=(204, 404))
            sdn.api("DELETE", f"/networks/{sid}/ports/{q_pb.id}/attachments/smoke-q", expect=(204, 404))
            ctx.run(sdn.host, f"ovs-vsctl --if-exists del-port {sdn.bridge} {xname}; ip netns delete {xname}")
        sdn.wait_pings([(r, q, True), (p, q, True)], "options restored")
        if sdn.state() != before:
            raise CheckFailed("the slices differ from before the check", "GET /networks", json.dumps(sdn.state()))


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
            raise CheckFailed("slices changed across the restart", "GET /networks", json.dumps(sdn.state()))
        sdn.wait_pings(_matrix(sdn), "isolation after the controller restart", timeout=20)


def _api_up(sdn: Sdn) -> bool:
    try:
        sdn.api("GET", "/config", expect=200)
    except CheckFailed:
        return False
    return True
