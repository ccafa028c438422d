"""Everyday commands against one small real lab: exec (stdin, streaming, exit codes, TTY, many hosts),
ssh-config with the system ssh/scp, cp both ways, logs, status's exit code."""

from __future__ import annotations

import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from .conftest import LABCTL, lab_containers, run

pytestmark = pytest.mark.integration

NAME = "it-every"
TOPOLOGY = f"""---
schema: 1
name: {NAME}
networks:
  - {{name: lab, subnet: 198.18.140.0/24}}
groups:
  app: {{}}
hosts:
  - {{name: a1, groups: [app], networks: [lab]}}
  - {{name: a2, groups: [app], networks: [lab]}}
  - {{name: solo, groups: [], networks: [lab]}}
"""


class Lab:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path, self.env = path, env

    def run(self, *args: str, check: bool = True, **kw: object) -> subprocess.CompletedProcess[str]:
        return run(args[0], "-f", str(self.path), *args[1:], env=self.env, check=check)

    def popen(self, *args: str, **kw: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [LABCTL, args[0], "-f", str(self.path), *args[1:]],
            env=self.env,
            text=True,
            **kw,  # type: ignore[call-overload]
        )


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("every")
    path = tmp / f"{NAME}.yml"
    path.write_text(TOPOLOGY)
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp / "state"))
    try:
        run("up", "-f", str(path), "--no-provision", env=env)
        yield Lab(path, env)
    finally:
        run("down", "--name", NAME, env=env, check=False)
    assert lab_containers(NAME) == []


