"""Link impairment on a lab host's interface: delay, jitter, loss and a rate limit on what it sends.

The usual tool is tc's netem qdisc. A container shares the machine's kernel, and a kernel built
without sch_netem (as some are) refuses it; then labctl falls back to what such kernels do have: a
tbf qdisc for the rate, and an iptables NFQUEUE rule feeding a small user-space delayer
(hostside/impair/netdelay.py, run as the systemd unit labctl-impair-IFACE) for delay, jitter and loss.
Either way the settings are recorded on the host in /run/labctl/impair/IFACE.json (gone at reboot,
like the qdisc), which is what `labctl impair --show` and `labctl status --host` read back and verify.
Everything runs through the lab's runner (SSH), so containers, VMs and static hosts are alike."""

from __future__ import annotations

import json
import re
import shlex
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from labctl.access.remote import Runner
from labctl.errors import LabError, printable

STATE_DIR = "/run/labctl/impair"
DELAYER = "/usr/local/lib/labctl/netdelay.py"
DELAYER_TEXT = (Path(__file__).parents[1] / "hostside" / "impair" / "netdelay.py").read_text()
QUEUE_BASE = 1000  # NFQUEUE number: QUEUE_BASE + the interface's ifindex
COMMENT = "labctl-impair"
_TIME = re.compile(r"^(\d+(?:\.\d+)?)(us|ms|s)$")
_LOSS = re.compile(r"^(\d+(?:\.\d+)?)%$")
_RATE = re.compile(r"^(\d+(?:\.\d+)?)(bit|kbit|mbit|gbit)$")
_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


@dataclass(frozen=True)
class Impairment:
    delay: str | None = None  # e.g. "50ms"
    jitter: str | None = None  # e.g. "5ms" (needs a delay)
    loss: str | None = None  # e.g. "1%"
    rate: str | None = None  # e.g. "10mbit"

    @property
    def delay_ms(self) -> float:
        return _ms(self.delay)

    @property
    def jitter_ms(self) -> float:
        return _ms(self.jitter)

    @property
    def loss_pct(self) -> float:
        return float(self.loss[:-1]) if self.loss else 0.0

    def describe(self) -> str:
        parts = []
        if self.delay:
            parts.append(f"delay {self.delay}" + (f" ± {self.jitter}" if self.jitter else ""))
        if self.loss:
            parts.append(f"loss {self.loss}")
        if self.rate:
            parts.append(f"rate {self.rate}")
        return ", ".join(parts)


def _ms(text: str | None) -> float:
    if not text:
        return 0.0
    m = _TIME.fullmatch(text)
    assert m is not None
    return float(m.group(1)) * _MS[m.group(2)]


def validate(delay: str | None, jitter: str | None, loss: str | None, rate: str | None) -> Impairment:
    """The impairment the options ask for; a LabError naming the option and the fix."""
    for option, value, pattern, example in (
        ("--delay", delay, _TIME, "50ms"),
        ("--jitter", jitter, _TIME, "5ms"),
        ("--loss", loss, _LOSS, "1%"),
        ("--rate", rate, _RATE, "10mbit"),
    ):
        if value is not None and not pattern.fullmatch(value):
            raise LabError(f"impair: {option} {printable(value)!r} is not understood. Fix: write it like {example}.")
    if loss is not None and float(loss[:-1]) > 100:
        raise LabError(f"impair: --loss {loss} is above 100%. Fix: give a percentage from 0% to 100%.")
    if jitter is not None and delay is None:
        raise LabError("impair: --jitter varies a delay. Fix: give --delay too, e.g. --delay 50ms --jitter 5ms.")
    if rate is not None and float(rate[: -len(_RATE.fullmatch(rate).group(2))]) <= 0:  # type: ignore[union-attr]
        raise LabError(f"impair: --rate {rate} is no rate. Fix: give a rate above 0, e.g. 10mbit.")
    imp = Impairment(delay, jitter, loss, rate)
    if not imp.describe():
        raise LabError("impair: nothing to do. Fix: give --delay, --jitter, --loss or --rate (or --clear, or --show).")
    return imp


def netem_command(iface: str, imp: Impairment) -> str:
    argv = ["tc", "qdisc", "replace", "dev", iface, "root", "netem"]
    if imp.delay:
        argv += ["delay", imp.delay] + ([imp.jitter] if imp.jitter else [])
    if imp.loss:
        argv += ["loss", imp.loss]
    if imp.rate:
        argv += ["rate", imp.rate]
    return shlex.join(argv)


def clear_script(iface: str) -> str:
    """sh that removes every impairment labctl put on iface (either way); prints 'cleared' if one was there."""
    q = shlex.quote(iface)
    return "\n".join(
        [
            f"[ -e {STATE_DIR}/{q}.json ] && echo cleared",
            f"tc qdisc show dev {q} | grep -Eq '^qdisc (netem|tbf) ' && tc qdisc del dev {q} root && echo cleared",
            "if command -v iptables >/dev/null 2>&1; then",
            f"  iptables -w 5 -t mangle -S POSTROUTING | grep -F -- '-o {iface} ' | grep -F {COMMENT} |",
            '  while read -r _a chain rule; do eval "iptables -w 5 -t mangle -D $chain $rule" && echo cleared; done',
            "fi",
            f"systemctl stop labctl-impair-{q}.service 2>/dev/null",
            f"rm -f {STATE_DIR}/{q}.json",
            "true",
        ]
    )


