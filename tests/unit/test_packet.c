/* Unit tests for packet.c. Every input packet is written out byte by byte
 * (checksums in the inputs are left zero: the parser does not check them),
 * and parsed from a heap copy of exactly the tested length so ASan reports
 * any read past LEN. The RSTs are checked against golden bytes computed
 * outside this code, and their checksums are verified by a summing routine
 * of our own rather than by the one under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "packet.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* 192.0.2.1:50000 -> 198.51.100.10:443, SYN, seq 0x11223344. */
static const uint8_t v4_syn[] = {
	0x45, 0x00, 0x00, 0x28, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
	0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x0a,
	0xc3, 0x50, 0x01, 0xbb, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x02, 0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00,
};

/* Same flow with MSS, SACK-permitted, timestamps, NOP, window scale. */
static const uint8_t v4_syn_opts[] = {
	0x45, 0x00, 0x00, 0x3c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
	0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x0a,
	0xc3, 0x50, 0x01, 0xbb, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00,
	0xa0, 0x02, 0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00,
	0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};

/* IHL 6: one 4-byte IP option (NOP x3 + EOL) before TCP. */
static const uint8_t v4_syn_ipopts[] = {
	0x46, 0x00, 0x00, 0x2c, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
	0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x0a, 0x01, 0x01, 0x01, 0x00,
	0xc3, 0x50, 0x01, 0xbb, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x02, 0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00,
};

/* A SYN carrying 5 bytes of data (TCP Fast Open style). */
static const uint8_t v4_syn_data[] = {
	0x45, 0x00, 0x00, 0x2d, 0x12, 0x34, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00,
	0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x0a,
	0xc3, 0x50, 0x01, 0xbb, 0x11, 0x22, 0x33, 0x44, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x02, 0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00,
	'h', 'e', 'l', 'l', 'o',
};

/* 2001:db8::1:50000 -> [2001:db8::80]:443, SYN, seq 0xdeadbeef. */
static const uint8_t v6_syn[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x14, 0x06, 0x40,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
	0xc3, 0x50, 0x01, 0xbb, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x02, 0xfd, 0x20, 0x00, 0x00, 0x00, 0x00,
};

/* Hop-by-hop -> destination options -> fragment (offset 0, M set) -> TCP
 * with 4 bytes of data. Payload length 8+8+8+20+4 = 48. */
static const uint8_t v6_syn_ext[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x30, 0x00, 0x40,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
	0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, /* HBH, PadN */
	0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, /* DST, PadN */
	0x06, 0x00, 0x00, 0x01, 0xca, 0xfe, 0xf0, 0x0d, /* FRAG off 0, M */
	0xc3, 0x50, 0x01, 0xbb, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x02, 0xfd, 0x20, 0x00, 0x00, 0x00, 0x00,
	0x01, 0x02, 0x03, 0x04,
};

/* AH (len 4 -> (4+2)*4 = 24 bytes, 12-byte ICV) -> TCP. */
static const uint8_t v6_syn_ah[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x33, 0x40,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
	0x06, 0x04, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x01,
	0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa, 0xaa,
	0xc3, 0x50, 0x01, 0xbb, 0xde, 0xad, 0xbe, 0xef, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x02, 0xfd, 0x20, 0x00, 0x00, 0x00, 0x00,
};

/* The RSTs answering v4_syn and v6_syn, computed independently (Python
 * struct + RFC 1071) and pasted here. */
static const uint8_t v4_rst_golden[] = {
	0x45, 0x00, 0x00, 0x28, 0x00, 0x00, 0x40, 0x00, 0x40, 0x06, 0x4e, 0x91,
	0xc6, 0x33, 0x64, 0x0a, 0xc0, 0x00, 0x02, 0x01,
	0x01, 0xbb, 0xc3, 0x50, 0x00, 0x00, 0x00, 0x00, 0x11, 0x22, 0x33, 0x45,
	0x50, 0x14, 0x00, 0x00, 0xba, 0x1e, 0x00, 0x00,
};

static const uint8_t v6_rst_golden[] = {
	0x60, 0x00, 0x00, 0x00, 0x00, 0x14, 0x06, 0x40,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x80,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x01, 0xbb, 0xc3, 0x50, 0x00, 0x00, 0x00, 0x00, 0xde, 0xad, 0xbe, 0xf0,
	0x50, 0x14, 0x00, 0x00, 0xf1, 0x33, 0x00, 0x00,
};

