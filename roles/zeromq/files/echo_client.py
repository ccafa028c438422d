#!/usr/bin/env python3
"""Request-reply echo client (REQ): sends N requests, checks each reply is the request; prints JSON."""

import argparse
import json
import time

import zmq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connect", required=True, help="REP server endpoint, e.g. tcp://zmq1:5555")
    parser.add_argument("--requests", type=int, default=10, help="number of requests")
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for each reply")
    parser.add_argument("--tag", default="hello", help="text put in every request")
    args = parser.parse_args()

    context = zmq.Context()
    client = context.socket(zmq.REQ)
    client.setsockopt(zmq.LINGER, 0)
    client.setsockopt(zmq.RCVTIMEO, int(args.timeout * 1000))
    client.setsockopt(zmq.SNDTIMEO, int(args.timeout * 1000))
    client.connect(args.connect)
    report = {"sent": 0, "received": 0, "echoed": 0, "errors": [], "zmq_version": zmq.zmq_version()}
    t0 = time.monotonic()
    for i in range(args.requests):
        request = [args.tag.encode(), str(i).encode()]
        try:
            client.send_multipart(request)
            report["sent"] += 1
            reply = client.recv_multipart()
        except zmq.Again:
            report["errors"].append(f"request {i}: no reply within {args.timeout} s")
            break
        report["received"] += 1
        if reply == request:
            report["echoed"] += 1
        else:
            report["errors"].append(f"request {i}: sent {request!r}, got {reply!r}")
    report["seconds"] = round(time.monotonic() - t0, 3)
    print(json.dumps(report), flush=True)
    client.close()
    context.term()
    return 0 if report["echoed"] == args.requests else 1


if __name__ == "__main__":
    raise SystemExit(main())
