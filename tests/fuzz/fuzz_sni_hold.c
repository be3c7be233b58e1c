/* Fuzz target: sni_hold under any interleaving of segments from a few
 * flows — any offsets, lengths, bytes, clocks. Every packet id comes back
 * in exactly one decision (never lost, never twice), the table never
 * holds more than its bound, and a name found is a canonical one. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_check.h"
#include "sni_hold.h"

enum { MAX_PENDING = 3, HOLD_MS = 50, MAX_OPS = 256 };

static uint8_t decided[MAX_OPS];

static void account(const struct sni_decision *d, uint32_t next_id)
{
	for (size_t i = 0; i < d->n_ids; i++) {
		CHECK(d->ids[i] < next_id);
		CHECK(!decided[d->ids[i]]);
		decided[d->ids[i]] = 1;
	}
	if (d->result == SNI_NAME)
		CHECK(d->name[0] && strlen(d->name) <= SERVER_NAME_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sni_hold *h = sni_hold_new(MAX_PENDING, HOLD_MS);
	struct sni_decision d;
	uint32_t id = 0;
	uint64_t now = 0;
	size_t at = 0;

	CHECK(h != NULL);
	memset(decided, 0, sizeof(decided));
	/* op: flow (1 byte), seq offset (2), length (1), clock step (1), then LENGTH bytes */
	while (at + 5 <= size && id < MAX_OPS) {
		struct sni_flow f = {.family = AF_INET, .sport = (uint16_t)(1000 + data[at] % 5), .dport = 443};
		uint32_t seq = 100000u + ((uint32_t)data[at + 1] << 8 | data[at + 2]);
		size_t len = data[at + 3];

		now += data[at + 4] % 32;
		at += 5;
		if (len > size - at)
			len = size - at;
		while (sni_hold_expire(h, now, &d))
			account(&d, id);
		sni_hold_segment(h, &f, seq, 1, data + at, len, id, 0, now, &d);
		id++;
		if (len == 0)
			decided[id - 1] = 1; /* the caller accepts it at once */
		else if (d.result != SNI_HELD)
			account(&d, id);
		CHECK(sni_hold_count(h) <= MAX_PENDING);
		at += len;
	}
	while (sni_hold_drain(h, &d))
		account(&d, id);
	for (uint32_t i = 0; i < id; i++)
		CHECK(decided[i]);
	sni_hold_free(h);
	return 0;
}