def _sh(runner: Runner, host: str, command: str, what: str, timeout: float = 60) -> str:
    res = runner.run(host, command, timeout=timeout)
    if not res.ok:
        raise LabError(f"impair: {what} on {host!r} failed: {printable(res.output[-400:])}. Fix: {_FIX}")
    return res.stdout


_FIX = "the host needs root, iproute2 (tc) and, without sch_netem, iptables (installed through apt-get when missing)"


def clear(runner: Runner, host: str, iface: str) -> bool:
    """Remove the impairment of host's iface; True when there was one."""
    return "cleared" in _sh(runner, host, clear_script(iface), f"clearing {iface}")


def apply(runner: Runner, host: str, iface: str, network: str | None, imp: Impairment) -> dict[str, Any]:
    """Impair what host sends on iface (replacing an earlier impairment); the record written there."""
    clear(runner, host, iface)
    res = runner.run(host, netem_command(iface, imp), timeout=30)
    if res.ok:
        backend, queue = "netem", None
    elif "unknown" in res.output.lower() or "no such file" in res.output.lower():  # no sch_netem in the kernel
        backend, queue = "nfqueue", _fallback(runner, host, iface, imp)
    else:
        raise LabError(f"impair: tc on {host!r} refused netem: {printable(res.output[-300:])}. Fix: {_FIX}.")
    record = {"host": host, "iface": iface, "network": network, "backend": backend, "queue": queue, **asdict(imp)}
    text = json.dumps(record)
    _sh(
        runner,
        host,
        f"mkdir -p {STATE_DIR} && printf '%s\\n' {shlex.quote(text)} > {STATE_DIR}/{shlex.quote(iface)}.json",
        "recording the impairment",
    )
    return record


def _fallback(runner: Runner, host: str, iface: str, imp: Impairment) -> int | None:
    """tbf for the rate, NFQUEUE + the delayer for delay/jitter/loss; the queue number (None if unused)."""
    q = shlex.quote(iface)
    if imp.rate:
        _sh(runner, host, f"tc qdisc replace dev {q} root tbf rate {imp.rate} burst 32kbit latency 400ms", "tbf")
    if not (imp.delay_ms or imp.loss_pct):
        return None
    _sh(
        runner,
        host,
        "command -v iptables >/dev/null 2>&1 || (apt-get update -qq && "
        "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iptables) >/dev/null 2>&1",
        "installing iptables",
        timeout=300,
    )
    _sh(runner, host, f"mkdir -p {shlex.quote(str(Path(DELAYER).parent))}", "making the delayer's directory")
    runner.put_text(host, DELAYER_TEXT, DELAYER, 0o644)
    queue = QUEUE_BASE + int(_sh(runner, host, f"cat /sys/class/net/{q}/ifindex", "reading the ifindex").strip())
    unit = f"labctl-impair-{iface}"
    args = f"{queue} {imp.delay_ms:g} {imp.jitter_ms:g} {imp.loss_pct:g}"
    _sh(runner, host, f"systemd-run --unit {shlex.quote(unit)} --collect python3 {DELAYER} {args}", "the delayer")
    deadline = time.monotonic() + 15
    while f"queue {queue}" not in runner.run(host, f"journalctl -q -u {shlex.quote(unit)} -o cat", timeout=30).stdout:
        if time.monotonic() > deadline:
            raise LabError(
                f"impair: the delayer on {host!r} did not bind NFQUEUE {queue}. Fix: read 'labctl logs {host} {unit}'."
            )
        time.sleep(0.2)
    rule = f"-o {q} -m comment --comment {COMMENT} -j NFQUEUE --queue-num {queue} --queue-bypass"
    _sh(runner, host, f"iptables -w 5 -t mangle -A POSTROUTING {rule}", "the NFQUEUE rule")
    return queue


SHOW = (Path(__file__).parents[1] / "hostside" / "impair" / "show.py").read_text()


def show(runner: Runner, host: str) -> list[dict[str, Any]]:
    """The impairments recorded on a host, each with `active` (its qdisc/delayer still in place)."""
    res = runner.run(host, "python3 -", timeout=30, stdin=SHOW)
    if not res.ok:
        raise LabError(f"impair: cannot read the impairments of {host!r}: {printable(res.output[-300:])}.")
    try:
        data = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise LabError(f"impair: unreadable answer from {host!r}: {printable(res.stdout[-200:])}.") from None
    return [d for d in data if isinstance(d, dict)]


def describe(record: dict[str, Any]) -> str:
    fields = {k: record.get(k) for k in ("delay", "jitter", "loss", "rate")}
    return Impairment(**fields).describe()
