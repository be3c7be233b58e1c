/* packet: bounds-checked parsing of the bytes NFQUEUE hands us, and the
 * RST we answer an offline "reject" site's SYN with.
 *
 * The queue copies only the first bytes of each packet (the copy range), so
 * the parser never assumes the whole packet is there: it needs the IP
 * header, any IPv6 extension headers, and the fixed TCP header, nothing
 * more. Lengths that describe the full packet (IPv4 total length, IPv6
 * payload length) are taken from the headers, not from the captured size. */
#ifndef GK_PACKET_H
#define GK_PACKET_H

#include <stddef.h>
#include <stdint.h>

#define PACKET_TCP_FIN 0x01
#define PACKET_TCP_SYN 0x02
#define PACKET_TCP_RST 0x04
#define PACKET_TCP_PSH 0x08
#define PACKET_TCP_ACK 0x10

/* Enough for IPv6 + a few extension headers + TCP with options. */
#define PACKET_COPY_RANGE 256
/* The largest RST we build: IPv6 header + TCP header without options. */
#define PACKET_RST_MAX 60

enum packet_status {
	PACKET_OK = 0,
	PACKET_TRUNCATED,   /* headers do not fit in the captured bytes */
	PACKET_BAD_VERSION, /* not IPv4 or IPv6 */
	PACKET_BAD_HEADER,  /* inconsistent lengths, bad IHL, bad data offset */
	PACKET_NOT_TCP,     /* another protocol, or a non-first fragment */
};

struct packet_tcp {
	int family; /* AF_INET or AF_INET6 */
	uint8_t saddr[16], daddr[16]; /* network order; v4 in the first 4 */
	uint16_t sport, dport;        /* host order */
	uint32_t seq, ack;            /* host order */
	uint8_t flags;                /* PACKET_TCP_* */
	uint32_t payload_len;         /* TCP payload bytes per the IP header */
	/* Where the payload starts in the parsed buffer; the buffer may end
	 * before it does (the queue's copy range): the captured payload is
	 * BUF[payload_offset .. min(LEN, payload_offset + payload_len)). */
	size_t payload_offset;
	/* The first fragment of a fragmented datagram (IPv4 MF, or an IPv6
	 * fragment header with more to come): the rest of the TCP header and
	 * the payload may be in later fragments. */
	int first_fragment;
};

/* Parses BUF[0..LEN) as an IP packet carrying TCP. PACKET_OK needs the
 * fixed TCP header (ports, flags) in the captured bytes; IPv6 extension
 * headers are followed for as far as the captured bytes go (no count
 * limit: each is at least 8 bytes, so the walk is bounded by LEN). */
enum packet_status packet_parse(const uint8_t *buf, size_t len, struct packet_tcp *out);

/* SYN set and ACK clear: the first packet of a new connection. */
int packet_is_syn(const struct packet_tcp *tcp);

/* Builds, in OUT (CAP bytes), the RST+ACK that refuses the connection SYN
 * opened: addresses and ports swapped, seq 0, ack = SYN's seq + 1 + payload,
 * IP and TCP checksums filled. Returns the packet's length, 0 if CAP is too
 * small. */
size_t packet_build_rst(const struct packet_tcp *syn, uint8_t *out, size_t cap);

/* Builds, in OUT (CAP bytes), a bare TCP segment (no options, no payload)
 * from SADDR:SPORT to DADDR:DPORT of FAMILY with SEQ, ACK and FLAGS, IP and
 * TCP checksums filled: the cut's probes (cut.h). Addresses in network
 * order, the rest in host order. The length, 0 if CAP is too small. */
size_t packet_build_segment(int family, const uint8_t *saddr, const uint8_t *daddr,
			    uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
			    uint8_t flags, uint8_t *out, size_t cap);

const char *packet_status_name(enum packet_status status);

#endif
