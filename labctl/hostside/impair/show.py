"""labctl impair --show, run on a host: the recorded impairments, each checked to be still in force."""

import glob
import json
import subprocess


def qdiscs(iface: str) -> str:
    return subprocess.run(["tc", "qdisc", "show", "dev", iface], capture_output=True, text=True, check=False).stdout


out = []
for path in sorted(glob.glob("/run/labctl/impair/*.json")):
    try:
        with open(path) as handle:
            rec = json.load(handle)
    except (OSError, ValueError):
        continue
    iface = rec.get("iface", "")
    if rec.get("backend") == "netem":
        qd = qdiscs(iface)
        rec["active"] = "netem" in qd
    else:
        unit = "labctl-impair-" + iface
        ok = True
        if rec.get("queue") is not None:
            ok = subprocess.run(["systemctl", "is-active", "-q", unit], check=False).returncode == 0
        if rec.get("rate"):
            qd = qdiscs(iface)
            ok = ok and "tbf" in qd
        rec["active"] = ok
    out.append(rec)
print(json.dumps(out))
