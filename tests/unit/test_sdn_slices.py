"""Slice logic of the sliceable switch (roles/sdn_controller/files/controller/slices.py):
Trema's tables, lookup, options, flooding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from labctl.bundles.sdn_controller.files.controller import filters as fl
from labctl.bundles.sdn_controller.files.controller import slices as sl

DP = 1
H1, H2, H3, H4, H5, X = (f"02:00:00:00:00:0{i}" for i in (1, 2, 3, 4, 5, 9))


def seed() -> sl.SliceTable:
    """The role's default: slice1 = ports 1, 2 and 5 (port-MAC h5); slice2 = MAC-bound h3, h4."""
    t = sl.SliceTable(clock=lambda: 1000.0)
    t.load(
        {
            "slices": [
                {
                    "id": "slice1",
                    "ports": [
                        {"id": "h1", "datapath_id": "0x1", "port": 1},
                        {"id": "h2", "datapath_id": 1, "port": 2},
                        {
                            "id": "h5",
                            "datapath_id": "1",
                            "port": 5,
                            "attachments": [{"id": "h5-mac", "mac": H5}],
                        },
                    ],
                },
                {"id": "slice2", "attachments": [{"id": "h3", "mac": H3}, {"id": "h4", "mac": H4}]},
            ]
        }
    )
    return t


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("mac", ["02:00:00:00:00:01", "02-00-00-00-00-01", "020000000001", "02:00:00:00:00:01 "])
def test_parse_mac_normalises(mac: str) -> None:
    assert sl.parse_mac(mac) == "02:00:00:00:00:01"


@pytest.mark.parametrize("mac", ["ff:ff:ff:ff:ff:ff", "01:00:5e:00:00:01", "02:00:00:00:00", "zz:00:00:00:00:01", 5])
def test_parse_mac_rejects_group_and_garbage(mac: object) -> None:
    with pytest.raises(sl.ValidationError):
        sl.parse_mac(mac)


def test_parse_dpid_forms() -> None:
    assert sl.parse_dpid(1) == sl.parse_dpid("0x1") == sl.parse_dpid("0x0000000000000001") == sl.parse_dpid("1") == 1
    assert sl.parse_dpid("4660") == sl.parse_dpid("0x1234") == 4660  # Trema prints decimal strings
    for bad in (-1, 2**64, "0xzz", "abc", True, None, str(2**64)):
        with pytest.raises(sl.ValidationError):
            sl.parse_dpid(bad)


def test_parse_port_and_vid() -> None:
    assert sl.parse_port(1) == 1
    assert sl.parse_vid(None) == sl.UNTAGGED
    assert sl.parse_vid(100) == 100
    for bad in (0, -1, "1", True, sl.OFPP_MAX + 1):
        with pytest.raises(sl.ValidationError):
            sl.parse_port(bad)
    for bad in (0, 4095, 5000, "1"):
        with pytest.raises(sl.ValidationError):
            sl.parse_vid(bad)


def test_create_slice_validation_and_conflicts() -> None:
    t = sl.SliceTable()
    t.create_slice({"id": "a", "description": "first"})
    with pytest.raises(sl.Conflict):
        t.create_slice({"id": "a"})
    with pytest.raises(sl.ValidationError):
        t.create_slice({"id": "bad id"})
    with pytest.raises(sl.ValidationError):
        t.create_slice({"id": "b", "colour": "red"})
    with pytest.raises(sl.ValidationError):
        t.create_slice(["a"])
    generated = t.create_slice({})  # Trema's id: time and a random number, 18 digits
    assert len(generated.id) == 18 and generated.id.isdigit() and generated.number == 2
    with pytest.raises(sl.NotFound):
        t.delete_slice("nope")
    t.delete_slice(generated.id)
    assert t.create_slice({"id": "c"}).number == 2  # MAX(number) + 1, as in Trema


def test_binding_conflicts() -> None:
    t = seed()
    with pytest.raises(sl.Conflict):  # port 1 belongs to slice1
        t.add_port("slice2", {"datapath_id": 1, "port": 1})
    t.add_port("slice2", {"datapath_id": 1, "port": 1, "vid": 10})  # another VLAN on the same port is free
    with pytest.raises(sl.Conflict):  # h3 is MAC-bound to slice2
        t.add_mac("slice1", {"mac": H3})
    with pytest.raises(sl.Conflict):
        t.add_port_mac("slice1", "h5", {"mac": H5})
    with pytest.raises(sl.Conflict):  # ids are unique within a slice, across binding kinds
        t.add_mac("slice1", {"id": "h1", "mac": X})
    with pytest.raises(sl.Conflict):  # no such port binding: 422 in Trema
        t.add_port_mac("slice1", "nope", {"mac": X})
    with pytest.raises(sl.ValidationError):
        t.add_port("slice1", {"port": 7})
    with pytest.raises(sl.NotFound):
        t.remove_binding("slice1", "h3", sl.MAC)
    with pytest.raises(sl.NotFound):  # h5-mac is a port-MAC binding, not a MAC binding
        t.remove_binding("slice1", "h5-mac", sl.MAC)


