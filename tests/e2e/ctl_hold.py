#!/usr/bin/python3
"""ctl_hold.py: hold gatekeeperd's control connections, as a greedy peer.

  ctl_hold.py SOCKET hold N PERIOD SECONDS
      opens N connections one after the other, each asking "hello" at once;
      prints "ready held=H refused=R"; then every PERIOD seconds asks
      "hello" on each connection still held, printing
      "round K answered=A evicted=E" (evicted: "ERR busy" or closed), until
      SECONDS have passed; exits 0.
  ctl_hold.py SOCKET silent
      connects and sends nothing; prints "closed after S s: REPLY" when
      the daemon gives up on it (at most 60 s); exits 0, or 1 if it never
      did.
"""
import socket
import sys
import time


def read_reply(sock):
    """The reply's header line ('OK 12', 'ERR busy 40'), or None when the
    daemon hung up first. The body is read and dropped."""
    data = b""
    while b"\n" not in data:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        data += chunk
    header, rest = data.split(b"\n", 1)
    words = header.decode("ascii", "replace").split()
    size = int(words[-1]) if words and words[-1].isdigit() else 0
    while len(rest) < size:
        try:
            chunk = sock.recv(4096)
        except (ConnectionResetError, socket.timeout):
            return None
        if not chunk:
            return None
        rest += chunk
    return header.decode("ascii", "replace")


def ask(sock):
    try:
        sock.sendall(b"hello\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # a refusal may be waiting: read it
    return read_reply(sock)


def hold(path, n, period, seconds):
    end = time.monotonic() + seconds
    held, refused = [], 0
    for _ in range(n):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(5)
        try:
            sock.connect(path)
        except OSError:
            refused += 1
            sock.close()
            continue
        reply = ask(sock)
        if reply and reply.startswith("OK"):
            held.append(sock)
        else:
            refused += 1
            sock.close()
    print(f"ready held={len(held)} refused={refused}", flush=True)
    rounds = 0
    while time.monotonic() + period <= end:
        time.sleep(period)
        rounds += 1
        answered, evicted = 0, 0
        for sock in list(held):
            reply = ask(sock)
            if reply and reply.startswith("OK"):
                answered += 1
            else:
                evicted += 1
                held.remove(sock)
                sock.close()
        print(f"round {rounds} answered={answered} evicted={evicted}", flush=True)
    time.sleep(max(0.0, end - time.monotonic()))
    for sock in held:
        sock.close()
    return 0


def silent(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(60)
    start = time.monotonic()
    sock.connect(path)
    reply = read_reply(sock)
    elapsed = time.monotonic() - start
    if elapsed >= 59:
        print("never closed", flush=True)
        return 1
    print(f"closed after {elapsed:.2f} s: {reply}", flush=True)
    return 0


def main():
    if len(sys.argv) == 6 and sys.argv[2] == "hold":
        return hold(sys.argv[1], int(sys.argv[3]), float(sys.argv[4]), float(sys.argv[5]))
    if len(sys.argv) == 3 and sys.argv[2] == "silent":
        return silent(sys.argv[1])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
