/* Building SYNs: see syn_packet.h. */
#include <netinet/in.h>
#include <string.h>

#include "syn_packet.h"

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)p[i] << 8 | p[i + 1];
	return sum;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

void syn_packet_build(uint8_t pkt[SYN_PACKET_LEN], uint32_t src, uint32_t dst, uint16_t sport,
		      uint16_t dport, uint32_t seq)
{
	uint8_t *tcp = pkt + 20;
	uint32_t sum;

	memset(pkt, 0, SYN_PACKET_LEN);
	pkt[0] = 0x45;
	put16(pkt + 2, SYN_PACKET_LEN);
	pkt[6] = 0x40; /* DF */
	pkt[8] = 64;
	pkt[9] = IPPROTO_TCP;
	put32(pkt + 12, src);
	put32(pkt + 16, dst);
	put16(pkt + 10, csum_fold(csum_add(0, pkt, 20)));
	put16(tcp, sport);
	put16(tcp + 2, dport);
	put32(tcp + 4, seq);
	tcp[12] = 5 << 4;
	tcp[13] = 0x02; /* SYN */
	put16(tcp + 14, 64240);
	/* the pseudo-header: addresses, protocol, TCP length */
	sum = csum_add(0, pkt + 12, 8) + IPPROTO_TCP + 20;
	put16(tcp + 16, csum_fold(csum_add(sum, tcp, 20)));
}

bool syn_packet_documentation_v4(uint32_t addr)
{
	return (addr >> 8) == 0xc00002 /* 192.0.2.0/24 */ ||
	       (addr >> 8) == 0xc63364 /* 198.51.100.0/24 */ ||
	       (addr >> 8) == 0xcb0071; /* 203.0.113.0/24 */
}
