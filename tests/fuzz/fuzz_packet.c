/* Fuzz target: packet_parse on whatever NFQUEUE could hand us, and
 * packet_build_rst on every packet that parses. The RST must itself parse
 * as a valid RST with addresses and ports swapped, and carry checksums
 * that verify: a peer drops an RST with a bad one, and the "reject"
 * action would silently become "drop". */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "packet.h"
#include "fuzz_check.h"

static uint32_t sum16(const uint8_t *p, size_t len, uint32_t sum)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

/* A correct checksum makes the one's-complement sum of the covered bytes
 * 0xffff; computed here independently of packet.c. */
static int sum_ok(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

static void check_rst(const struct packet_tcp *syn, const uint8_t *rst, size_t len)
{
	struct packet_tcp back;
	size_t addr_len = syn->family == AF_INET ? 4 : 16;
	size_t ip_len = syn->family == AF_INET ? 20 : 40;
	uint32_t pseudo;

	CHECK(len == ip_len + 20);
	CHECK(packet_parse(rst, len, &back) == PACKET_OK);
	CHECK(back.family == syn->family);
	CHECK(memcmp(back.saddr, syn->daddr, addr_len) == 0);
	CHECK(memcmp(back.daddr, syn->saddr, addr_len) == 0);
	CHECK(back.sport == syn->dport && back.dport == syn->sport);
	CHECK(back.flags & PACKET_TCP_RST);
	CHECK(!(back.flags & (PACKET_TCP_SYN | PACKET_TCP_FIN)));
	CHECK(back.payload_len == 0);
	if (syn->flags & PACKET_TCP_ACK) {
		/* RFC 793: take the sequence number from the segment's ack */
		CHECK(back.flags == PACKET_TCP_RST && back.seq == syn->ack);
	} else {
		uint32_t want = syn->seq + syn->payload_len + !!(syn->flags & PACKET_TCP_SYN) +
				!!(syn->flags & PACKET_TCP_FIN);
		CHECK(back.flags == (PACKET_TCP_RST | PACKET_TCP_ACK));
		CHECK(back.seq == 0 && back.ack == want);
	}

	if (syn->family == AF_INET) {
		CHECK(sum_ok(sum16(rst, 20, 0)));
		pseudo = sum16(rst + 12, 8, 0);
	} else {
		pseudo = sum16(rst + 8, 32, 0);
	}
	pseudo += 6 /* TCP */ + 20 /* TCP length */;
	CHECK(sum_ok(sum16(rst + ip_len, 20, pseudo)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct packet_tcp tcp;
	uint8_t rst[PACKET_RST_MAX];
	enum packet_status status;
	size_t len;

	/* An exact-size heap copy: ASan sees any read past the captured bytes
	 * (libFuzzer's own buffer is exact-size too, but be explicit). */
	uint8_t *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	memset(&tcp, 0, sizeof(tcp));
	status = packet_parse(buf, size, &tcp);
	CHECK(packet_status_name(status) != NULL);
	if (status != PACKET_OK)
		goto out;

	CHECK(tcp.family == AF_INET || tcp.family == AF_INET6);
	if (tcp.family == AF_INET) {
		static const uint8_t zero[12];
		CHECK(memcmp(tcp.saddr + 4, zero, 12) == 0 && memcmp(tcp.daddr + 4, zero, 12) == 0);
	}
	(void)packet_is_syn(&tcp);

	len = packet_build_rst(&tcp, rst, sizeof(rst));
	CHECK(len > 0);
	check_rst(&tcp, rst, len);
	/* too small a buffer is refused, not overrun (ASan would see it) */
	uint8_t *small = malloc(len - 1);
	if (small) {
		CHECK(packet_build_rst(&tcp, small, len - 1) == 0);
		free(small);
	}
out:
	free(buf);
	return 0;
}
