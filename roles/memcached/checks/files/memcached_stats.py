"""Read `stats` from memcached instances over TCP; prints one JSON object {"HOST:PORT": {stat: value}}.

Usage: python3 - HOST:PORT [HOST:PORT ...]   (an endpoint that does not answer maps to {"error": ...})
"""

import json
import socket
import sys

out = {}
for ep in sys.argv[1:]:
    host, _, port = ep.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=5) as sock:
            sock.sendall(b"stats\r\n")
            data = b""
            while not data.endswith(b"END\r\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    raise ConnectionError(f"closed after {len(data)} bytes")
                data += chunk
        stats = {}
        for line in data.decode("ascii", "replace").splitlines():
            parts = line.split(" ", 2)
            if len(parts) == 3 and parts[0] == "STAT":
                stats[parts[1]] = parts[2]
        out[ep] = stats
    except Exception as exc:  # report every failure as data: the caller decides
        out[ep] = {"error": f"{type(exc).__name__}: {exc}"}
print(json.dumps(out))