/* Parses the first LEN bytes of PKT from a heap buffer of exactly LEN
 * bytes, so any over-read trips ASan. */
static enum packet_status parse_exact(const uint8_t *pkt, size_t len, struct packet_tcp *out)
{
	uint8_t *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	if (len)
		memcpy(copy, pkt, len);
	enum packet_status status = packet_parse(copy, len, out);
	free(copy);
	return status;
}

/* Parses a modified copy of PKT: BYTE at OFFSET replaced by VALUE. */
static enum packet_status parse_patched(const uint8_t *pkt, size_t len, size_t offset,
				       uint8_t value)
{
	uint8_t buf[PACKET_COPY_RANGE];
	struct packet_tcp tcp;
	assert_true(len <= sizeof(buf) && offset < len);
	memcpy(buf, pkt, len);
	buf[offset] = value;
	return parse_exact(buf, len, &tcp);
}

/* Plain RFC 1071 one's-complement sum, folded, not complemented: a region
 * whose checksum field is right sums to 0xffff. Written apart from
 * packet.c on purpose, byte by byte with odd-length padding. */
static uint16_t ones_sum(const uint8_t *p, size_t len)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < len; i++)
		sum += (i % 2 == 0) ? (uint64_t)p[i] << 8 : p[i];
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/* Checks both checksums of a built RST of LEN bytes. */
static void verify_rst_checksums(const uint8_t *pkt, size_t len)
{
	uint8_t buf[40 + PACKET_RST_MAX];
	size_t n = 0;

	if (pkt[0] >> 4 == 4) {
		assert_int_equal(len, 40);
		assert_int_equal(ones_sum(pkt, 20), 0xffff);
		memcpy(buf, pkt + 12, 8);
		n = 8;
		buf[n++] = 0;
		buf[n++] = 6;
		buf[n++] = 0;
		buf[n++] = (uint8_t)(len - 20);
		memcpy(buf + n, pkt + 20, len - 20);
		n += len - 20;
	} else {
		assert_int_equal(pkt[0] >> 4, 6);
		assert_int_equal(len, 60);
		memcpy(buf, pkt + 8, 32);
		n = 32;
		const uint8_t tail[8] = {0, 0, 0, (uint8_t)(len - 40), 0, 0, 0, 6};
		memcpy(buf + n, tail, 8);
		n += 8;
		memcpy(buf + n, pkt + 40, len - 40);
		n += len - 40;
	}
	assert_int_equal(ones_sum(buf, n), 0xffff);
}

static void test_v4_syn(void **state)
{
	(void)state;
	static const uint8_t src[4] = {192, 0, 2, 1}, dst[4] = {198, 51, 100, 10};
	static const uint8_t zero[12];
	struct packet_tcp tcp;

	assert_int_equal(parse_exact(v4_syn, sizeof(v4_syn), &tcp), PACKET_OK);
	assert_int_equal(tcp.family, AF_INET);
	assert_memory_equal(tcp.saddr, src, 4);
	assert_memory_equal(tcp.daddr, dst, 4);
	assert_memory_equal(tcp.saddr + 4, zero, 12);
	assert_memory_equal(tcp.daddr + 4, zero, 12);
	assert_int_equal(tcp.sport, 50000);
	assert_int_equal(tcp.dport, 443);
	assert_int_equal(tcp.seq, 0x11223344);
	assert_int_equal(tcp.ack, 0);
	assert_int_equal(tcp.flags, PACKET_TCP_SYN);
	assert_int_equal(tcp.payload_len, 0);
	assert_true(packet_is_syn(&tcp));
}

static void test_v4_syn_options(void **state)
{
	(void)state;
	struct packet_tcp tcp;

	assert_int_equal(parse_exact(v4_syn_opts, sizeof(v4_syn_opts), &tcp), PACKET_OK);
	assert_int_equal(tcp.sport, 50000);
	assert_int_equal(tcp.dport, 443);
	assert_int_equal(tcp.seq, 0x11223344);
	assert_int_equal(tcp.payload_len, 0);
	assert_true(packet_is_syn(&tcp));

	assert_int_equal(tcp.payload_offset, sizeof(v4_syn_opts));
	/* Options cut off by the copy range: the fixed header is enough. */
	assert_int_equal(parse_exact(v4_syn_opts, 40, &tcp), PACKET_OK);
	assert_int_equal(tcp.payload_len, 0);

	assert_int_equal(parse_exact(v4_syn_ipopts, sizeof(v4_syn_ipopts), &tcp), PACKET_OK);
	assert_int_equal(tcp.sport, 50000);
	assert_int_equal(tcp.seq, 0x11223344);
	assert_int_equal(tcp.payload_len, 0);
}

