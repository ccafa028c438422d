"""Host keys learnt at creation and checked on every SSH path (issue 21 item 9), with real podman, real sshd,
real ansible-playbook (mitogen, and Ansible's own ssh): one podman lab of one host for the module, and a
"static" machine: a container of the base image started outside labctl on a network of its own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from labctl.providers import image
from labctl.providers.podman.provider import ULIMITS

from .conftest import lab_containers, lab_networks, run

pytestmark = pytest.mark.integration

LAB = "tk-hk"
SUBNET = "198.18.208.0/24"
STATIC_LAB = "tk-hks"
STATIC_NET = "tk-hk-static"  # a podman network of this test's own, not a lab's
STATIC_SUBNET = "198.18.209.0/24"
STATIC_ADDR = "198.18.209.10"
STATIC_NAME = "tk-hk-static-s1"
# what an admin (or an attacker who took the address) does: new host keys, sshd restarted
REKEY = "rm -f /etc/ssh/ssh_host_*; ssh-keygen -A >/dev/null; systemctl restart ssh"
CHANGED = "its SSH host key changed since labctl learnt it"


def served_key(address: str) -> str:
    """The ed25519 key the SSH server at address serves, as known_hosts holds it (type base64)."""
    out = subprocess.run(
        ["ssh-keyscan", "-T", "10", "-t", "ed25519", address], capture_output=True, text=True, check=False
    ).stdout
    return " ".join(out.split()[1:3])


def known_lines(env: dict[str, str], lab: str) -> list[str]:
    return (Path(env["LABCTL_STATE_DIR"]) / lab / "known_hosts").read_text().splitlines()


def wait_ssh(address: str) -> None:
    for _ in range(100):
        if served_key(address):
            return
    raise AssertionError(f"no SSH on {address}")


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """The module's podman lab (one host, h1), up; down (and its known_hosts gone) at the end."""
    tmp = tmp_path_factory.mktemp("hostkeys")
    labenv = dict(os.environ, LABCTL_STATE_DIR=str(tmp / "state"))
    topo = tmp / f"{LAB}.yml"
    topo.write_text(
        f"schema: 1\nname: {LAB}\nnetworks: [{{name: lab, subnet: {SUBNET}}}]\n"
        "hosts: [{name: h1, groups: [], networks: [lab]}]\n"
    )
    labenv["TK_TOPO"] = str(topo)
    try:
        run("up", "-f", str(topo), "--no-smoke", env=labenv)
        yield labenv
    finally:
        run("down", "--name", LAB, env=labenv, check=False)
    assert lab_containers(LAB) == [] and lab_networks(LAB) == []
    assert not (tmp / "state" / LAB).exists()  # the known_hosts went with the state


def h1_address(env: dict[str, str]) -> str:
    return next(line.split()[0] for line in known_lines(env, LAB))


def test_a_podman_hosts_key_is_learnt_at_creation_and_is_the_one_sshd_serves(env: dict[str, str]) -> None:
    lines = known_lines(env, LAB)
    assert len(lines) == 1
    address, kind, blob = lines[0].split()
    assert address.startswith("198.18.208.") and kind == "ssh-ed25519"
    assert served_key(address) == f"{kind} {blob}"
    assert run("exec", "--name", LAB, "h1", "--", "hostname", env=env).stdout.strip() == "h1"
    config = run("ssh-config", "--name", LAB, env=env).stdout
    assert "StrictHostKeyChecking yes" in config


def test_a_replaced_podman_host_key_is_refused_by_ssh_fabric_mitogen_and_ansible(env: dict[str, str]) -> None:
    name = f"labctl-{LAB}_h1"
    subprocess.run(["podman", "exec", name, "sh", "-c", REKEY], check=True, capture_output=True)
    fix = f"labctl forget-key --name {LAB} h1"
    for args, extra in (
        (("exec", "--name", LAB, "h1", "--", "hostname"), {}),  # the system ssh
        (("exec", "--name", LAB, "--all", "--", "hostname"), {}),
        (("lock", "--name", LAB), {}),  # Fabric/paramiko
        (("provision", "--name", LAB), {}),  # Ansible under mitogen (the default strategy)
        (("provision", "--name", LAB), {"LABCTL_STRATEGY": "linear"}),  # Ansible's own ssh
    ):
        res = run(*args, env={**env, **extra}, check=False)
        assert res.returncode == 2, f"{args} {extra}: {res.stdout}{res.stderr}"
        assert CHANGED in res.stderr and "host 'h1' of lab 'tk-hk'" in res.stderr and fix in res.stderr, args
        assert "Traceback" not in res.stderr
    assert not Path(env["TK_TOPO"]).with_suffix(".lock").exists()

    # the fix named: forget the key, `up` learns the new one from the container (through podman)
    run("forget-key", "--name", LAB, "h1", env=env)
    run("up", "--name", LAB, "--no-smoke", env=env)
    address = h1_address(env)
    lines = known_lines(env, LAB)  # ssh-keygen -A made rsa, ecdsa and ed25519 keys: each is h1's
    assert f"{address} {served_key(address)}" in lines and {line.split()[0] for line in lines} == {address}
    assert len(lines) == 3
    assert run("exec", "--name", LAB, "h1", "--", "hostname", env=env).stdout.strip() == "h1"


