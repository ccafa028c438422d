"""exec and ssh: labctl's options anywhere before '--', the host's command after it.

Before, `labctl exec HOST -f LAB.yml -- CMD` sent "-f LAB.yml -- CMD" to HOST of the default lab."""

from __future__ import annotations

import pytest

from labctl.cli import parse_args


@pytest.mark.parametrize(
    "argv",
    [
        ["exec", "-f", "lab.yml", "h1", "--", "ls", "-la"],
        ["exec", "h1", "-f", "lab.yml", "--", "ls", "-la"],
        ["exec", "h1", "--file", "lab.yml", "--", "ls", "-la"],
        ["exec", "h1", "--timeout", "5", "-f", "lab.yml", "--", "ls", "-la"],
    ],
)
def test_exec_options_before_or_after_the_host(argv: list[str]) -> None:
    args = parse_args(argv)
    assert (args.verb, args.file, args.name, args.host, args.command) == ("exec", "lab.yml", None, "h1", ["ls", "-la"])


def test_everything_after_the_first_double_dash_is_the_command() -> None:
    args = parse_args(["exec", "h1", "--name", "lab", "--", "sh", "-c", "x", "--", "-f", "y"])
    assert (args.name, args.command) == ("lab", ["sh", "-c", "x", "--", "-f", "y"])
    assert args.timeout is None  # like ssh: no time limit unless --timeout


def test_ssh_takes_an_optional_command() -> None:
    assert parse_args(["ssh", "h2", "-f", "lab.yml"]).command == []
    args = parse_args(["ssh", "-f", "lab.yml", "h2", "hostname"])
    assert (args.file, args.host, args.command) == ("lab.yml", "h2", ["hostname"])
    assert parse_args(["ssh", "h2", "--name", "x", "--", "uname", "-a"]).command == ["uname", "-a"]


def test_other_verbs_parse_as_before() -> None:
    args = parse_args(["status", "--name", "x", "--host", "gw", "--json"])
    assert (args.verb, args.name, args.host, args.json) == ("status", "x", "gw", True)
    assert parse_args(["restart", "-f", "lab.yml", "a", "b"]).hosts == ["a", "b"]


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["exec", "h1", "ls", "-la"], "unrecognized arguments: -la. Fix: put the host's command after '--'"),
        (["exec", "h1", "ls", "--", "-la"], "'ls' comes before '--'"),
        (["exec", "h1", "-f"], "argument -f/--file: expected one argument"),
    ],
)
def test_a_command_that_could_be_read_two_ways_is_refused(
    argv: list[str], expect: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        parse_args(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and expect in err, err
