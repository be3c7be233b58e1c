/* syn_packet: IPv4 TCP SYNs built by hand, for the test programs that
 * send their own (the bench's synflood, the e2e syn_ledger). Addresses
 * are in host order. */
#ifndef GK_TESTS_SYN_PACKET_H
#define GK_TESTS_SYN_PACKET_H

#include <stdbool.h>
#include <stdint.h>

#define SYN_PACKET_LEN 40 /* IPv4 + TCP, no options */

/* One SYN from SRC:SPORT to DST:DPORT with sequence number SEQ: DF, TTL
 * 64, both checksums right, ready for a raw or AF_PACKET socket. */
void syn_packet_build(uint8_t pkt[SYN_PACKET_LEN], uint32_t src, uint32_t dst, uint16_t sport,
		      uint16_t dport, uint32_t seq);

/* True inside the documentation ranges (RFC 5737): the only addresses the
 * programs send from or to, so a mistyped argument floods nobody real. */
bool syn_packet_documentation_v4(uint32_t addr);

#endif
