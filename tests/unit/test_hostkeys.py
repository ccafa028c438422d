"""Host keys (issue 21 item 9), the pure parts: known_hosts entries, replacing a host's own entry, what a host
may report as its key, the strict ssh/Ansible/mitogen/paramiko settings, the changed-key error, the VM's key in
its first-boot credential. File operations run in a scratch LABCTL_STATE_DIR; the podman reader runs against a
fake `podman` first on PATH."""

from __future__ import annotations

import base64
import os
import struct
import subprocess
from pathlib import Path

import pytest
from paramiko.client import RejectPolicy

from labctl.access import hostkeys, sshconfig
from labctl.access.remote import Target, checked_connection
from labctl.errors import LabError
from labctl.providers.qemu.vmconfig import HOST_KEY, Nic, first_boot, smbios_structure
from labctl.provisioning import inventory
from labctl.provisioning.ansible_run import Failure, PlaybookRun
from labctl.state import LabState


def _key(tmp_path: Path, name: str, kind: str = "ed25519") -> str:
    path = tmp_path / name
    subprocess.run(["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", name, "-f", str(path)], check=True)
    return path.with_suffix(".pub").read_text()


@pytest.fixture
def keys(tmp_path: Path) -> list[str]:
    """Three real public keys, as `type base64` (what known_hosts holds)."""
    return [" ".join(_key(tmp_path, f"k{i}").split()[:2]) for i in range(3)]


def test_entries_are_named_as_ssh_writes_them() -> None:
    assert hostkeys.host_pattern("198.18.208.10") == "198.18.208.10"
    assert hostkeys.host_pattern("198.18.208.10", 2222) == "[198.18.208.10]:2222"


def test_a_pub_file_and_keyscan_output_parse_to_the_same_key(tmp_path: Path) -> None:
    pub = _key(tmp_path, "host")
    kind, blob = pub.split()[:2]
    assert hostkeys.parse_keys(pub, "t") == [f"{kind} {blob}"]
    assert hostkeys.parse_keys(f"# 198.18.208.10:22 SSH-2.0-OpenSSH\n198.18.208.10 {kind} {blob}\n", "t") == [
        f"{kind} {blob}"
    ]
    rsa = _key(tmp_path, "rsa", "rsa")
    assert [k.split()[0] for k in hostkeys.parse_keys(pub + rsa, "t")] == ["ssh-ed25519", "ssh-rsa"]


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "no public key"),
        ("ssh-dss AAAAB3NzaC1kc3MAAACBAP", "not a public key of a known type"),
        ("ssh-ed25519 not*base64", "not base64"),
        # an RSA blob labelled ed25519
        ("ssh-ed25519 " + base64.b64encode(b"\x00\x00\x00\x07ssh-rsa" + b"\x00" * 20).decode(), "names another type"),
        ("ssh-ed25519 " + "A" * 3000, "more than 2048"),
        ("x" * 20000, "more than 16384"),
        ('command="id" ssh-ed25519 AAAA', "not usable"),
    ],
)
def test_what_a_host_reports_is_checked_before_it_is_written(text: str, says: str) -> None:
    with pytest.raises(LabError) as err:
        hostkeys.parse_keys(text, "host 'h1' of lab 'tk-x'")
    assert says in str(err.value) and "host 'h1' of lab 'tk-x'" in str(err.value) and "Fix:" in str(err.value)


def test_too_many_keys_are_refused(keys: list[str]) -> None:
    with pytest.raises(LabError, match="more than 8"):
        hostkeys.parse_keys("\n".join([keys[0]] * 9), "t")


