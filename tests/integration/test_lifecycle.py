"""A real lab: up, exec, status, up again (nothing recreated), down (nothing left)."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from .conftest import LABCTL, lab_containers, lab_networks, run, write_lab

pytestmark = pytest.mark.integration


def test_up_exec_status_reup_down(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write_lab(tmp_path, "it-life", "198.18.40.0/24")
    state_dir = Path(labenv["LABCTL_STATE_DIR"]) / "it-life"
    # the user's inventory/ vars reach the hosts through the generated inventory
    user = tmp_path / "inventory"
    (user / "group_vars").mkdir(parents=True)
    (user / "host_vars").mkdir()
    (user / "group_vars" / "all.yml").write_text("it_note: from group_vars/all\n")
    (user / "host_vars" / "h2.yml").write_text("it_note: from host_vars/h2\n")
    labenv["LABCTL_INVENTORY_DIR"] = str(user)
    try:
        run("up", "-f", str(lab), env=labenv)
        ids = sorted(c["Id"] for c in lab_containers("it-life"))
        assert len(ids) == 2

        assert run("exec", "-f", str(lab), "h1", "--", "hostname", env=labenv).stdout.strip() == "h1"
        assert run("ssh", "-f", str(lab), "h2", "hostname", env=labenv).stdout.strip() == "h2"
        failing = run("exec", "-f", str(lab), "h2", "--", "sh", "-c", "exit 7", env=labenv, check=False)
        assert failing.returncode == 7
        unknown = run("exec", "-f", str(lab), "h9", "--", "true", env=labenv, check=False)
        assert (
            unknown.returncode == 2
            and "exec: no host 'h9' in lab 'it-life'. Fix: use one of: h1, h2." in unknown.stderr
        )
        # names resolve between hosts, root logs in with the lab key only
        assert run("exec", "-f", str(lab), "h1", "--", "getent", "hosts", "h2", env=labenv).stdout.split()[0] == (
            "198.18.40.11"
        )
        sshd = run("exec", "-f", str(lab), "h1", "--", "sshd", "-T", env=labenv).stdout
        assert "passwordauthentication no" in sshd
        assert "permitrootlogin without-password" in sshd or "permitrootlogin prohibit-password" in sshd

        status = json.loads(run("status", "-f", str(lab), "--json", env=labenv).stdout)
        assert status["lab"] == "it-life"
        assert [(h["name"], h["state"], h["addresses"]) for h in status["hosts"]] == [
            ("h1", "running", {"lab": "198.18.40.10"}),
            ("h2", "running", {"lab": "198.18.40.11"}),
        ]
        assert (state_dir / "id_ed25519").stat().st_mode & 0o777 == 0o600
        inv = run("inventory", "-f", str(lab), env=labenv).stdout.strip()
        assert Path(inv).is_file()
        # the inventory works with plain ansible, without labctl's ansible.cfg
        ping = subprocess.run(
            [str(Path(LABCTL).parent / "ansible"), "all", "-m", "ping", "-i", inv],
            capture_output=True,
            text=True,
            env={k: v for k, v in labenv.items() if k != "ANSIBLE_CONFIG"},
            cwd=tmp_path,
            check=False,
        )
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert ping.stdout.count("SUCCESS") == 2
        note = subprocess.run(
            [str(Path(LABCTL).parent / "ansible"), "all", "-m", "debug", "-a", "var=it_note", "-i", inv, "-o"],
            capture_output=True,
            text=True,
            env={k: v for k, v in labenv.items() if k not in ("ANSIBLE_CONFIG", "LABCTL_INVENTORY_DIR")},
            cwd=tmp_path,
            check=False,
        )
        assert note.returncode == 0, note.stdout + note.stderr
        notes = {
            line.split(" | ")[0]: json.loads(line.split(" => ", 1)[1])["it_note"] for line in note.stdout.splitlines()
        }
        assert notes == {"h1": "from group_vars/all", "h2": "from host_vars/h2"}

        again = run("up", "-f", str(lab), env=labenv)
        assert "nothing recreated" in again.stderr
        said = " ".join(again.stderr.split())  # undo rich's wrapping
        assert "nothing changed since the last converge of 2 host(s); ansible-playbook not run" in said
        forced = run("up", "-f", str(lab), "--force", "--no-smoke", env=labenv)  # runs it all: 0 changes
        assert "0 changes" in forced.stderr
        assert sorted(c["Id"] for c in lab_containers("it-life")) == ids
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert lab_containers("it-life") == []
    assert lab_networks("it-life") == []
    assert not state_dir.exists()


def test_interrupted_up_is_removed_by_down(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write_lab(tmp_path, "it-int", "198.18.41.0/24", hosts=3)
    proc = subprocess.Popen([LABCTL, "up", "-f", str(lab)], env=labenv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # interrupt once the converge has begun (its log exists): up is then surely in the middle of its
        # work, however fast creating the hosts was (asking podman instead raced with a quick up)
        logs = Path(labenv["LABCTL_STATE_DIR"]) / "it-int" / "logs"
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not list(logs.glob("converge-*.log")) and proc.poll() is None:
            time.sleep(0.05)
        assert lab_containers("it-int"), "up created no container within 120 s"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 130, err
        assert b"labctl down --name it-int" in err
    finally:
        if proc.poll() is None:
            proc.kill()
    run("down", "--name", "it-int", env=labenv)
    assert lab_containers("it-int") == []
    assert lab_networks("it-int") == []


def test_down_of_unknown_lab_says_so(labenv: dict[str, str]) -> None:
    res = run("down", "--name", "no-such-lab", env=labenv, check=False)
    assert res.returncode == 2
    assert "no lab named 'no-such-lab'" in res.stderr
    assert "Traceback" not in res.stderr


def test_bad_topology_is_one_clear_error(tmp_path: Path, labenv: dict[str, str]) -> None:
    bad = tmp_path / "bad.yml"
    bad.write_text("schema: 1\nname: bad\nnetworks: [{name: n, subnet: 198.18.42.0/24}]\nhosts: [{name: a_b}]\n")
    res = run("up", "-f", str(bad), env=labenv, check=False)
    assert res.returncode == 2
    assert "field 'hosts[0].name'" in res.stderr and "Fix:" in res.stderr
    assert "Traceback" not in res.stderr
    assert lab_containers("bad") == []


def test_commands_on_a_lab_that_is_not_up(labenv: dict[str, str]) -> None:
    res = run("status", "--name", "ghost", env=labenv, check=False)
    assert res.returncode == 2 and "no lab named 'ghost' is up" in res.stderr


def test_static_provider_reaches_existing_hosts_and_never_removes_them(tmp_path: Path, labenv: dict[str, str]) -> None:
    base = write_lab(tmp_path, "it-base", "198.18.43.0/24", hosts=1)
    key = Path(labenv["LABCTL_STATE_DIR"]) / "it-base" / "id_ed25519"
    static = tmp_path / "static.yml"
    static.write_text(
        "schema: 1\nname: it-static\nprovider: static\n"
        f"hosts:\n  - {{name: vm, address: 198.18.43.10, user: root, key: {key}}}\n"
    )
    try:
        run("up", "-f", str(base), "--no-provision", env=labenv)
        run("up", "-f", str(static), "--no-smoke", env=labenv)
        assert run("exec", "--name", "it-static", "vm", "--", "hostname", env=labenv).stdout.strip() == "h1"
        status = json.loads(run("status", "--name", "it-static", "--json", env=labenv).stdout)
        assert status["hosts"] == [
            {"name": "vm", "groups": [], "addresses": {"ssh": "198.18.43.10"}, "state": "static", "provider": "static"}
        ]
        run("down", "--name", "it-static", env=labenv)
        assert len(lab_containers("it-base")) == 1
    finally:
        run("down", "--name", "it-static", env=labenv, check=False)
        run("down", "-f", str(base), env=labenv, check=False)
    assert lab_containers("it-base") == []


def test_a_host_that_fails_to_start_is_named(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = tmp_path / "broken.yml"
    lab.write_text(
        "schema: 1\nname: it-broken\nimage: localhost/labctl/no-such-image:none\n"
        "networks: [{name: lab, subnet: 198.18.44.0/24}]\nhosts: [{name: lonely, networks: [lab]}]\n"
    )
    try:
        res = run("up", "-f", str(lab), env=labenv, check=False)
        assert res.returncode == 2
        assert "lonely:" in res.stderr and "failed to create host 'lonely'" in res.stderr
        assert "Traceback" not in res.stderr
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert lab_networks("it-broken") == []


def _lab_nat_rules(lab: str) -> list[str]:
    out = subprocess.run(["iptables", "-t", "nat", "-S", "POSTROUTING"], capture_output=True, text=True, check=True)
    return [line for line in out.stdout.splitlines() if f"labctl.lab={lab}" in line]


def test_routed_networks_keep_lab_addresses_and_leave_nothing(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = tmp_path / "routed.yml"
    lab.write_text(
        "schema: 1\nname: it-routed\nnetworks:\n  - {name: a, subnet: 198.18.45.0/24}\n"
        "  - {name: b, subnet: 198.18.46.0/24, routes: [{to: a, via: gw}]}\n"
        "hosts:\n  - {name: gw, networks: [a, b]}\n  - {name: inner, networks: [b]}\n  - {name: outer, networks: [a]}\n"
    )
    try:
        run("up", "-f", str(lab), "--no-smoke", env=labenv)
        rules = _lab_nat_rules("it-routed")
        assert len(rules) == 2 and all("-j ACCEPT" in r for r in rules)
        # inner reaches outer through gw (forwarding is on in a privileged container by default? make sure)
        run("exec", "-f", str(lab), "gw", "--", "sysctl", "-qw", "net.ipv4.ip_forward=1", env=labenv)
        route = run("exec", "-f", str(lab), "inner", "--", "ip", "-4", "route", "get", "198.18.45.11", env=labenv)
        assert "via 198.18.46.10" in route.stdout
        # the packet arrives from inner's own address, not rewritten by the host
        run(
            "exec",
            "-f",
            str(lab),
            "outer",
            "--",
            "sh",
            "-c",
            "(timeout 15 nc -n -l -p 7000 -v >/tmp/nc.out 2>&1 &)",
            env=labenv,
        )
        time.sleep(0.5)
        run("exec", "-f", str(lab), "inner", "--", "sh", "-c", "echo hi | nc -w 3 198.18.45.11 7000", env=labenv)
        seen = run("exec", "-f", str(lab), "outer", "--", "cat", "/tmp/nc.out", env=labenv).stdout
        assert "198.18.46.11" in seen, seen
        smoke = json.loads(run("smoke", "-f", str(lab), "--only", "common", "--json", env=labenv).stdout)
        assert {c["check"]: c["status"] for c in smoke["checks"]}["routes via gateways"] == "passed"
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
    assert _lab_nat_rules("it-routed") == []
    assert lab_networks("it-routed") == []


def test_a_lab_overlapping_a_running_lab_is_refused(tmp_path: Path, labenv: dict[str, str]) -> None:
    first = write_lab(tmp_path, "it-first", "198.18.47.0/24", hosts=1)
    second = write_lab(tmp_path, "it-second", "198.18.47.0/25", hosts=1)
    try:
        run("up", "-f", str(first), "--no-provision", env=labenv)
        res = run("up", "-f", str(second), "--no-provision", env=labenv, check=False)
        assert res.returncode == 2
        assert "overlaps network 'lab' (198.18.47.0/24) of the running lab 'it-first'" in res.stderr
        assert lab_containers("it-second") == []
    finally:
        run("down", "-f", str(first), env=labenv, check=False)
        run("down", "-f", str(second), env=labenv, check=False)


def test_up_reconciles_added_and_removed_hosts(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write_lab(tmp_path, "it-grow", "198.18.48.0/24", hosts=1)
    try:
        run("up", "-f", str(lab), "--no-provision", env=labenv)
        first = [c["Id"] for c in lab_containers("it-grow")]
        write_lab(tmp_path, "it-grow", "198.18.48.0/24", hosts=2)
        grown = run("up", "-f", str(lab), "--no-provision", env=labenv)
        assert "creating 1 host(s): h2" in grown.stderr
        assert first[0] in [c["Id"] for c in lab_containers("it-grow")]
        # the host made first resolves the one added later (network DNS alias)
        resolved = run("exec", "-f", str(lab), "h1", "--", "getent", "hosts", "h2", env=labenv).stdout.split()
        assert resolved[0] == "198.18.48.11"
        write_lab(tmp_path, "it-grow", "198.18.48.0/24", hosts=1)
        shrunk = run("up", "-f", str(lab), "--no-provision", env=labenv)
        assert "no longer in the topology: h2" in shrunk.stderr
        assert [c["Id"] for c in lab_containers("it-grow")] == first
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)


def test_a_failed_converge_is_summarised_per_host_and_task(tmp_path: Path, labenv: dict[str, str]) -> None:
    lab = write_lab(tmp_path, "it-fail", "198.18.49.0/24", hosts=1)
    lab.write_text(lab.read_text().replace("hosts:", 'vars: {common_ssh_permit_root_login: "yes"}\nhosts:'))
    try:
        res = run("up", "-f", str(lab), env=labenv, check=False)
        assert res.returncode == 1
        assert "converge failed" in res.stderr
        assert "h1" in res.stderr and "common_ssh_permit_root_login" in res.stderr
        assert "Traceback" not in res.stderr
        status = json.loads(run("status", "-f", str(lab), "--json", env=labenv).stdout)
        assert status["hosts"][0]["state"] == "running"
    finally:
        run("down", "-f", str(lab), env=labenv, check=False)
