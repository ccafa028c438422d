# PYTHON_ARGCOMPLETE_OK
"""labctl's command line: parse, call, render. The work happens in lab.py and friends."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import IO, Any, NoReturn

from labctl.access import hostexec, hostkeys, sshconfig
from labctl.checks.context import context_for
from labctl.checks.runner import run_checks
from labctl.cli_args import lab_args
from labctl.errors import LabError
from labctl.lifecycle import journal, lab
from labctl.netops import capture, hostiface, impair
from labctl.providers import image
from labctl.providers.qemu import vmimage
from labctl.provisioning import inventory
from labctl.reproduce import archive, locked, lockfile
from labctl.ui import completion, graph, views

# Verbs that take a command for a host: labctl's own options may come anywhere before '--'.
COMMAND_VERBS = ("exec", "ssh", "capture")


class _Parser(argparse.ArgumentParser):
    """argparse with labctl's error style: one paragraph naming the problem and the fix, exit 2."""

    def error(self, message: str) -> NoReturn:
        verb = self.prog.removeprefix("labctl").strip()
        fix = f"see '{self.prog} --help'"
        if verb in COMMAND_VERBS and ("unrecognized arguments" in message or "before '--'" in message):
            fix = f"put the host's command after '--': labctl {verb} HOST [-f LAB.yml] -- COMMAND [ARGS...]"
            if verb == "capture":
                fix = "put the capture filter after '--': labctl capture HOST[:NETWORK] [-w FILE] -- tcp port 80"
        where = f"{verb}: " if verb else ""
        self.exit(2, f"labctl: error: {where}{message}. Fix: {fix}.\n")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds above 0, got {text!r}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a whole number of packets above 0, got {text!r}")
    return value


MAX_LINES = 1_000_000


