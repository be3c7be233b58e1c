#include "sni_hold.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* One held flow: its bytes so far and the packets waiting for a verdict. */
struct pending {
	struct sni_flow flow;
	uint64_t due_ms;
	uint32_t ids[SNI_HOLD_MAX_IDS];
	uint32_t marks[SNI_HOLD_MAX_IDS];
	size_t n_ids;
	uint32_t next_seq, ack;
	struct pending *older, *newer; /* arrival order: the oldest is due first */
	struct clienthello_stream stream;
};

struct sni_hold {
	uint32_t max_pending, hold_ms;
	size_t count;
	struct pending **table; /* open addressing, linear probing */
	size_t mask;
	struct pending *oldest, *newest;
};

static size_t flow_hash(const struct sni_flow *f)
{
	uint64_t h = 0xcbf29ce484222325ull;
	const uint8_t *parts[] = {f->saddr, f->daddr};

	for (size_t p = 0; p < 2; p++)
		for (size_t i = 0; i < 16; i++)
			h = (h ^ parts[p][i]) * 0x100000001b3ull;
	h = (h ^ f->sport) * 0x100000001b3ull;
	h = (h ^ f->dport) * 0x100000001b3ull;
	h = (h ^ f->family) * 0x100000001b3ull;
	return (size_t)(h ^ h >> 32);
}

static bool flow_equal(const struct sni_flow *a, const struct sni_flow *b)
{
	return a->family == b->family && a->sport == b->sport && a->dport == b->dport &&
	       memcmp(a->saddr, b->saddr, 16) == 0 && memcmp(a->daddr, b->daddr, 16) == 0;
}

/* The slot of FLOW, or the empty slot where it would go. */
static size_t slot_of(const struct sni_hold *h, const struct sni_flow *flow)
{
	size_t i = flow_hash(flow) & h->mask;

	/* at most half full: an empty slot ends every probe */
	while (h->table[i] && !flow_equal(&h->table[i]->flow, flow))
		i = (i + 1) & h->mask;
	return i;
}

struct sni_hold *sni_hold_new(uint32_t max_pending, uint32_t hold_ms)
{
	struct sni_hold *h = calloc(1, sizeof(*h));
	size_t capacity = 16;

	if (!h)
		return NULL;
	while (capacity < (size_t)max_pending * 2)
		capacity *= 2;
	h->table = calloc(capacity, sizeof(*h->table));
	if (!h->table) {
		free(h);
		return NULL;
	}
	h->mask = capacity - 1;
	h->max_pending = max_pending;
	h->hold_ms = hold_ms;
	return h;
}

void sni_hold_set_hold_ms(struct sni_hold *h, uint32_t hold_ms)
{
	h->hold_ms = hold_ms;
}

/* Takes P out of the table (backward-shift deletion: no tombstones, so
 * probes stay short however many flows come and go) and the age list. */
static void forget(struct sni_hold *h, struct pending *p)
{
	size_t i = slot_of(h, &p->flow), j = i;

	h->table[i] = NULL;
	for (;;) {
		size_t home;

		j = (j + 1) & h->mask;
		if (!h->table[j])
			break;
		home = flow_hash(&h->table[j]->flow) & h->mask;
		/* J moves back into the hole at I unless its home lies
		 * cyclically in (I, J] (then the hole does not cut its probe) */
		if (!(i <= j ? (i < home && home <= j) : (i < home || home <= j))) {
			h->table[i] = h->table[j];
			h->table[j] = NULL;
			i = j;
		}
	}
	if (p->older)
		p->older->newer = p->newer;
	else
		h->oldest = p->newer;
	if (p->newer)
		p->newer->older = p->older;
	else
		h->newest = p->older;
	h->count--;
}

/* Fills OUT with P's packets and RESULT, and frees P. */
static void decide(struct sni_hold *h, struct pending *p, enum sni_result result,
		   struct sni_decision *out)
{
	out->result = result;
	out->flow = p->flow;
	memcpy(out->ids, p->ids, p->n_ids * sizeof(*p->ids));
	memcpy(out->marks, p->marks, p->n_ids * sizeof(*p->marks));
	out->n_ids = p->n_ids;
	out->first_seq = p->stream.start_seq;
	out->next_seq = p->next_seq;
	out->ack = p->ack;
	forget(h, p);
	free(p);
}

void sni_hold_free(struct sni_hold *h)
{
	if (!h)
		return;
	while (h->oldest) {
		struct pending *p = h->oldest;

		forget(h, p);
		free(p);
	}
	free(h->table);
	free(h);
}

