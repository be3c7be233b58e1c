/* packet: see packet.h. Every load goes through get16/get32 on byte
 * pointers: the NFQUEUE payload has no alignment guarantee, and reading it
 * through struct casts would break strict aliasing as well. */
#include "packet.h"

#include <string.h>
#include <sys/socket.h>

#define IPV4_HDR_MIN 20
#define IPV6_HDR_LEN 40
#define TCP_HDR_MIN 20
#define IPPROTO_NUM_TCP 6

#define IPV4_FRAG_OFFSET_MASK 0x1fff
#define IPV4_FLAG_MF 0x2000
#define IPV4_FLAG_DF 0x4000

#define IPV6_EXT_HOPOPTS 0
#define IPV6_EXT_ROUTING 43
#define IPV6_EXT_FRAGMENT 44
#define IPV6_EXT_ESP 50
#define IPV6_EXT_AH 51
#define IPV6_EXT_NONE 59
#define IPV6_EXT_DSTOPTS 60
#define IPV6_FRAG_HDR_LEN 8
#define IPV6_FRAG_MORE 0x0001

#define RST_TTL 64
#define RST_V4_LEN (IPV4_HDR_MIN + TCP_HDR_MIN)
#define RST_V6_LEN (IPV6_HDR_LEN + TCP_HDR_MIN)

static inline uint16_t get16(const uint8_t *p)
{
	return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* Fills in where the TCP header starts and how many bytes the IP header
 * says follow it (IP_PAYLOAD, which may exceed what was captured). */
static enum packet_status parse_ipv4(const uint8_t *buf, size_t len, size_t *tcp_off,
				     uint32_t *ip_payload, int *first_fragment)
{
	if (len < IPV4_HDR_MIN)
		return PACKET_TRUNCATED;

	size_t ihl = (size_t)(buf[0] & 0x0f) * 4;
	uint32_t total = get16(buf + 2);
	if (ihl < IPV4_HDR_MIN || total < ihl)
		return PACKET_BAD_HEADER;
	/* Only the first fragment carries the TCP header; the rest are not ours
	 * to judge. A first fragment with MF set is fine. */
	if (get16(buf + 6) & IPV4_FRAG_OFFSET_MASK)
		return PACKET_NOT_TCP;
	if (buf[9] != IPPROTO_NUM_TCP)
		return PACKET_NOT_TCP;
	if (len < ihl)
		return PACKET_TRUNCATED;

	*tcp_off = ihl;
	*ip_payload = total - (uint32_t)ihl;
	*first_fragment = (get16(buf + 6) & IPV4_FLAG_MF) != 0;
	return PACKET_OK;
}

static enum packet_status parse_ipv6(const uint8_t *buf, size_t len, size_t *tcp_off,
				     uint32_t *ip_payload, int *first_fragment)
{
	if (len < IPV6_HDR_LEN)
		return PACKET_TRUNCATED;

	uint32_t payload = get16(buf + 4);
	uint8_t next = buf[6];
	size_t off = IPV6_HDR_LEN;

	/* No cap on the number of headers: the kernel accepts chains of any
	 * length, and a SYN behind a longer one than we allow would have to
	 * be waved through undecided. Each header is at least 8 bytes, so the
	 * walk ends within LEN / 8 steps. */
	while (next != IPPROTO_NUM_TCP) {
		size_t hdr_len;

		switch (next) {
		case IPV6_EXT_HOPOPTS:
		case IPV6_EXT_ROUTING:
		case IPV6_EXT_DSTOPTS:
			if (len - off < 2)
				return PACKET_TRUNCATED;
			hdr_len = ((size_t)buf[off + 1] + 1) * 8;
			break;
		case IPV6_EXT_AH:
			if (len - off < 2)
				return PACKET_TRUNCATED;
			hdr_len = ((size_t)buf[off + 1] + 2) * 4;
			break;
		case IPV6_EXT_FRAGMENT:
			if (len - off < IPV6_FRAG_HDR_LEN)
				return PACKET_TRUNCATED;
			/* Offset is the top 13 bits; the low 3 hold M and reserved. */
			if (get16(buf + off + 2) >> 3)
				return PACKET_NOT_TCP;
			if (get16(buf + off + 2) & IPV6_FRAG_MORE)
				*first_fragment = 1;
			hdr_len = IPV6_FRAG_HDR_LEN;
			break;
		default: /* ESP, no next header, UDP, ICMPv6, unknown */
			return PACKET_NOT_TCP;
		}
		next = buf[off];
		off += hdr_len;
		/* Past the captured bytes: the next iteration or the TCP check
		 * below must not compute len - off. */
		if (off > len)
			return PACKET_TRUNCATED;
	}

	if (off - IPV6_HDR_LEN > payload)
		return PACKET_BAD_HEADER;
	*tcp_off = off;
	*ip_payload = payload - (uint32_t)(off - IPV6_HDR_LEN);
	return PACKET_OK;
}

enum packet_status packet_parse(const uint8_t *buf, size_t len, struct packet_tcp *out)
{
	enum packet_status status;
	size_t off = 0;
	uint32_t ip_payload = 0;
	int family, first_fragment = 0;

	if (len < 1)
		return PACKET_TRUNCATED;
	switch (buf[0] >> 4) {
	case 4:
		family = AF_INET;
		status = parse_ipv4(buf, len, &off, &ip_payload, &first_fragment);
		break;
	case 6:
		family = AF_INET6;
		status = parse_ipv6(buf, len, &off, &ip_payload, &first_fragment);
		break;
	default:
		return PACKET_BAD_VERSION;
	}
	if (status != PACKET_OK)
		return status;

	/* Only the fixed header must be captured: options we never read. */
	if (len - off < TCP_HDR_MIN)
		return PACKET_TRUNCATED;
	const uint8_t *tcp = buf + off;
	uint32_t doff = (uint32_t)(tcp[12] >> 4) * 4;
	/* The fixed header must be inside the packet (bytes past the IP
	 * length are not part of it). A first fragment may end inside the TCP
	 * options: the server sees the whole header once it reassembles, so
	 * this SYN is as real as an unfragmented one and is decided like one. */
	if (ip_payload < TCP_HDR_MIN || doff < TCP_HDR_MIN || (doff > ip_payload && !first_fragment))
		return PACKET_BAD_HEADER;

	out->family = family;
	memset(out->saddr, 0, sizeof(out->saddr));
	memset(out->daddr, 0, sizeof(out->daddr));
	if (family == AF_INET) {
		memcpy(out->saddr, buf + 12, 4);
		memcpy(out->daddr, buf + 16, 4);
	} else {
		memcpy(out->saddr, buf + 8, 16);
		memcpy(out->daddr, buf + 24, 16);
	}
	out->sport = get16(tcp);
	out->dport = get16(tcp + 2);
	out->seq = get32(tcp + 4);
	out->ack = get32(tcp + 8);
	out->flags = tcp[13];
	out->payload_len = doff > ip_payload ? 0 : ip_payload - doff;
	out->payload_offset = off + doff;
	out->first_fragment = first_fragment;
	return PACKET_OK;
}

int packet_is_syn(const struct packet_tcp *tcp)
{
	return (tcp->flags & (PACKET_TCP_SYN | PACKET_TCP_ACK)) == PACKET_TCP_SYN;
}

/* RFC 1071 sum of big-endian 16-bit words, not yet folded. LEN is even
 * for everything we sum. */
static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	return sum;
}