static void test_v4_syn_payload(void **state)
{
	(void)state;
	struct packet_tcp tcp;

	assert_int_equal(parse_exact(v4_syn_data, sizeof(v4_syn_data), &tcp), PACKET_OK);
	assert_int_equal(tcp.payload_len, 5);
	/* the payload is the packet's last five bytes */
	assert_int_equal(tcp.payload_offset, sizeof(v4_syn_data) - 5);
	/* The length comes from the IP header, not from what was captured. */
	assert_int_equal(parse_exact(v4_syn_data, 40, &tcp), PACKET_OK);
	assert_int_equal(tcp.payload_len, 5);
}

static void test_v6_syn(void **state)
{
	(void)state;
	struct packet_tcp tcp;

	assert_int_equal(parse_exact(v6_syn, sizeof(v6_syn), &tcp), PACKET_OK);
	assert_int_equal(tcp.family, AF_INET6);
	assert_memory_equal(tcp.saddr, v6_syn + 8, 16);
	assert_memory_equal(tcp.daddr, v6_syn + 24, 16);
	assert_int_equal(tcp.sport, 50000);
	assert_int_equal(tcp.dport, 443);
	assert_int_equal(tcp.seq, 0xdeadbeef);
	assert_int_equal(tcp.flags, PACKET_TCP_SYN);
	assert_int_equal(tcp.payload_len, 0);
	assert_true(packet_is_syn(&tcp));
}

static void test_v6_ext_headers(void **state)
{
	(void)state;
	struct packet_tcp tcp;

	assert_int_equal(parse_exact(v6_syn_ext, sizeof(v6_syn_ext), &tcp), PACKET_OK);
	assert_true(tcp.first_fragment); /* its fragment header: offset 0, M set */
	assert_int_equal(tcp.family, AF_INET6);
	assert_int_equal(tcp.sport, 50000);
	assert_int_equal(tcp.dport, 443);
	assert_int_equal(tcp.seq, 0xdeadbeef);
	assert_int_equal(tcp.payload_len, 4);
	assert_true(packet_is_syn(&tcp));

	assert_int_equal(parse_exact(v6_syn_ah, sizeof(v6_syn_ah), &tcp), PACKET_OK);
	assert_int_equal(tcp.seq, 0xdeadbeef);
	assert_int_equal(tcp.payload_len, 0);

	/* Routing header (type 4, empty) in place of destination options. */
	assert_int_equal(parse_patched(v6_syn_ext, sizeof(v6_syn_ext), 40, 43), PACKET_OK);
}

/* A chain of N empty hop-by-hop headers before TCP. */
static size_t make_hbh_chain(uint8_t *buf, int n)
{
	memcpy(buf, v6_syn, 40);
	buf[6] = 0;
	size_t off = 40;
	for (int i = 0; i < n; i++) {
		const uint8_t hbh[8] = {i + 1 < n ? 0 : 6, 0, 1, 4, 0, 0, 0, 0};
		memcpy(buf + off, hbh, 8);
		off += 8;
	}
	memcpy(buf + off, v6_syn + 40, 20);
	off += 20;
	buf[4] = (uint8_t)((off - 40) >> 8);
	buf[5] = (uint8_t)(off - 40);
	return off;
}

/* The kernel follows a chain of any length: so does the parser, for as
 * far as the captured bytes go (24 headers: 40 + 192 + 20 = 252 bytes). */
