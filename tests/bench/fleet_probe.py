#!/usr/bin/python3
"""fleet_probe.py: the timing loops of tests/bench/fleet.sh (run in the
client namespace; gatekeeperctl reaches the boxes through their control
sockets in the file system).

  fleet_probe.py toggles CTL SOCK_A PORT COUNT SECONDS ADDR...
      COUNT toggles of site shop on box A (SOCK_A), alternately
      `offline shop --action reject` and `online shop`, each timed from just
      before gatekeeperctl starts until every ADDR:PORT gives the new verdict
      to a real TCP connect from here (reset: a RST; open: a SYN/ACK); ADDRs
      are polled every POLL_MS (1 ms) while gatekeeperctl runs, and once more
      before the next toggle (a verdict that flipped back is counted).
      Bounded: SECONDS in all, 5 s per toggle. One line per toggle on stdout:
      "i want ctl_ms rev ms_addr1 ms_addr2 ..." (ms -1: not seen in time).
  fleet_probe.py verdict T0_NS ADDR PORT WANT LIMIT_MS
      polls ADDR:PORT (1 ms apart) until it gives WANT (open|reset); prints
      the ms it took since T0_NS (wall clock, `date +%s%N` just before the
      event timed), or -1 after LIMIT_MS.
  fleet_probe.py status T0_NS CTL SOCK LIMIT_MS
      polls `gatekeeperctl -s SOCK status --json` until fleet.stale_since is
      not 0 (prints "stale MS"), then until fleet.connection is "connected"
      and stale_since 0 again (prints "connected MS ENDPOINT"); -1 when the
      limit passed first. Each poll is one gatekeeperctl run (~ a few ms):
      a box stale and connected elsewhere between two polls shows as a new
      endpoint, printed "missed MS connected MS ENDPOINT" (MS: an upper
      bound of both).
"""
import json
import socket
import struct
import subprocess
import sys
import time

POLL_S = 0.001
PROBE_TIMEOUT_S = 0.2


def probe(addr, port):
    """open | reset | dark | error: one TCP connect, closed with a RST."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.settimeout(PROBE_TIMEOUT_S)
    try:
        rc = s.connect_ex((addr, port))
    except OSError:
        rc = -1
    finally:
        s.close()
    if rc == 0:
        return "open"
    if rc == 111:  # ECONNREFUSED
        return "reset"
    if rc in (11, 110):  # EAGAIN / ETIMEDOUT: socket timeout
        return "dark"
    return "error %d" % rc


def ms_since(t0):
    return (time.monotonic() - t0) * 1000.0


def wall_ms_since(t0_ns):
    return (time.time_ns() - t0_ns) / 1e6


def toggles(ctl, sock_a, port, count, seconds, addrs):
    end = time.monotonic() + seconds
    flipped_back = 0
    for i in range(count):
        if time.monotonic() > end:
            print("# stopped after %d toggles: %d s spent" % (i, seconds), file=sys.stderr)
            break
        want = "reset" if i % 2 == 0 else "open"
        args = [ctl, "-s", sock_a] + (["offline", "shop", "--action", "reject"] if want == "reset"
                                      else ["online", "shop"])
        seen = {a: -1.0 for a in addrs}
        t0 = time.monotonic()
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        ctl_ms = -1.0
        out = ""
        while time.monotonic() - t0 < 5.0:
            if ctl_ms < 0 and p.poll() is not None:
                ctl_ms = ms_since(t0)
                out = p.stdout.read()
            for a in addrs:
                if seen[a] < 0 and probe(a, port) == want:
                    seen[a] = ms_since(t0)
            if ctl_ms >= 0 and min(seen.values()) >= 0:
                break
            time.sleep(POLL_S)
        if ctl_ms < 0:
            p.kill()
            out = p.communicate()[0]
        rev = -1
        for word in out.split("revision ")[1:2]:
            try:
                rev = int(word.split()[0])
            except ValueError:
                pass
        if p.returncode != 0:
            print("# toggle %d: gatekeeperctl exit %s: %s" % (i, p.returncode, out.strip()),
                  file=sys.stderr)
        time.sleep(0.02)  # the boxes' presence writes land before the next toggle
        for a in addrs:
            got = probe(a, port)
            if got != want:
                flipped_back += 1
                print("# toggle %d: %s says %s again, want %s" % (i, a, got, want), file=sys.stderr)
        print("%d %s %.2f %d %s" % (i, want, ctl_ms, rev, " ".join("%.2f" % seen[a] for a in addrs)),
              flush=True)
    print("# flipped back: %d" % flipped_back, file=sys.stderr)


def verdict(t0, addr, port, want, limit_ms):
    while wall_ms_since(t0) < limit_ms:
        if probe(addr, port) == want:
            print("%.2f" % wall_ms_since(t0))
            return 0
        time.sleep(POLL_S)
    print("-1")
    return 1


def status(t0, ctl, sock, limit_ms):
    phase, first = "stale", None
    while wall_ms_since(t0) < limit_ms:
        r = subprocess.run([ctl, "-s", sock, "status", "--json"], capture_output=True, text=True)
        try:
            f = json.loads(r.stdout)["fleet"]
        except (ValueError, KeyError):
            f = None
        if f is not None:
            live = f.get("stale_since", 0) == 0 and f.get("connection") == "connected"
            if first is None:
                first = f.get("endpoint")
            if phase == "stale" and not live:
                print("stale %.1f" % wall_ms_since(t0), flush=True)
                phase = "connected"
            elif phase == "stale" and f.get("endpoint") != first:
                # stale and connected elsewhere between two polls: both by now
                ms = wall_ms_since(t0)
                print("missed %.1f connected %.1f %s" % (ms, ms, f.get("endpoint")), flush=True)
                return 0
            elif phase == "connected" and live:
                print("connected %.1f %s" % (wall_ms_since(t0), f.get("endpoint")), flush=True)
                return 0
        time.sleep(0.002)
    print("%s -1" % phase)
    return 1


def main():
    cmd = sys.argv[1]
    if cmd == "toggles":
        ctl, sock_a, port, count, seconds = sys.argv[2], sys.argv[3], int(sys.argv[4]), \
            int(sys.argv[5]), int(sys.argv[6])
        toggles(ctl, sock_a, port, count, seconds, sys.argv[7:])
        return 0
    if cmd == "verdict":
        return verdict(int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6]))
    if cmd == "status":
        return status(int(sys.argv[2]), sys.argv[3], sys.argv[4], int(sys.argv[5]))
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
