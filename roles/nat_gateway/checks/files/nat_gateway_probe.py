"""Run on a nat_gateway lab host: tiny TCP/UDP endpoints for the NAT smoke checks.

python3 PROBE serve --seconds N --token T --log FILE PORT [PORT ...]
    Listen on TCP 0.0.0.0:PORT for each port; answer every connection with one line
    "labctl-nat TOKEN PEER_ADDRESS LOCAL_PORT" and log "conn PEER LOCAL_PORT" to FILE.
    Writes "ready" to FILE once every port is bound; exits after N seconds.
python3 PROBE connect HOST PORT [--timeout S] [--no-read]
    Connect, print the first line received ("connected" with --no-read: for services that
    wait for the client to speak first); "local ADDRESS PORT" of the socket goes to stderr.
    Exit 0 on a line, 3 on timeout, 4 on refused, 5 on other errors.
python3 PROBE udp HOST PORT [--count N]
    Send N small datagrams (no answer expected).
"""

import argparse
import contextlib
import selectors
import socket
import sys
import time


def serve(args: argparse.Namespace) -> int:
    sel = selectors.DefaultSelector()
    for port in args.ports:
        srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        srv.bind(("0.0.0.0", port))
        srv.listen(16)
        srv.setblocking(False)
        sel.register(srv, selectors.EVENT_READ, port)
    with open(args.log, "a", buffering=1) as log:
        log.write("ready\n")
        deadline = time.monotonic() + args.seconds
        while (left := deadline - time.monotonic()) > 0:
            for key, _ in sel.select(timeout=min(left, 1.0)):
                try:
                    conn, peer = key.fileobj.accept()  # type: ignore[union-attr]
                except OSError:
                    continue
                with conn:
                    conn.settimeout(2)
                    log.write(f"conn {peer[0]} {key.data}\n")
                    with contextlib.suppress(OSError):
                        conn.sendall(f"labctl-nat {args.token} {peer[0]} {key.data}\n".encode())
    return 0


def connect(args: argparse.Namespace) -> int:
    try:
        with socket.create_connection((args.host, args.port), timeout=args.timeout) as sock:
            local = sock.getsockname()
            print(f"local {local[0]} {local[1]}", file=sys.stderr)
            data = b"connected\n" if args.no_read else b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
    except TimeoutError:
        print("timeout")
        return 3
    except ConnectionRefusedError:
        print("refused")
        return 4
    except OSError as exc:
        print(f"error {exc}")
        return 5
    print(data.decode(errors="replace").strip())
    return 0


def udp(args: argparse.Namespace) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for i in range(args.count):
            sock.sendto(f"labctl-nat {i}".encode(), (args.host, args.port))
            time.sleep(0.05)
    print(f"sent {args.count}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("serve")
    p.add_argument("--seconds", type=float, default=20)
    p.add_argument("--token", default="-")
    p.add_argument("--log", required=True)
    p.add_argument("ports", type=int, nargs="+")
    p = sub.add_parser("connect")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--timeout", type=float, default=3)
    p.add_argument("--no-read", action="store_true")
    p = sub.add_parser("udp")
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("--count", type=int, default=3)
    args = parser.parse_args()
    return {"serve": serve, "connect": connect, "udp": udp}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
