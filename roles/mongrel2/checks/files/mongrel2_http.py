"""One HTTP request with the standard library; prints a JSON line (never raises, so callers can poll).

Usage: python3 - METHOD HOST PORT PATH [BODY] [HEADERS_JSON]
Output: {"status": int|null, "length": int, "sha256": str, "body": str (first 4000 chars), "error": str}
"""

import hashlib
import http.client
import json
import sys

method, host, port, path = sys.argv[1:5]
body = sys.argv[5].encode() if len(sys.argv) > 5 and sys.argv[5] else None
headers = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
out = {"status": None, "length": 0, "sha256": "", "body": "", "error": ""}
try:
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request(method, path, body=body, headers=headers)
    resp = conn.getresponse()
    data = resp.read()
    out.update(
        status=resp.status,
        length=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        body=data[:4000].decode("utf-8", "replace"),
    )
    conn.close()
except Exception as exc:  # report every failure as data: the caller decides
    out["error"] = f"{type(exc).__name__}: {exc}"
print(json.dumps(out))
