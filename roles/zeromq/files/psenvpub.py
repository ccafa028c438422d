#!/usr/bin/env python3
"""Pub-sub envelope publisher (PUB): multipart [key, payload] for every key, every interval.

The payload is "<key> <seq>", so a subscriber can check it got only its key's messages, in order.
"""

import argparse
import time

import zmq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="tcp://*:5563", help="endpoint to bind the PUB socket to")
    parser.add_argument("--keys", nargs="+", default=["A", "B"], help="envelope keys to publish")
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between rounds (one message per key)")
    parser.add_argument("--rounds", type=int, default=0, help="exit after this many rounds (0: forever)")
    args = parser.parse_args()

    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    publisher.setsockopt(zmq.LINGER, 1000)
    publisher.bind(args.bind)
    print(f"psenvpub: PUB bound to {args.bind}, keys {args.keys}", flush=True)
    seq = 0
    while not args.rounds or seq < args.rounds:
        for key in args.keys:
            publisher.send_multipart([key.encode(), f"{key} {seq}".encode()])
        seq += 1
        time.sleep(args.interval)
    publisher.close()
    context.term()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
