#!/usr/bin/python3
"""Crafted SYNs for evasion.sh: one process per scenario sends every case and
says, per case, what came back to the client.

Run inside the client namespace. The catalog of cases:

    evasion_craft.py list

Sending: the lines of standard input are "CASE DEST [retry]" (DEST one of
the --dest names); each line gets its own source port (--port-base + line
number), so every answer maps to one line. The answers are watched on
--iface with an AF_PACKET socket bound before the first packet leaves.
The frames go out as Ethernet frames to --gw-mac, so nothing here depends
on scapy's own ARP/ND or routing.

    evasion_craft.py send --iface c123 --gw-mac 02:.. --src4 192.0.2.100 \
        --src6 2001:db8:1::100 --dest shop=198.51.100.10,2001:db8:2::10 \
        --dest blog=... --port-base 20000 --wait 3 --quiet 1 <lines

prints one line per input line:

    result CASE DEST SPORT ANSWER TRIES

ANSWER is synack (a SYN-ACK came back), rst (a RST, e.g. gatekeeper's
reject), icmp (an ICMP error quoting the packet) or none; the strongest
seen, in that order. A line marked "retry" that got no SYN-ACK is sent
once more, from another port (SPORT is the last one used, TRIES 2).

Only the addresses given are ever used, and only documentation addresses
are accepted (192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24, 2001:db8::/32);
nothing is sent anywhere else.
"""

import argparse
import ipaddress
import os
import random
import socket
import sys
import threading
import time

# scapy is slow to import: once per scenario, and quiet about its config.
from scapy.all import (  # noqa: E402
    IP,
    TCP,
    Ether,
    HBHOptUnknown,
    IPOption_EOL,
    IPOption_NOP,
    IPOption_Router_Alert,
    IPOption_RR,
    IPOption_Timestamp,
    IPv6,
    IPv6ExtHdrDestOpt,
    IPv6ExtHdrFragment,
    IPv6ExtHdrHopByHop,
    IPv6ExtHdrRouting,
    Raw,
    TCPerror,
    conf,
    get_if_hwaddr,
)

conf.verb = 0

ETH_P_ALL = 0x0003
SOL_PACKET = 263
SO_RCVBUFFORCE = 33

SITE_PORT = 443
# The 40 bytes of TCP options a SYN can carry, the usual ones first.
OPTS40 = [
    ("MSS", 1460),
    ("SAckOK", b""),
    ("Timestamp", (12345, 0)),
    ("NOP", None),
    ("WScale", 7),
    (253, b"\x12\x34"),  # RFC 6994 experimental, 4 bytes
    (254, b"\x56\x78\x9a\xbc\xde\xf0"),  # experimental, 8 bytes
    ("NOP", None),
    ("NOP", None),
    ("NOP", None),
    ("EOL", None),
]
# The usual SYN options (20 bytes): a TCP header of 40 bytes, so a first
# fragment of 24 bytes of TCP ends inside the options.
OPTS_USUAL = [
    ("MSS", 1460),
    ("SAckOK", b""),
    ("Timestamp", (12345, 0)),
    ("NOP", None),
    ("WScale", 7),
]
DATA = b"GET / HTTP/1.1\r\nHost: blog.example\r\n\r\n" + b"x" * 62  # 100 bytes


# ---------------------------------------------------------------- builders


class Ctx:
    """What a builder needs to know: addresses, ports, a fresh sequence."""

    def __init__(self, src, dst, sport):
        self.src, self.dst, self.sport = src, dst, sport
        self.seq = random.randrange(1, 2**32)
        self.ident = random.randrange(1, 2**16)
        self.ident6 = random.randrange(1, 2**32)

    def tcp(self, flags="S", options=None, **kw):
        return TCP(sport=self.sport, dport=SITE_PORT, seq=self.seq, flags=flags,
                   window=64240, options=options or [("MSS", 1460)], **kw)


