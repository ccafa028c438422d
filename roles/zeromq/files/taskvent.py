#!/usr/bin/env python3
"""Pipeline ventilator (PUSH): waits for W workers, tells the sink a batch starts, pushes T tasks.

Run on demand (the guide's "press Enter when the workers are ready" is --workers W: wait until W
workers have connected). Tasks are "TASK <batch> <n> <workload ms>"; the sink gets
"START <batch> <T>" first. Prints JSON.
"""

import argparse
import json
import random
import time
import uuid

import zmq
from zmq.utils.monitor import recv_monitor_message


def wait_for_workers(sender: zmq.Socket, workers: int, timeout: float) -> int:
    """Count workers connecting to the bound PUSH socket until there are enough or time runs out."""
    event = getattr(zmq, "EVENT_HANDSHAKE_SUCCEEDED", zmq.EVENT_ACCEPTED)
    monitor = sender.get_monitor_socket(event)
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < workers:
        left = deadline - time.monotonic()
        if left <= 0 or not monitor.poll(int(left * 1000)):
            break
        if recv_monitor_message(monitor)["event"] == event:
            seen += 1
    sender.disable_monitor()
    monitor.close()
    return seen


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bind", default="tcp://*:5557", help="endpoint to bind the task PUSH socket to")
    parser.add_argument("--sink", required=True, help="sink PULL endpoint, e.g. tcp://zmq1:5558")
    parser.add_argument("--tasks", type=int, default=100, help="number of tasks (T)")
    parser.add_argument("--workers", type=int, default=1, help="wait until this many workers connected")
    parser.add_argument("--batch", default="", help="batch id (default: random)")
    parser.add_argument("--max-workload", type=int, default=10, help="largest random workload, ms")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds to wait for workers / to send")
    args = parser.parse_args()
    batch = args.batch or uuid.uuid4().hex[:12]

    context = zmq.Context()
    sender = context.socket(zmq.PUSH)
    sender.setsockopt(zmq.LINGER, int(args.timeout * 1000))
    sender.setsockopt(zmq.SNDTIMEO, int(args.timeout * 1000))
    sender.bind(args.bind)
    sink = context.socket(zmq.PUSH)
    sink.setsockopt(zmq.LINGER, int(args.timeout * 1000))
    sink.setsockopt(zmq.SNDTIMEO, int(args.timeout * 1000))
    sink.connect(args.sink)
    report = {"batch": batch, "tasks": args.tasks, "sent": 0, "workers": 0, "error": ""}
    report["workers"] = wait_for_workers(sender, args.workers, args.timeout)
    if report["workers"] < args.workers:
        report["error"] = f"only {report['workers']}/{args.workers} workers connected in {args.timeout} s"
    else:
        try:
            sink.send(f"START {batch} {args.tasks}".encode())
            total_ms = 0
            for n in range(args.tasks):
                workload = random.randint(1, max(1, args.max_workload))
                total_ms += workload
                sender.send(f"TASK {batch} {n} {workload}".encode())
                report["sent"] += 1
            report["total_ms"] = total_ms
        except zmq.Again:
            report["error"] = f"send timed out after {args.timeout} s"
    sender.close()
    sink.close()
    context.term()
    print(json.dumps(report), flush=True)
    return 0 if not report["error"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