def test_trema_default_ids_and_records() -> None:
    t = sl.SliceTable()
    t.create_slice({"id": "n"})
    t.add_port("n", {"datapath_id": "0x0000000000001234", "port": 2, "vid": 1024})
    t.add_port("n", {"datapath_id": 1, "port": 3})
    t.add_mac("n", {"mac": "02-00-00-00-00-10"})
    t.add_port_mac("n", "000000001234:0002:0400", {"mac": "00:00:00:00:01:00"})
    assert t.records()["bindings"] == [
        {
            "type": 1,
            "datapath_id": 4660,
            "port": 2,
            "vid": 1024,
            "mac": None,
            "id": "000000001234:0002:0400",
            "slice_number": 1,
        },
        {
            "type": 1,
            "datapath_id": 1,
            "port": 3,
            "vid": 65535,
            "mac": None,
            "id": "000000000001:0003:ffff",
            "slice_number": 1,
        },
        {
            "type": 2,
            "datapath_id": None,
            "port": None,
            "vid": None,
            "mac": 0x020000000010,
            "id": "02:00:00:00:00:10",
            "slice_number": 1,
        },
        {"type": 4, "datapath_id": 4660, "port": 2, "vid": 1024, "mac": 256, "id": "000000000100", "slice_number": 1},
    ]
    assert t.records()["slices"] == [{"number": 1, "id": "n", "description": ""}]


def test_port_mac_binding_outlives_its_port_binding() -> None:
    """As in Trema's table: the port-MAC row keeps its own location and still admits its host."""
    t = seed()
    t.set_config({"restrict_hosts_on_port": True})
    t.remove_binding("slice1", "h5", sl.PORT)
    assert t.lookup(DP, 5, sl.UNTAGGED, H5) == "slice1"
    t.delete_slice("slice1")  # deleting the slice deletes all its bindings
    assert t.lookup(DP, 5, sl.UNTAGGED, H5) is None
    assert t.records()["bindings"] == [b.record() for b in t.bindings] and len(t.bindings) == 2


def test_load_records_validates_and_is_all_or_nothing() -> None:
    t = seed()
    before = t.records()
    bad_tables = [
        {
            "slices": [{"number": 1, "id": "a", "description": ""}],
            "bindings": [
                {"type": 1, "datapath_id": 1, "port": 1, "vid": 65535, "mac": None, "id": "p", "slice_number": 2}
            ],
        },
        {"slices": [{"number": 1, "id": "a"}, {"number": 1, "id": "b"}]},
        {"bindings": [{"type": 3, "id": "x", "slice_number": 1}]},
        {"filter": [{"id": "f"}]},
        {"slices": "no"},
    ]
    for tables in bad_tables:
        with pytest.raises(sl.SliceError):
            t.load_records(tables)
        assert t.records() == before
    t.load_records({})
    assert t.records() == {"slices": [], "bindings": [], "filter": []}


def test_load_is_all_or_nothing() -> None:
    t = seed()
    before = t.to_dict()
    with pytest.raises(sl.Conflict):
        t.load({"slices": [{"id": "a", "attachments": [{"mac": X}]}, {"id": "b", "attachments": [{"mac": X}]}]})
    with pytest.raises(sl.ValidationError):
        t.load({"slices": [], "filters": [{"id": "f", "action": "MAYBE"}]})
    assert t.to_dict() == before


def test_round_trip() -> None:
    t = seed()
    t.set_config({"loose": True})
    t.add_filters([{"id": "f", "priority": 3, "dl_src": H1, "slice": "slice1", "action": "DENY"}])
    again = sl.SliceTable()
    again.load(t.to_dict())
    assert again.to_dict() == t.to_dict()


def test_seed_without_filters_gets_tremas_default_filter() -> None:
    t = seed()
    assert [f.record() for f in t.filters] == [
        {
            "priority": 0,
            "ofp_wildcards": fl.OFPFW_ALL,
            "in_port": 0,
            "dl_src": 0,
            "dl_dst": 0,
            "dl_vlan": 0,
            "dl_vlan_pcp": 0,
            "dl_type": 0,
            "nw_tos": 0,
            "nw_proto": 0,
            "nw_src": 0,
            "nw_dst": 0,
            "tp_src": 0,
            "tp_dst": 0,
            "wildcards": fl.WILDCARD_ALL,
            "in_datapath_id": 0,
            "slice_number": 0,
            "action": fl.ALLOW,
            "id": "default",
        }
    ]
    empty = sl.SliceTable()
    empty.load({"slices": [], "filters": []})
    assert empty.filters == []