static void test_v6_ext_chain_any_length(void **state)
{
	(void)state;
	uint8_t buf[PACKET_COPY_RANGE];
	struct packet_tcp tcp;

	size_t len = make_hbh_chain(buf, 8);
	assert_int_equal(parse_exact(buf, len, &tcp), PACKET_OK);
	assert_int_equal(tcp.seq, 0xdeadbeef);
	len = make_hbh_chain(buf, 9);
	assert_int_equal(parse_exact(buf, len, &tcp), PACKET_OK);
	len = make_hbh_chain(buf, 24);
	assert_int_equal(parse_exact(buf, len, &tcp), PACKET_OK);
	assert_int_equal(tcp.dport, 443);
	/* the TCP header beyond the copy range: left to the guard */
	assert_int_equal(parse_exact(buf, 40 + 24 * 8 + 10, &tcp), PACKET_TRUNCATED);

	/* An extension header claiming more bytes than were captured. */
	memcpy(buf, v6_syn_ext, sizeof(v6_syn_ext));
	buf[41] = 0xff;
	assert_int_equal(parse_exact(buf, sizeof(v6_syn_ext), &tcp), PACKET_TRUNCATED);
}

static void test_fragments(void **state)
{
	(void)state;
	struct packet_tcp tcp;
	uint8_t buf[sizeof(v6_syn_ext)];

	/* v4, MF set and offset 0: the first fragment, TCP header present. */
	memcpy(buf, v4_syn, sizeof(v4_syn));
	buf[6] = 0x20;
	buf[7] = 0x00;
	assert_int_equal(parse_exact(buf, sizeof(v4_syn), &tcp), PACKET_OK);
	assert_true(tcp.first_fragment);
	/* A first fragment that ends inside the TCP options (24 of 40 header
	 * bytes): decided like the SYN it is once reassembled. Unfragmented,
	 * the same bytes are a bad header. */
	memcpy(buf, v4_syn_opts, 20 + 24);
	buf[3] = 20 + 24;
	buf[6] = 0x20;
	assert_int_equal(parse_exact(buf, 20 + 24, &tcp), PACKET_OK);
	assert_true(tcp.first_fragment);
	assert_int_equal(tcp.dport, 443);
	buf[6] = 0x40;
	assert_int_equal(parse_exact(buf, 20 + 24, &tcp), PACKET_BAD_HEADER);
	/* ... but the fixed TCP header must be in it: 8 bytes are not enough */
	buf[3] = 20 + 8;
	buf[6] = 0x20;
	assert_int_equal(parse_exact(buf, 20 + 8, &tcp), PACKET_TRUNCATED);
	memcpy(buf, v4_syn, sizeof(v4_syn));
	buf[6] = 0x20;
	buf[7] = 0x00;
	/* v4, offset 185*8: not the first fragment, whatever the bytes. */
	buf[6] = 0x00;
	buf[7] = 0xb9;
	assert_int_equal(parse_exact(buf, sizeof(v4_syn), &tcp), PACKET_NOT_TCP);
	/* Smallest non-zero offset, with MF and DF bits around it. */
	buf[6] = 0x60;
	buf[7] = 0x01;
	assert_int_equal(parse_exact(buf, sizeof(v4_syn), &tcp), PACKET_NOT_TCP);

	/* v6, fragment offset 1 (in 8-byte units), M clear. */
	memcpy(buf, v6_syn_ext, sizeof(v6_syn_ext));
	buf[58] = 0x00;
	buf[59] = 0x08;
	assert_int_equal(parse_exact(buf, sizeof(v6_syn_ext), &tcp), PACKET_NOT_TCP);
	/* Offset 0 with the reserved bits set still counts as first. */
	buf[59] = 0x07;
	assert_int_equal(parse_exact(buf, sizeof(v6_syn_ext), &tcp), PACKET_OK);
}

