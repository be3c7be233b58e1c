/* sni_hold: the first client segments of each connection to a shared
 * endpoint, held (their verdicts not given yet) until the ClientHello in
 * them says which server name the client asks for.
 *
 * The SNI queue's worker owns one; nothing here touches the queue: each
 * call says which packets (NFQUEUE ids) are decided and how the worker
 * should go on. Bounded: at most MAX_PENDING flows are held at once, each
 * for at most HOLD_MS and with at most SNI_HOLD_MAX_IDS packets. When the
 * table is full, a segment that holds a whole ClientHello is still decided
 * by its name; only what would need holding falls to the caller's default
 * (counted): a flood of half-sent hellos costs memory up to the bound, and
 * the clients that send their hello at once do not notice it. */
#ifndef GK_SNI_HOLD_H
#define GK_SNI_HOLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "clienthello.h"

/* Packets held per flow: a ClientHello fits in two or three segments. */
#define SNI_HOLD_MAX_IDS 8

struct sni_flow {
	uint8_t family;
	uint8_t saddr[16], daddr[16]; /* network order, v4 in the first 4 */
	uint16_t sport, dport;        /* host order */
};

enum sni_result {
	SNI_HELD,     /* kept: its verdict waits for more of the hello */
	SNI_NAME,     /* the hello names a server (NAME) */
	SNI_NO_NAME,  /* a whole hello without a name */
	SNI_INVALID,  /* not a ClientHello, two versions of it, too large, too many segments */
	SNI_TIMEOUT,  /* held for HOLD_MS without the whole hello */
	SNI_FULL,     /* MAX_PENDING flows held already, and not a whole hello: not kept */
};

struct sni_decision {
	enum sni_result result;
	struct sni_flow flow;
	char name[SERVER_NAME_MAX + 1]; /* SNI_NAME */
	/* The packets to decide, in the order they came (the held ones, then
	 * the one just added); each gets the same verdict. */
	uint32_t ids[SNI_HOLD_MAX_IDS];
	uint32_t marks[SNI_HOLD_MAX_IDS]; /* each packet's own mark, kept */
	size_t n_ids;
	/* The client's sequence number of its first data byte, and of the byte
	 * after the last one seen. The server received none of the held bytes,
	 * so an RST to it must carry FIRST_SEQ (RFC 5961: exactly its next
	 * expected byte, or it only answers with a challenge ACK). */
	uint32_t first_seq, next_seq;
	/* The acknowledgment number of the client's latest segment: the
	 * server's next sequence number, which an RST to the client carries. */
	uint32_t ack;
};

struct sni_hold;

struct sni_hold *sni_hold_new(uint32_t max_pending, uint32_t hold_ms);
/* Flows held from now on are held HOLD_MS (those held already keep their
 * deadline, and expire in arrival order: a shorter hold takes effect for
 * new flows once the older ones are gone, at most the old hold later). */
void sni_hold_set_hold_ms(struct sni_hold *hold, uint32_t hold_ms);
/* Frees the held flows too: their packets must be decided by the caller
 * first (sni_hold_drain) or left to the kernel (the queue is closing). */
void sni_hold_free(struct sni_hold *hold);

/* One client segment of FLOW: DATA[0..LEN) at SEQ, acknowledging ACK,
 * NFQUEUE packet ID with mark MARK. OUT says what to do; for SNI_HELD nothing yet. A
 * segment without payload (the handshake's last ACK) only registers where
 * the flow's data starts: the caller accepts it at once, never held. */
void sni_hold_segment(struct sni_hold *hold, const struct sni_flow *flow, uint32_t seq,
		      uint32_t ack, const uint8_t *data, size_t len, uint32_t id, uint32_t mark,
		      uint64_t now_ms, struct sni_decision *out);

/* The oldest flow held past its HOLD_MS (SNI_TIMEOUT) in OUT, removed;
 * false when none is due. */
bool sni_hold_expire(struct sni_hold *hold, uint64_t now_ms, struct sni_decision *out);
/* Any held flow in OUT (its result SNI_TIMEOUT), removed; false when none
 * is left: for a reload or a stop. */
bool sni_hold_drain(struct sni_hold *hold, struct sni_decision *out);

size_t sni_hold_count(const struct sni_hold *hold);
/* When the oldest held flow is due (clock ms); UINT64_MAX when none. */
uint64_t sni_hold_next_due(const struct sni_hold *hold);

const char *sni_result_name(enum sni_result result);

#endif
