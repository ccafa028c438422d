"""Pure helpers of the nat_gateway smoke module: forwards listing, rule/counter parsing, matching."""

from __future__ import annotations

from typing import Any

import pytest
from labctl.bundles.nat_gateway import checks as ng

from labctl.checks.base import CheckFailed, CheckSkipped, Context, Result
from tests.unit.conftest import FakeRunner, MakeCtx

NAT_S = "\n".join(
    [
        "-P PREROUTING ACCEPT",
        "-P POSTROUTING ACCEPT",
        "-A PREROUTING -d 198.18.64.10/32 -i eth0 -p tcp -m tcp --dport 80"
        ' -m comment --comment "labctl nat_gateway forward web" -j DNAT --to-destination 198.18.65.11:6767',
        "-A PREROUTING -i eth0 -p udp -m udp --dport 5353 -j DNAT --to-destination 198.18.65.12",
        '-A POSTROUTING -s 198.18.65.0/24 -o eth0 -m comment --comment "labctl nat_gateway masquerade" -j MASQUERADE',
    ]
)

FORWARD_VS = "\n".join(
    [
        "-P FORWARD ACCEPT -c 0 0",
        "-A FORWARD -c 96 5640 -j TRAFFIC_ACCT",
        "-A FORWARD -s 198.18.65.0/24 -p tcp -m tcp --dport 2323"
        ' -m comment --comment "labctl nat_gateway filter x log" -c 9 540 -j LOG --log-prefix "labctl-drop: "',
        "-A FORWARD -s 198.18.65.0/24 -p tcp -m tcp --dport 2323"
        ' -m comment --comment "labctl nat_gateway filter x" -c 7 420 -j DROP',
    ]
)

ACCT_VS = """\
-N TRAFFIC_ACCT
-A TRAFFIC_ACCT -p tcp -c 12 720
-A TRAFFIC_ACCT -p udp -c 3 90
-A TRAFFIC_ACCT -p icmp -c 1 84
"""


def test_forwards_from_iptables_output() -> None:
    fwds = ng.forwards(NAT_S)
    assert fwds == [
        {
            "name": "web",
            "protocol": "tcp",
            "address": "198.18.64.10",
            "port": 80,
            "to_host": None,
            "to_address": "198.18.65.11",
            "to_port": 6767,
        },
        {
            "name": "udp/5353",
            "protocol": "udp",
            "address": None,
            "port": 5353,
            "to_host": None,
            "to_address": "198.18.65.12",
            "to_port": 5353,
        },
    ]


FACT = {
    "outside_network": "outside",
    "inside_network": "inside",
    "outside_address": "198.18.64.10",
    "inside_address": "198.18.65.10",
    "forwards": [
        {"name": "web", "protocol": "tcp", "port": 80, "to_host": "web", "to_address": "198.18.65.11", "to_port": 6767}
    ],
}


def test_configured_forwards_from_the_fact_look_like_the_ones_in_force() -> None:
    (configured,) = ng.configured_forwards(FACT)
    (in_force, _udp) = ng.forwards(NAT_S)
    assert configured == dict(in_force, to_host="web")


def counted(comment: str, packets: int) -> str:
    return f'-A PREROUTING -p tcp -m comment --comment "{comment}" -c {packets} {packets * 60} -j DNAT\n'


