#!/usr/bin/env python3
"""Pub-sub envelope subscriber (SUB): subscribes to envelope keys, reads N messages, prints JSON.

Reports how many messages came per key, sequence gaps within a key, and any message whose payload
does not match its envelope.
"""

import argparse
import json
import time

import zmq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connect", required=True, help="PUB endpoint, e.g. tcp://zmq1:5563")
    parser.add_argument("--key", action="append", help="envelope key to subscribe to (repeatable; '' = all)")
    parser.add_argument("--count", type=int, default=10, help="messages to receive")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for all of them")
    args = parser.parse_args()
    keys = args.key if args.key is not None else [""]

    context = zmq.Context()
    subscriber = context.socket(zmq.SUB)
    subscriber.setsockopt(zmq.LINGER, 0)
    subscriber.connect(args.connect)
    for key in keys:
        subscriber.setsockopt(zmq.SUBSCRIBE, key.encode())
    report = {"subscribed": keys, "received": 0, "keys": {}, "gaps": 0, "bad": [], "first": []}
    last: dict[str, int] = {}
    deadline = time.monotonic() + args.timeout
    while report["received"] < args.count:
        left = deadline - time.monotonic()
        if left <= 0 or not subscriber.poll(int(left * 1000)):
            report["bad"].append(f"timeout after {args.timeout} s")
            break
        frames = subscriber.recv_multipart()
        report["received"] += 1
        if len(frames) != 2:
            report["bad"].append(f"not [key, payload]: {frames!r}")
            continue
        key, payload = (f.decode() for f in frames)
        report["keys"][key] = report["keys"].get(key, 0) + 1
        if not payload.startswith(key + " ") or not payload[len(key) + 1 :].isdigit():
            report["bad"].append(f"payload {payload!r} under key {key!r}")
            continue
        seq = int(payload[len(key) + 1 :])
        if key in last and seq != last[key] + 1:
            report["gaps"] += 1
        last[key] = seq
        if len(report["first"]) < 5:
            report["first"].append([key, payload])
    print(json.dumps(report), flush=True)
    subscriber.close()
    context.term()
    return 0 if report["received"] == args.count and not report["bad"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