# -- lookup: the seed's chart ---------------------------------------------------------------------


def test_port_binding_admits_any_host_on_the_port() -> None:
    t = seed()
    assert t.lookup(DP, 1, sl.UNTAGGED, H1) == "slice1"
    assert t.lookup(DP, 1, sl.UNTAGGED, X) == "slice1"
    assert t.lookup(DP, 5, sl.UNTAGGED, X) == "slice1"  # port-MAC bindings only matter under restrict
    assert t.lookup(DP, 9, sl.UNTAGGED, X) is None  # unbound port
    assert t.lookup(DP, 1, 10, H1) is None  # bound untagged only
    assert t.lookup(2, 1, sl.UNTAGGED, H1) is None  # other switch


def test_mac_binding_first() -> None:
    t = seed()
    assert t.lookup(DP, 3, sl.UNTAGGED, H3) == "slice2"
    assert t.lookup(DP, 9, sl.UNTAGGED, H4) == "slice2"  # any port that no other slice owns
    # not loose: a MAC-bound host is refused on a port bound to another slice
    assert t.lookup(DP, 1, sl.UNTAGGED, H3) is None
    t.set_config({"loose": True})
    assert t.lookup(DP, 1, sl.UNTAGGED, H3) == "slice2"


def test_restrict_hosts_on_port() -> None:
    t = seed()
    t.set_config({"restrict_hosts_on_port": True})
    assert t.lookup(DP, 1, sl.UNTAGGED, H1) is None  # port bindings admit nobody
    assert t.lookup(DP, 5, sl.UNTAGGED, H5) == "slice1"  # port-MAC binding, right port
    assert t.lookup(DP, 2, sl.UNTAGGED, H5) is None  # bound MAC on another port
    assert t.lookup(DP, 5, sl.UNTAGGED, X) is None  # other MAC on the bound port
    assert t.lookup(DP, 3, sl.UNTAGGED, H3) == "slice2"  # MAC bindings still come first


def test_deleted_slice_admits_nobody() -> None:
    t = seed()
    t.delete_slice("slice2")
    assert t.lookup(DP, 3, sl.UNTAGGED, H3) is None
    assert [b.id for b in t.bindings] == ["h1", "h2", "h5", "h5-mac"]


# -- forwarding -----------------------------------------------------------------------------------


def test_flood_stays_in_slice_and_known_destinations_forward() -> None:
    t, fdb = seed(), sl.Fdb()
    d = sl.decide(t, fdb, DP, 1, sl.UNTAGGED, H1, "ff:ff:ff:ff:ff:ff")
    assert d == sl.Decision("flood", "slice1", (2, 5))
    d = sl.decide(t, fdb, DP, 2, sl.UNTAGGED, H2, H1)
    assert d == sl.Decision("forward", "slice1", (1,))
    # slice2: h4 unknown yet, flood reaches no port; once h4 spoke its port is a flood target
    assert sl.decide(t, fdb, DP, 3, sl.UNTAGGED, H3, "ff:ff:ff:ff:ff:ff") == sl.Decision("flood", "slice2", ())
    assert sl.decide(t, fdb, DP, 4, sl.UNTAGGED, H4, "ff:ff:ff:ff:ff:ff") == sl.Decision("flood", "slice2", (3,))
    # h1 is unknown to slice2's FDB: h3 to h1 floods within slice2 only
    assert sl.decide(t, fdb, DP, 3, sl.UNTAGGED, H3, H1) == sl.Decision("flood", "slice2", (4,))
    # and a packet from an unbound port is dropped
    assert sl.decide(t, fdb, DP, 9, sl.UNTAGGED, X, H1) == sl.Decision("drop")


