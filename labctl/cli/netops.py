"""labctl capture (tcpdump on a host's interface) and labctl impair (tc netem on what a host sends)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import IO

from labctl.access import hostexec, sshconfig
from labctl.cli.common import SubParsers, add_verb, count, output_file, running, seconds
from labctl.cli_args import lab_args
from labctl.errors import LabError
from labctl.lifecycle import model
from labctl.netops import capture, hostiface, impair
from labctl.ui import views


def add_parser(sub: SubParsers) -> None:
    p = add_verb(
        sub, "capture", cmd_capture, "capture packets on a host's interface with tcpdump: a pcap file, stdout or text"
    )
    lab_args(p)
    p.add_argument("-w", "--write", metavar="FILE", help="write a pcap to FILE ('-': stdout, for wireshark -k -i -)")
    p.add_argument("-c", "--count", type=count, default=None, help="stop after N packets")
    p.add_argument("--seconds", type=seconds, default=None, help="stop after S seconds (else Ctrl-C stops)")
    p.add_argument("host", metavar="HOST[:NETWORK|IFACE]", help="the host, and a lab network or interface of it")
    p.add_argument("command", nargs="*", metavar="FILTER", help="-- a tcpdump (pcap-filter) expression")

    p = add_verb(
        sub, "impair", cmd_impair, "delay, jitter, loss or rate-limit what a host sends on a network (tc netem)"
    )
    lab_args(p)
    p.add_argument("host", nargs="?", metavar="HOST[:NETWORK|IFACE]", help="the host, and a lab network or interface")
    p.add_argument("--delay", metavar="TIME", help="added delay, e.g. 50ms")
    p.add_argument("--jitter", metavar="TIME", help="delay varies by up to this much, e.g. 5ms")
    p.add_argument("--loss", metavar="PERCENT", help="packets dropped at random, e.g. 1%%")
    p.add_argument("--rate", metavar="RATE", help="rate limit, e.g. 10mbit")
    p.add_argument("--clear", action="store_true", help="remove the impairment")
    p.add_argument("--show", action="store_true", help="list the impairments in force (every host, or HOST)")
    p.add_argument("--json", action="store_true", help="with --show: print JSON")


def _capture_out(write: str | None) -> IO[bytes] | int | None:
    """Where the pcap goes: stdout's descriptor (-w -, never a terminal), an open file (-w FILE), or none."""
    if write == "-":
        if sys.stdout.isatty():
            raise LabError(
                "capture: -w - writes a binary pcap to stdout, which is a terminal. "
                "Fix: pipe it (labctl capture gw:outside -w - | wireshark -k -i -) or write a file (-w gw.pcap)."
            )
        sys.stdout.flush()
        return sys.stdout.fileno()
    if write is not None:
        return open(write, "wb")  # closed by the caller, after ssh wrote into it
    return None


def cmd_capture(args: argparse.Namespace) -> int:
    target = running(args)
    if args.write not in (None, "-"):
        output_file(args.write, "capture -w")
    where = hostiface.parse_target(args.host, "capture")
    conn = target.runner()
    try:
        iface = hostiface.resolve(target, conn, where, "capture", allow_any=True)
    finally:
        conn.close()
    bpf = args.command[1:] if args.command[:1] == ["--"] else list(args.command)
    pcap = args.write is not None
    out = _capture_out(args.write)
    script = capture.remote_script(where.host, iface, pcap, args.count, bpf)
    argv = hostexec.ssh_argv(sshconfig.lab_config_file(target), where.host, ["sh", "-c", script], tty=False)
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


def _show_impairments(target: model.Lab, args: argparse.Namespace) -> int:
    if args.host is None and not args.show:
        raise LabError("impair: name HOST:NETWORK. Fix: labctl impair gw:outside --delay 50ms, or --show.")
    hosts = [hostiface.parse_target(args.host, "impair").host] if args.host else list(target.topo.hosts)
    for host in hosts:
        target.require_host(host, "impair")
    conn = target.runner()
    try:
        rows = [rec for host in hosts for rec in impair.show(conn, host)]
    finally:
        conn.close()
    if args.json:
        views.print_json({"lab": target.name, "impairments": rows})
    else:
        views.impairments_table(rows)
    return 0


def cmd_impair(args: argparse.Namespace) -> int:
    target = running(args)
    if args.show or args.host is None:
        return _show_impairments(target, args)
    where = hostiface.parse_target(args.host, "impair")
    wanted = None if args.clear else impair.validate(args.delay, args.jitter, args.loss, args.rate)
    if args.clear and any(v is not None for v in (args.delay, args.jitter, args.loss, args.rate)):
        raise LabError("impair: --clear takes no other setting. Fix: clear first, or give only the new settings.")
    conn = target.runner()
    try:
        iface = hostiface.resolve(target, conn, where, "impair")
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
