"""Pure parts of everyday commands: ssh config, ssh argv, journalctl argv, smoke's logs pointers, status."""

from __future__ import annotations

import io
from pathlib import Path

from labctl.access import hostexec, journal, sshconfig
from labctl.checks.base import CheckResult
from labctl.checks.runner import logs_hints
from labctl.lifecycle import status


class _Stream(io.StringIO):
    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_ssh_config_has_one_block_per_host_with_the_lab_key_and_known_hosts() -> None:
    text = sshconfig.render(
        [
            sshconfig.SshHost("db", "198.18.2.11", "root", "/s/lab/id_ed25519"),
            sshconfig.SshHost("gw", "10.0.0.1", "u", "/k y"),
        ],
        "/s/lab/known_hosts",
    )
    blocks = text.strip().split("\n\n")
    assert blocks[0].splitlines() == [
        "Host db",
        "  HostName 198.18.2.11",
        "  User root",
        "  Port 22",
        "  IdentityFile /s/lab/id_ed25519",
        "  IdentitiesOnly yes",
        "  UserKnownHostsFile /s/lab/known_hosts",
        "  StrictHostKeyChecking yes",
        "  GlobalKnownHostsFile /dev/null",
        "  LogLevel ERROR",
    ]
    assert '  IdentityFile "/k y"' in blocks[1]


def test_ssh_argv_quotes_the_command_and_picks_the_tty_flag() -> None:
    cfg = Path("/s/ssh_config")
    assert hostexec.ssh_argv(cfg, "db", ["sh", "-c", "echo $HOME"], tty=False) == [
        "ssh",
        "-F",
        "/s/ssh_config",
        "-T",
        "db",
        "--",
        "sh -c 'echo $HOME'",
    ]
    assert hostexec.ssh_argv(cfg, "db", ["true"], tty=True)[3] == "-tt"
    assert hostexec.ssh_argv(cfg, "db", [], tty=None) == ["ssh", "-F", "/s/ssh_config", "db"]


def test_tty_only_when_asked_or_both_ends_are_terminals() -> None:
    assert hostexec.want_tty(False, _Stream(True), _Stream(True))
    assert not hostexec.want_tty(False, _Stream(False), _Stream(True))
    assert not hostexec.want_tty(False, _Stream(True), _Stream(False))
    assert hostexec.want_tty(True, _Stream(False), _Stream(False))


def test_journal_command_expands_a_bare_unit_to_its_template_instances() -> None:
    assert journal.unit_patterns("mongrel2") == ["mongrel2", "mongrel2@*"]
    assert journal.unit_patterns("memcached@11211") == ["memcached@11211"]
    assert journal.unit_patterns("labctl-zmq-*") == ["labctl-zmq-*"]
    assert journal.command() == ["journalctl", "--no-pager", "-o", "short-iso"]
    assert journal.command("ssh", follow=True)[-7:] == ["-u", "ssh", "-u", "ssh@*", "-f", "-n", "20"]
    assert journal.command(lines=5)[-2:] == ["-n", "5"]


def test_a_failed_check_points_at_the_logs_of_the_host_it_names() -> None:
    res = CheckResult("mongrel2", "serves", ["web", "web2"], "failed", 1.0, "web2: GET / answered 502")
    assert logs_hints("default", res, "mongrel2") == ["labctl logs web2 mongrel2"]
    res.message = "no answer"
    assert logs_hints("ev", res, None) == ["labctl logs --name ev web", "labctl logs --name ev web2"]
    assert journal.logs_hint("db", "labctl-zmq-*") == "labctl logs db 'labctl-zmq-*'"


def test_status_is_up_only_when_every_host_runs() -> None:
    assert status.all_up([{"state": "running"}, {"state": "static"}])
    assert not status.all_up([{"state": "running"}, {"state": "stopped"}])
    assert not status.all_up([{"state": "missing"}])


def test_graph_of_the_default_lab_from_its_topology() -> None:
    from labctl import paths
    from labctl.topology import load
    from labctl.ui import graph

    model = graph.topology_model(load(paths.DEFAULT_LAB, paths.known_groups()))
    mermaid = graph.to_mermaid(model)
    assert 'net_inside{{"inside<br/>198.18.2.0/24"}}' in mermaid
    assert 'host_db["db<br/>mongodb, memcached<br/>inside 198.18.2.11"]' in mermaid
    assert 'host_gw ==>|"web: tcp/80 → web:6767"| host_web' in mermaid  # the role's default forward
    assert 'slice_sdn_slice2(["slice2: h3, h4"])' in mermaid
    dot = graph.to_dot(model)
    assert dot.startswith('digraph "lab default" {') and dot.rstrip().endswith("}")
    assert 'host_ext -> net_outside [label="198.18.1.11"];' in dot
    page = graph.to_html(model, "<svg></svg>")
    assert "<td>swig, zeromq, memcached_clients, mongodb_clients</td>" in page and "<svg></svg>" in page
