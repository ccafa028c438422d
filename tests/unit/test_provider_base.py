"""The provider base class: its defaults are what a provider that says nothing means, HostState and UP_STATES,
and each provider's own host options (the topology asks the provider)."""

from __future__ import annotations

from pathlib import Path

import pytest

from labctl.access import kernellog
from labctl.errors import LabError
from labctl.providers import UP_STATES, HostInfo, HostSpec, HostState, Provider, provider_class, register
from labctl.providers.podman.provider import PodmanProvider
from labctl.providers.qemu.provider import QemuProvider
from labctl.providers.static import StaticProvider

SPEC = HostSpec("lab1", "h1", {"lan": "198.18.1.10"}, authorized_key="ssh-ed25519 AAAA")


def _fail(where: str, problem: str, fix: str) -> LabError:
    return LabError(f"lab.yml: field '{where}': {problem}. Fix: {fix}.")


def test_the_defaults_are_what_an_absent_attribute_meant() -> None:
    p = Provider()
    assert p.key_at_create(SPEC) is False
    assert p.package_proxies([SPEC]) == {}
    assert p.reads_host_keys is False and p.host_keys("lab1", "h1") == ""
    assert p.host_kind == "container"
    assert p.kernel_log == kernellog.OWN
    assert p.teardown_rank == 0
    assert p.host_settings == frozenset()
    assert p.needs_networks is True
    assert p.list("lab1", [SPEC]) == {} and p.networks() == {} and p.labs() == {} and p.reserved() == []
    assert p.address(SPEC) == "198.18.1.10"
    assert Provider.parse_host_options({"name": "h1"}, "hosts.h1", _fail) == {}


def test_each_provider_says_what_it_can() -> None:
    assert PodmanProvider.reads_host_keys and QemuProvider.reads_host_keys and not StaticProvider.reads_host_keys
    assert PodmanProvider.kernel_log == kernellog.MACHINE and QemuProvider.kernel_log == kernellog.OWN
    assert QemuProvider.host_kind == "vm" and PodmanProvider.host_kind == "container"
    assert StaticProvider.needs_networks is False and PodmanProvider.needs_networks is True
    assert provider_class("qemu") is QemuProvider and provider_class("static") is StaticProvider
    assert PodmanProvider().key_at_create(SPEC) is True  # the base image takes the key at its first boot
    assert StaticProvider().key_at_create(SPEC) is False


def test_host_state_is_a_string_and_says_which_answer() -> None:
    assert HostState.RUNNING == "running" and HostState.STATIC == "static" and HostState.MISSING == "missing"
    assert {"running", "static"} == UP_STATES
    assert HostState.RUNNING.is_up and HostState.STATIC.is_up and not HostState.STOPPED.is_up
    assert HostState.of("no-such-state") is HostState.UNKNOWN
    info = HostInfo("h1", "stopped")  # type: ignore[arg-type]
    assert info.state is HostState.STOPPED and info.state == "stopped"
    assert StaticProvider().list("lab1", [SPEC]) == {"h1": HostInfo("h1", HostState.STATIC)}


def test_static_defaults_name_the_provider() -> None:
    with pytest.raises(LabError, match=r"console: 'h1' is a static host; labctl has no console of it"):
        StaticProvider().show_console("lab1", "h1", False)
    with pytest.raises(LabError, match=r"static hosts \(h1\) cannot be saved: labctl does not own their disks"):
        StaticProvider().export_hosts("lab1", ["h1"], Path("/nonexistent"))
    with pytest.raises(LabError, match="static hosts cannot be restored from an archive"):
        StaticProvider().import_hosts("lab1", {}, Path("/nonexistent"))


def test_providers_parse_their_own_host_options() -> None:
    assert StaticProvider.parse_host_options({"address": "db.example"}, "hosts.db", _fail) == {
        "address": "db.example",
        "user": "root",
        "key": None,
    }
    assert QemuProvider.parse_host_options({"vm": {"cpus": 2}}, "hosts.v", _fail) == {"vm": {"cpus": 2}}
    with pytest.raises(LabError, match=r"field 'hosts.v.vm.cpus': 0 is not a number of vCPUs"):
        QemuProvider.parse_host_options({"vm": {"cpus": 0}}, "hosts.v", _fail)
    with pytest.raises(LabError, match=r"field 'hosts.c.vm': provider 'podman' runs no virtual machines"):
        QemuProvider.refuse_host_options({"vm": {}}, "podman", "hosts.c", _fail)
    with pytest.raises(LabError, match=r"field 'hosts.c.user': 'user' is only for existing hosts"):
        StaticProvider.refuse_host_options({"user": "x", "key": "k"}, "podman", "hosts.c", _fail)


def test_only_a_provider_class_registers() -> None:
    with pytest.raises(TypeError, match=r"no subclass of labctl\.providers\.Provider"):
        register("not-a-provider")(object)  # type: ignore[arg-type]
