/* cut: the daemon's side of `gatekeeperctl offline SITE --cut`.
 *
 * The kernel rules (rules_cut.h) answer every packet of a cut site's
 * connections with a RST to its sender. An idle connection (a client
 * blocked in a read: a long poll, a websocket) sends no packet, so this
 * module makes both ends send one: it lists the site's connections from
 * conntrack (ctnetlink over libmnl) and sends each end a forged ACK whose
 * sequence number lies outside its window. By RFC 793/5961 the end answers
 * with a duplicate ACK, which the cut rules answer with the RST. The probes
 * carry RULES_CHECK_MARK, which the cut rules let through.
 *
 * One round right when a cut starts, then one a second while any cut is in
 * force: an idle connection ends within about a second (bound tested: 3 s).
 * Each probe round sends two probes per end, their sequence numbers 2^31
 * apart, so at least one is outside any window. Main thread only. */
#ifndef GK_CUT_H
#define GK_CUT_H

#include <stdbool.h>

#include "sites.h"

#define CUT_ROUND_MS 1000

struct cut;

/* Opens the raw sockets and the conntrack socket: call as root. NULL when
 * that fails (logged); a cut then has only its kernel rules, which end
 * every connection that sends a packet. */
struct cut *cut_open(void);
void cut_close(struct cut *cut);

/* A probe round now for every site of SITES with a cut in force: lists
 * the connections, probes both ends, updates the sites' cut counters. */
void cut_round(struct cut *cut, struct sites *sites);
/* The round once a second while a cut is in force. */
void cut_tick(struct cut *cut, struct sites *sites);
/* Milliseconds until the next round is due, -1 when no cut is in force. */
int cut_timeout_ms(const struct cut *cut, const struct sites *sites);

#endif