def _lines(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 0 < value <= MAX_LINES:
        raise argparse.ArgumentTypeError(f"expected a whole number of entries from 1 to {MAX_LINES}, got {text!r}")
    return value


def _output_file(path: str, verb: str) -> None:
    """Refuse an output file labctl could not write, before any work (or connection) is done."""
    target = Path(path)
    if target.is_dir():
        raise LabError(f"{verb} {path!r}: is a directory. Fix: name a file in it, e.g. {target / 'out'}.")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise LabError(
            f"{verb} {path!r}: the directory {str(parent)!r} is missing. Fix: create it, or name another file."
        )


def _write_output(path: str, text: str, verb: str) -> None:
    _output_file(path, verb)
    try:
        with open(path, "w") as handle:
            handle.write(text)
    except OSError as exc:
        raise LabError(f"{verb} {path!r}: cannot write it ({exc.strerror}). Fix: name a file you can write.") from None


def _running(args: argparse.Namespace) -> lab.Lab:
    topo, state = lab.resolve(args.file, args.name)
    return lab.require(topo, state)


def _locked_up(target: lab.Lab) -> tuple[dict[str, Any], Path]:
    """What `up --locked` passes to lab.up: the lock's text and the availability check; and the lock's path."""
    lock_file = lockfile.lock_path(target.topo.path)
    held = lockfile.read(lock_file)
    locked.require_hosts(target, held, lock_file)
    if held.topology_sha256 != lockfile.topology_hash(locked.topology_raw(target)):
        views.say(f"note: {target.topo.path} changed since {lock_file.name} was written (its hosts are all locked)")

    def available(running: lab.Lab) -> None:
        views.say("checking that every locked version is offered by the hosts' apt sources (apt-get update)")
        missing, notes = locked.unavailable(running, held)
        for note in notes:
            views.say(f"not checked: {note}")
        if missing:
            raise locked.unavailable_error(lock_file, missing)

    return {"lock_text": lock_file.read_text(), "before_converge": available}, lock_file


def cmd_up(args: argparse.Namespace) -> int:
    if args.trust and not args.from_archive:
        raise LabError(
            "up --trust only goes with --from ARCHIVE (a topology file you name is trusted already). Fix: drop --trust."
        )
    if args.from_archive:
        if args.file or args.locked:
            raise LabError("up --from restores a saved lab as it was: -f and --locked do not go with it. Fix: drop.")
        t0 = time.monotonic()
        target, manifest = archive.restore(Path(args.from_archive), args.name, say=views.say, trust=args.trust)
        views.say(
            f"lab {target.name}: restored {len(target.topo.hosts)} hosts of lab {manifest['lab']!r} in "
            f"{time.monotonic() - t0:.1f} s (no package source used)"
        )
        topo = target.topo
        options: dict[str, Any] = {}
        lock_file: Path | None = None
    else:
        found, state = lab.resolve(args.file, args.name)
        if found is None:
            raise LabError(
                f"lab {state.name!r} has no state to read its topology from. Fix: name its file: labctl up -f LAB.yml."
            )
        topo = found
        target = lab.Lab(topo)
        options, lock_file = _locked_up(target) if args.locked else ({"unlock": True}, None)
    progress = views.ConvergeProgress()
    counts: dict[str, int] = {}
    for host in topo.hosts.values():
        counts[host.provider] = counts.get(host.provider, 0) + 1
    on = ", ".join(f"{n} on {p}" for p, n in counts.items())
    views.say(f"lab {topo.name}: {len(topo.hosts)} hosts, {on} ({topo.path})")
    try:
        with progress.shown():
            report = lab.up(
                target,
                say=views.say,
                converge=not args.no_provision,
                progress=progress,
                force="up --force" if args.force else "",
                **options,
            )
    except KeyboardInterrupt:
        views.err.print(
            f"[red]interrupted[/]: lab {topo.name!r} may be half-created; "
            f"'labctl down --name {topo.name}' removes all of it."
        )
        return 130
    if not report.created and not report.started and not report.removed and not report.repaired:
        views.say("hosts: all present and running, nothing recreated")
    if report.phases:
        views.say("hosts phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in report.phases.items()))
    if report.converge is not None:
        views.converge_summary(report.converge)
        if not report.converge.ok:
            views.timings(report.timings)
            return 1
    rc = 0
    if lock_file is not None and report.converge is not None:
        t0 = time.monotonic()
        rc = _show_check(locked.check(lab.Lab(topo), lock_file), topo.name, json_out=False)
        report.timings["lock check"] = time.monotonic() - t0
    if not args.no_smoke and not args.no_provision:
        t0 = time.monotonic()
        rc = _smoke(lab.Lab(topo), None, json_out=False) or rc
        report.timings["smoke"] = time.monotonic() - t0
    views.timings(report.timings)
    return rc


def _show_check(report: locked.CheckReport, name: str, json_out: bool) -> int:
    if json_out:
        views.print_json(report.to_json(name))
    elif report.ok:
        views.say(f"lab {name} matches its lock {report.lock_file}", wrap=False)
    else:
        views.drift_table(name, report)
    return 0 if report.ok else 1


def cmd_lock(args: argparse.Namespace) -> int:
    running = _running(args)
    if args.check:
        return _show_check(locked.check(running), running.name, args.json)
    path, written = locked.write(running)
    if args.json:
        views.print_json({"lab": running.name, "lock": str(path), **written.to_dict()})
    else:
        counts = ", ".join(
            f"{h} {len(v.debian)} deb/{sum(len(d) for d in v.python.values())} py" for h, v in written.hosts.items()
        )
        views.say(f"wrote {path} ({counts})")
    return 0


def cmd_save(args: argparse.Namespace) -> int:
    running = _running(args)
    report = archive.save(running, Path(args.output), with_secrets=args.with_secrets, say=views.say)
    views.say(f"saved lab {running.name} to {report.path}: {report.size / 2**20:.0f} MiB in {report.seconds:.1f} s")
    if report.with_secrets:
        views.say(f"{report.path} holds the lab's generated secrets: it is 0600, keep it private")
    return 0


def cmd_provision(args: argparse.Namespace) -> int:
    running = _running(args)
    progress = views.ConvergeProgress()
    with progress.shown():
        report = lab.up(running, say=views.say, converge=True, progress=progress, force="provision")
    if report.converge is None:
        return 0
    views.converge_summary(report.converge)
    return 0 if report.converge.ok else 1


def _smoke(running: lab.Lab, only: list[str] | None, json_out: bool) -> int:
    ctx = context_for(running)
    try:
        results = run_checks(ctx, only, on_result=views.smoke_line, user_checks=running.topo.checks)
    finally:
        ctx.runner.close()
    if json_out:
        views.print_json({"lab": running.name, "checks": [asdict(r) for r in results]})
    else:
        views.smoke_table(results)
    return 0 if all(r.ok for r in results) else 1


def cmd_smoke(args: argparse.Namespace) -> int:
    return _smoke(_running(args), args.only, args.json)


def cmd_status(args: argparse.Namespace) -> int:
    if args.all:
        labs = lab.all_lab_rows()
        if args.json:
            views.print_json({"labs": labs})
        else:
            views.labs_table(labs)
        return 0
    topo, state = lab.resolve(args.file, args.name)
    reproduction: dict[str, Any] = {}
    if topo is None or not state.exists():
        rows = lab.status_from_labels(state.name, topo)
        views.say(
            f"lab {state.name!r} has containers but no state (lost): 'labctl up -f LAB.yml' repairs it, "
            f"'labctl down --name {state.name}' removes it"
        )
        if args.host:
            rows = [r for r in rows if r["name"] == args.host]
    else:
        running = lab.Lab(topo, state)
        rows = lab.status(running)
        if args.host:
            running.require_host(args.host, "--host")
            rows = [r for r in rows if r["name"] == args.host]
            rows[0].update(lab.host_details(running, args.host))
            rows[0]["impairments"] = _impairments(running, args.host)
        else:
            reproduction = locked.status(running, lab.all_up(rows))
    if args.json:
        views.print_json({"lab": state.name, "hosts": rows, **({"reproduction": reproduction} if reproduction else {})})
    else:
        views.status_table(state.name, rows)
        if rows and rows[0].get("forwards") and args.host:
            views.forwards_table(args.host, rows[0]["forwards"])
        if rows and rows[0].get("impairments") and args.host:
            views.impairments_table(rows[0]["impairments"])
        if reproduction:
            views.reproduction_lines(reproduction)
    return 0 if lab.all_up(rows) else 1


def _impairments(running: lab.Lab, host: str) -> list[dict[str, object]]:
    """The impairments in force on a running host (none when it cannot be asked)."""
    conn = running.runner()
    try:
        return list(impair.show(conn, host))
    except LabError:
        return []
    finally:
        conn.close()


def cmd_exec(args: argparse.Namespace) -> int:
    if args.host is None and not args.all and not args.group:
        raise LabError(_NO_HOST)
    running = _running(args)
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    targets = _exec_targets(running, args, command)
    if not command:
        raise LabError("exec: no command given. Fix: labctl exec HOST -- COMMAND [ARGS...].")
    config = sshconfig.lab_config_file(running)
    if targets is None:
        running.require_host(args.host, "exec")
        tty = hostexec.want_tty(args.tty)
        rc = hostexec.run_one(hostexec.ssh_argv(config, args.host, command, tty), timeout=args.timeout)
        return _checked_ssh(running, [args.host], rc)
    argvs = {h: hostexec.ssh_argv(config, h, command, tty=False) for h in targets}
    emit = None if args.json else hostexec.prefixed_printer(targets)
    runs = hostexec.run_many(argvs, emit, timeout=args.timeout)
    for r in runs:
        if r.exit_code == hostexec.SSH_FAILED and hostkeys.says_mismatch(r.stderr):
            running.refuse_changed_key(r.host)
    if args.json:
        views.print_json({"lab": running.name, "command": command, "hosts": [asdict(r) for r in runs]})
    return 0 if all(r.exit_code == 0 for r in runs) else 1


_NO_HOST = "exec: the following arguments are required: host. Fix: labctl exec HOST -- CMD, or --all / --group GROUP."


def _checked_ssh(running: lab.Lab, hosts: list[str], rc: int) -> int:
    """ssh's exit code, unless ssh could not connect because a host's key is not the one learnt: that error."""
    if rc == hostexec.SSH_FAILED:
        for host in hosts:
            running.refuse_changed_key(host)
    return rc


def _exec_targets(running: lab.Lab, args: argparse.Namespace, command: list[str]) -> list[str] | None:
    """The hosts of --all/--group (None for one host); with those, HOST is the command's first word."""
    if not args.all and not args.group:
        if args.json:
            raise LabError("exec: --json goes with --all or --group. Fix: labctl exec --all --json -- CMD.")
        if args.host is None:
            raise LabError(_NO_HOST)
        return None
    if args.all and args.group:
        raise LabError("exec: --all and --group do not go together (--all is every host). Fix: give one of them.")
    if args.host is not None:
        command.insert(0, args.host)
    if args.all:
        return list(running.topo.hosts)
    groups = running.topo.group_hosts()
    hosts: list[str] = []
    for group in args.group:
        if not groups:
            raise LabError(
                f"exec --group: lab {running.name!r} has no groups (no host lists any). "
                f"Fix: use --all or name a host, or give hosts 'groups:' in {running.topo.path}."
            )
        if group not in groups:
            raise LabError(
                f"exec --group: no host of lab {running.name!r} is in group {group!r}. "
                f"Fix: use one of: {', '.join(sorted(groups))}."
            )
        hosts += [h for h in groups[group] if h not in hosts]
    return hosts


def cmd_ssh(args: argparse.Namespace) -> int:
    running = _running(args)
    running.require_host(args.host, "ssh")
    config = sshconfig.lab_config_file(running)
    os.execvp("ssh", ["ssh", "-F", str(config), args.host, *args.command])
    return 0  # not reached


def cmd_ssh_config(args: argparse.Namespace) -> int:
    running = _running(args)
    if args.host:
        running.require_host(args.host, "ssh-config")
    if args.path:
        print(sshconfig.lab_config_file(running))
        return 0
    hosts = [h for h in sshconfig.lab_hosts(running) if not args.host or h.name == args.host]
    sys.stdout.write(sshconfig.render(hosts, str(running.state.known_hosts)))
    return 0


def cmd_forget_key(args: argparse.Namespace) -> int:
    """Drop a host's SSH host key from the lab's known_hosts: the next connection learns it again (from the
    provider for podman and qemu hosts; trust on first use for static ones)."""
    running = _running(args)
    running.require_host(args.host, "forget-key")
    if running.forget_host_key(args.host):
        views.say(
            f"forgot the SSH host key of {args.host!r} (lab {running.name!r}); the next connection learns it again"
        )
    else:
        views.say(f"the lab's known_hosts holds no key of {args.host!r}: nothing to forget")
    return 0


def cmd_cp(args: argparse.Namespace) -> int:
    running = _running(args)
    for path in (args.src, args.dst):
        host, sep, _ = path.partition(":")
        if sep and "/" not in host:
            running.require_host(host, "cp")
    if ":" not in args.src.split("/")[0] and ":" not in args.dst.split("/")[0]:
        raise LabError("cp: neither side names a host. Fix: labctl cp SRC HOST:DST or labctl cp HOST:SRC DST.")
    config = sshconfig.lab_config_file(running)
    argv = ["scp", "-F", str(config), "-q", *(["-r"] if args.recursive else []), args.src, args.dst]
    hosts = [p.partition(":")[0] for p in (args.src, args.dst) if ":" in p.split("/")[0]]
    return _checked_ssh(running, [h for h in hosts if h in running.topo.hosts], hostexec.run_one(argv))


def cmd_logs(args: argparse.Namespace) -> int:
    running = _running(args)
    running.require_host(args.host, "logs")
    config = sshconfig.lab_config_file(running)
    command = journal.command(args.unit, follow=args.follow, lines=args.lines)
    tty = hostexec.want_tty(False) if args.follow else False
    return _checked_ssh(running, [args.host], hostexec.run_one(hostexec.ssh_argv(config, args.host, command, tty)))


def cmd_capture(args: argparse.Namespace) -> int:
    running = _running(args)
    if args.write not in (None, "-"):
        _output_file(args.write, "capture -w")
    where = hostiface.parse_target(args.host, "capture")
    conn = running.runner()
    try:
        iface = hostiface.resolve(running, conn, where, "capture", allow_any=True)
    finally:
        conn.close()
    bpf = args.command[1:] if args.command[:1] == ["--"] else list(args.command)
    pcap = args.write is not None
    out: IO[bytes] | int | None = None
    if pcap and args.write == "-":
        if sys.stdout.isatty():
            raise LabError(
                "capture: -w - writes a binary pcap to stdout, which is a terminal. "
                "Fix: pipe it (labctl capture gw:outside -w - | wireshark -k -i -) or write a file (-w gw.pcap)."
            )
        sys.stdout.flush()
        out = sys.stdout.fileno()
    elif pcap:
        out = open(args.write, "wb")  # noqa: SIM115 - closed below, after ssh wrote into it
    script = capture.remote_script(where.host, iface, pcap, args.count, bpf)
    argv = hostexec.ssh_argv(sshconfig.lab_config_file(running), where.host, ["sh", "-c", script], tty=False)
    views.say(f"capturing on {where.host} {iface}{' (' + ' '.join(bpf) + ')' if bpf else ''}; Ctrl-C stops")
    try:
        rc = capture.run(argv, out, args.seconds)
    finally:
        if not isinstance(out, int) and out is not None:
            out.close()
    if pcap and args.write != "-":
        packets = capture.count_packets(Path(args.write))
        views.say(f"{packets if packets is not None else 'no'} packets written to {args.write}")
    return rc


def cmd_impair(args: argparse.Namespace) -> int:
    running = _running(args)
    if args.show or args.host is None:
        if args.host is None and not args.show:
            raise LabError("impair: name HOST:NETWORK. Fix: labctl impair gw:outside --delay 50ms, or --show.")
        hosts = [hostiface.parse_target(args.host, "impair").host] if args.host else list(running.topo.hosts)
        for host in hosts:
            running.require_host(host, "impair")
        conn = running.runner()
        try:
            rows = [rec for host in hosts for rec in impair.show(conn, host)]
        finally:
            conn.close()
        if args.json:
            views.print_json({"lab": running.name, "impairments": rows})
        else:
            views.impairments_table(rows)
        return 0
    where = hostiface.parse_target(args.host, "impair")
    wanted = None if args.clear else impair.validate(args.delay, args.jitter, args.loss, args.rate)
    if args.clear and any(v is not None for v in (args.delay, args.jitter, args.loss, args.rate)):
        raise LabError("impair: --clear takes no other setting. Fix: clear first, or give only the new settings.")
    conn = running.runner()
    try:
        iface = hostiface.resolve(running, conn, where, "impair")
        if wanted is None:
            had = impair.clear(conn, where.host, iface)
            views.say(f"{where.host} {iface}: {'impairment removed' if had else 'was not impaired'}")
            return 0
        record = impair.apply(conn, where.host, iface, where.part, wanted)
    finally:
        conn.close()
    how = "netem" if record["backend"] == "netem" else "tbf/NFQUEUE (this kernel has no sch_netem)"
    views.say(f"{where.host} {iface}: {wanted.describe()} on what it sends ({how})")
    return 0


def cmd_graph(args: argparse.Namespace) -> int:
    topo, state = lab.resolve(args.file, args.name)
    if topo is None:
        lab.require(topo, state)  # raises: no such lab
    assert topo is not None
    if args.output:
        _output_file(args.output, "graph -o")
    text = graph.render(graph.build(lab.Lab(topo, state)), args.format)
    if args.output:
        _write_output(args.output, text, "graph -o")
    else:
        sys.stdout.write(text)
    return 0


def cmd_restart(args: argparse.Namespace) -> int:
    running = _running(args)
    lab.restart(running, args.hosts or list(running.topo.hosts), say=views.say)
    return 0


def cmd_console(args: argparse.Namespace) -> int:
    running = _running(args)
    running.require_host(args.host, "console")
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.log
    return running.provider_for(args.host).show_console(running.name, args.host, interactive)


def cmd_inventory(args: argparse.Namespace) -> int:
    running = _running(args)
    state, topo = running.state, running.topo
    if args.json:
        ssh = running.addresses()
        views.print_json(
            {
                "lab": topo.name,
                "inventory": str(state.inventory),
                "ansible_cfg": str(state.ansible_cfg),
                "hosts": {h: inventory.host_vars(topo, state, h, ssh[h]) for h in topo.hosts},
            }
        )
    else:
        print(state.inventory)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    if args.name is not None and args.file is None:
        name = args.name  # validated by lab.down before anything is touched
    else:
        topo, _ = lab.resolve(args.file, args.name)
        assert topo is not None
        name = topo.name
    removed = lab.down(name, say=views.say)
    views.say(f"lab {name} removed ({len(removed)} resources, state deleted)")
    return 0


def cmd_image_build(args: argparse.Namespace) -> int:
    t0 = time.monotonic()
    tag = (
        vmimage.build(views.say, force=args.force).tag if args.vm else image.build(progress=views.say, force=args.force)
    )
    views.say(f"{tag} ready in {time.monotonic() - t0:.1f} s")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="labctl", description="Build a systems lab from a topology file, provision, smoke-test, tear down."
    )
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    def verb(name: str, fn: Callable[[argparse.Namespace], int], help_: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_, description=help_)
        p.set_defaults(fn=fn)
        return p

    p = verb("up", cmd_up, "create or reconcile the lab's hosts, converge them, run the smoke checks")
    lab_args(p)
    p.add_argument("--no-provision", action="store_true", help="only create and start the hosts")
    p.add_argument(
        "--force", action="store_true", help="converge every role on every host, changed or not (as provision)"
    )
    p.add_argument("--no-smoke", action="store_true", help="skip the smoke checks at the end")
    p.add_argument("--locked", action="store_true", help="install exactly the versions of LAB.lock (beside LAB.yml)")
    p.add_argument("--from", dest="from_archive", metavar="ARCHIVE", help="restore a lab saved with 'labctl save'")
    p.add_argument(
        "--trust",
        action="store_true",
        help="with --from: take the archive's topology as your own (its ansible_*/labctl_* variables and template "
        "expressions then run on this machine with your rights); only for an archive you made",
    )

    p = verb("lock", cmd_lock, "write LAB.lock (exact package versions of the running lab), or --check it")
    lab_args(p)
    p.add_argument("--check", action="store_true", help="compare the running lab with its lock: exit 1 on drift")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = verb("save", cmd_save, "save the running lab (topology, lock, host file systems) into one archive")
    lab_args(p)
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="the archive to write (tar)")
    p.add_argument("--with-secrets", action="store_true", help="include generated secrets (the archive is 0600)")

    p = verb("provision", cmd_provision, "converge a running lab with playbooks/site.yml")
    lab_args(p)

    p = verb("smoke", cmd_smoke, "run the smoke checks against a running lab")
    lab_args(p)
    p.add_argument("--only", action="append", metavar="SERVICE", help="only this service (repeatable)")
    p.add_argument("--json", action="store_true", help="print the results as JSON")

    p = verb("status", cmd_status, "show the lab's hosts, groups, addresses and state")
    lab_args(p)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--all", action="store_true", help="list every lab: by its state and by its labels")
    p.add_argument("--host", help="show only this host")

    p = verb("exec", cmd_exec, "run a command on a host (or --all / --group) over SSH, as 'ssh HOST CMD'")
    lab_args(p)
    p.add_argument("--timeout", type=_seconds, default=None, help="seconds before the command is stopped (exit 124)")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a TTY even when not both ends are terminals")
    p.add_argument("--all", action="store_true", help="every host of the lab, in parallel, lines prefixed by host")
    p.add_argument("--group", action="append", metavar="GROUP", help="every host of this group (repeatable)")
    p.add_argument("--json", action="store_true", help="with --all/--group: per-host exit code, stdout, stderr")
    p.add_argument("host", nargs="?")
    p.add_argument("command", nargs="*", help="-- COMMAND [ARGS...] (labctl's options go before '--')")

    p = verb("ssh", cmd_ssh, "open an interactive SSH session on a host")
    lab_args(p)
    p.add_argument("host")
    p.add_argument("command", nargs="*", help="optional: -- COMMAND [ARGS...] (labctl's options go before '--')")

    p = verb("ssh-config", cmd_ssh_config, "print an OpenSSH config for the lab's hosts (ssh/scp/rsync -F)")
    lab_args(p)
    p.add_argument("--path", action="store_true", help="write it to the lab's state and print the file's path")
    p.add_argument("host", nargs="?", help="only this host")

    p = verb("forget-key", cmd_forget_key, "forget a host's SSH host key (one that changed on purpose)")
    lab_args(p)
    p.add_argument("host")

    p = verb("cp", cmd_cp, "copy files to or from a host with scp: SRC HOST:DST or HOST:SRC DST")
    lab_args(p)
    p.add_argument("-r", "--recursive", action="store_true", help="copy directories")
    p.add_argument("src")
    p.add_argument("dst")

    p = verb("logs", cmd_logs, "show the journal of a host, or of one unit on it (-f follows)")
    lab_args(p, short=False)
    p.add_argument("-f", "--follow", action="store_true", help="keep printing new entries")
    p.add_argument("-n", "--lines", type=_lines, default=None, help="only the last N entries")
    p.add_argument("host")
    p.add_argument("unit", nargs="?", help="a unit, a template (mongrel2 = mongrel2 and mongrel2@*) or a glob")

    p = verb("capture", cmd_capture, "capture packets on a host's interface with tcpdump: a pcap file, stdout or text")
    lab_args(p)
    p.add_argument("-w", "--write", metavar="FILE", help="write a pcap to FILE ('-': stdout, for wireshark -k -i -)")
    p.add_argument("-c", "--count", type=_count, default=None, help="stop after N packets")
    p.add_argument("--seconds", type=_seconds, default=None, help="stop after S seconds (else Ctrl-C stops)")
    p.add_argument("host", metavar="HOST[:NETWORK|IFACE]", help="the host, and a lab network or interface of it")
    p.add_argument("command", nargs="*", metavar="FILTER", help="-- a tcpdump (pcap-filter) expression")

    p = verb("impair", cmd_impair, "delay, jitter, loss or rate-limit what a host sends on a network (tc netem)")
    lab_args(p)
    p.add_argument("host", nargs="?", metavar="HOST[:NETWORK|IFACE]", help="the host, and a lab network or interface")
    p.add_argument("--delay", metavar="TIME", help="added delay, e.g. 50ms")
    p.add_argument("--jitter", metavar="TIME", help="delay varies by up to this much, e.g. 5ms")
    p.add_argument("--loss", metavar="PERCENT", help="packets dropped at random, e.g. 1%%")
    p.add_argument("--rate", metavar="RATE", help="rate limit, e.g. 10mbit")
    p.add_argument("--clear", action="store_true", help="remove the impairment")
    p.add_argument("--show", action="store_true", help="list the impairments in force (every host, or HOST)")
    p.add_argument("--json", action="store_true", help="with --show: print JSON")

    p = verb("graph", cmd_graph, "draw the lab: networks, hosts, addresses, port forwards, SDN slices")
    lab_args(p)
    p.add_argument("--format", choices=graph.FORMATS, default="mermaid", help="output format (default mermaid)")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE instead of stdout")

    p = verb("restart", cmd_restart, "stop and start hosts (all by default), as a reboot would")
    lab_args(p)
    p.add_argument("hosts", nargs="*", metavar="HOST")

    p = verb("console", cmd_console, "show a host's console: a VM's serial console (interactive on a terminal)")
    lab_args(p)
    p.add_argument("--log", action="store_true", help="print the console log even on a terminal")
    p.add_argument("host")

    p = verb("inventory", cmd_inventory, "print the path of the lab's Ansible inventory")
    lab_args(p)
    p.add_argument("--json", action="store_true", help="print paths and connection vars as JSON")

    p = verb("down", cmd_down, "remove every container, network, key and state file of the lab")
    lab_args(p)

    p = verb("image", lambda _a: 2, "manage the base image")
    isub = p.add_subparsers(dest="image_verb", required=True, metavar="ACTION")
    b = isub.add_parser("build", help="build the base image (debootstrap + podman import)")
    b.add_argument("--force", action="store_true", help="rebuild even if the image exists")
    b.add_argument("--vm", action="store_true", help="build the VM image (base tree + kernel, qcow2) instead")
    b.set_defaults(fn=cmd_image_build)
    _add_extensions(sub)
    return parser