static void test_not_tcp(void **state)
{
	(void)state;
	/* 192.0.2.1:5353 -> 198.51.100.10:53 UDP. */
	static const uint8_t v4_udp[] = {
		0x45, 0x00, 0x00, 0x1c, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
		0xc0, 0x00, 0x02, 0x01, 0xc6, 0x33, 0x64, 0x0a,
		0x14, 0xe9, 0x00, 0x35, 0x00, 0x08, 0x00, 0x00,
	};
	struct packet_tcp tcp;

	assert_int_equal(parse_exact(v4_udp, sizeof(v4_udp), &tcp), PACKET_NOT_TCP);
	/* v6 next header UDP (17), ESP (50), no next header (59), ICMPv6. */
	assert_int_equal(parse_patched(v6_syn, sizeof(v6_syn), 6, 17), PACKET_NOT_TCP);
	assert_int_equal(parse_patched(v6_syn, sizeof(v6_syn), 6, 50), PACKET_NOT_TCP);
	assert_int_equal(parse_patched(v6_syn, sizeof(v6_syn), 6, 59), PACKET_NOT_TCP);
	assert_int_equal(parse_patched(v6_syn, sizeof(v6_syn), 6, 58), PACKET_NOT_TCP);
	/* ESP or 59 after a hop-by-hop header. */
	assert_int_equal(parse_patched(v6_syn_ext, sizeof(v6_syn_ext), 40, 50), PACKET_NOT_TCP);
	assert_int_equal(parse_patched(v6_syn_ext, sizeof(v6_syn_ext), 40, 59), PACKET_NOT_TCP);
}

/* Every prefix shorter than the headers must be TRUNCATED (these packets
 * are otherwise valid), never OK; every longer one must parse the same. */
static void check_prefixes(const uint8_t *pkt, size_t full, size_t headers)
{
	struct packet_tcp want, got;

	assert_int_equal(parse_exact(pkt, full, &want), PACKET_OK);
	for (size_t len = 0; len < headers; len++) {
		enum packet_status status = parse_exact(pkt, len, &got);
		if (status != PACKET_TRUNCATED)
			fail_msg("prefix %zu of %zu: %s", len, full, packet_status_name(status));
	}
	for (size_t len = headers; len <= full; len++) {
		memset(&got, 0xa5, sizeof(got));
		assert_int_equal(parse_exact(pkt, len, &got), PACKET_OK);
		assert_int_equal(got.family, want.family);
		assert_memory_equal(got.saddr, want.saddr, 16);
		assert_memory_equal(got.daddr, want.daddr, 16);
		assert_int_equal(got.sport, want.sport);
		assert_int_equal(got.dport, want.dport);
		assert_int_equal(got.seq, want.seq);
		assert_int_equal(got.ack, want.ack);
		assert_int_equal(got.flags, want.flags);
		assert_int_equal(got.payload_len, want.payload_len);
	}
}

static void test_truncation(void **state)
{
	(void)state;
	check_prefixes(v4_syn, sizeof(v4_syn), 40);
	check_prefixes(v4_syn_opts, sizeof(v4_syn_opts), 40);
	check_prefixes(v4_syn_ipopts, sizeof(v4_syn_ipopts), 44);
	check_prefixes(v4_syn_data, sizeof(v4_syn_data), 40);
	check_prefixes(v6_syn, sizeof(v6_syn), 60);
	check_prefixes(v6_syn_ext, sizeof(v6_syn_ext), 84);
	check_prefixes(v6_syn_ah, sizeof(v6_syn_ah), 84);
}

static void test_bad_headers(void **state)
{
	(void)state;
	const size_t n4 = sizeof(v4_syn);
	uint8_t buf[sizeof(v4_syn_opts)];
	struct packet_tcp tcp;

	/* IHL below 5, and IHL 15 with total length 40 (< 60). */
	assert_int_equal(parse_patched(v4_syn, n4, 0, 0x44), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v4_syn, n4, 0, 0x40), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v4_syn, n4, 0, 0x4f), PACKET_BAD_HEADER);
	/* TCP data offset below 5. */
	assert_int_equal(parse_patched(v4_syn, n4, 32, 0x40), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v4_syn, n4, 32, 0x00), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v6_syn, sizeof(v6_syn), 52, 0x40), PACKET_BAD_HEADER);
	/* Total length below IHL*4, and below IHL*4 + 20 by one byte or more. */
	assert_int_equal(parse_patched(v4_syn, n4, 3, 19), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v4_syn, n4, 3, 0), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v4_syn, n4, 3, 20), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v4_syn, n4, 3, 39), PACKET_BAD_HEADER);
	/* Data offset 10 but total length leaves room for only 20 TCP bytes. */
	memcpy(buf, v4_syn_opts, sizeof(v4_syn_opts));
	buf[3] = 40;
	assert_int_equal(parse_exact(buf, sizeof(buf), &tcp), PACKET_BAD_HEADER);
	/* Data offset 15 (60 bytes) on a 40-byte packet. */
	assert_int_equal(parse_patched(v4_syn, n4, 32, 0xf0), PACKET_BAD_HEADER);

	/* v6 payload length shorter than the extension headers (16 < 24), and
	 * covering them but not the TCP header (32 - 24 = 8 < 20). */
	assert_int_equal(parse_patched(v6_syn_ext, sizeof(v6_syn_ext), 5, 16), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v6_syn_ext, sizeof(v6_syn_ext), 5, 32), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v6_syn, sizeof(v6_syn), 5, 19), PACKET_BAD_HEADER);
	assert_int_equal(parse_patched(v6_syn, sizeof(v6_syn), 5, 0), PACKET_BAD_HEADER);
}

