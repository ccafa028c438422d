#!/usr/bin/env python3
"""Shared queue broker (ROUTER frontend, DEALER backend) built on zmq.proxy (the guide's msgqueue).

Clients (REQ) connect to the frontend, workers (REP) to the backend; the proxy fair-queues
requests to workers and routes every reply back to its client.
"""

import argparse

import zmq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frontend", default="tcp://*:5570", help="endpoint to bind the ROUTER (clients) to")
    parser.add_argument("--backend", default="tcp://*:5571", help="endpoint to bind the DEALER (workers) to")
    args = parser.parse_args()

    context = zmq.Context()
    frontend = context.socket(zmq.ROUTER)
    frontend.setsockopt(zmq.LINGER, 0)
    frontend.bind(args.frontend)
    backend = context.socket(zmq.DEALER)
    backend.setsockopt(zmq.LINGER, 0)
    backend.bind(args.backend)
    print(f"broker: ROUTER {args.frontend} <-> DEALER {args.backend}", flush=True)
    zmq.proxy(frontend, backend)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