def v4(ctx, tcp, payload=b"", options=None):
    pkt = IP(src=ctx.src, dst=ctx.dst, id=ctx.ident, ttl=64) / tcp
    if options:
        pkt[IP].options = options
    if payload:
        pkt = pkt / Raw(payload)
    return [pkt]


def v6(ctx, tcp, payload=b"", ext=None):
    pkt = IPv6(src=ctx.src, dst=ctx.dst, hlim=64)
    for hdr in ext or []:
        pkt = pkt / hdr
    pkt = pkt / tcp
    if payload:
        pkt = pkt / Raw(payload)
    return [pkt]


def frag4(ctx, tcp, payload, first, reverse=False):
    """The whole IPv4 datagram (checksums computed on it), cut after FIRST
    bytes of IP payload; the rest in one more fragment."""
    whole = IP(bytes(IP(src=ctx.src, dst=ctx.dst, id=ctx.ident, ttl=64) / tcp / Raw(payload)))
    body = bytes(whole[IP].payload)
    assert first % 8 == 0 and first < len(body)
    hdr = dict(src=ctx.src, dst=ctx.dst, id=ctx.ident, ttl=64, proto=6)
    frags = [IP(flags="MF", frag=0, **hdr) / Raw(body[:first]),
             IP(flags=0, frag=first // 8, **hdr) / Raw(body[first:])]
    return frags[::-1] if reverse else frags


def frag6(ctx, tcp, payload, first, reverse=False):
    whole = IPv6(bytes(IPv6(src=ctx.src, dst=ctx.dst, hlim=64) / tcp / Raw(payload)))
    body = bytes(whole[IPv6].payload)
    assert first % 8 == 0 and first < len(body)
    frags = []
    for off, chunk, more in ((0, body[:first], 1), (first, body[first:], 0)):
        frags.append(IPv6(src=ctx.src, dst=ctx.dst, hlim=64)
                     / IPv6ExtHdrFragment(nh=6, offset=off // 8, m=more, id=ctx.ident6)
                     / Raw(chunk))
    return frags[::-1] if reverse else frags


def dst_opts(n=0):
    """A destination-options header of 8 bytes (PadN), or with N bytes of
    an unknown skippable option (type 0x1e: the top bits 00 say skip it)."""
    if not n:
        return IPv6ExtHdrDestOpt()
    return IPv6ExtHdrDestOpt(options=[HBHOptUnknown(otype=0x1E, optdata=b"\xab" * n)])


def long_dst_opts():
    """More than 256 bytes of destination options: two skippable options
    (Linux allows at most 8 non-padding ones and 7 bytes of padding in a
    row), 8 * (33 + 1) = 272 bytes in all."""
    opts = [HBHOptUnknown(otype=0x1E, optdata=b"\xab" * 200),
            HBHOptUnknown(otype=0x1E, optdata=b"\xcd" * 66)]
    hdr = IPv6ExtHdrDestOpt(options=opts, autopad=0)
    assert len(bytes(hdr)) == 272, len(bytes(hdr))
    return hdr


def rr_option():
    # Record route with four empty slots, then NOP: 20 bytes of options.
    return [IPOption_RR(routers=["0.0.0.0"] * 4), IPOption_NOP()]


def ts_option():
    return [IPOption_Timestamp(flg=0, timestamp=[0, 0, 0])]


# Each case: name -> (family, core, legit, builder(ctx) -> [packets], what).
# core: the server's stack must answer it in the baseline, else the test
# itself is broken. legit: a client may send it to an online site, which
# must still answer it with gatekeeper running.
CASES = {}


def case(name, family, build, what, core=False, legit=False):
    CASES[name] = (family, core, legit, build, what)


for fam in (4, 6):
    ip = v4 if fam == 4 else v6
    frag = frag4 if fam == 4 else frag6
    p = f"v{fam}-"
    case(p + "plain", fam, lambda c, ip=ip: ip(c, c.tcp()), "a plain SYN (control)", True, True)
    case(p + "syn-data", fam, lambda c, ip=ip: ip(c, c.tcp(), DATA), "SYN with 100 bytes of data",
         True, True)
    case(p + "tfo-data", fam,
         lambda c, ip=ip: ip(c, c.tcp(options=[("MSS", 1460), (34, b"")]), DATA),
         "TCP Fast Open cookie request with data", True, True)
    case(p + "syn-psh", fam, lambda c, ip=ip: ip(c, c.tcp("SP")), "SYN+PSH")
    case(p + "syn-urg", fam, lambda c, ip=ip: ip(c, c.tcp("SU", urgptr=1), b"!"), "SYN+URG, 1 urgent byte")
    case(p + "syn-ecn", fam, lambda c, ip=ip: ip(c, c.tcp("SEC")), "SYN+ECE+CWR (ECN setup)", True, True)
    case(p + "syn-ae", fam, lambda c, ip=ip: ip(c, c.tcp("SN")), "SYN+AE (reserved/NS bit)")
    case(p + "syn-fin", fam, lambda c, ip=ip: ip(c, c.tcp("SF")), "SYN+FIN")
    case(p + "syn-rst", fam, lambda c, ip=ip: ip(c, c.tcp("SR")), "SYN+RST")
    case(p + "opts40", fam, lambda c, ip=ip: ip(c, c.tcp(options=OPTS40)),
         "SYN with 40 bytes of TCP options", True, True)
    # fragments; a TCP header of 40 bytes where the cut falls in the options
    for first, opts, tag in ((8, None, "8"), (16, None, "16"), (24, OPTS_USUAL, "24opt")):
        for rev in (False, True):
            case(f"{p}frag{tag}{'-rev' if rev else ''}", fam,
                 lambda c, f=frag, first=first, opts=opts, rev=rev:
                 f(c, c.tcp(options=opts), b"", first, rev),
                 f"fragments, the first with {first} bytes of TCP header"
                 f"{' (cut in the options)' if opts else ''}"
                 f"{', last fragment first' if rev else ', in order'}")
    for rev in (False, True):
        case(f"{p}frag-normal{'-rev' if rev else ''}", fam,
             lambda c, f=frag, rev=rev: f(c, c.tcp(options=OPTS_USUAL), DATA, 48, rev),
             f"SYN+data cut after the TCP header and 8 bytes of data"
             f"{', last fragment first' if rev else ', in order'}", core=not rev)

case("v4-ip-nop-eol", 4, lambda c: v4(c, c.tcp(), options=[IPOption_NOP()] * 3 + [IPOption_EOL()]),
     "IP options NOP NOP NOP EOL", True)
case("v4-ip-rr", 4, lambda c: v4(c, c.tcp(), options=rr_option()), "IP option record route")
case("v4-ip-ts", 4, lambda c: v4(c, c.tcp(), options=ts_option()), "IP option timestamp")
case("v4-ip-ra", 4, lambda c: v4(c, c.tcp(), options=[IPOption_Router_Alert()]),
     "IP option router alert")

case("v6-hbh", 6, lambda c: v6(c, c.tcp(), ext=[IPv6ExtHdrHopByHop()]),
     "hop-by-hop options header", True, True)
case("v6-dst", 6, lambda c: v6(c, c.tcp(), ext=[dst_opts()]),
     "destination options header", True, True)
case("v6-dst-long", 6, lambda c: v6(c, c.tcp(), ext=[long_dst_opts()]),
     "destination options header of 272 bytes (TCP beyond the 256-byte copy)")
case("v6-chain10-dst", 6, lambda c: v6(c, c.tcp(), ext=[dst_opts() for _ in range(10)]),
     "10 destination options headers")
case("v6-chain10-hbh-dst", 6,
     lambda c: v6(c, c.tcp(), ext=[IPv6ExtHdrHopByHop()] + [dst_opts() for _ in range(9)]),
     "hop-by-hop + 9 destination options headers")
case("v6-chain-mix", 6,
     lambda c: v6(c, c.tcp(), ext=[IPv6ExtHdrHopByHop()] + [dst_opts(14)] * 4
                  + [IPv6ExtHdrRouting(type=0, segleft=0, addresses=[])]
                  + [dst_opts()] * 4 + [IPv6ExtHdrFragment(nh=6, offset=0, m=0, id=c.ident6)]),
     "hop-by-hop, 4 dest-opts, routing, 4 dest-opts, atomic fragment (11 headers)")
case("v6-chain30-dst", 6, lambda c: v6(c, c.tcp(), ext=[dst_opts() for _ in range(30)]),
     "30 destination options headers (TCP at byte 280, beyond the copy)")
case("v6-rh0", 6,
     lambda c: v6(c, c.tcp(), ext=[IPv6ExtHdrRouting(type=0, segleft=0, addresses=[])]),
     "routing header type 0, segments left 0")
case("v6-rh0-dst", 6,
     lambda c: v6(c, c.tcp(), ext=[IPv6ExtHdrRouting(type=0, segleft=0, addresses=[]), dst_opts()]),
     "routing header (segments left 0) + destination options")
case("v6-atomic-frag", 6,
     lambda c: v6(c, c.tcp(), ext=[IPv6ExtHdrFragment(nh=6, offset=0, m=0, id=c.ident6)]),
     "atomic fragment (fragment header, offset 0, M=0)")
case("v6-dst-atomic-frag", 6,
     lambda c: v6(c, c.tcp(), ext=[dst_opts(), IPv6ExtHdrFragment(nh=60, offset=0, m=0, id=c.ident6),
                                   dst_opts()]),
     "dest-opts, atomic fragment, dest-opts")
case("v6-frag-dst-long", 6,
     lambda c: v6(c, c.tcp(), ext=[IPv6ExtHdrFragment(nh=60, offset=0, m=0, id=c.ident6),
                                   long_dst_opts()]),
     "atomic fragment + 272 bytes of destination options")


# ---------------------------------------------------------------- sending


DOC_NETS = [ipaddress.ip_network(n) for n in
            ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")]


def documentation_address(text):
    addr = ipaddress.ip_address(text)
    if not any(addr in net for net in DOC_NETS if net.version == addr.version):
        sys.exit(f"evasion_craft: {text} is not a documentation address")
    return text


def parse_dest(text):
    name, addrs = text.split("=", 1)
    a4, a6 = addrs.split(",")
    return name, {4: documentation_address(a4), 6: documentation_address(a6)}


class Watch:
    """The answers seen for each source port."""

    RANK = {"none": 0, "icmp": 1, "rst": 2, "synack": 3}

    def __init__(self, client):
        self.client = client
        self.lock = threading.Lock()
        self.seen = {}  # sport -> answer

    def note(self, sport, answer):
        with self.lock:
            if self.RANK[answer] > self.RANK[self.seen.get(sport, "none")]:
                self.seen[sport] = answer

    def get(self, sport):
        with self.lock:
            return self.seen.get(sport, "none")

    def packet(self, frame):
        ip = frame.getlayer(IP) or frame.getlayer(IPv6)
        if ip is None or ip.dst not in self.client:
            return
        quoted = frame.getlayer(TCPerror)
        if quoted is not None:
            # an ICMP error quoting our packet: its TCP header has our port
            self.note(quoted.sport, "icmp")
            return
        tcp = frame.getlayer(TCP)
        if tcp is None or tcp.sport != SITE_PORT:
            return
        if (tcp.flags & 0x12) == 0x12:
            self.note(tcp.dport, "synack")
        elif tcp.flags & 0x04:
            self.note(tcp.dport, "rst")


class Listener:
    """Every frame that arrives on IFACE, to WATCH.packet, from a thread.

    A plain AF_PACKET socket rather than scapy's sniffer: a big receive
    buffer and PACKET_IGNORE_OUTGOING, so a burst of answers is never lost
    while the slow dissection catches up, and our own frames are not even
    copied. Bound before the first packet leaves, so nothing is missed."""

    PACKET_IGNORE_OUTGOING = 23  # linux/if_packet.h, Linux >= 4.20

    def __init__(self, iface, watch):
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self.sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 16 << 20)
        self.sock.setsockopt(SOL_PACKET, self.PACKET_IGNORE_OUTGOING, 1)
        self.sock.bind((iface, ETH_P_ALL))
        self.sock.settimeout(0.1)
        self.watch = watch
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        # after stop(), what is still queued in the socket is read first:
        # under a slow VM the dissection may lag behind the wire
        while True:
            try:
                frame = self.sock.recv(65535)
            except socket.timeout:
                if not self.running:
                    break
                continue
            self.watch.packet(Ether(frame))

    def stop(self):
        self.running = False
        self.thread.join()
        self.sock.close()


def send_all(args):
    dests = dict(parse_dest(d) for d in args.dest)
    jobs = []
    for n, line in enumerate(sys.stdin):
        words = line.split()
        if not words:
            continue
        name, dest = words[0], words[1]
        if name not in CASES or dest not in dests:
            sys.exit(f"evasion_craft: unknown case or destination: {line.strip()}")
        jobs.append({"case": name, "dest": dest, "retry": "retry" in words[2:],
                     "sport": args.port_base + n, "tries": 0})
    if len(jobs) > args.retry_offset:
        sys.exit("evasion_craft: more lines than --retry-offset ports")

    mac = get_if_hwaddr(args.iface)
    watch = Watch({args.src4, args.src6})
    listener = Listener(args.iface, watch)
    sock = conf.L2socket(iface=args.iface)

    def send(job):
        family = CASES[job["case"]][0]
        src = args.src4 if family == 4 else args.src6
        ctx = Ctx(src, dests[job["dest"]][family], job["sport"])
        for pkt in CASES[job["case"]][3](ctx):
            sock.send(Ether(src=mac, dst=args.gw_mac) / pkt)
        job["tries"] += 1

    def wait_for(batch, deadline):
        # until every line that expects an answer has its SYN-ACK, or the
        # deadline; then a quiet time in which a late (leaked) answer shows
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if all(watch.get(j["sport"]) == "synack" for j in batch if j["retry"]):
                break
            time.sleep(0.05)
        time.sleep(args.quiet)

    try:
        for job in jobs:
            send(job)
        wait_for(jobs, args.wait)
        again = [j for j in jobs if j["retry"] and watch.get(j["sport"]) != "synack"]
        for job in again:
            job["sport"] += args.retry_offset
            send(job)
        if again:
            wait_for(again, args.wait)
    finally:
        sock.close()
        listener.stop()
    for job in jobs:
        print("result", job["case"], job["dest"], job["sport"], watch.get(job["sport"]),
              job["tries"])
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="the catalog: NAME FAMILY CORE LEGIT WHAT")
    s = sub.add_parser("send", help="send the lines of stdin, print the answers")
    s.add_argument("--iface", required=True)
    s.add_argument("--gw-mac", required=True)
    s.add_argument("--src4", required=True, type=documentation_address)
    s.add_argument("--src6", required=True, type=documentation_address)
    s.add_argument("--dest", action="append", required=True, help="NAME=ADDR4,ADDR6")
    s.add_argument("--port-base", type=int, required=True)
    s.add_argument("--retry-offset", type=int, default=5000)
    s.add_argument("--wait", type=float, default=2.0, help="s to wait for expected answers")
    s.add_argument("--quiet", type=float, default=0.5, help="s to keep listening after")
    s.add_argument("--multiplier", type=float,
                   default=float(os.environ.get("E2E_TIMEOUT_MULTIPLIER", "1")))
    args = parser.parse_args()
    if args.cmd == "list":
        for name, (family, core, legit, _, what) in CASES.items():
            print(name, family, int(core), int(legit), what)
        return 0
    args.wait *= args.multiplier
    args.quiet *= args.multiplier
    return send_all(args)


if __name__ == "__main__":
    sys.exit(main())