static uint16_t fold(uint32_t sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

size_t packet_build_segment(int family, const uint8_t *saddr, const uint8_t *daddr,
			    uint16_t sport, uint16_t dport, uint32_t seq, uint32_t ack,
			    uint8_t flags, uint8_t *out, size_t cap)
{
	size_t ip_len;

	if (family == AF_INET)
		ip_len = IPV4_HDR_MIN;
	else if (family == AF_INET6)
		ip_len = IPV6_HDR_LEN;
	else
		return 0;
	size_t total = ip_len + TCP_HDR_MIN;
	if (cap < total)
		return 0;

	/* Zero first so every byte we do not set (id, TOS, flow label, window,
	 * urgent pointer, checksums) is deterministic. */
	memset(out, 0, total);
	uint32_t sum;
	if (family == AF_INET) {
		out[0] = 0x45;
		put16(out + 2, (uint16_t)total);
		put16(out + 6, IPV4_FLAG_DF);
		out[8] = RST_TTL;
		out[9] = IPPROTO_NUM_TCP;
		memcpy(out + 12, saddr, 4);
		memcpy(out + 16, daddr, 4);
		put16(out + 10, fold(sum16(out, IPV4_HDR_MIN, 0)));
		sum = sum16(out + 12, 8, 0);
	} else {
		out[0] = 0x60;
		put16(out + 4, TCP_HDR_MIN);
		out[6] = IPPROTO_NUM_TCP;
		out[7] = RST_TTL;
		memcpy(out + 8, saddr, 16);
		memcpy(out + 24, daddr, 16);
		sum = sum16(out + 8, 32, 0);
	}
	/* The rest of the pseudo-header: protocol and TCP length, which sum the
	 * same in the v4 (8+8+16 bit) and v6 (32+24+8 bit) layouts. */
	sum += IPPROTO_NUM_TCP + TCP_HDR_MIN;

	uint8_t *tcp = out + ip_len;
	put16(tcp, sport);
	put16(tcp + 2, dport);
	put32(tcp + 4, seq);
	put32(tcp + 8, ack);
	tcp[12] = (TCP_HDR_MIN / 4) << 4;
	tcp[13] = flags;
	put16(tcp + 16, fold(sum16(tcp, TCP_HDR_MIN, sum)));
	return total;
}

size_t packet_build_rst(const struct packet_tcp *syn, uint8_t *out, size_t cap)
{
	/* RFC 793 reset generation: if the segment acked something, the RST
	 * takes its sequence number from that ack and need not ack back;
	 * otherwise it is seq 0 and acks everything the segment occupied. */
	uint32_t seq = 0, ack = 0;
	uint8_t flags;
	if (syn->flags & PACKET_TCP_ACK) {
		seq = syn->ack;
		flags = PACKET_TCP_RST;
	} else {
		ack = syn->seq + syn->payload_len;
		if (syn->flags & PACKET_TCP_SYN)
			ack++;
		if (syn->flags & PACKET_TCP_FIN)
			ack++;
		flags = PACKET_TCP_RST | PACKET_TCP_ACK;
	}
	return packet_build_segment(syn->family, syn->daddr, syn->saddr, syn->dport, syn->sport,
				    seq, ack, flags, out, cap);
}

const char *packet_status_name(enum packet_status status)
{
	switch (status) {
	case PACKET_OK:
		return "ok";
	case PACKET_TRUNCATED:
		return "truncated";
	case PACKET_BAD_VERSION:
		return "bad-version";
	case PACKET_BAD_HEADER:
		return "bad-header";
	case PACKET_NOT_TCP:
		return "not-tcp";
	}
	return "unknown";
}