static void test_bad_version(void **state)
{
	(void)state;
	static const uint8_t versions[] = {0x00, 0x50, 0x55, 0x70, 0xf0};
	struct packet_tcp tcp;

	for (size_t i = 0; i < ARRAY_LEN(versions); i++) {
		assert_int_equal(parse_patched(v4_syn, sizeof(v4_syn), 0, versions[i]),
				 PACKET_BAD_VERSION);
		assert_int_equal(parse_exact(&versions[i], 1, &tcp), PACKET_BAD_VERSION);
	}
}

static void test_is_syn(void **state)
{
	(void)state;
	struct packet_tcp tcp = {0};

	tcp.flags = PACKET_TCP_SYN;
	assert_true(packet_is_syn(&tcp));
	tcp.flags = PACKET_TCP_SYN | 0xc0; /* ECN setup: SYN+ECE+CWR */
	assert_true(packet_is_syn(&tcp));
	tcp.flags = PACKET_TCP_SYN | PACKET_TCP_ACK;
	assert_false(packet_is_syn(&tcp));
	tcp.flags = PACKET_TCP_ACK;
	assert_false(packet_is_syn(&tcp));
	tcp.flags = PACKET_TCP_RST;
	assert_false(packet_is_syn(&tcp));
	tcp.flags = 0;
	assert_false(packet_is_syn(&tcp));

	/* A SYN-ACK on the wire (flags byte 0x12). */
	uint8_t buf[sizeof(v4_syn)];
	memcpy(buf, v4_syn, sizeof(buf));
	buf[33] = 0x12;
	assert_int_equal(parse_exact(buf, sizeof(buf), &tcp), PACKET_OK);
	assert_int_equal(tcp.flags, PACKET_TCP_SYN | PACKET_TCP_ACK);
	assert_false(packet_is_syn(&tcp));
}

static void test_rst_v4(void **state)
{
	(void)state;
	struct packet_tcp syn;
	uint8_t out[PACKET_RST_MAX];

	assert_int_equal(parse_exact(v4_syn, sizeof(v4_syn), &syn), PACKET_OK);
	memset(out, 0xee, sizeof(out));
	assert_int_equal(packet_build_rst(&syn, out, sizeof(out)), 40);
	assert_memory_equal(out, v4_rst_golden, sizeof(v4_rst_golden));
	verify_rst_checksums(out, 40);
	/* Nothing written past the packet. */
	for (size_t i = 40; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xee);

	/* And the RST parses back as the mirror of the SYN. */
	struct packet_tcp rst;
	assert_int_equal(parse_exact(out, 40, &rst), PACKET_OK);
	assert_memory_equal(rst.saddr, syn.daddr, 4);
	assert_memory_equal(rst.daddr, syn.saddr, 4);
	assert_int_equal(rst.sport, syn.dport);
	assert_int_equal(rst.dport, syn.sport);
	assert_int_equal(rst.seq, 0);
	assert_int_equal(rst.ack, syn.seq + 1);
	assert_int_equal(rst.flags, PACKET_TCP_RST | PACKET_TCP_ACK);

	/* Deterministic whatever the buffer held before. */
	uint8_t again[PACKET_RST_MAX];
	memset(again, 0x5a, sizeof(again));
	assert_int_equal(packet_build_rst(&syn, again, 40), 40);
	assert_memory_equal(again, v4_rst_golden, 40);
}