def test_a_host_made_again_replaces_its_own_entry_only(keys: list[str]) -> None:
    text = (
        "# kept comment\n"
        f"198.18.208.10 {keys[0]}\n"
        f"198.18.208.11 {keys[1]}\n"
        f"198.18.208.100 {keys[1]}\n"  # a longer address that starts the same: not this host
        f"[198.18.208.10]:2222 {keys[1]}\n"  # the same address on another port: another host for ssh
    )
    new = hostkeys.replace(text, "198.18.208.10", [keys[2]])
    assert hostkeys.keys_of(new, "198.18.208.10") == [keys[2]]
    assert hostkeys.keys_of(new, "198.18.208.11") == [keys[1]]
    assert hostkeys.keys_of(new, "198.18.208.100") == [keys[1]]
    assert hostkeys.keys_of(new, "198.18.208.10", 2222) == [keys[1]]
    assert "# kept comment" in new
    assert hostkeys.keys_of(hostkeys.without(new, "198.18.208.10"), "198.18.208.10") == []


def test_hashed_entries_written_by_ssh_keygen_are_found_and_replaced(tmp_path: Path, keys: list[str]) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"198.18.208.10 {keys[0]}\n198.18.208.11 {keys[1]}\n")
    subprocess.run(["ssh-keygen", "-q", "-H", "-f", str(known)], check=True, capture_output=True)
    hashed = known.read_text()
    assert "198.18.208.10" not in hashed and hashed.startswith("|1|")
    assert hostkeys.keys_of(hashed, "198.18.208.10") == [keys[0]]
    new = hostkeys.replace(hashed, "198.18.208.10", [keys[2]])
    assert hostkeys.keys_of(new, "198.18.208.10") == [keys[2]]
    assert hostkeys.keys_of(new, "198.18.208.11") == [keys[1]]


def test_marker_lines_are_no_keys(keys: list[str]) -> None:
    text = f"@revoked 198.18.208.10 {keys[0]}\n@cert-authority 198.18.208.10 {keys[1]}\n"
    assert hostkeys.keys_of(text, "198.18.208.10") == []
    assert hostkeys.without(text, "198.18.208.10") == ""  # the host's own lines go with it


