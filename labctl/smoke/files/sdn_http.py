"""Runs on the sdn host: one HTTP request to the controller's REST API; prints {"status", "body"}.

Usage: python3 - METHOD URL BODY   (BODY is JSON text, or "" for none)
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.request


def main(method: str, url: str, body: str) -> None:
    req = urllib.request.Request(
        url,
        method=method,
        data=body.encode() if body else None,
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            status, raw = resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    print(json.dumps({"status": status, "body": json.loads(raw) if raw.strip() else None}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
