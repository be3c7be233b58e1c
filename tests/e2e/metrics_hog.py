#!/usr/bin/python3
"""metrics_hog.py ADDR PORT SOURCE CONNECTIONS SECONDS: a slowloris scraper.

Keeps CONNECTIONS connections from SOURCE open to the metrics listener at
ADDR:PORT for SECONDS (then stops: bounded), sending one byte of a request
that never ends to each every second, and opening a new one whenever the
daemon closes one. Prints "holding N" every second (N: connections alive
for over a second, i.e. served by the daemon rather than refused), then
one summary line:
    opened O refused R ended E held_max H lifetime_max_ms L
refused: closed within 0.5 s of the connect (a 503 or a reset); ended: the
rest the daemon closed; lifetime_max_ms: the longest life of a connection
the daemon ended (its request deadline)."""
import errno
import socket
import sys
import time


def main():
    addr, port, source = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    want, seconds = int(sys.argv[4]), float(sys.argv[5])
    start = time.monotonic()
    end = start + seconds
    conns = {}  # socket -> connect time
    opened = refused = ended = held_max = 0
    lifetime_max = 0.0
    next_byte = next_report = start
    while time.monotonic() < end:
        now = time.monotonic()
        while len(conns) < want:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((source, 0))
            s.settimeout(1)
            try:
                s.connect((addr, port))
            except OSError:
                s.close()
                refused += 1
                break
            s.setblocking(False)
            conns[s] = time.monotonic()
            opened += 1
        send_now = now >= next_byte
        if send_now:
            next_byte = now + 1
        for s, since in list(conns.items()):
            gone = False
            try:
                if send_now:
                    s.send(b"G")
                if s.recv(4096, socket.MSG_DONTWAIT) is not None:
                    gone = True  # a reply (503) or EOF: the daemon ended it
            except OSError as e:
                gone = e.errno not in (errno.EAGAIN, errno.EWOULDBLOCK)
            if gone:
                life = time.monotonic() - since
                if life < 0.5:
                    refused += 1
                else:
                    ended += 1
                    lifetime_max = max(lifetime_max, life)
                s.close()
                del conns[s]
        held = sum(1 for since in conns.values() if now - since > 1)
        held_max = max(held_max, held)
        if now >= next_report:
            print(f"holding {held} of {len(conns)}", flush=True)
            next_report = now + 1
        time.sleep(0.05)
    for s in conns:
        s.close()
    print(f"opened {opened} refused {refused} ended {ended} held_max {held_max} "
          f"lifetime_max_ms {int(lifetime_max * 1000)}", flush=True)


if __name__ == "__main__":
    main()