def test_learn_and_forget_in_the_labs_state(tmp_path: Path, keys: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    path = LabState("tk-unit").known_hosts
    hostkeys.learn(path, "198.18.208.10", [keys[0]])
    hostkeys.learn(path, "198.18.208.11", [keys[1]])
    hostkeys.learn(path, "198.18.208.10", [keys[2]])
    assert path.stat().st_mode & 0o777 == 0o600
    assert hostkeys.known(path, "198.18.208.10") == [keys[2]]
    assert hostkeys.forget(path, "198.18.208.10") is True
    assert hostkeys.forget(path, "198.18.208.10") is False
    assert hostkeys.known(path, "198.18.208.11") == [keys[1]]


def test_ssh_config_checks_strictly_against_the_labs_file_only() -> None:
    text = sshconfig.render([sshconfig.SshHost("db", "198.18.2.11", "root", "/k")], "/s/lab/known_hosts")
    assert "  StrictHostKeyChecking yes" in text.splitlines()
    assert "  UserKnownHostsFile /s/lab/known_hosts" in text.splitlines()
    assert "  GlobalKnownHostsFile /dev/null" in text.splitlines()
    assert "StrictHostKeyChecking no" not in text


def test_ansible_and_mitogen_check_keys_against_the_labs_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    state = LabState("tk-unit")
    args = inventory.ssh_common_args(state).split()
    assert "StrictHostKeyChecking=yes" in args and f"UserKnownHostsFile={state.known_hosts}" in args
    assert "StrictHostKeyChecking=no" not in args
    cfg = inventory.render_cfg(state)
    # mitogen maps host_key_checking=False to "-o UserKnownHostsFile /dev/null" before every other ssh arg
    assert "host_key_checking = True" in cfg.splitlines()
    assert "ControlPersist=60s" in cfg and "pipelining = True" in cfg  # kept as they were


def test_fabric_rejects_unknown_keys_and_loads_only_the_labs_file(tmp_path: Path, keys: list[str]) -> None:
    known = tmp_path / "known_hosts"
    known.write_text(f"198.18.208.10 {keys[0]}\n")
    conn = checked_connection(Target("h1", "198.18.208.10", "root", "/k", str(known), "changed"))
    assert isinstance(conn.client._policy, RejectPolicy)
    assert list(conn.client.get_host_keys().keys()) == ["198.18.208.10"]
    assert conn.client._system_host_keys.keys() == []


def test_a_changed_key_error_names_host_lab_and_the_fix_per_provider(tmp_path: Path) -> None:
    path = tmp_path / "known_hosts"
    for provider, fix in (
        ("podman", "labctl forget-key --name tk-a h1"),
        ("qemu", "labctl restart --name tk-a h1"),
        ("static", "labctl forget-key --name tk-a h1"),
    ):
        text = str(hostkeys.changed("tk-a", "h1", provider, path))
        assert "host 'h1' of lab 'tk-a'" in text and "changed since labctl learnt it" in text
        assert str(path) in text and "Fix:" in text and fix in text.split("Fix:")[1]
        assert "\n" not in text


def test_ssh_and_mitogen_messages_of_a_changed_key_are_recognised() -> None:
    assert hostkeys.says_mismatch(
        "Host key checking is enabled, and SSH reported an unrecognized or mismatching host key."
    )
    assert hostkeys.says_mismatch("Failed to connect to the host via ssh: ...\r\nHost key verification failed.")
    assert not hostkeys.says_mismatch("Failed to connect to the host via ssh: Connection refused")


def test_ansibles_unreachable_output_becomes_the_changed_key_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from labctl.lifecycle.converge import refuse_changed_keys
    from labctl.lifecycle.model import Lab
    from labctl.topology import parse

    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path))
    topo = parse(
        {
            "schema": 1,
            "name": "tk-unit",
            "networks": [{"name": "n", "subnet": "198.18.208.0/24"}],
            "hosts": [{"name": "h1", "networks": ["n"]}, {"name": "h2", "networks": ["n"]}],
        },
        tmp_path / "lab.yml",
    )
    run = PlaybookRun(4, tmp_path / "log", [Failure("h2", "Gathering", "Host key verification failed.")])
    with pytest.raises(LabError) as err:
        refuse_changed_keys(Lab(topo), run)
    assert "host 'h2' of lab 'tk-unit'" in str(err.value) and "h1" not in str(err.value).split("Fix:")[0]
    refuse_changed_keys(Lab(topo), PlaybookRun(2, tmp_path / "log", [Failure("h1", "t", "apt failed")]))


NIC = Nic("lab", "198.18.208.10", "198.18.208.0/24", "198.18.208.1", "02:4c:c6:12:d0:0a", "tap0", "br0")


def test_a_vms_host_key_is_in_its_first_boot_credential() -> None:
    text = first_boot(
        "v1", [NIC], {}, "ssh-ed25519 AAAA lab\n", ["198.18.208.1"], ("PRIVATE\n", "ssh-ed25519 BBBB v1\n")
    )
    lines = {line.split()[1]: line.split() for line in text.splitlines() if line.startswith("f+~")}
    assert lines[HOST_KEY][2] == "0600" and base64.b64decode(lines[HOST_KEY][6]) == b"PRIVATE\n"
    assert lines[f"{HOST_KEY}.pub"][2] == "0644"
    assert base64.b64decode(lines[f"{HOST_KEY}.pub"][6]) == b"ssh-ed25519 BBBB v1\n"


def test_the_credential_reaches_qemu_as_an_smbios_type_11_file() -> None:
    data = smbios_structure("tmpfiles.extra", "a,b\nc\n")
    kind, length, handle, count = struct.unpack("<BBHB", data[:5])
    assert (kind, length, handle, count) == (11, 5, 0, 1)
    assert data.endswith(b"\0\0") and b"\0" not in data[5:-2]
    string = data[5:-2].decode()
    assert string == "io.systemd.credential.binary:tmpfiles.extra=" + base64.b64encode(b"a,b\nc\n").decode()


