#!/usr/bin/env python3
"""Shared queue worker (REP, connects to the broker's DEALER backend): replies [name, request].

--threads runs several workers in one process, each with its own REP socket and name.
"""

import argparse
import os
import socket
import threading

import zmq


def serve(context: zmq.Context, endpoint: str, name: str, count: int) -> None:
    worker = context.socket(zmq.REP)
    worker.setsockopt(zmq.LINGER, 0)
    worker.connect(endpoint)
    served = 0
    while not count or served < count:
        request = worker.recv_multipart()
        worker.send_multipart([name.encode(), *request])
        served += 1
    worker.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--connect", default="tcp://127.0.0.1:5571", help="broker backend endpoint")
    parser.add_argument("--threads", type=int, default=1, help="workers in this process")
    parser.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}", help="worker name prefix")
    parser.add_argument("--count", type=int, default=0, help="each worker exits after this many requests (0: never)")
    args = parser.parse_args()

    context = zmq.Context()
    threads = [
        threading.Thread(target=serve, args=(context, args.connect, f"{args.name}-{i}", args.count), daemon=True)
        for i in range(1, args.threads + 1)
    ]
    for t in threads:
        t.start()
    print(f"rrworker: {args.threads} worker(s) {args.name}-* on {args.connect}", flush=True)
    for t in threads:
        t.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
