#!/usr/bin/env python3
"""Pipeline sink (PULL results, PUB kill signal): collects each batch, then tells workers to stop.

"START <batch> <T>" (from the ventilator) announces a batch; "RESULT <batch> <n> <worker>" counts.
When all T distinct results are in (or --batch-timeout passed), the sink publishes "KILL <batch>"
and writes the batch's summary to --status (JSON, last 50 batches) and to stdout.
"""

import argparse
import json
import os
import time

import zmq


def write_status(path: str, finished: dict[str, dict]) -> None:
    if not path:
        return
    tmp = f"{path}.tmp"
    with open(tmp, "w") as f:
        json.dump(finished, f)
    os.replace(tmp, path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="tcp://*:5558", help="endpoint to bind the result PULL socket to")
    parser.add_argument("--control-bind", default="tcp://*:5559", help="endpoint to bind the kill PUB socket to")
    parser.add_argument("--status", default="", help="JSON file with the summaries of finished batches")
    parser.add_argument("--batch-timeout", type=float, default=60.0, help="give up on a batch after this")
    parser.add_argument("--batches", type=int, default=0, help="exit after this many batches (0: forever)")
    args = parser.parse_args()

    context = zmq.Context()
    receiver = context.socket(zmq.PULL)
    receiver.setsockopt(zmq.LINGER, 0)
    receiver.bind(args.bind)
    controller = context.socket(zmq.PUB)
    controller.setsockopt(zmq.LINGER, 1000)
    controller.bind(args.control_bind)
    print(f"sink: PULL {args.bind}, kill PUB {args.control_bind}", flush=True)
    active: dict[str, dict] = {}
    finished: dict[str, dict] = {}
    write_status(args.status, finished)

    def finish(batch: str, complete: bool) -> None:
        b = active.pop(batch)
        summary = {
            "expected": b["expected"],
            "results": b["results"],
            "distinct": len(b["tasks"]),
            "workers": b["workers"],
            "complete": complete,
            "ms": round((time.monotonic() - b["t0"]) * 1000),
        }
        finished[batch] = summary
        while len(finished) > 50:
            finished.pop(next(iter(finished)))
        controller.send(f"KILL {batch}".encode())
        write_status(args.status, finished)
        print(f"sink: batch {batch}: {json.dumps(summary)}", flush=True)

    count = 0
    while not args.batches or count < args.batches:
        if receiver.poll(1000):
            parts = receiver.recv().decode(errors="replace").split()
            if len(parts) not in (3, 4) or parts[0] not in ("START", "RESULT"):
                print(f"sink: ignoring malformed message {parts!r}", flush=True)
                continue
            kind, batch = parts[0], parts[1]
            b = active.setdefault(
                batch, {"expected": None, "results": 0, "tasks": set(), "workers": {}, "t0": time.monotonic()}
            )
            if kind == "START" and parts[2].isdigit():
                b["expected"] = int(parts[2])
            elif kind == "RESULT" and len(parts) == 4:
                b["results"] += 1
                b["tasks"].add(parts[2])
                b["workers"][parts[3]] = b["workers"].get(parts[3], 0) + 1
            if b["expected"] is not None and len(b["tasks"]) >= b["expected"]:
                finish(batch, True)
                count += 1
        for batch in [k for k, b in active.items() if time.monotonic() - b["t0"] > args.batch_timeout]:
            finish(batch, False)
            count += 1
    receiver.close()
    controller.close()
    context.term()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
