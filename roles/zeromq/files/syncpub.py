#!/usr/bin/env python3
"""Synchronized publisher (PUB + REP sync): waits for N subscribers, sends M messages, then END.

Each round: while waiting, publish HELLO every --hello-interval seconds; a subscriber sends its
sync request only after it saw a HELLO, so its subscription is live and it cannot miss message 0.
After N syncs (each answered at once), publish "0" .. "M-1" and "END". A round that does not
complete within --round-timeout seconds of its first sync is dropped (stale subscribers).
"""

import argparse
import time

import zmq


def run_round(publisher: zmq.Socket, sync: zmq.Socket, args: argparse.Namespace) -> bool:
    synced = 0
    first_sync = 0.0
    last_hello = 0.0
    while synced < args.subscribers:
        now = time.monotonic()
        if now - last_hello >= args.hello_interval:
            publisher.send(b"HELLO")
            last_hello = now
        if first_sync and now - first_sync > args.round_timeout:
            print(f"syncpub: round dropped, {synced}/{args.subscribers} synced in {args.round_timeout} s", flush=True)
            return False
        if sync.poll(int(args.hello_interval * 1000)):
            sync.recv()
            sync.send(b"")
            synced += 1
            first_sync = first_sync or time.monotonic()
    for seq in range(args.messages):
        publisher.send(str(seq).encode())
    publisher.send(b"END")
    print(f"syncpub: sent {args.messages} messages + END to {synced} subscribers", flush=True)
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default="tcp://*:5561", help="endpoint to bind the PUB socket to")
    parser.add_argument("--sync-bind", default="tcp://*:5562", help="endpoint to bind the REP sync socket to")
    parser.add_argument("--subscribers", type=int, default=2, help="subscribers to wait for (N)")
    parser.add_argument("--messages", type=int, default=10000, help="messages per round (M)")
    parser.add_argument("--rounds", type=int, default=0, help="exit after this many rounds (0: forever)")
    parser.add_argument("--round-timeout", type=float, default=30.0, help="drop an incomplete round after this")
    parser.add_argument("--hello-interval", type=float, default=0.1, help="seconds between HELLOs while waiting")
    args = parser.parse_args()

    context = zmq.Context()
    publisher = context.socket(zmq.PUB)
    publisher.setsockopt(zmq.SNDHWM, 0)  # no limit: never drop a message of a round
    publisher.setsockopt(zmq.LINGER, 5000)
    publisher.bind(args.bind)
    sync = context.socket(zmq.REP)
    sync.setsockopt(zmq.LINGER, 0)
    sync.bind(args.sync_bind)
    print(f"syncpub: PUB {args.bind}, sync REP {args.sync_bind}, N={args.subscribers} M={args.messages}", flush=True)
    done = 0
    while not args.rounds or done < args.rounds:
        if run_round(publisher, sync, args):
            done += 1
    publisher.close()
    sync.close()
    context.term()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
