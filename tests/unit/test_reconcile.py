"""The lab's reconcile step and the provider registry, with a fake provider (pure logic, no podman)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.errors import LabError
from labctl.lifecycle.model import Lab
from labctl.lifecycle.parallel import Say
from labctl.lifecycle.up import plan, reconcile
from labctl.providers import HostInfo, HostSpec, NetworkSpec, Provider, get_provider, provider_names
from labctl.topology import parse


class FakeProvider(Provider):
    """Records calls; hosts live in a dict."""

    name = "fake"

    def __init__(self, hosts: dict[str, str] | None = None) -> None:
        self.hosts = dict(hosts or {})  # host -> state
        self.calls: list[tuple[str, str]] = []

    def prepare(self, hosts: list[HostSpec], say: Say) -> None:
        self.calls.append(("prepare", ",".join(h.name for h in hosts)))

    def create_network(self, spec: NetworkSpec) -> None:
        self.calls.append(("network", spec.name))

    def link_networks(self, lab: str, subnets: list[str]) -> None:
        return None

    def create(self, spec: HostSpec) -> None:
        self.calls.append(("create", spec.name))
        self.hosts[spec.name] = "stopped"

    def start(self, lab: str, host: str) -> None:
        self.calls.append(("start", host))
        self.hosts[host] = "running"

    def stop(self, lab: str, host: str) -> None:
        self.hosts[host] = "stopped"

    def authorize(self, lab: str, host: str, pubkey: str) -> None:
        self.calls.append(("authorize", host))

    def console(self, lab: str, host: str, lines: int = 15) -> str:
        return ""

    def exit_code(self, lab: str, host: str) -> int | None:
        return None

    def labs(self) -> dict[str, dict[str, list[str]]]:
        return {}

    def reserved(self) -> list[tuple[str, str]]:
        return []

    def destroy(self, lab: str, host: str) -> None:
        self.calls.append(("destroy", host))
        del self.hosts[host]

    def destroy_lab(self, lab: str) -> list[str]:
        return []

    def address(self, spec: HostSpec) -> str:
        return next(iter(spec.networks.values()))

    def list(self, lab: str, hosts: list[HostSpec] | None = None) -> dict[str, HostInfo]:
        return {h: HostInfo(h, s) for h, s in self.hosts.items()}

    def networks(self, lab: str | None = None) -> dict[str, dict[str, str]]:
        return {}

    # the provider base class's defaults (what a provider without these capabilities does)
    def host_keys(self, lab: str, host: str) -> dict[str, str]:
        return {}  # reads no key: the host is trusted on first use

    def package_proxies(self, specs: list[HostSpec]) -> dict[str, str]:
        return {}

    def key_at_create(self, spec: HostSpec) -> bool:
        return False


RAW = {
    "schema": 1,
    "name": "rc",
    "networks": [{"name": "n", "subnet": "198.18.9.0/24"}],
    "hosts": [{"name": n, "networks": ["n"]} for n in ("a", "b", "c")],
}


def fake_lab(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: dict[str, str]) -> tuple[Lab, FakeProvider]:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    fake = FakeProvider(existing)
    lab = Lab(parse(RAW, Path("rc.yml")))
    monkeypatch.setattr(lab, "backend", lambda _name: fake)
    return lab, fake


def test_plan_removes_stale_creates_missing_starts_stopped() -> None:
    existing = {"b": HostInfo("b", "stopped"), "c": HostInfo("c", "running"), "old": HostInfo("old", "running")}
    todo = plan(["a", "b", "c"], existing)
    assert (todo.remove, todo.create, todo.start) == (["old"], ["a"], ["b"])
    assert plan(["s"], {"s": HostInfo("s", "static")}).empty


def test_reconcile_acts_through_the_provider_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    lab, fake = fake_lab(tmp_path, monkeypatch, {"b": "stopped", "c": "running", "old": "running"})
    todo = reconcile(lab)
    assert todo.create == ["a"] and todo.start == ["b"] and todo.remove == ["old"]
    assert fake.hosts == {"a": "running", "b": "running", "c": "running"}
    assert ("destroy", "old") in fake.calls and ("create", "a") in fake.calls
    # nothing to do the second time
    fake.calls.clear()
    assert reconcile(lab).empty and fake.calls == []


def test_lab_specs_and_addresses_come_from_topology_and_provider(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lab, _ = fake_lab(tmp_path, monkeypatch, {})
    spec = lab.spec("b")
    assert spec.networks == {"n": "198.18.9.11"} and spec.image is None
    assert spec.extra_hosts == {"a": "198.18.9.10", "c": "198.18.9.12"}
    assert lab.addresses() == {"a": "198.18.9.10", "b": "198.18.9.11", "c": "198.18.9.12"}
    assert [s.name for s in lab.providers()["podman"]] == ["a", "b", "c"]


def test_registry_knows_the_backends_and_names_them_in_errors() -> None:
    assert {"podman", "static"} <= set(provider_names())
    assert get_provider("static").name == "static"
    with pytest.raises(LabError, match=r"unknown provider 'nope'\. Fix: use one of: .*podman"):
        get_provider("nope")


def test_topology_reads_the_registry_and_a_host_may_override_the_provider() -> None:
    static = {"name": "s", "provider": "static", "address": "192.0.2.1"}
    raw = dict(RAW, hosts=[{"name": "a", "networks": ["n"]}, static])
    topo = parse(raw, Path("mixed.yml"))
    assert (topo.hosts["a"].provider, topo.hosts["s"].provider) == ("podman", "static")
    with pytest.raises(LabError, match=r"field 'hosts.a.provider': unknown provider 'vbox'"):
        parse(dict(RAW, hosts=[{"name": "a", "networks": ["n"], "provider": "vbox"}]), Path("bad.yml"))
