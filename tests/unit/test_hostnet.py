"""Lab subnets must not overlap podman networks labctl did not make, nor the host's own routes."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.netops.hostnet import foreign
from labctl.topology import check_reserved, parse

NETWORKS = [
    {"name": "podman", "network_interface": "podman0", "subnets": [{"subnet": "10.88.0.0/16"}]},
    {
        "name": "labctl-other-lab",
        "network_interface": "podman1",
        "subnets": [{"subnet": "198.18.43.0/24"}],
        "labels": {"labctl.lab": "other", "labctl.network": "lab"},
    },
    {"name": "v6only", "network_interface": "podman2", "subnets": [{"subnet": "fd00::/64"}]},
]
ROUTES = [
    {"dst": "default", "gateway": "192.0.2.1", "dev": "eth0"},
    {"dst": "192.0.2.0/24", "dev": "eth0", "protocol": "kernel"},
    {"dst": "198.18.43.0/24", "dev": "podman1", "protocol": "kernel"},
    {"dst": "10.88.0.0/16", "dev": "podman0", "protocol": "kernel"},
    {"dst": "203.0.113.7", "gateway": "192.0.2.1", "dev": "eth0"},
    {"dst": "100.64.0.0/10", "type": "blackhole"},
]


def lab(subnet: str) -> dict:  # type: ignore[type-arg]
    return {
        "schema": 1,
        "name": "t",
        "networks": [{"name": "n", "subnet": subnet}],
        "hosts": [{"name": "a", "networks": ["n"]}],
    }


def test_foreign_lists_other_podman_networks_and_host_routes_only() -> None:
    assert foreign(NETWORKS, ROUTES, "labctl.lab") == [
        ("podman network 'podman', which labctl did not create", "10.88.0.0/16"),
        ("the host's route to 192.0.2.0/24 dev eth0", "192.0.2.0/24"),
        ("the host's route to 203.0.113.7 dev eth0", "203.0.113.7/32"),
        ("the host's route to 100.64.0.0/10", "100.64.0.0/10"),
    ]


@pytest.mark.parametrize(
    ("subnet", "what"),
    [
        ("10.88.0.0/24", "podman network 'podman'"),
        ("192.0.2.0/28", "the host's route to 192.0.2.0/24 dev eth0"),
        ("203.0.113.0/24", "the host's route to 203.0.113.7 dev eth0"),
    ],
)
def test_an_overlap_is_one_error_naming_file_field_and_fix(subnet: str, what: str) -> None:
    topo = parse(lab(subnet), Path("lab.yml"))
    with pytest.raises(LabError) as err:
        check_reserved(topo, foreign(NETWORKS, ROUTES, "labctl.lab"))
    msg = str(err.value)
    assert msg.startswith(f"lab.yml: field 'networks.n.subnet': {subnet} overlaps {what}")
    assert "Fix: pick a subnet that nothing on this host uses" in msg


def test_labctl_networks_and_disjoint_subnets_pass() -> None:
    # another lab's network is checked elsewhere (naming the lab); the default route overlaps everything
    reserved = foreign(NETWORKS, ROUTES, "labctl.lab")
    assert "198.18.43.0/24" not in [subnet for _what, subnet in reserved]  # its podman1 route is labctl's too
    assert check_reserved(parse(lab("198.18.43.0/24"), Path("lab.yml")), reserved) is None
    assert check_reserved(parse(lab("198.18.80.0/24"), Path("lab.yml")), reserved) is None
