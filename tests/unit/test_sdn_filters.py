"""Packet filters of the sliceable switch (roles/sdn_controller/files/controller/filters.py):
Trema's input rules and matching."""

from __future__ import annotations

from typing import Any

import pytest
from labctl.bundles.sdn_controller.files.controller import filters as fl

SLICES = {"network-1": 1}


def make(**fields: Any) -> fl.Filter:
    return fl.from_rest({"id": "f", **fields}, SLICES.get, lambda: "generated")


def frame(**fields: Any) -> fl.Frame:
    base: dict[str, Any] = {"in_port": 2, "dl_src": 3, "dl_dst": 4, "dl_vlan": 5, "dl_vlan_pcp": 6}
    base |= {"dl_type": 0x0800, "nw_tos": 8, "nw_proto": 6, "nw_src": 0x0A000007, "nw_dst": 0x0A000008}
    base |= {"tp_src": 9, "tp_dst": 10}
    return fl.Frame(**(base | fields))


def test_missing_fields_are_wildcarded_as_filter_pm_does() -> None:
    f = make(priority=5, dl_dst="00:00:00:00:00:04", nw_src="10.0.0.0/24", action="allow")
    assert f.ofp_wildcards == fl.OFPFW_ALL & ~fl.OFPFW_DL_DST & ~fl.OFPFW_NW_SRC_MASK | 8 << fl.OFPFW_NW_SRC_SHIFT
    assert (f.wildcards, f.slice_number, f.in_datapath_id, f.action, f.nw_src) == (3, 0, 0, fl.ALLOW, 0x0A000000)
    assert fl.ofp_wildcards_to_string(f.ofp_wildcards) == (
        "in_port,dl_src,dl_vlan,dl_vlan_pcp,dl_type,nw_tos,nw_proto,nw_src:8,nw_dst:32,tp_src,tp_dst"
    )
    # given wildcards are kept as they are, names or numbers; missing fields are then 0, not wildcards
    g = make(ofp_wildcards="in_port,nw_dst:16", wildcards="slice", slice="network-1")
    assert (g.ofp_wildcards, g.wildcards, g.slice_number, g.action) == (1 | 16 << 14, 2, 1, fl.DENY)
    assert make(ofp_wildcards="0x3", wildcards=0).ofp_wildcards == 3
    assert fl.from_rest({}, SLICES.get, lambda: "generated").id == "generated" and make().priority == 0


@pytest.mark.parametrize(
    ("fields", "error"),
    [
        ({"priority": 65536}, fl.FilterError),
        ({"priority": "ten"}, fl.FilterError),
        ({"dl_src": "00:00:00:00:00"}, fl.FilterError),
        ({"nw_src": "10.0.0.1/33"}, fl.FilterError),
        ({"nw_dst": "300.0.0.1"}, fl.FilterError),
        ({"action": "DROP"}, fl.FilterError),
        ({"ofp_wildcards": "in_prot"}, fl.FilterError),
        ({"colour": "red"}, fl.FilterError),
        ({"id": "bad id"}, fl.FilterError),
        ({"slice": "network-9"}, LookupError),
    ],
)
def test_bad_input_is_refused(fields: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        fl.from_rest({"id": "f"} | fields, SLICES.get, lambda: "x")


def test_rest_form_is_config_cgis() -> None:
    f = make(priority=1, dl_type="0x0800", nw_dst="0.0.0.8", slice="network-1", action="ALLOW")
    out = f.to_rest("network-1")
    assert out["ofp_wildcards"] == "in_port,dl_src,dl_dst,dl_vlan,dl_vlan_pcp,nw_tos,nw_proto,nw_src:32,tp_src,tp_dst"
    assert (out["wildcards"], out["dl_src"], out["nw_dst"], out["slice"]) == (
        "in_datapath_id",
        "00:00:00:00:00:00",
        "0.0.0.8",
        "network-1",
    )
    assert f.to_rest(None)["slice"] == "UNDEFINED (0x1)"
    assert make().to_rest(None)["slice"] == "UNDEFINED (0)"
    assert list(out) == [*fl.REST_FIELDS[1:], "id"]
    assert fl.Filter.from_record(f.record()) == f
    with pytest.raises(fl.FilterError):
        fl.Filter.from_record(f.record() | {"action": 7})


def test_matching_follows_openflow_1_0_wildcards() -> None:
    exact = fl.Filter(
        **(
            frame().__dict__
            | {
                "priority": 1,
                "ofp_wildcards": 0,
                "wildcards": 0,
                "in_datapath_id": 11,
                "slice_number": 1,
                "action": 0,
                "id": "e",
            }
        )
    )
    assert exact.matches(11, 1, frame())
    assert not exact.matches(12, 1, frame())  # another switch
    assert not exact.matches(11, 2, frame())  # another slice
    assert not exact.matches(11, 1, frame(tp_dst=11))
    net = make(nw_src="10.0.0.0/29", tp_dst=10)
    assert net.matches(99, 7, frame()) and net.matches(99, 7, frame(nw_src=0x0A000001))
    assert not net.matches(99, 7, frame(nw_src=0x0A000009))  # outside the /29
    assert not net.matches(99, 7, frame(tp_dst=11))
    assert make().matches(0, 0, frame())  # everything wildcarded
    assert make(in_datapath_id=11).matches(11, 0, frame()) and not make(in_datapath_id=11).matches(12, 0, frame())
    assert net.examined() == {"nw_src", "tp_dst"} and make().examined() == set()


def test_lookup_order_and_default_deny() -> None:
    low_allow = make(id="low", priority=1, action="ALLOW")
    high_deny = make(id="high", priority=9, tp_dst=10, action="DENY")
    later_same = make(id="later", priority=9, tp_dst=10, action="ALLOW")
    assert fl.evaluate([low_allow, high_deny], 1, 1, frame()) == fl.DENY
    assert fl.evaluate([low_allow, high_deny], 1, 1, frame(tp_dst=22)) == fl.ALLOW
    assert fl.evaluate([low_allow, high_deny, later_same], 1, 1, frame()) == fl.ALLOW  # later of equal first
    exact = fl.Filter(
        **(
            frame().__dict__
            | {
                "priority": 0,
                "ofp_wildcards": 0,
                "wildcards": 0,
                "in_datapath_id": 1,
                "slice_number": 1,
                "action": 1,
                "id": "x",
            }
        )
    )
    assert fl.ordered([high_deny, exact])[0] is exact  # no wildcard at all: looked up first
    assert fl.evaluate([], 1, 1, frame()) == fl.DENY  # no filter: deny, as filter.c
    assert fl.examined_fields([low_allow, high_deny]) == {"tp_dst"}


def test_values_accept_numbers_decimal_and_hex_strings() -> None:
    f = make(in_port="0x2", dl_vlan="5", dl_type="0x0800", nw_proto=4, in_datapath_id="0xb", dl_src=3)
    assert (f.in_port, f.dl_vlan, f.dl_type, f.nw_proto, f.in_datapath_id, f.dl_src) == (2, 5, 2048, 4, 11, 3)
    assert fl.default_filter().to_rest(None)["ofp_wildcards"].count(",") == 11
