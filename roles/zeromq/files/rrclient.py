#!/usr/bin/env python3
"""Shared queue client (REQ, connects to the broker's ROUTER frontend): N requests; prints JSON.

Every reply must be [worker name, request]; the report counts replies per worker.
"""

import argparse
import json
import os
import socket

import zmq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connect", required=True, help="broker frontend endpoint, e.g. tcp://zmq1:5570")
    parser.add_argument("--requests", type=int, default=10, help="number of requests")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")
    parser.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}", help="client name in requests")
    args = parser.parse_args()

    context = zmq.Context()
    client = context.socket(zmq.REQ)
    client.setsockopt(zmq.LINGER, 0)
    client.setsockopt(zmq.RCVTIMEO, int(args.timeout * 1000))
    client.setsockopt(zmq.SNDTIMEO, int(args.timeout * 1000))
    client.connect(args.connect)
    report: dict = {"client": args.name, "sent": 0, "replies": 0, "workers": {}, "errors": []}
    for i in range(args.requests):
        request = f"{args.name} {i}".encode()
        try:
            client.send(request)
            report["sent"] += 1
            reply = client.recv_multipart()
        except zmq.Again:
            report["errors"].append(f"request {i}: no reply within {args.timeout} s")
            break
        if len(reply) != 2 or reply[1] != request:
            report["errors"].append(f"request {i}: unexpected reply {reply!r}")
            continue
        report["replies"] += 1
        worker = reply[0].decode()
        report["workers"][worker] = report["workers"].get(worker, 0) + 1
    print(json.dumps(report), flush=True)
    client.close()
    context.term()
    return 0 if report["replies"] == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
