"""Topology validation: every rejection names the file, the field and the fix."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from labctl import paths
from labctl.errors import LabError
from labctl.topology import check_overlaps, load, parse

BASE: dict[str, Any] = {
    "schema": 1,
    "name": "t",
    "networks": [
        {"name": "outside", "subnet": "198.18.1.0/24"},
        {"name": "inside", "subnet": "198.18.2.0/24", "routes": [{"to": "outside", "via": "gw"}]},
    ],
    "groups": {"web": {"port": 80}},
    "hosts": [
        {"name": "gw", "groups": [], "networks": ["outside", "inside"]},
        {"name": "db", "groups": ["web"], "networks": ["inside"], "addresses": {"inside": "198.18.2.50"}},
        {"name": "ext", "networks": ["outside"], "vars": {"port": 8080}},
    ],
}
PATH = Path("lab.yml")


def mutate(fn: Any) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    fn(data)
    return data


def test_valid_topology_assigns_addresses_in_order() -> None:
    topo = parse(BASE, PATH)
    assert topo.hosts["gw"].addresses == {"outside": "198.18.1.10", "inside": "198.18.2.10"}
    assert topo.hosts["db"].addresses == {"inside": "198.18.2.50"}
    assert topo.hosts["ext"].addresses == {"outside": "198.18.1.11"}
    assert topo.group_hosts() == {"web": ["db"]}


def test_routes_go_via_the_gateway_for_hosts_not_on_the_target() -> None:
    topo = parse(BASE, PATH)
    assert topo.routes("db") == [{"to": "198.18.1.0/24", "via": "198.18.2.10"}]
    assert topo.routes("gw") == []
    assert topo.routes("ext") == []


def test_a_default_route_sends_everything_via_the_gateway() -> None:
    data = mutate(lambda d: d["networks"][1].update(routes=[{"to": "default", "via": "gw"}]))
    topo = parse(data, PATH)
    assert topo.routes("db") == [{"to": "default", "via": "198.18.2.10"}]
    assert topo.default_via("db") == "gw"
    assert topo.routes("gw") == [] and topo.default_via("gw") is None
    assert topo.routes("ext") == [] and topo.default_via("ext") is None


def test_vars_merge_all_then_group_then_host() -> None:
    data = mutate(lambda d: d.update(vars={"port": 1, "x": 1}))
    data["hosts"][1]["vars"] = {"x": 2}
    topo = parse(data, PATH)
    assert topo.hostvars("db") == {"port": 80, "x": 2}
    assert topo.hostvars("ext") == {"port": 8080, "x": 1}


def test_reach_prefers_a_shared_network() -> None:
    topo = parse(BASE, PATH)
    assert topo.reach("db", "gw") == "198.18.2.10"
    assert topo.reach("ext", "gw") == "198.18.1.10"
    assert topo.reach("ext", "db") == "198.18.2.50"


def _dup_host(d: dict[str, Any]) -> None:
    d["hosts"].append({"name": "gw", "networks": ["outside"]})


def _dup_net(d: dict[str, Any]) -> None:
    d["networks"].append({"name": "inside", "subnet": "198.18.9.0/24"})


REJECTIONS = [
    ("schema", lambda d: d.update(schema=2), "schema"),
    ("bad lab name", lambda d: d.update(name="Bad_Name"), "name"),
    ("duplicate host", _dup_host, "hosts.gw"),
    ("duplicate network", _dup_net, "networks[2].name"),
    ("unknown network", lambda d: d["hosts"][0]["networks"].append("dmz"), "hosts.gw.networks"),
    ("unknown group", lambda d: d["hosts"][0]["groups"].append("nosuch"), "hosts.gw.groups"),
    ("address outside subnet", lambda d: d["hosts"][1].update(addresses={"inside": "198.18.1.5"}), "addresses.inside"),
    ("address is the gateway", lambda d: d["hosts"][1].update(addresses={"inside": "198.18.2.1"}), "addresses.inside"),
    ("bad hostname", lambda d: d["hosts"][0].update(name="under_score"), "hosts[0].name"),
    ("hostname leading dash", lambda d: d["hosts"][0].update(name="-gw"), "hosts[0].name"),
    ("overlapping subnets", lambda d: d["networks"][1].update(subnet="198.18.1.128/25"), "networks[1].subnet"),
    ("bad subnet", lambda d: d["networks"][0].update(subnet="198.18.1.1/24"), "networks[0].subnet"),
    ("unknown field", lambda d: d.update(hostz=[]), "hostz"),
    ("route via a host not on the network", lambda d: d["networks"][1]["routes"][0].update(via="ext"), "via"),
    ("route to nowhere", lambda d: d["networks"][1]["routes"][0].update(to="dmz"), "routes[0].to"),
    ("network named default", lambda d: d["networks"][0].update(name="default"), "networks[0].name"),
    ("no hosts", lambda d: d.update(hosts=[]), "hosts"),
    ("host without network", lambda d: d["hosts"][2].update(networks=[]), "hosts.ext.networks"),
    ("hosts not a list", lambda d: d.update(hosts={"a": 1}), "hosts"),
    ("same fixed address twice", lambda d: d["hosts"][0].update(addresses={"inside": "198.18.2.50"}), "addresses"),
    ("vm on a container", lambda d: d["hosts"][0].update(vm={"cpus": 1}), "hosts.gw.vm"),
    ("vm cpus not a number", lambda d: d["hosts"][0].update(provider="qemu", vm={"cpus": "2"}), "hosts.gw.vm.cpus"),
    ("vm memory too small", lambda d: d["hosts"][0].update(provider="qemu", vm={"memory": 64}), "hosts.gw.vm.memory"),
    ("vm unknown setting", lambda d: d["hosts"][0].update(provider="qemu", vm={"disk": 9}), "hosts.gw.vm.disk"),
    ("unknown host provider", lambda d: d["hosts"][0].update(provider="vbox"), "hosts.gw.provider"),
]


@pytest.mark.parametrize(("case", "change", "field"), REJECTIONS, ids=[r[0] for r in REJECTIONS])
def test_rejections_name_file_field_and_fix(case: str, change: Any, field: str) -> None:
    with pytest.raises(LabError) as info:
        parse(mutate(change), PATH)
    message = str(info.value)
    assert message.startswith("lab.yml: field '")
    assert field in message
    assert "Fix:" in message
    assert "\n" not in message


def test_a_missing_schema_is_the_current_one() -> None:
    data = mutate(lambda d: d.pop("schema"))
    assert parse(data, PATH).name == "t"


def test_duplicate_keys_are_refused_and_merge_keys_still_work(tmp_path: Path) -> None:
    merged = tmp_path / "merged.yml"
    text = (
        "name: t\nnetworks: [{name: lan, subnet: 198.18.78.0/24}]\n"
        "hosts:\n  - &h1 {name: h1, networks: [lan]}\n  - {<<: *h1, name: h2}\n"
    )
    merged.write_text(text)
    assert list(load(merged).hosts) == ["h1", "h2"]
    merged.write_text(text + "name: t2\n")
    with pytest.raises(LabError, match=r"found duplicate key 'name' \(first given on line 1\)"):
        load(merged)


def test_per_host_provider_and_vm_sizes() -> None:
    data = mutate(lambda d: d.update(provider="qemu"))
    data["hosts"][0]["vm"] = {"cpus": 2, "memory": 768}
    data["hosts"][2]["provider"] = "podman"
    topo = parse(data, PATH)
    assert [h.provider for h in topo.hosts.values()] == ["qemu", "qemu", "podman"]
    assert topo.hosts["gw"].vm == {"cpus": 2, "memory": 768}
    assert topo.hosts["db"].vm == {}


def test_overlap_with_another_running_lab() -> None:
    topo = parse(BASE, PATH)
    with pytest.raises(LabError, match=r"overlaps network 'lan' \(198.18.2.0/25\) of the running lab 'other'"):
        check_overlaps(topo, {"other": {"lan": "198.18.2.0/25"}})
    check_overlaps(topo, {"t": {"inside": "198.18.2.0/24"}, "other": {"lan": "198.18.3.0/24"}})


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(LabError, match="no such topology file"):
        load(tmp_path / "nope.yml")
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(
        LabError, match=r"not valid YAML at line 2, column 1: while parsing a flow sequence: expected ',' or"
    ):
        load(bad)


def test_default_lab_is_valid_and_shaped_for_the_seed() -> None:
    topo = load(
        paths.DEFAULT_LAB,
        paths.known_groups()
        | {
            "nat_gateway",
            "mongodb",
            "memcached",
            "mongrel2",
            "zeromq",
            "swig",
            "sdn_controller",
            "memcached_clients",
            "mongodb_clients",
        },
    )
    assert set(topo.hosts) == {"gw", "db", "web", "dev", "sdn", "ext"}
    assert topo.hosts["ext"].networks == ["outside"]
    assert topo.hosts["gw"].networks == ["outside", "inside"]
    assert topo.routes("web") == [{"to": "default", "via": topo.hosts["gw"].addresses["inside"]}]
    raw = yaml.safe_load(paths.DEFAULT_LAB.read_text())
    assert raw["schema"] == 1


def test_whole_lab_scenario_is_the_default_lab_on_other_subnets() -> None:
    default = yaml.safe_load(paths.DEFAULT_LAB.read_text())
    scenario = yaml.safe_load((paths.PROJECT_DIR / "molecule" / "lab" / "lab.yml").read_text())
    assert scenario["name"] == "mol-lab"
    assert [n["name"] for n in scenario["networks"]] == [n["name"] for n in default["networks"]]
    for key in ("hosts", "groups", "vars", "provider"):
        assert scenario.get(key) == default.get(key)


def test_default_vm_lab_is_the_default_lab_with_gw_as_a_vm() -> None:
    default = yaml.safe_load(paths.DEFAULT_LAB.read_text())
    vm_lab = yaml.safe_load((paths.DEFAULT_LAB.parent / "default-vm.yml").read_text())
    gw = vm_lab["hosts"][0]
    assert gw.pop("provider") == "qemu" and gw.pop("vm") == {"cpus": 1, "memory": 512}
    assert [n["name"] for n in vm_lab["networks"]] == [n["name"] for n in default["networks"]]
    for key in ("hosts", "groups", "vars", "provider"):
        assert vm_lab.get(key) == default.get(key)
