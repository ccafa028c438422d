#!/usr/bin/env python3
"""Synchronized subscriber (SUB + REQ sync): waits for HELLO, syncs, counts messages until END.

Prints JSON: how many numbered messages came, the first and last sequence numbers and gaps.
"""

import argparse
import json
import time

import zmq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connect", required=True, help="PUB endpoint, e.g. tcp://zmq1:5561")
    parser.add_argument("--sync", required=True, help="sync REP endpoint, e.g. tcp://zmq1:5562")
    parser.add_argument("--expect", type=int, default=0, help="fail unless exactly this many messages came (0: any)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds for the whole exchange")
    args = parser.parse_args()

    context = zmq.Context()
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.LINGER, 0)
    subscriber.setsockopt(zmq.RCVHWM, 0)
    subscriber.setsockopt(zmq.SUBSCRIBE, b"")
    subscriber.connect(args.connect)
    sync = context.socket(zmq.REQ)
    sync.setsockopt(zmq.LINGER, 0)
    sync.connect(args.sync)
    deadline = time.monotonic() + args.timeout
    report = {"received": 0, "first": None, "last": None, "gaps": 0, "end": False, "error": ""}

    def recv() -> bytes | None:
        left = deadline - time.monotonic()
        if left <= 0 or not subscriber.poll(int(left * 1000)):
            return None
        return subscriber.recv()

    # 1. wait for a HELLO: our subscription has reached the publisher.
    while (msg := recv()) is not None and msg != b"HELLO":
        pass
    if msg is None:
        report["error"] = "no HELLO from the publisher"
    else:
        # 2. synchronize.
        sync.send(b"")
        left = deadline - time.monotonic()
        if left <= 0 or not sync.poll(int(left * 1000)):
            report["error"] = "no sync reply"
        else:
            sync.recv()
            # 3. numbered messages until END (HELLOs still queued are skipped).
            while (msg := recv()) is not None:
                if msg == b"END":
                    report["end"] = True
                    break
                if msg == b"HELLO":
                    continue
                seq = int(msg)
                if report["first"] is None:
                    report["first"] = seq
                elif seq != report["last"] + 1:
                    report["gaps"] += 1
                report["last"] = seq
                report["received"] += 1
            if not report["end"]:
                report["error"] = f"no END within {args.timeout} s"
    print(json.dumps(report), flush=True)
    subscriber.close()
    sync.close()
    context.term()
    ok = report["end"] and (not args.expect or report["received"] == args.expect)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
