"""Lab experiments against one real lab (gw NATs inside, web behind a port forward, ext outside):
the topology's own checks in `labctl smoke`, `labctl capture` of the DNAT'd request on gw's outside
interface (read back with dpkt), and `labctl impair` seen in ping and ZeroMQ REQ/REP round trips."""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import dpkt
import pytest

from .conftest import LABCTL, lab_containers, run

pytestmark = pytest.mark.integration

NAME = "it-exp"
GW_OUT, GW_IN, EXT = "198.18.150.254", "198.18.151.254", "198.18.150.10"
TOPOLOGY = rf"""---
schema: 1
name: {NAME}
networks:
  - {{name: outside, subnet: 198.18.150.0/24}}
  - name: inside
    subnet: 198.18.151.0/24
    routes: [{{to: outside, via: gw}}]
hosts:
  - name: gw
    groups: [nat_gateway]
    networks: [outside, inside]
    addresses: {{outside: {GW_OUT}, inside: {GW_IN}}}
    vars:
      nat_gateway_forwards: [{{name: web, protocol: tcp, port: 80, to_host: web, to_port: 8080}}]
  - {{name: web, groups: [], networks: [inside]}}
  - {{name: ext, groups: [], networks: [outside]}}
checks:
  - name: ext reaches web through gw
    hosts: [ext]
    command: python3 -c "import urllib.request as u; print(u.urlopen('http://gw/', timeout=5).read().decode())"
    expect: {{stdout_regex: 'served-by-web \d+'}}
    retries: 5
    wait: 1
  - name: gw answers ext's pings
    hosts: [ext]
    command: ping -c 3 -i 0.2 -q gw
    expect: {{number: {{match: '= [\d.]+/([\d.]+)/', lt: 5000}}}}
  - name: a check that cannot hold
    group: nat_gateway
    command: echo nope
    expect: {{stdout_contains: yes-please}}
    retries: 1
    wait: 0
"""
WEB = (
    "mkdir -p /srv/t && echo served-by-web 42 > /srv/t/index.html && "
    "systemd-run --unit webtest python3 -m http.server 8080 --directory /srv/t"
)
ZMQ_SERVER = f"""import zmq
s = zmq.Context().socket(zmq.REP)
s.bind("tcp://{GW_OUT}:5599")
while True:
    s.send(s.recv())
"""
ZMQ_CLIENT = f"""import time, zmq
s = zmq.Context().socket(zmq.REQ)
s.setsockopt(zmq.RCVTIMEO, 20000)
s.connect("tcp://{GW_OUT}:5599")
s.send(b"warm-up"); s.recv()
n = 20
t0 = time.perf_counter()
for i in range(n):
    s.send(b"ping %d" % i)
    assert s.recv() == b"ping %d" % i
print("%.3f" % ((time.perf_counter() - t0) / n * 1000))
"""
FIGURES: dict[str, object] = {}