def test_filters_decide_after_the_slice_lookup() -> None:
    t, fdb = seed(), sl.Fdb()
    icmp = fl.Frame(1, sl.mac_int(H1), sl.mac_int(H2), dl_type=0x0800, nw_proto=1, nw_src=1, nw_dst=2, tp_src=8)
    tcp = fl.Frame(1, sl.mac_int(H1), sl.mac_int(H2), dl_type=0x0800, nw_proto=6, nw_src=1, nw_dst=2, tp_dst=22)
    sl.decide(t, fdb, DP, 2, sl.UNTAGGED, H2, H1)  # h2 is known
    assert sl.decide(t, fdb, DP, 1, sl.UNTAGGED, H1, H2, icmp) == sl.Decision("forward", "slice1", (2,))
    t.add_filters(
        [{"id": "no-ping", "priority": 10, "dl_type": "0x0800", "nw_proto": 1, "slice": "slice1", "action": "DENY"}]
    )
    assert t.examined == {"dl_type", "nw_proto"}
    assert sl.decide(t, fdb, DP, 1, sl.UNTAGGED, H1, H2, icmp) == sl.Decision("deny", "slice1")
    assert sl.decide(t, fdb, DP, 1, sl.UNTAGGED, H1, H2, tcp) == sl.Decision("forward", "slice1", (2,))
    assert sl.decide(t, fdb, DP, 3, sl.UNTAGGED, H3, H4, icmp).action == "flood"  # other slice: not filtered
    t.remove_filter("default")  # no filter matches: denied, as in Trema
    assert sl.decide(t, fdb, DP, 1, sl.UNTAGGED, H1, H2, tcp) == sl.Decision("deny", "slice1")
    assert sl.decide(t, fdb, DP, 9, sl.UNTAGGED, X, H1) == sl.Decision("drop")  # no slice comes first


def test_fdb_is_per_slice() -> None:
    fdb = sl.Fdb()
    assert fdb.learn("a", DP, sl.UNTAGGED, H1, 1)
    assert not fdb.learn("a", DP, sl.UNTAGGED, H1, 1)
    assert fdb.learn("a", DP, sl.UNTAGGED, H1, 2)  # moved
    assert fdb.port("b", DP, sl.UNTAGGED, H1) is None
    assert fdb.port("a", DP, sl.UNTAGGED, H1) == 2


def test_restrict_floods_only_to_ports_with_port_mac_bindings() -> None:
    t = seed()
    t.set_config({"restrict_hosts_on_port": True})
    assert t.flood_ports("slice1", DP, sl.UNTAGGED) == {5}


def test_locations_expire_and_follow_bindings() -> None:
    now = [1000.0]
    t = seed()
    t.clock = lambda: now[0]
    assert t.seen("slice2", H3, DP, 3, sl.UNTAGGED)
    assert t.locations_dirty
    assert not t.seen("slice2", H3, DP, 3, sl.UNTAGGED)
    assert t.flood_ports("slice2", DP, sl.UNTAGGED) == {3}
    now[0] += sl.DYNAMIC_BINDING_TTL + 1
    assert t.flood_ports("slice2", DP, sl.UNTAGGED) == set()
    t.seen("slice2", H3, DP, 3, sl.UNTAGGED)
    t.remove_binding("slice2", "h3", sl.MAC)  # unbound: its location no longer counts
    assert t.flood_ports("slice2", DP, sl.UNTAGGED) == set()
    assert not t.seen("slice2", H3, DP, 3, sl.UNTAGGED)  # no longer MAC-bound: nothing recorded
    t.add_mac("slice2", {"id": "h3", "mac": H3})  # bound again (e.g. tables restored): it counts again
    assert t.flood_ports("slice2", DP, sl.UNTAGGED) == {3}


def test_listeners_called_on_every_change() -> None:
    t = seed()
    calls: list[int] = []
    t.listeners.append(lambda table: calls.append(table.generation))
    t.add_mac("slice1", {"mac": X})
    t.set_config({"loose": False})  # no change: no call
    t.set_config({"loose": True})
    t.remove_binding("slice1", "h2", sl.PORT)
    assert len(calls) == 3
    assert calls == sorted(calls)


def test_locations_survive_serialisation() -> None:
    t = seed()
    t.seen("slice2", H4, DP, 4, sl.UNTAGGED)
    again = sl.SliceTable(clock=lambda: 1000.0)
    again.load(t.to_dict(with_locations=True))
    assert again.flood_ports("slice2", DP, sl.UNTAGGED) == {4}


def test_check_settings_names_the_seed_error(tmp_path: Path) -> None:
    """The role validates controller.json with it before the controller would fail to start."""
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text(json.dumps({"seed": {"slices": [{"id": "a", "attachments": [{"id": "m", "mac": H1}]}]}}))
    dup = [{"id": "h", "datapath_id": "0x1", "port": 1, "attachments": [{"id": "h", "mac": H1}]}]
    bad.write_text(json.dumps({"seed": {"slices": [{"id": "a", "ports": dup}]}}))
    assert sl.check_settings(str(good)) is None
    assert "already has a binding 'h'" in str(sl.check_settings(str(bad)))
    assert "do not load" in str(sl.check_settings(str(tmp_path / "missing.json")))
