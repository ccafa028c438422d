"""Everyday commands against one small real lab (hosts created, not provisioned): exec (stdin, streaming,
exit codes, TTY, many hosts), ssh-config with the system ssh/scp, cp both ways, logs, graph in a real
headless browser, status's exit code."""

from __future__ import annotations

import json
import os
import shlex
import shutil
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
  - name: solo
    groups: [nat_gateway]
    networks: [lab]
    vars:
      nat_gateway_forwards: [{{name: app, protocol: tcp, port: 8080, to_host: a1, to_port: 80}}]
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
    # a message from the ssh session, and one from a unit of its own (a transient service)
    lab.run("exec", "solo", "--", "logger", "-t", "everyday", "marker-4711")
    lab.run("exec", "solo", "--", "systemd-run", "--wait", "--quiet", "--unit=everyday-probe", "echo", "probe-0042")
    lab.run("exec", "solo", "--", "journalctl", "--sync")  # journald has written what it received
    host = run("logs", "--file", str(lab.path), "solo", env=lab.env).stdout
    assert "marker-4711" in host and "probe-0042" in host
    unit = run("logs", "--file", str(lab.path), "solo", "everyday-probe", env=lab.env).stdout
    assert "probe-0042" in unit and "marker-4711" not in unit
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


CHROMIUM = shutil.which("chromium")


def chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    return subprocess.run([CHROMIUM, *flags, *args], capture_output=True, text=True, check=False, timeout=300)


def test_graph_shows_live_states_and_forwards(lab: Lab, tmp_path: Path) -> None:
    mermaid = lab.run("graph").stdout
    assert mermaid.startswith("flowchart LR")
    # the gateway has no iptables (not provisioned): the topology's forward is drawn
    assert 'host_solo ==>|"app: tcp/8080 → a1:80"| host_a1' in mermaid
    # a gateway's rules in force win over the topology: read over SSH from `iptables -t nat -S`
    rule = (
        "-A PREROUTING -p tcp -m tcp --dport 9090 -m comment "
        '--comment "labctl nat_gateway forward live" -j DNAT --to-destination 198.18.140.11:90'
    )
    fake = f"#!/bin/sh\ncat <<'EOF'\n-P PREROUTING ACCEPT\n{rule}\nEOF\n"
    install = "cat > /usr/local/sbin/iptables && chmod +x /usr/local/sbin/iptables"
    put = subprocess.run(
        [LABCTL, "exec", "-f", str(lab.path), "solo", "--", "sh", "-c", install],
        input=fake,
        env=lab.env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert put.returncode == 0, put.stderr
    dot = lab.run("graph", "--format", "dot").stdout
    assert (
        'host_solo -> host_a2 [style=bold, color="#b45309", dir=forward, label="live: tcp/9090 → 198.18.140.11:90"]'
        in dot
    )
    lab.run("exec", "solo", "--", "rm", "/usr/local/sbin/iptables")


def test_graph_html_in_a_headless_browser(lab: Lab, tmp_path: Path) -> None:
    if CHROMIUM is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed: .ci/run installs it")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = tmp_path / "lab.html"
    lab.run("graph", "--format", "html", "-o", str(page))
    shot = tmp_path / "lab.png"
    taken = chromium(f"--screenshot={shot}", "--window-size=1200,1000", page.as_uri())
    assert shot.is_file() and shot.read_bytes().startswith(b"\x89PNG"), taken.stderr
    dom = chromium("--dump-dom", page.as_uri()).stdout
    for host in ("a1", "a2", "solo"):
        assert f"<td>{host}</td>" in dom  # the status table
        assert f">{host}</text>" in dom  # the picture (Graphviz SVG, inline)
    assert dom.count(">running</td>") == 3


def complete(lab: Lab, words: list[str]) -> list[str]:
    """What bash offers for the last word, through argcomplete's own bash hook (as setup.sh installs)."""
    hook = subprocess.run(
        [str(Path(LABCTL).parent / "register-python-argcomplete"), "labctl"], capture_output=True, text=True, check=True
    ).stdout
    line = " ".join(words)
    script = (
        f"{hook}\nCOMP_LINE={shlex.quote(line)}; COMP_POINT=${{#COMP_LINE}}; COMP_WORDS=({shlex.join(words)}); "
        f"COMP_CWORD={len(words) - 1}; COMP_TYPE=9; _python_argcomplete labctl {shlex.quote(words[-1])} "
        f'{shlex.quote(words[-2])}; printf "%s\\n" "${{COMPREPLY[@]}}"'
    )
    env = dict(lab.env, PATH=f"{Path(LABCTL).parent}:{os.environ['PATH']}")
    empty = lab.path.parent / "empty"  # no local file names to offer besides the lab's words
    empty.mkdir(exist_ok=True)
    out = subprocess.run(
        ["bash", "-c", script], env=env, cwd=empty, capture_output=True, text=True, check=True, timeout=60
    )
    return sorted(w.strip() for w in out.stdout.splitlines() if w.strip())


def test_bash_completion_of_verbs_labs_and_hosts(lab: Lab) -> None:
    assert complete(lab, ["labctl", "ssh-"]) == ["ssh-config"]
    assert complete(lab, ["labctl", "status", "--name", "it-e"]) == [NAME]
    assert complete(lab, ["labctl", "exec", "-f", str(lab.path), "a"]) == ["a1", "a2"]
    assert complete(lab, ["labctl", "logs", "--name", NAME, "s"]) == ["solo"]


def test_status_exits_1_when_a_host_is_stopped(lab: Lab) -> None:
    assert lab.run("status").returncode == 0
    subprocess.run(["podman", "stop", "-t", "1", f"labctl-{NAME}_solo"], check=True, capture_output=True)
    res = lab.run("status", "--json", check=False)
    assert res.returncode == 1
    assert {h["name"]: h["state"] for h in json.loads(res.stdout)["hosts"]}["solo"] != "running"
    lab.run("up", "--no-provision")
    assert lab.run("status").returncode == 0