def test_exec_forwards_stdin_and_copies_a_file(lab: Lab, tmp_path: Path) -> None:
    data = os.urandom(300_000)
    src = tmp_path / "blob"
    src.write_bytes(data)
    with src.open("rb") as stdin:
        copied = subprocess.run(
            [LABCTL, "exec", "-f", str(lab.path), "a1", "--", "sh", "-c", "cat > /tmp/blob"],
            stdin=stdin,
            env=lab.env,
            capture_output=True,
            check=False,
            timeout=120,
        )
    assert copied.returncode == 0, copied.stderr
    back = subprocess.run(
        [LABCTL, "exec", "-f", str(lab.path), "a1", "--", "cat", "/tmp/blob"],
        stdin=subprocess.DEVNULL,
        env=lab.env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert back.stdout == data
    echoed = subprocess.run(
        [LABCTL, "exec", "-f", str(lab.path), "a2", "--", "cat"],
        input="hi\n",
        env=lab.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert echoed.stdout == "hi\n"


def test_exec_streams_output_before_the_command_ends(lab: Lab) -> None:
    # the remote command waits for a line on stdin: "ready" can only arrive if output is streamed
    proc = lab.popen(
        "exec",
        "a1",
        "--",
        "sh",
        "-c",
        "echo ready; read x; echo got $x",
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stdin is not None
    guard = threading.Timer(120, proc.kill)  # a guard against a hang, not a timing
    guard.start()
    try:
        assert proc.stdout.readline() == "ready\n"
        proc.stdin.write("go\n")
        proc.stdin.close()
        assert proc.stdout.read() == "got go\n"
        assert proc.wait() == 0
    finally:
        guard.cancel()
        proc.kill()


def test_exec_keeps_exit_code_streams_and_tty_choice(lab: Lab) -> None:
    res = lab.run("exec", "a2", "--", "sh", "-c", "echo out; echo err >&2; exit 7", check=False)
    assert (res.returncode, res.stdout, res.stderr) == (7, "out\n", "err\n")
    assert lab.run("exec", "a2", "--", "tty", check=False).stdout.strip() == "not a tty"
    assert lab.run("exec", "-t", "a2", "--", "tty").stdout.startswith("/dev/pts/")
    assert lab.run("exec", "a2", "--", "echo", "a  b", "$HOME").stdout == "a  b $HOME\n"


def test_exec_across_hosts_prefixes_lines_and_fails_if_one_fails(lab: Lab) -> None:
    every = lab.run("exec", "--all", "--", "hostname")
    assert sorted(every.stdout.splitlines()) == ["a1   | a1", "a2   | a2", "solo | solo"]
    group = lab.run("exec", "--group", "app", "--", "sh", "-c", 'hostname; test "$(hostname)" = a1', check=False)
    assert group.returncode == 1
    assert sorted(group.stdout.splitlines()) == ["a1 | a1", "a2 | a2"]
    data = json.loads(
        lab.run("exec", "--group", "app", "--json", "--", "sh", "-c", "hostname >&2; exit 3", check=False).stdout
    )
    assert [(h["host"], h["exit_code"], h["stdout"], h["stderr"]) for h in data["hosts"]] == [
        ("a1", 3, "", "a1\n"),
        ("a2", 3, "", "a2\n"),
    ]
    unknown = lab.run("exec", "--group", "nope", "--", "true", check=False)
    assert unknown.returncode == 2 and "no host of lab 'it-every' is in group 'nope'" in unknown.stderr


def test_ssh_config_works_with_the_system_ssh_and_scp(lab: Lab, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    config.write_text(lab.run("ssh-config").stdout)
    assert "Host solo" in config.read_text()
    ssh = subprocess.run(["ssh", "-F", str(config), "solo", "hostname"], capture_output=True, text=True, check=False)
    assert ssh.stdout == "solo\n", ssh.stderr
    local = tmp_path / "note.txt"
    local.write_text("from the controller\n")
    scp = subprocess.run(["scp", "-F", str(config), str(local), "a1:/tmp/note.txt"], capture_output=True, check=False)
    assert scp.returncode == 0, scp.stderr
    path = lab.run("ssh-config", "--path").stdout.strip()
    assert subprocess.run(["ssh", "-F", path, "a1", "cat", "/tmp/note.txt"], capture_output=True, text=True).stdout == (
        "from the controller\n"
    )


def test_cp_to_and_from_a_host(lab: Lab, tmp_path: Path) -> None:
    src = tmp_path / "there.txt"
    src.write_text("round trip\n")
    lab.run("cp", str(src), "a2:/tmp/there.txt")
    lab.run("cp", "a2:/tmp/there.txt", str(tmp_path / "back.txt"))
    assert (tmp_path / "back.txt").read_text() == "round trip\n"
    bad = lab.run("cp", str(src), "nohost:/tmp/x", check=False)
    assert bad.returncode == 2 and "cp: no host 'nohost'" in bad.stderr


def test_logs_of_a_host_and_of_one_unit(lab: Lab) -> None:
    lab.run("exec", "solo", "--", "logger", "-t", "everyday", "marker-4711")
    assert "marker-4711" in run("logs", "--file", str(lab.path), "solo", env=lab.env).stdout
    ssh_unit = run("logs", "--file", str(lab.path), "solo", "ssh", "-n", "50", env=lab.env).stdout
    assert "sshd" in ssh_unit and "marker-4711" not in ssh_unit
    # -f follows: an entry logged once it printed the last one shows up while it runs
    proc = subprocess.Popen(
        [LABCTL, "logs", "--file", str(lab.path), "solo", "-f", "-n", "1"],
        env=lab.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    guard = threading.Timer(120, proc.kill)  # a guard against a hang, not a timing
    guard.start()
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline()  # journalctl runs
        lab.run("exec", "solo", "--", "logger", "-t", "everyday", "followed-0815")
        assert any("followed-0815" in line for line in proc.stdout)
    finally:
        guard.cancel()
        proc.kill()
        proc.wait()


def test_status_exits_1_when_a_host_is_stopped(lab: Lab) -> None:
    assert lab.run("status").returncode == 0
    subprocess.run(["podman", "stop", "-t", "1", f"labctl-{NAME}-solo"], check=True, capture_output=True)
    res = lab.run("status", "--json", check=False)
    assert res.returncode == 1
    assert {h["name"]: h["state"] for h in json.loads(res.stdout)["hosts"]}["solo"] != "running"
    lab.run("up", "--no-provision")
    assert lab.run("status").returncode == 0
