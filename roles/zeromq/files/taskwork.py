#!/usr/bin/env python3
"""Pipeline worker (PULL tasks, PUSH results, SUB kill signal): works until the sink says KILL.

A task "TASK <batch> <n> <ms>" sleeps ms and sends "RESULT <batch> <n> <name>" to the sink.
Any message on the control socket ends the worker (exit 0); --idle-timeout ends it too (exit 3).
"""

import argparse
import os
import socket
import time

import zmq


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vent", required=True, help="ventilator PUSH endpoint, e.g. tcp://zmq1:5557")
    parser.add_argument("--sink", required=True, help="sink PULL endpoint, e.g. tcp://zmq1:5558")
    parser.add_argument("--control", required=True, help="sink's kill-signal PUB endpoint, e.g. tcp://zmq1:5559")
    parser.add_argument("--name", default=f"{socket.gethostname()}-{os.getpid()}", help="worker name in results")
    parser.add_argument("--idle-timeout", type=float, default=300.0, help="exit after this long without messages")
    args = parser.parse_args()

    context = zmq.Context()
    receiver = context.socket(zmq.PULL)
    receiver.setsockopt(zmq.LINGER, 0)
    receiver.connect(args.vent)
    sender = context.socket(zmq.PUSH)
    sender.setsockopt(zmq.LINGER, 5000)
    sender.connect(args.sink)
    controller = context.socket(zmq.SUB)
    controller.setsockopt(zmq.LINGER, 0)
    controller.setsockopt(zmq.SUBSCRIBE, b"")
    controller.connect(args.control)
    poller = zmq.Poller()
    poller.register(receiver, zmq.POLLIN)
    poller.register(controller, zmq.POLLIN)
    print(f"worker {args.name}: tasks from {args.vent}, results to {args.sink}", flush=True)
    done = 0
    rc = 3
    last = time.monotonic()
    while time.monotonic() - last < args.idle_timeout:
        events = dict(poller.poll(1000))
        if receiver in events:
            _, batch, n, workload = receiver.recv().decode().split()
            time.sleep(int(workload) / 1000)
            sender.send(f"RESULT {batch} {n} {args.name}".encode())
            done += 1
            last = time.monotonic()
        if controller in events:
            print(f"worker {args.name}: {controller.recv().decode()} after {done} tasks", flush=True)
            rc = 0
            break
    for sock in (receiver, sender, controller):
        sock.close()
    context.term()
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