def _add_extensions(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Verbs that belong to one service (e.g. labctl sdn)."""
    try:
        from labctl.sdn import cli as sdn_cli
    except ImportError:
        return
    sdn_cli.add_parser(sub)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse labctl's command line. For exec and ssh everything after the first '--' is the host's
    command, and labctl's options (-f, --name, --timeout) may come anywhere before it, also after
    the host: `labctl exec HOST -f LAB.yml -- CMD` acts on LAB.yml's lab, never on the default one."""
    parser = build_parser()
    completion.autocomplete(parser)
    words = list(sys.argv[1:] if argv is None else argv)
    if not words or words[0] not in COMMAND_VERBS:
        return parser.parse_args(words)
    verb, rest, command = words[0], words[1:], None
    if "--" in rest:
        cut = rest.index("--")
        rest, command = rest[:cut], rest[cut + 1 :]
    sub = _verb_parser(parser, verb)
    args = sub.parse_intermixed_args(rest)
    if command is not None:
        if args.command:
            sub.error(f"{' '.join(args.command)!r} comes before '--', where only labctl's options and the host go")
        args.command = command
    args.verb = verb
    return args


def _verb_parser(parser: argparse.ArgumentParser, verb: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices[verb]  # type: ignore[no-any-return]
    raise KeyError(verb)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return int(args.fn(args))
    except LabError as exc:
        views.error(str(exc))
        return exc.exit_code
    except KeyboardInterrupt:
        views.err.print("[red]interrupted[/]")
        return 130


if __name__ == "__main__":
    sys.exit(main())
