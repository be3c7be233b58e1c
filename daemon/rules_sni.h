/* rules_sni: the kernel rules of shared endpoints — an (address, port)
 * several sites claim, told apart by the TLS server name (SNI-DESIGN.md).
 *
 * A SYN to a shared endpoint marks its connection (ct mark PENDING) and is
 * queued like any managed SYN; the connection's packets with PENDING then
 * go to the SNI queue (the handshake's last ACK and the ClientHello, and
 * nothing after): the SNI worker's verdict on the hello carries the packet
 * mark DECIDED, from which a later rule clears PENDING. Connmarks need
 * conntrack (priority -200), so: nft, a chain of our table at the hook at
 * priority -150 and the clear at 0; xt, chain GATEKEEPER_SNI in mangle at
 * the hook and GATEKEEPER_SNI_CLEAR in filter FORWARD and INPUT (a queue
 * verdict ends the table's traversal, and at PREROUTING no later table
 * sees every packet). The rules watchdog checks them with the others
 * (rules_check) and reinstalls them when they are gone. */
#ifndef GK_RULES_SNI_H
#define GK_RULES_SNI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "guard.h"
#include "rules.h"

#define RULES_SNI_PENDING 0x10000000u /* ct mark: the hello is still to be decided */
#define RULES_SNI_DECIDED 0x10000000u /* packet mark: the SNI worker decided the flow */
/* packet mark: the SNI worker saw it and let it on undecided (the
 * handshake's ACK): the guard below leaves it alone */
#define RULES_SNI_SEEN 0x08000000u
#define RULES_XT_SNI_CHAIN "GATEKEEPER_SNI"
#define RULES_XT_SNI_CLEAR_CHAIN "GATEKEEPER_SNI_CLEAR"
#define RULES_XT_SNI_CLOSED_CHAIN "GATEKEEPER_SNI_CLOSED"

struct rules_endpoint {
	struct config_addr addr;
	uint16_t port;
};

/* The (address, port) pairs of FAMILY that more than one site of CFG
 * claims, sorted, each once, in *OUT (malloc'ed; NULL when none). Their
 * number, or (size_t)-1 out of memory. */
size_t rules_sni_endpoints(const struct config *cfg, int family, struct rules_endpoint **out);

/* The nft text of the shared endpoints, to go inside our table: sets
 * shared4 / shared6, chain sni at the hook (priority -150) and chain
 * sni_clear (priority 0). QUEUE: the SNI queue's number. malloc'ed; NULL
 * out of memory. */
char *rules_render_nft_sni(const struct config *cfg, uint16_t queue);

/* HEAD then "ADDR . PORT, ..." of GUARD's closed shared endpoints of
 * FAMILY and " }", or nothing: the nft sets sni_closed4 / sni_closed6. */
void rules_sni_put_nft_closed(FILE *out, const char *head, const struct guard_set *guard,
			      int family);

/* FAMILY's rules in xtables-restore form: *mangle with GATEKEEPER_SNI and a
 * jump from the hook's chain, *filter with GATEKEEPER_SNI_CLEAR and jumps
 * from FORWARD and INPUT. malloc'ed; NULL out of memory. */
char *rules_render_xt_sni(const struct config *cfg, const struct guard_set *guard, int family,
			  uint16_t queue);
/* What our xt SNI rules look like in ip[6]tables-save's mangle and filter
 * tables: declared chains, jumps, and the rules in each chain. */
struct rules_xt_sni_scan {
	const char *hook_base; /* the hook's base chain (in): PREROUTING, INPUT, FORWARD */
	bool sni_declared, clear_declared, closed_declared;
	size_t hook_jumps;                  /* to GATEKEEPER_SNI from hook_base */
	size_t forward_jumps, input_jumps;  /* to GATEKEEPER_SNI_CLEAR */
	size_t mark_rules, queue_rules, other_rules; /* in GATEKEEPER_SNI */
	size_t clear_rules, closed_rules;
};
void rules_xt_sni_scan_line(struct rules_xt_sni_scan *scan, const char *line);
/* 0 if SCAN is what the rules for SHARED endpoints and CLOSED closed ones
 * of one family look like, else -1 with the reason in WHY. */
int rules_xt_sni_scan_verdict(const struct rules_xt_sni_scan *scan, size_t shared, size_t closed,
			      char *why, size_t why_len);
/* As rules_render_xt_sni, and OLD's jumps (a scan of what is there now)
 * deleted in the same commits: an in-place replacement. OLD may be NULL. */
char *rules_render_xt_sni_replace(const struct config *cfg, const struct guard_set *guard,
				  int family, uint16_t queue, const struct rules_xt_sni_scan *old);

/* The watchdog (rules_check): 1 if the SNI rules CFG needs are all there
 * (or CFG shares no address), 0 if damaged or gone (WHY says what), -1 if
 * the tables could not be read. xt: two ip[6]tables-save runs per family. */
int rules_xt_sni_check(enum rules_backend backend, const struct config *cfg,
		       const struct guard_set *guard, char *why, size_t why_len);
/* nft: 0 if LISTING (of our table) has the sets and chains of CFG's shared
 * endpoints (COUNT: with the right elements), else -1 with WHY. */
int rules_sni_nft_listing_check(const char *listing, const struct config *cfg,
				const struct guard_set *guard, bool count, char *why,
				size_t why_len);

/* *filter with GATEKEEPER_SNI_CLOSED refilled from GUARD's closed shared
 * endpoints of FAMILY: the guard for connections no daemon decided. */
char *rules_render_xt_sni_closed(const struct guard_set *guard, int family);

/* The SNI queue: the number after the SYN queues'. */
uint16_t rules_sni_queue(const struct config *cfg);

/* xt: (re)installs both families' rules for the shared endpoints of CFG
 * (none: only removes) in place of what is there, one commit per family;
 * 0 or -1 (logged). */
int rules_xt_sni_apply(enum rules_backend backend, const struct config *cfg,
		       const struct guard_set *guard, uint16_t queue);
/* xt: the restore block that refills the shared addresses' closed chain
 * after a change of state ("" when no address is shared), for the guard's
 * update to send in its own restore; NULL out of memory. */
char *rules_render_xt_sni_guard(const struct config *cfg, const struct guard_set *guard,
				int family);
/* xt: removes them, both families; quiet when absent. */
void rules_xt_sni_remove(enum rules_backend backend, const struct config *cfg);

#endif
