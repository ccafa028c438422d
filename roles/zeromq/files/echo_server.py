#!/usr/bin/env python3
"""Request-reply echo server (REP): every request comes back unchanged, frame for frame."""

import argparse

import zmq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bind", default="tcp://*:5555", help="endpoint to bind the REP socket to")
    parser.add_argument("--count", type=int, default=0, help="exit after this many requests (0: serve forever)")
    args = parser.parse_args()

    context = zmq.Context()
    server = context.socket(zmq.REP)
    server.setsockopt(zmq.LINGER, 1000)
    server.bind(args.bind)
    print(f"echo: REP bound to {args.bind} (libzmq {zmq.zmq_version()})", flush=True)
    served = 0
    while not args.count or served < args.count:
        server.send_multipart(server.recv_multipart())
        served += 1
    server.close()
    context.term()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