static struct pending *start(struct sni_hold *h, size_t slot, const struct sni_flow *flow,
			     uint32_t seq, uint64_t now_ms)
{
	struct pending *p;

	if (h->count >= h->max_pending || !(p = malloc(sizeof(*p))))
		return NULL;
	p->flow = *flow;
	p->due_ms = now_ms + h->hold_ms;
	p->n_ids = 0;
	p->next_seq = seq;
	p->ack = 0;
	p->older = h->newest;
	p->newer = NULL;
	if (h->newest)
		h->newest->newer = p;
	else
		h->oldest = p;
	h->newest = p;
	clienthello_stream_init(&p->stream, seq);
	h->table[slot] = p;
	h->count++;
	return p;
}

static bool seq_after(uint32_t a, uint32_t b)
{
	return (int32_t)(a - b) > 0;
}

void sni_hold_segment(struct sni_hold *h, const struct sni_flow *flow, uint32_t seq,
		      uint32_t ack, const uint8_t *data, size_t len, uint32_t id, uint32_t mark,
		      uint64_t now_ms, struct sni_decision *out)
{
	size_t slot = slot_of(h, flow);
	struct pending *p = h->table[slot];
	struct clienthello ch;
	enum clienthello_add added;
	enum clienthello_status status;

	memset(out, 0, sizeof(*out));
	out->flow = *flow;
	if (!p) {
		/* the handshake's last ACK (no payload) comes first and says
		 * where the data starts; without it, the first data does */
		p = start(h, slot, flow, seq, now_ms);
		if (!p) {
			/* no room to hold it: a hello whole in this one segment
			 * (as almost every client sends it) is still decided by
			 * its name; only the rest falls to the default */
			enum clienthello_status whole = clienthello_parse(data, len, &ch);

			out->result = whole == CLIENTHELLO_NAME      ? SNI_NAME
				      : whole == CLIENTHELLO_NO_NAME ? SNI_NO_NAME
								     : SNI_FULL;
			if (whole == CLIENTHELLO_NAME)
				memcpy(out->name, ch.name, ch.name_len + 1);
			out->ids[0] = id;
			out->marks[0] = mark;
			out->n_ids = len ? 1 : 0;
			out->first_seq = seq;
			out->next_seq = seq + (uint32_t)len;
			out->ack = ack;
			return;
		}
	}
	p->ack = ack;
	if (len == 0) {
		out->result = SNI_HELD; /* nothing to hold: the caller accepts it */
		return;
	}
	p->ids[p->n_ids] = id;
	p->marks[p->n_ids++] = mark;
	if (seq_after(seq + (uint32_t)len, p->next_seq))
		p->next_seq = seq + (uint32_t)len;
	added = clienthello_stream_add(&p->stream, seq, data, len);
	if (added == CLIENTHELLO_CONFLICT || added == CLIENTHELLO_FULL) {
		decide(h, p, SNI_INVALID, out);
		return;
	}
	status = clienthello_parse(p->stream.bytes, p->stream.len, &ch);
	if (status == CLIENTHELLO_NEED_MORE && p->n_ids < SNI_HOLD_MAX_IDS) {
		out->result = SNI_HELD;
		return;
	}
	decide(h, p,
	       status == CLIENTHELLO_NAME      ? SNI_NAME
	       : status == CLIENTHELLO_NO_NAME ? SNI_NO_NAME
					       : SNI_INVALID,
	       out);
	if (status == CLIENTHELLO_NAME)
		memcpy(out->name, ch.name, ch.name_len + 1);
}

bool sni_hold_expire(struct sni_hold *h, uint64_t now_ms, struct sni_decision *out)
{
	if (!h->oldest || h->oldest->due_ms > now_ms)
		return false;
	memset(out, 0, sizeof(*out));
	decide(h, h->oldest, SNI_TIMEOUT, out);
	return true;
}

bool sni_hold_drain(struct sni_hold *h, struct sni_decision *out)
{
	if (!h->oldest)
		return false;
	memset(out, 0, sizeof(*out));
	decide(h, h->oldest, SNI_TIMEOUT, out);
	return true;
}

size_t sni_hold_count(const struct sni_hold *h)
{
	return h->count;
}

uint64_t sni_hold_next_due(const struct sni_hold *h)
{
	return h->oldest ? h->oldest->due_ms : UINT64_MAX;
}

const char *sni_result_name(enum sni_result result)
{
	switch (result) {
	case SNI_HELD:
		return "held";
	case SNI_NAME:
		return "name";
	case SNI_NO_NAME:
		return "no_name";
	case SNI_INVALID:
		return "invalid";
	case SNI_TIMEOUT:
		return "timeout";
	case SNI_FULL:
		break;
	}
	return "full";
}