def test_a_host_made_again_replaces_its_own_entry(env: dict[str, str]) -> None:
    address = h1_address(env)
    before = served_key(address)
    subprocess.run(["podman", "rm", "--force", "--time", "0", f"labctl-{LAB}_h1"], check=True, capture_output=True)
    run("up", "--name", LAB, "--no-smoke", env=env)  # reconcile makes h1 again: a new container, a new key
    after = served_key(address)
    assert after and after != before
    assert known_lines(env, LAB) == [f"{address} {after}"]
    assert run("exec", "--name", LAB, "h1", "--", "hostname", env=env).stdout.strip() == "h1"


@pytest.fixture
def static_host(tmp_path: Path) -> Iterator[Path]:
    """A machine labctl did not make: a container of the base image on a network of this test's own, taking
    a key of this test's own. Yields the key; removed after."""
    key = tmp_path / "id_static"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    pub = key.with_suffix(".pub").read_text().strip()
    try:
        subprocess.run(
            ["podman", "network", "create", "--subnet", STATIC_SUBNET, STATIC_NET], check=True, capture_output=True
        )
        subprocess.run(
            ["podman", "run", "-d", "--runtime", "runc", "--systemd=always", "--privileged", "--name", STATIC_NAME,
             "--network", f"{STATIC_NET}:ip={STATIC_ADDR}", *(a for u in ULIMITS for a in ("--ulimit", u)),
             "--env", f"{image.KEY_ENV}={pub}", image.image_tag()],
            check=True, capture_output=True,
        )  # fmt: skip
        wait_ssh(STATIC_ADDR)
        yield key
    finally:
        subprocess.run(["podman", "rm", "--force", "--time", "0", STATIC_NAME], capture_output=True, check=False)
        subprocess.run(["podman", "network", "rm", STATIC_NET], capture_output=True, check=False)


def test_a_static_host_is_trusted_on_first_use_then_a_changed_key_is_refused(tmp_path: Path, static_host: Path) -> None:
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp_path / "state"))
    topo = tmp_path / "static.yml"
    topo.write_text(
        f"schema: 1\nname: {STATIC_LAB}\nprovider: static\n"
        f"hosts:\n  - {{name: s1, address: {STATIC_ADDR}, user: root, key: {static_host}}}\n"
    )
    try:
        run("up", "-f", str(topo), "--no-smoke", env=env)
        first = served_key(STATIC_ADDR)
        assert known_lines(env, STATIC_LAB) == [f"{STATIC_ADDR} {first}"]  # learnt on first use
        assert run("exec", "--name", STATIC_LAB, "s1", "--", "hostname", env=env).returncode == 0

        subprocess.run(["podman", "exec", STATIC_NAME, "sh", "-c", REKEY], check=True, capture_output=True)
        assert served_key(STATIC_ADDR) not in ("", first)
        fix = "Fix: if the host's key was changed on purpose"
        for args in (("exec", "--name", STATIC_LAB, "s1", "--", "true"), ("provision", "--name", STATIC_LAB)):
            res = run(*args, env=env, check=False)
            assert res.returncode == 2, f"{args}: {res.stdout}{res.stderr}"
            assert CHANGED in res.stderr and "host 's1' of lab 'tk-hks'" in res.stderr and fix in res.stderr
            assert f"labctl forget-key --name {STATIC_LAB} s1" in res.stderr and "Traceback" not in res.stderr
        assert known_lines(env, STATIC_LAB) == [f"{STATIC_ADDR} {first}"]  # nothing learnt behind the user's back

        run("forget-key", "--name", STATIC_LAB, "s1", env=env)
        assert run("exec", "--name", STATIC_LAB, "s1", "--", "true", env=env).returncode == 0  # learnt again
        assert known_lines(env, STATIC_LAB) == [f"{STATIC_ADDR} {served_key(STATIC_ADDR)}"]
    finally:
        run("down", "--name", STATIC_LAB, env=env, check=False)
    assert subprocess.run(["podman", "container", "exists", STATIC_NAME], check=False).returncode == 0  # not labctl's
