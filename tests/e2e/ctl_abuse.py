#!/usr/bin/python3
"""ctl_abuse.py SOCKET MODE [N] [SECONDS]: abuse of gatekeeperd's control socket.

  idle N SECONDS   open N connections, send nothing, hold them SECONDS, close
  bigline N        N times: a 1 MiB line (printable, then a newline)
  random N         N times: 64 KiB of random bytes
  halfclose N      N times: "status\\n" then shutdown(SHUT_WR), reply read to EOF;
                   and a connection shut for writing before sending anything

Prints one line of figures; exits 0 when the daemon did what PROTOCOL.md says
(malformed input answered "ERR malformed" and closed, a half-closed client
still answered), 1 otherwise.
"""
import os
import socket
import sys
import time


def connect(path, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_to_eof(s, limit=1 << 20):
    data = b""
    try:
        while len(data) < limit:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except (ConnectionResetError, socket.timeout):
        pass
    return data


def send_all_tolerant(s, data):
    """Sends until done or the daemon hangs up (it may, mid-line)."""
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass


def idle(path, n, seconds):
    socks, refused = [], 0
    for _ in range(n):
        try:
            socks.append(connect(path, timeout=2))
        except OSError:
            refused += 1
    # the daemon answers what it cannot serve with "ERR busy" and closes
    time.sleep(0.5)
    busy = 0
    for s in socks:
        s.setblocking(False)
        try:
            if s.recv(64).startswith(b"ERR busy"):
                busy += 1
        except BlockingIOError:
            pass
        except OSError:
            pass
    print(f"ready connected {len(socks)} refused {refused} busy {busy}", flush=True)
    time.sleep(seconds)
    for s in socks:
        s.close()
    return len(socks) + refused == n


def bigline(path, n):
    ok = 0
    for _ in range(n):
        s = connect(path)
        send_all_tolerant(s, b"s" * (1 << 20) + b"\n")
        ok += read_to_eof(s).startswith(b"ERR malformed")
        s.close()
    print(f"bigline {ok} of {n} answered ERR malformed and closed")
    return ok == n


def random_bytes(path, n):
    ok = 0
    for _ in range(n):
        s = connect(path)
        send_all_tolerant(s, os.urandom(65536))
        reply = read_to_eof(s)
        # random bytes hold a non-printable byte long before 4096 of them,
        # but about one connection in 400 first makes a printable line that
        # is answered as a request (ERR unknown ...): the malformed line
        # that follows must still be the last answer before the close
        heads = [line for line in reply.splitlines() if line.startswith((b"OK ", b"ERR "))]
        if heads and heads[-1].startswith(b"ERR malformed"):
            ok += 1
        else:
            print(f"random: the answers were {heads!r}")
        s.close()
    print(f"random {ok} of {n} answered ERR malformed and closed")
    return ok == n


def halfclose(path, n):
    ok = quiet = 0
    for _ in range(n):
        s = connect(path)
        s.sendall(b"status\n")
        s.shutdown(socket.SHUT_WR)
        ok += read_to_eof(s).startswith(b"OK ")
        s.close()
        s = connect(path)
        s.shutdown(socket.SHUT_WR)
        quiet += read_to_eof(s) == b""
        s.close()
    print(f"halfclose {ok} of {n} answered after SHUT_WR, {quiet} of {n} silent ones closed")
    return ok == n and quiet == n


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    path, mode = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    if mode == "idle":
        good = idle(path, n, float(sys.argv[4]))
    elif mode == "bigline":
        good = bigline(path, n)
    elif mode == "random":
        good = random_bytes(path, n)
    elif mode == "halfclose":
        good = halfclose(path, n)
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0 if good else 1


if __name__ == "__main__":
    sys.exit(main())
