/* guard: what the kernel guard must hold, the offline endpoints.
 *
 * The daemon decides every SYN it is handed, but some never reach it: the
 * queue is bypassed while no daemon is bound, overflows under a flood
 * (fail-open), or the packet is a fragment the queueing rule cannot read.
 * Behind the queue, in the same hook, the kernel guard (rules.h) drops or
 * rejects such packets when their (address, port) is offline, and lets
 * everything else pass. A guard_set is its content: every (address, port)
 * of every offline site with that site's action, built from the live site
 * table after each change, and handed to the rules whenever it differs
 * from what the kernel holds. The allow-lists of offline sites come with
 * it: such a source passes the guard as it passes the daemon. */
#ifndef GK_GUARD_H
#define GK_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sites.h"

struct guard_endpoint {
	struct config_addr addr;
	uint16_t port;
	enum site_action action;
	bool cut; /* the site's established connections are cut too (cut.h) */
};

/* A source the guard lets through to an offline endpoint: the site's
 * allow-list, one entry per (address, port, network) of one family. */
struct guard_allow {
	struct config_addr addr;
	uint16_t port;
	struct config_cidr source;
};

/* A shared endpoint (sites told apart by server name) where some name
 * would be refused: while no daemon decides its hellos, the kernel drops
 * the client data of its undecided connections (rules_sni.h). */
struct guard_shared {
	struct config_addr addr;
	uint16_t port;
};

struct guard_set {
	struct guard_endpoint *endpoints; /* sorted: equal sets compare equal */
	size_t count;
	struct guard_shared *closed; /* sorted too */
	size_t n_closed;
	struct guard_allow *allows; /* sorted too */
	size_t n_allows;
};

/* What the guard's kernel counters say it decided, summed over both
 * families. Counted only for packets the daemon did not decide. */
struct guard_counters {
	uint64_t syn_dropped;  /* SYNs to an offline drop endpoint */
	uint64_t syn_rejected; /* SYNs to an offline reject endpoint (RST or drop) */
	uint64_t fragments;    /* first fragments to an offline endpoint, dropped */
};

/* Fills OUT with the offline endpoints of SITES and their allowed sources; 0, or -1 out of memory
 * (OUT is then empty). */
int guard_set_build(struct guard_set *out, const struct sites *sites);
bool guard_set_equal(const struct guard_set *a, const struct guard_set *b);
/* Moves FROM into TO (TO's old content is freed; FROM is left empty). */
void guard_set_move(struct guard_set *to, struct guard_set *from);
void guard_set_free(struct guard_set *set);

void guard_counters_add(struct guard_counters *to, const struct guard_counters *from);

#endif