def test_the_qemu_command_line_holds_no_credential(tmp_path: Path) -> None:
    from labctl.providers.qemu import vmimage
    from labctl.providers.qemu.accel import TCG_ARGS, Accel
    from labctl.providers.qemu.provider import CREDENTIAL_FILE, VmConfig, qemu_argv

    cfg = VmConfig("tk-unit", "v1", 1, 512, "", "/img", [NIC], credential="SECRET-HOST-KEY")
    argv = qemu_argv(cfg, Accel("tcg", "", TCG_ARGS), vmimage.VmImage(Path("/img"), "t"))
    assert argv[argv.index("-smbios") + 1] == f"file={CREDENTIAL_FILE}"
    joined = " ".join(argv)
    assert "SECRET" not in joined and base64.b64encode(b"SECRET-HOST-KEY").decode() not in joined


FAKE_PODMAN = """#!/bin/sh
echo "podman $*" >> "$FAKE_LOG"
case "$FAKE_KEYS" in
  huge) yes 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOusNs0DSq8t900ZUSLXEi/PkfhEkfQwpFw4jCIlbCm/' ;;
  *) printf '%s\\n' "$FAKE_KEYS" ;;
esac
"""


@pytest.fixture
def fake_podman(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "podman").write_text(FAKE_PODMAN)
    (bindir / "podman").chmod(0o755)
    log = tmp_path / "podman.log"
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    return log


def test_podman_reads_the_key_from_the_container_and_bounds_what_it_reads(
    fake_podman: Path, monkeypatch: pytest.MonkeyPatch, keys: list[str]
) -> None:
    from labctl.providers.podman.provider import PodmanProvider

    monkeypatch.setenv("FAKE_KEYS", keys[0] + " root@h1")
    text = PodmanProvider().host_keys("tk-unit", "h1")
    assert hostkeys.parse_keys(text, "t") == [keys[0]]
    assert "podman exec labctl-tk-unit_h1 sh -c cat /etc/ssh/ssh_host_*_key.pub" in fake_podman.read_text()
    monkeypatch.setenv("FAKE_KEYS", "huge")  # endless output from the container: read no more than the bound
    text = PodmanProvider().host_keys("tk-unit", "h1")
    assert len(text) == 16 * 1024 + 1
    with pytest.raises(LabError, match="more than 16384"):
        hostkeys.parse_keys(text, "t")


def test_each_provider_says_how_its_hosts_keys_are_learnt(
    tmp_path: Path, keys: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A provider that reads its hosts' keys (podman) is asked and never keyscanned; a static host (its
    provider reads none) is trusted on first use with ssh-keyscan and its provider is never asked."""
    from labctl.lifecycle.model import Lab
    from labctl.providers.podman.provider import PodmanProvider
    from labctl.providers.static import StaticProvider
    from labctl.topology import parse

    monkeypatch.setenv("LABCTL_STATE_DIR", str(tmp_path / "state"))
    (tmp_path / "id").write_text("not a real key\n")
    topo = parse(
        {
            "schema": 1,
            "name": "tk-learn",
            "networks": [{"name": "n", "subnet": "198.18.209.0/24"}],
            "hosts": [
                {"name": "c1", "networks": ["n"]},
                {
                    "name": "s1",
                    "provider": "static",
                    "address": "192.0.2.7",
                    "user": "root",
                    "key": str(tmp_path / "id"),
                },
            ],
        },
        tmp_path / "lab.yml",
    )
    scanned: list[str] = []
    monkeypatch.setattr(hostkeys, "keyscan", lambda address, **_kw: scanned.append(address) or [keys[1]])
    monkeypatch.setattr(PodmanProvider, "host_keys", lambda _self, _lab, _host: keys[0] + " root@c1\n")
    monkeypatch.setattr(StaticProvider, "host_keys", lambda *_a: pytest.fail("a static host's provider was asked"))
    lab = Lab(topo)
    lab.learn_host_key("c1")
    lab.learn_host_key("s1")
    assert scanned == ["192.0.2.7"]
    assert hostkeys.known(lab.state.known_hosts, lab.address("c1")) == [keys[0]]
    assert hostkeys.known(lab.state.known_hosts, "192.0.2.7") == [keys[1]]