def test_counters_pass_when_the_rule_counted_the_traffic(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    reads = iter([counted("labctl nat_gateway forward web", 3), counted("labctl nat_gateway forward web", 5)])
    runner.on("-t nat -v -S PREROUTING", lambda _h, cmd, _s: Result(cmd, 0, next(reads), ""))
    counter = ng.Counters(make_ctx({}, {"gw": {}}), "gw", "PREROUTING", ["labctl nat_gateway forward web"], "nat")
    counter.grown("forward web")
    assert counter.after == {"labctl nat_gateway forward web": 5}


def test_counters_fail_naming_the_rule_that_counted_nothing(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    runner.on("-v -S FORWARD", counted("x log", 2) + counted("x", 7))
    counter = ng.Counters(make_ctx({}, {"gw": {}}), "gw", "FORWARD", ["x log", "x"])
    with pytest.raises(CheckFailed, match=r"gw: filter rule x counted nothing \('x log' 2 -> 2; 'x' 7 -> 7 packets\)"):
        counter.grown("filter rule x")


def test_counters_by_protocol_need_a_counter_per_protocol(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    runner.on("-v -S TRAFFIC_ACCT", ACCT_VS.replace("-A TRAFFIC_ACCT -p icmp -c 1 84\n", ""))
    with pytest.raises(CheckFailed, match=r"TRAFFIC_ACCT has no counter for \['icmp'\]"):
        ng.Counters(make_ctx({}, {"gw": {}}), "gw", "TRAFFIC_ACCT", ["tcp", "udp", "icmp"], by_protocol=True)


def test_parse_counted_rules_and_comments() -> None:
    rules = ng.parse_counted_rules(FORWARD_VS)
    assert [(r.packets, r.bytes) for r in rules] == [(96, 5640), (9, 540), (7, 420)]
    assert rules[0].spec == "-j TRAFFIC_ACCT"
    assert rules[1].comment() == "labctl nat_gateway filter x log"
    assert rules[1].spec.endswith('-j LOG --log-prefix "labctl-drop: "')
    assert ng._counts(ng.parse_counted_rules(ACCT_VS)) == {"tcp": 12, "udp": 3, "icmp": 1}


def test_matches_networks_hosts_and_cidrs() -> None:
    nets = {"inside", "outside"}
    assert ng.matches(None, "web", "198.18.65.11", {"inside"}, nets)
    assert ng.matches("inside", "web", "198.18.65.11", {"inside"}, nets)
    assert not ng.matches("outside", "web", "198.18.65.11", {"inside"}, nets)
    assert ng.matches("web", "web", "198.18.65.11", {"inside"}, nets)
    assert ng.matches("198.18.65.0/25", "web", "198.18.65.11", {"inside"}, nets)
    assert not ng.matches("198.18.65.11/32", "db", "198.18.65.12", {"inside"}, nets)
    assert not ng.matches("nonsense", "web", "198.18.65.11", {"inside"}, nets)


def test_normalized_rules_ignore_comments_and_counters() -> None:
    a = "# Generated at 1\n*filter\n:INPUT ACCEPT [5:300]\n-A FORWARD -j X\nCOMMIT\n"
    b = "# Generated at 2\n*filter\n:INPUT ACCEPT [0:0]\n-A FORWARD -j X\nCOMMIT\n"
    assert ng.normalized_rules(a) == ng.normalized_rules(b)


def test_conntrack_source_reads_original_direction() -> None:
    table = (
        "ipv4     2 tcp      6 46 TIME_WAIT src=198.18.65.1 dst=198.18.64.11 sport=52418 dport=47080 "
        "src=198.18.64.11 dst=198.18.64.10 sport=47080 dport=52418 [ASSURED] mark=0 zone=0 use=2\n"
        "ipv4     2 tcp      6 46 TIME_WAIT src=198.18.65.11 dst=198.18.64.11 sport=40000 dport=47080 "
        "src=198.18.64.11 dst=198.18.64.10 sport=47080 dport=40000 [ASSURED] mark=0 zone=0 use=2\n"
    )
    assert ng.conntrack_source(table, "198.18.64.11", 52418, 47080) == "198.18.65.1"
    assert ng.conntrack_source(table, "198.18.64.11", 40000, 47080) == "198.18.65.11"
    assert ng.conntrack_source(table, "198.18.64.11", 1, 47080) is None


# --- default route through the gateway, the INPUT rule, LOG lines in the kernel log --------------

GROUPS = {"nat_gateway": ["gw"]}
ADDRS = {"gw": {"outside": "198.18.64.10", "inside": "198.18.65.10"}, "web": {"inside": "198.18.65.11"}}
ROUTED = {"web": {"labctl_routes": [{"to": "default", "via": "198.18.65.10"}]}}
GW_FACT = {
    **FACT,
    "inside_subnet": "198.18.65.0/24",
    "snat_mode": "masquerade",
    "log_prefix": "mol-nat blocked packets : ",
    "input_accept_inside": True,
    "default_route_outside": True,
    "outside_interface": "eth0",
    "inside_interface": "eth1",
}
LOG_LINE = (
    "mol-nat blocked packets : IN=eth1 OUT=eth0 MAC=02:4c SRC=198.18.65.11 DST=198.18.64.11 LEN=60 TOS=0x00 "
    "TTL=63 ID=4 DF PROTO=TCP SPT=48362 DPT=2323 WINDOW=64240 RES=0x00 SYN URGP=0"
)


def _postrouting(packets: int) -> str:
    comment = '-m comment --comment "labctl nat_gateway masquerade"'
    return f"-A POSTROUTING -s 198.18.65.0/24 -o eth0 {comment} -c {packets} 1\n"


def _routed_lab(runner: FakeRunner, make_ctx: MakeCtx, web_route: str) -> Context:
    runner.fact("gw", "nat_gateway", GW_FACT)
    reads = iter([_postrouting(4), _postrouting(5)])
    runner.on("-t nat -v -S POSTROUTING", lambda _h, cmd, _s: Result(cmd, 0, next(reads), ""))
    runner.on("ip -4 route get", web_route, on_host="web")
    runner.on("ip -4 route get", "198.51.100.1 via 198.18.64.1 dev eth0 src 198.18.64.10 uid 0\n", on_host="gw")
    runner.on("python3 /tmp/labctl-nat-gateway-probe.py connect", "timeout\n")
    return make_ctx(GROUPS, ADDRS, ROUTED)


def test_default_route_through_the_gateway_crosses_its_nat(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    ctx = _routed_lab(runner, make_ctx, "198.51.100.1 via 198.18.65.10 dev eth0 src 198.18.65.11 uid 0\n")
    assert ng.default_route(ctx) == "web -> default via gw 198.18.65.10, NATed out eth0"
    assert any("connect 198.51.100.1 9" in cmd for cmd in runner.commands("web"))


def test_default_route_through_the_bridge_fails(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    """Before: inside hosts kept podman's default route (the bridge), only `outside` went via gw."""
    ctx = _routed_lab(runner, make_ctx, "198.51.100.1 via 198.18.65.1 dev eth0 src 198.18.65.11 uid 0\n")
    with pytest.raises(CheckFailed, match=r"web: traffic to 198\.51\.100\.1 does not go through gw"):
        ng.default_route(ctx)


def test_default_route_skipped_without_such_a_route(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    runner.fact("gw", "nat_gateway", GW_FACT)
    with pytest.raises(CheckSkipped, match=r"no host on 'inside' has gw as its default route"):
        ng.default_route(make_ctx(GROUPS, ADDRS))


def test_input_rule_is_the_notebooks(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    runner.fact("gw", "nat_gateway", GW_FACT)
    rule = '-A INPUT -s 198.18.65.0/24 -i eth1 -m comment --comment "labctl nat_gateway input inside" -c {} 9 -j ACCEPT'
    rule += "\n"
    reads = iter([rule.format(1), rule.format(2)])
    runner.on("-v -S INPUT", lambda _h, cmd, _s: Result(cmd, 0, next(reads), ""))
    runner.on("python3 /tmp/labctl-nat-gateway-probe.py connect", "refused\n")
    assert ng.input_inside(make_ctx(GROUPS, ADDRS)) == "gw: -A INPUT -s 198.18.65.0/24 -i eth1 -j ACCEPT"


def test_input_rule_missing_fails(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    runner.fact("gw", "nat_gateway", GW_FACT)
    runner.on("-v -S INPUT", "-P INPUT ACCEPT\n")
    with pytest.raises(CheckFailed, match="no rule with comment 'labctl nat_gateway input inside' in INPUT"):
        ng.input_inside(make_ctx(GROUPS, ADDRS))


def test_log_lines_match_the_flow_and_the_prefix() -> None:
    other_lab = LOG_LINE.replace("mol-nat", "other")
    other_port = LOG_LINE.replace("DPT=2323", "DPT=2324")
    lines = [other_lab, other_port, "[1.2] " + LOG_LINE]
    got = ng.log_lines(lines, "mol-nat blocked packets : ", "198.18.65.11", "198.18.64.11", 2323)
    assert got == ["[1.2] " + LOG_LINE]


def test_the_log_line_is_read_where_the_provider_says(runner: FakeRunner, make_ctx: MakeCtx) -> None:
    asked: list[tuple[str, str]] = []

    def reader(host: str, needle: str) -> list[str]:
        asked.append((host, needle))
        return ["x", "[18867.18] " + LOG_LINE]

    runner.fact("gw", "nat_gateway", GW_FACT)
    ctx = make_ctx(GROUPS, {**ADDRS, "ext": {"outside": "198.18.64.11"}})
    ctx.kernel_log_reader = reader
    (gw,) = ng._gateways(ctx)
    rule = {"name": "block-outbound-2323", "log": True}
    assert ng._logged(ctx, gw, rule, "web", "198.18.64.11", 2323) == LOG_LINE
    assert asked == [("gw", "mol-nat blocked packets : ")]


def test_no_log_line_fails(runner: FakeRunner, make_ctx: MakeCtx, monkeypatch: pytest.MonkeyPatch) -> None:
    runner.fact("gw", "nat_gateway", GW_FACT)
    runner.on("journalctl -k", "")  # the gateway's own kernel log (no provider reader): nothing logged
    ctx = make_ctx(GROUPS, {**ADDRS, "ext": {"outside": "198.18.64.11"}})
    (gw,) = ng._gateways(ctx)

    def never(what: str, probe: Any, timeout: float) -> None:
        if not probe():
            raise CheckFailed(f"{what}: not true after {timeout:.0f} s")

    monkeypatch.setattr(ctx, "wait_until", never)
    with pytest.raises(CheckFailed, match=r"gw: a kernel log line 'mol-nat blocked packets : ' for 198\.18\.65\.11"):
        ng._logged(ctx, gw, {"name": "x", "log": True}, "web", "198.18.64.11", 2323)