class Lab:
    def __init__(self, path: Path, env: dict[str, str]) -> None:
        self.path, self.env = path, env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return run(args[0], "-f", str(self.path), *args[1:], env=self.env, check=check)

    def sh(self, host: str, command: str, stdin: str | None = None) -> str:
        result = subprocess.run(
            [LABCTL, "exec", "-f", str(self.path), host, "--", "sh", "-c", command],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, f"{host}: {command}: {result.stdout}{result.stderr}"
        return result.stdout


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    tmp = tmp_path_factory.mktemp("exp")
    path = tmp / f"{NAME}.yml"
    path.write_text(TOPOLOGY)
    env = dict(os.environ, LABCTL_STATE_DIR=str(tmp / "state"))
    try:
        run("up", "-f", str(path), "--no-smoke", env=env)
        lab = Lab(path, env)
        lab.sh("web", WEB)
        yield lab
    finally:
        run("down", "--name", NAME, env=env, check=False)
        if FIGURES:
            print(f"\nexperiment figures: {json.dumps(FIGURES)}")
    assert lab_containers(NAME) == []


def test_user_checks_run_after_the_role_checks_in_the_same_table_and_json(lab: Lab) -> None:
    result = lab.run("smoke", "--json", check=False)
    assert result.returncode == 1, result.stderr  # the check that cannot hold fails the run, and only it
    checks = json.loads(result.stdout)["checks"]
    services = [c["service"] for c in checks]
    assert services[-3:] == ["user", "user", "user"] and "nat_gateway" in services and "user" not in services[:-3]
    assert all(c["status"] != "failed" for c in checks[:-3]), [c for c in checks if c["status"] == "failed"]
    assert any(c["service"] == "nat_gateway" and c["status"] == "passed" for c in checks)
    reach, pings, fails = checks[-3:]
    assert (reach["check"], reach["hosts"], reach["status"]) == ("ext reaches web through gw", ["ext"], "passed")
    assert pings["status"] == "passed" and re.fullmatch(r"[\d.]+ < 5000", pings["message"]), pings
    assert fails["status"] == "failed" and fails["hosts"] == ["gw"]
    assert fails["message"] == "gw: stdout does not contain 'yes-please' after 2 attempts"
    assert fails["command"] == "echo nope" and fails["output"] == "nope"
    table = lab.run("smoke", "--only", "user", check=False)
    assert table.returncode == 1 and "smoke: 2 passed, 1 failed, 0 skipped" in table.stdout
    assert "user" in table.stdout and "nat_gateway" not in table.stdout


def _lines(stream: object, sink: queue.Queue[str]) -> None:
    for line in stream:  # type: ignore[attr-defined]
        sink.put(line)


def test_capture_streams_the_dnat_flow_on_gw_s_outside_interface(lab: Lab, tmp_path: Path) -> None:
    pcap = tmp_path / "gw-outside.pcap"
    with pcap.open("wb") as out:
        proc = subprocess.Popen(
            [LABCTL, "capture", "-f", str(lab.path), "gw:outside", "-w", "-", "--", "tcp", "port", "80"],
            stdout=out,
            stderr=subprocess.PIPE,
            text=True,
            env=lab.env,
        )
        err: queue.Queue[str] = queue.Queue()
        threading.Thread(target=_lines, args=(proc.stderr, err), daemon=True).start()
        seen = []
        while not any("listening on" in line for line in seen):
            seen.append(err.get(timeout=180))
        assert any(re.search(r"capturing on gw eth\d+ \(tcp port 80\)", line) for line in seen), seen
        body = lab.sh(
            "ext", "python3 -c \"import urllib.request as u; print(u.urlopen('http://gw/').read().decode())\""
        )
        assert "served-by-web 42" in body
        proc.send_signal(signal.SIGINT)  # as Ctrl-C: tcpdump stops and flushes, the stream ends cleanly
        assert proc.wait(timeout=60) == 0
    packets = []
    with pcap.open("rb") as handle:
        for _ts, frame in dpkt.pcap.Reader(handle):
            ip = dpkt.ethernet.Ethernet(frame).data
            if isinstance(ip, dpkt.ip.IP) and isinstance(ip.data, dpkt.tcp.TCP):
                packets.append((dpkt.utils.inet_to_str(ip.src), dpkt.utils.inet_to_str(ip.dst), ip.data))
    flow = [p for p in packets if {p[0], p[1]} == {EXT, GW_OUT}]
    assert flow and all(80 in (t.sport, t.dport) for _s, _d, t in flow)
    requests = [t for s, _d, t in flow if s == EXT and t.data.startswith(b"GET / HTTP/1.1")]
    replies = b"".join(t.data for s, _d, t in flow if s == GW_OUT)
    assert len(requests) == 1 and b"served-by-web 42" in replies
    assert any(t.flags & dpkt.tcp.TH_SYN for _s, _d, t in flow) and any(t.flags & dpkt.tcp.TH_FIN for _s, _d, t in flow)
    FIGURES["dnat_flow_packets"] = len(flow)


def _ping_rtt(lab: Lab) -> tuple[float, float]:
    out = lab.sh("ext", f"ping -c 10 -i 0.2 -q {GW_OUT}")
    found = re.search(r"= ([\d.]+)/([\d.]+)/", out)
    assert found, out
    return float(found.group(1)), float(found.group(2))


def _zmq_rtt(lab: Lab) -> float:
    return float(lab.sh("ext", "python3 -", stdin=ZMQ_CLIENT).strip())


def test_impair_delays_what_gw_sends_until_cleared(lab: Lab) -> None:
    install = "DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-zmq >/dev/null 2>&1"
    with ThreadPoolExecutor(2) as pool:  # both hosts at once
        done = [
            pool.submit(lab.sh, h, f"python3 -c 'import zmq' 2>/dev/null || (apt-get update -qq && {install})")
            for h in ("gw", "ext")
        ]
        for fut in done:
            fut.result()
    lab.sh("gw", "cat > /tmp/rep.py && systemd-run --unit zmqrep python3 /tmp/rep.py", stdin=ZMQ_SERVER)
    ping_before, zmq_before = _ping_rtt(lab), _zmq_rtt(lab)

    lab.run("impair", "gw:outside", "--delay", "50ms", "--jitter", "5ms")
    shown = json.loads(lab.run("impair", "--show", "--json").stdout)["impairments"]
    assert [(r["host"], r["network"], r["delay"], r["jitter"], r["active"]) for r in shown] == [
        ("gw", "outside", "50ms", "5ms", True)
    ]
    status = json.loads(lab.run("status", "--host", "gw", "--json").stdout)["hosts"][0]
    assert status["impairments"] == shown
    (ping_min, ping_avg), zmq_after = _ping_rtt(lab), _zmq_rtt(lab)
    # every reply gw sends on outside waits 50 ms +/- 5 ms: a floor, whatever the machine's load
    assert ping_min >= 45.0 and zmq_after >= 45.0, (ping_min, zmq_after)

    cleared = lab.run("impair", "gw:outside", "--clear")
    assert "impairment removed" in cleared.stderr
    assert json.loads(lab.run("impair", "--show", "--json").stdout)["impairments"] == []
    assert "NFQUEUE" not in lab.sh("gw", "iptables -t mangle -S POSTROUTING || true")
    FIGURES.update(
        ping_rtt_avg_ms_before=ping_before[1],
        ping_rtt_avg_ms_impaired=ping_avg,
        ping_rtt_avg_ms_cleared=_ping_rtt(lab)[1],
        zmq_req_rep_ms_before=zmq_before,
        zmq_req_rep_ms_impaired=zmq_after,
    )
    bad = lab.run("impair", "gw:nosuch", "--delay", "5ms", check=False)
    assert bad.returncode == 2 and "Fix:" in bad.stderr
