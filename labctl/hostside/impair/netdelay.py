"""Delay, jitter and loss in user space, for kernels without sch_netem (labctl impair's fallback).

Packets leaving an interface reach this program through an iptables NFQUEUE rule (queue number in
argv). Each one is dropped with the loss probability, else accepted after delay +/- jitter
milliseconds. It speaks nfnetlink_queue directly (Python 3 standard library only). With the rule's
--queue-bypass, packets pass unharmed when this program is not running.

usage: netdelay.py QUEUE DELAY_MS JITTER_MS LOSS_PERCENT
"""

from __future__ import annotations

import heapq
import os
import random
import socket
import struct
import sys
import threading
import time

NETLINK_NETFILTER = 12
NFNL_SUBSYS_QUEUE = 3
NFQNL_MSG_PACKET, NFQNL_MSG_VERDICT, NFQNL_MSG_CONFIG = 0, 1, 2
NFQA_CFG_CMD, NFQA_CFG_PARAMS = 1, 2
NFQNL_CFG_CMD_BIND = 1
NFQNL_COPY_META = 1
NFQA_PACKET_HDR, NFQA_VERDICT_HDR = 1, 2
NF_DROP, NF_ACCEPT = 0, 1
NLM_F_REQUEST, NLM_F_ACK = 1, 4
NLMSG_ERROR = 2


def _attr(kind: int, data: bytes) -> bytes:
    raw = struct.pack("=HH", 4 + len(data), kind) + data
    return raw + b"\0" * (-len(raw) % 4)


def _message(msg: int, queue: int, attrs: bytes, family: int, flags: int = NLM_F_REQUEST) -> bytes:
    body = struct.pack("=BBH", family, 0, socket.htons(queue)) + attrs
    return struct.pack("=IHHII", 16 + len(body), (NFNL_SUBSYS_QUEUE << 8) | msg, flags, 0, 0) + body


def _packet_ids(data: bytes) -> list[int]:
    ids = []
    offset = 0
    while offset + 16 <= len(data):
        length, kind = struct.unpack_from("=IH", data, offset)
        if length < 16:
            break
        if kind == (NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET:
            pos, end = offset + 20, offset + length
            while pos + 4 <= end:
                alen, atype = struct.unpack_from("=HH", data, pos)
                if alen < 4:
                    break
                if atype & 0x7FFF == NFQA_PACKET_HDR:
                    ids.append(struct.unpack_from("!I", data, pos + 4)[0])
                pos += (alen + 3) & ~3
        elif kind == NLMSG_ERROR:
            (err,) = struct.unpack_from("=i", data, offset + 16)
            if err:
                sys.exit(f"netdelay: netlink error {os.strerror(-err)}")
        offset += (length + 3) & ~3
    return ids


def main() -> None:
    queue, delay, jitter, loss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((0, 0))
    bind = _attr(NFQA_CFG_CMD, struct.pack("!BBH", NFQNL_CFG_CMD_BIND, 0, socket.AF_INET))
    sock.send(_message(NFQNL_MSG_CONFIG, queue, bind, socket.AF_UNSPEC, NLM_F_REQUEST | NLM_F_ACK))
    _packet_ids(sock.recv(65536))
    params = _attr(NFQA_CFG_PARAMS, struct.pack("!IB", 0, NFQNL_COPY_META))
    sock.send(_message(NFQNL_MSG_CONFIG, queue, params, socket.AF_UNSPEC, NLM_F_REQUEST | NLM_F_ACK))
    _packet_ids(sock.recv(65536))
    print(f"netdelay: queue {queue}: delay {delay} ms, jitter {jitter} ms, loss {loss} %", flush=True)

    heap: list[tuple[float, int, int]] = []
    cond = threading.Condition()

    def verdict(packet: int, what: int) -> None:
        attrs = _attr(NFQA_VERDICT_HDR, struct.pack("!II", what, packet))
        sock.send(_message(NFQNL_MSG_VERDICT, queue, attrs, socket.AF_UNSPEC))

    def release() -> None:
        while True:
            with cond:
                while not heap or heap[0][0] > time.monotonic():
                    cond.wait(None if not heap else max(0.0, heap[0][0] - time.monotonic()))
                _when, _seq, packet = heapq.heappop(heap)
            verdict(packet, NF_ACCEPT)

    threading.Thread(target=release, daemon=True).start()
    seq = 0
    while True:
        for packet in _packet_ids(sock.recv(1 << 16)):
            if loss and random.random() * 100.0 < loss:
                verdict(packet, NF_DROP)
                continue
            hold = max(0.0, delay + (random.uniform(-jitter, jitter) if jitter else 0.0)) / 1000.0
            if hold == 0.0:
                verdict(packet, NF_ACCEPT)
                continue
            seq += 1
            with cond:
                heapq.heappush(heap, (time.monotonic() + hold, seq, packet))
                cond.notify()


if __name__ == "__main__":
    main()
