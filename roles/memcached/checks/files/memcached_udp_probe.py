"""Send a memcached UDP request to each HOST:PORT and report whether anything answers.

Usage: python3 - HOST:PORT [HOST:PORT ...]
Prints one line per endpoint: "HOST:PORT answered ..." or "HOST:PORT silent" (no reply within
the wait, or an ICMP refusal). All requests go out at once, so the wait is paid once.
"""

import contextlib
import socket
import sys
import time

WAIT = 1.5
socks = {}
for n, ep in enumerate(sys.argv[1:]):
    host, _, port = ep.rpartition(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.connect((host, int(port)))
    # memcached UDP frame header: request id, sequence number, datagram count, reserved.
    header = n.to_bytes(2, "big") + (0).to_bytes(2, "big") + (1).to_bytes(2, "big") + (0).to_bytes(2, "big")
    with contextlib.suppress(ConnectionRefusedError):
        sock.send(header + b"version\r\n")
    socks[ep] = sock

deadline = time.monotonic() + WAIT
answers = {}
for ep, sock in socks.items():
    sock.settimeout(max(0.01, deadline - time.monotonic()))
    try:
        answers[ep] = sock.recv(2048)[8:].strip()
    except (TimeoutError, ConnectionRefusedError):
        pass
    finally:
        sock.close()

for ep in socks:
    print(f"{ep} answered {answers[ep]!r}" if ep in answers else f"{ep} silent")
