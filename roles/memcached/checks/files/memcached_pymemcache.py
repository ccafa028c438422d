"""pymemcache HashClient round trip (run on a memcached client host by labctl's smoke check).

Usage: python3 - COUNT PREFIX HOST:PORT [HOST:PORT ...]
Sets COUNT keys PREFIX-<i> through one HashClient over all servers, records which server the
client's hasher put each key on, reads them back with get_many, deletes them, and prints one JSON
object: {"servers": {"host:port": keys}, "set": n, "got": n, "mismatched": [...], "deleted": n}.
"""

import json
import sys

from pymemcache.client.hash import HashClient


def main() -> int:
    count, prefix, endpoints = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
    servers = []
    for ep in endpoints:
        host, _, port = ep.rpartition(":")
        servers.append((host, int(port)))
    client = HashClient(servers, connect_timeout=5, timeout=5, ignore_exc=False, retry_attempts=1)
    values = {f"{prefix}-{i}": f"This is python value {i} of {prefix}".encode() for i in range(count)}
    per_server = {ep: 0 for ep in endpoints}
    stored = 0
    for key, value in values.items():
        if client.set(key, value, expire=180, noreply=False):
            stored += 1
        per_server[client.hasher.get_node(key)] += 1
    got = client.get_many(list(values))
    mismatched = sorted(k for k, v in values.items() if got.get(k) != v)
    deleted = sum(1 for key in values if client.delete(key, noreply=False))
    client.close()
    print(
        json.dumps(
            {"servers": per_server, "set": stored, "got": len(got), "mismatched": mismatched[:10], "deleted": deleted}
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
