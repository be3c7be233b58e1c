#!/usr/bin/env python3
"""Writes the hand-made seeds of the packet fuzzer to corpus/packet/.

Run once when the seeds change; the outputs are committed. Documentation
addresses only (RFC 5737, RFC 3849)."""
import os
import struct

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "packet")

V4_CLIENT, V4_SITE = bytes([192, 0, 2, 100]), bytes([198, 51, 100, 10])
V6_CLIENT = bytes.fromhex("20010db8000100000000000000000100")
V6_SITE = bytes.fromhex("20010db8000200000000000000000010")
SYN, RST, ACK, FIN, PSH = 0x02, 0x04, 0x10, 0x01, 0x08
# MSS 1460, SACK permitted, timestamps, NOP, window scale 7: a Linux SYN
LINUX_OPTS = bytes.fromhex("020405b40402080a0001e2400000000001030307")


def tcp(flags, opts=b"", payload=b"", seq=0x12345678, ack=0, sport=40000, dport=443):
    doff = (20 + len(opts)) // 4
    return struct.pack("!HHIIBBHHH", sport, dport, seq, ack, doff << 4, flags, 64240, 0, 0) + opts + payload


def ipv4(seg, proto=6, frag=0x4000, ihl_opts=b"", total=None):
    ihl = (20 + len(ihl_opts)) // 4
    total = 20 + len(ihl_opts) + len(seg) if total is None else total
    return struct.pack("!BBHHHBBH4s4s", 0x40 | ihl, 0, total, 1, frag, 64, proto, 0, V4_CLIENT, V4_SITE) + ihl_opts + seg


def ipv6(seg, nxt=6, ext=b"", plen=None):
    plen = len(ext) + len(seg) if plen is None else plen
    return struct.pack("!IHBB16s16s", 0x60000000, plen, nxt, 64, V6_CLIENT, V6_SITE) + ext + seg


seeds = {
    "v4-syn": ipv4(tcp(SYN)),
    "v4-syn-linux-opts": ipv4(tcp(SYN, LINUX_OPTS)),
    "v4-syn-ip-options": ipv4(tcp(SYN), ihl_opts=bytes([1, 1, 1, 0])),
    "v4-syn-ack": ipv4(tcp(SYN | ACK, ack=0x1000)),
    "v4-ack-payload": ipv4(tcp(ACK | PSH, payload=b"GET / HTTP/1.1\r\n", ack=7)),
    "v4-fin": ipv4(tcp(FIN | ACK, ack=7)),
    "v4-syn-fin-seq-wrap": ipv4(tcp(SYN | FIN, seq=0xffffffff, payload=b"x")),
    "v4-rst": ipv4(tcp(RST)),
    "v4-later-fragment": ipv4(tcp(SYN), frag=0x0010),
    "v4-first-fragment-mf": ipv4(tcp(SYN), frag=0x2000),
    "v4-udp": ipv4(b"\x9c\x40\x00\x35\x00\x08\x00\x00", proto=17),
    "v4-truncated": ipv4(tcp(SYN))[:30],
    "v4-copy-range-cut": ipv4(tcp(ACK, payload=b"A" * 400))[:256],
    "v4-total-short": ipv4(tcp(SYN), total=30),
    "v6-syn": ipv6(tcp(SYN)),
    "v6-syn-linux-opts": ipv6(tcp(SYN, LINUX_OPTS)),
    # hop-by-hop (PadN), then a first fragment, then TCP
    "v6-syn-hbh-frag": ipv6(tcp(SYN), nxt=0,
                            ext=bytes([44, 0, 1, 4, 0, 0, 0, 0]) + bytes([6, 0, 0, 1, 0, 0, 0, 1])),
    "v6-syn-dstopts-routing": ipv6(tcp(SYN), nxt=60,
                                   ext=bytes([43, 0, 1, 4, 0, 0, 0, 0]) + bytes([6, 0, 0, 0, 0, 0, 0, 0])),
    "v6-syn-ah": ipv6(tcp(SYN), nxt=51, ext=bytes([6, 4]) + bytes(22)),
    "v6-later-fragment": ipv6(tcp(SYN), nxt=44, ext=bytes([6, 0, 0, 8, 0, 0, 0, 1])),
    "v6-esp": ipv6(bytes(16), nxt=50),
    "v6-no-next": ipv6(b"", nxt=59),
    "v6-syn-ack": ipv6(tcp(SYN | ACK, ack=99)),
    "v6-payload-short": ipv6(tcp(SYN), plen=10),
    "v6-truncated-ext": ipv6(b"", nxt=0, ext=bytes([6, 30])),
    "v5-version": bytes([0x50]) + bytes(39),
}

os.makedirs(OUT, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
print(f"{len(seeds)} seeds in {OUT}")