static void test_rst_v6(void **state)
{
	(void)state;
	struct packet_tcp syn, rst;
	uint8_t out[PACKET_RST_MAX];

	assert_int_equal(parse_exact(v6_syn, sizeof(v6_syn), &syn), PACKET_OK);
	assert_int_equal(packet_build_rst(&syn, out, sizeof(out)), 60);
	assert_memory_equal(out, v6_rst_golden, sizeof(v6_rst_golden));
	verify_rst_checksums(out, 60);

	assert_int_equal(parse_exact(out, 60, &rst), PACKET_OK);
	assert_int_equal(rst.family, AF_INET6);
	assert_memory_equal(rst.saddr, syn.daddr, 16);
	assert_memory_equal(rst.daddr, syn.saddr, 16);
	assert_int_equal(rst.sport, 443);
	assert_int_equal(rst.dport, 50000);
	assert_int_equal(rst.ack, 0xdeadbef0);

	/* Through extension headers: payload 4 -> ack = seq + 1 + 4. */
	assert_int_equal(parse_exact(v6_syn_ext, sizeof(v6_syn_ext), &syn), PACKET_OK);
	assert_int_equal(packet_build_rst(&syn, out, sizeof(out)), 60);
	verify_rst_checksums(out, 60);
	assert_int_equal(parse_exact(out, 60, &rst), PACKET_OK);
	assert_int_equal(rst.ack, 0xdeadbeef + 1 + 4);
}

static void test_rst_ack_arithmetic(void **state)
{
	(void)state;
	struct packet_tcp syn, rst;
	uint8_t out[PACKET_RST_MAX];

	/* SYN with 5 data bytes. */
	assert_int_equal(parse_exact(v4_syn_data, sizeof(v4_syn_data), &syn), PACKET_OK);
	assert_int_equal(packet_build_rst(&syn, out, sizeof(out)), 40);
	verify_rst_checksums(out, 40);
	assert_int_equal(parse_exact(out, 40, &rst), PACKET_OK);
	assert_int_equal(rst.ack, 0x11223344 + 1 + 5);

	/* Sequence wrap. */
	syn.seq = 0xffffffff;
	syn.payload_len = 0;
	assert_int_equal(packet_build_rst(&syn, out, sizeof(out)), 40);
	verify_rst_checksums(out, 40);
	assert_int_equal(parse_exact(out, 40, &rst), PACKET_OK);
	assert_int_equal(rst.ack, 0);
	syn.seq = 0xfffffffe;
	syn.payload_len = 3;
	assert_int_equal(packet_build_rst(&syn, out, sizeof(out)), 40);
	verify_rst_checksums(out, 40);
	assert_int_equal(parse_exact(out, 40, &rst), PACKET_OK);
	assert_int_equal(rst.ack, 2);
	assert_int_equal(rst.seq, 0);

	/* RFC 793 for a segment with ACK: seq = its ack, RST alone, ack 0. */
	syn.flags = PACKET_TCP_ACK | PACKET_TCP_PSH;
	syn.ack = 0x0badf00d;
	assert_int_equal(packet_build_rst(&syn, out, sizeof(out)), 40);
	verify_rst_checksums(out, 40);
	assert_int_equal(parse_exact(out, 40, &rst), PACKET_OK);
	assert_int_equal(rst.flags, PACKET_TCP_RST);
	assert_int_equal(rst.seq, 0x0badf00d);
	assert_int_equal(rst.ack, 0);

	/* Without ACK: seq 0, ack = seq + payload (+1 for FIN), RST|ACK. */
	syn.flags = PACKET_TCP_FIN;
	syn.seq = 1000;
	syn.payload_len = 10;
	assert_int_equal(packet_build_rst(&syn, out, sizeof(out)), 40);
	assert_int_equal(parse_exact(out, 40, &rst), PACKET_OK);
	assert_int_equal(rst.flags, PACKET_TCP_RST | PACKET_TCP_ACK);
	assert_int_equal(rst.seq, 0);
	assert_int_equal(rst.ack, 1011);
}

static void test_rst_cap(void **state)
{
	(void)state;
	struct packet_tcp syn4, syn6;
	uint8_t out[PACKET_RST_MAX];

	assert_int_equal(parse_exact(v4_syn, sizeof(v4_syn), &syn4), PACKET_OK);
	assert_int_equal(parse_exact(v6_syn, sizeof(v6_syn), &syn6), PACKET_OK);
	memset(out, 0xee, sizeof(out));
	for (size_t cap = 0; cap < 40; cap++)
		assert_int_equal(packet_build_rst(&syn4, out, cap), 0);
	for (size_t cap = 0; cap < 60; cap++)
		assert_int_equal(packet_build_rst(&syn6, out, cap), 0);
	for (size_t i = 0; i < sizeof(out); i++)
		assert_int_equal(out[i], 0xee);
	assert_int_equal(packet_build_rst(&syn4, out, 40), 40);
	assert_int_equal(packet_build_rst(&syn6, out, 60), 60);

	syn4.family = 0;
	assert_int_equal(packet_build_rst(&syn4, out, sizeof(out)), 0);
}

static void test_status_names(void **state)
{
	(void)state;
	assert_string_equal(packet_status_name(PACKET_OK), "ok");
	assert_string_equal(packet_status_name(PACKET_TRUNCATED), "truncated");
	assert_string_equal(packet_status_name(PACKET_BAD_VERSION), "bad-version");
	assert_string_equal(packet_status_name(PACKET_BAD_HEADER), "bad-header");
	assert_string_equal(packet_status_name(PACKET_NOT_TCP), "not-tcp");
	assert_string_equal(packet_status_name((enum packet_status)99), "unknown");
}

/* xorshift64*: a fixed seed gives the same run everywhere, unlike rand(). */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint32_t rng(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return (uint32_t)((rng_state * 0x2545f4914f6cdd1du) >> 32);
}

/* Random bytes, two thirds of them nudged towards IPv4/IPv6 carrying TCP so
 * the run reaches the deeper checks; every OK result is cross-checked. */
static void test_random(void **state)
{
	(void)state;
	static const uint8_t v6_next[] = {0, 6, 6, 43, 44, 50, 51, 59, 60, 17};
	size_t ok = 0;

	for (int iter = 0; iter < 100000; iter++) {
		size_t len = rng() % (PACKET_COPY_RANGE + 1);
		uint8_t *buf = malloc(len ? len : 1);
		assert_non_null(buf);
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)rng();

		uint32_t mode = rng() % 3;
		if (mode == 1 && len >= 20) {
			buf[0] = (uint8_t)(0x45 + rng() % 3);
			buf[2] = 0;
			buf[6] &= 0xe0;
			buf[7] = 0;
			buf[9] = 6;
		} else if (mode == 2 && len >= 40) {
			buf[0] = 0x60;
			buf[4] = 0;
			buf[6] = v6_next[rng() % ARRAY_LEN(v6_next)];
			/* Plausible, short ext headers all the way down. */
			for (size_t off = 40; off + 8 <= len; off += 8) {
				buf[off] = v6_next[rng() % ARRAY_LEN(v6_next)];
				buf[off + 1] = (uint8_t)(rng() % 2);
				buf[off + 2] = 0;
				buf[off + 3] &= 0x07;
			}
		}

		struct packet_tcp tcp;
		if (packet_parse(buf, len, &tcp) == PACKET_OK) {
			ok++;
			assert_true(tcp.family == AF_INET || tcp.family == AF_INET6);
			assert_true(len >= (tcp.family == AF_INET ? 40u : 60u));
			uint8_t out[PACKET_RST_MAX];
			size_t n = packet_build_rst(&tcp, out, sizeof(out));
			assert_int_equal(n, tcp.family == AF_INET ? 40 : 60);
			verify_rst_checksums(out, n);
		}
		free(buf);
	}
	/* The nudging must actually reach the success path. */
	assert_true(ok > 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v4_syn),
		cmocka_unit_test(test_v4_syn_options),
		cmocka_unit_test(test_v4_syn_payload),
		cmocka_unit_test(test_v6_syn),
		cmocka_unit_test(test_v6_ext_headers),
		cmocka_unit_test(test_v6_ext_chain_any_length),
		cmocka_unit_test(test_fragments),
		cmocka_unit_test(test_not_tcp),
		cmocka_unit_test(test_truncation),
		cmocka_unit_test(test_bad_headers),
		cmocka_unit_test(test_bad_version),
		cmocka_unit_test(test_is_syn),
		cmocka_unit_test(test_rst_v4),
		cmocka_unit_test(test_rst_v6),
		cmocka_unit_test(test_rst_ack_arithmetic),
		cmocka_unit_test(test_rst_cap),
		cmocka_unit_test(test_status_names),
		cmocka_unit_test(test_random),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
