/* rules_cut: the kernel rules of a cut (gatekeeperctl offline SITE --cut):
 * every non-SYN TCP packet of a cut site's connections, in either direction,
 * is answered with a RST to its sender, so both ends drop the connection at
 * their next packet (cut.h makes idle ends send one). The cut endpoints are
 * the guard_set's endpoints with .cut; the rules follow the guard's updates.
 * nft: sets cut4/cut6 and chain cut of our table (kmod-free/gatekeeper.nft.in);
 * xt: chains GATEKEEPER_CUT / GATEKEEPER_CUT_RESET in the filter table. */
#ifndef GK_RULES_CUT_H
#define GK_RULES_CUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "guard.h"
#include "rules.h"

#define RULES_XT_CUT_CHAIN "GATEKEEPER_CUT"
#define RULES_XT_CUT_RESET_CHAIN "GATEKEEPER_CUT_RESET"

/* FAMILY's cut rules in xtables-restore form for the filter table. FULL:
 * both chains declared and filled, OLD_JUMPS[i] stale jumps deleted from
 * INPUT, FORWARD, OUTPUT (i = 0, 1, 2) and one inserted at each top; else
 * only GATEKEEPER_CUT refilled (the RST counter runs on). malloc'ed. */
char *rules_render_xt_cut(const struct guard_set *guard, int family, bool full,
			  const unsigned old_jumps[3]);

/* What an ip[6]tables-save [-c] -t filter listing says about the cut. */
struct rules_xt_cut_scan {
	unsigned jumps[3]; /* to GATEKEEPER_CUT from INPUT, FORWARD, OUTPUT */
	uint64_t resets;   /* packets of GATEKEEPER_CUT_RESET's rule (with -c) */
};
void rules_xt_cut_scan_line(struct rules_xt_cut_scan *scan, const char *line);

/* Both families: installs (FULL) or refills the cut rules. 0 or -1 (logged). */
int rules_xt_cut_apply(enum rules_backend backend, const struct guard_set *guard, bool full);
/* Removes the cut's jumps and chains, both families; quiet when absent. */
void rules_xt_cut_remove(enum rules_backend backend);
/* The RSTs the cut's rule sent, both families. */
uint64_t rules_xt_cut_resets(enum rules_backend backend);

/* The packets of the nft table's counter cut_resets; 0 if unreadable. */
uint64_t rules_nft_cut_resets(void);

/* HEAD then "ADDR . PORT, ..." of GUARD's cut endpoints of FAMILY and " }",
 * or nothing when there are none: the nft sets cut4 / cut6. */
void rules_cut_put_nft_elements(FILE *out, const char *head, const struct guard_set *guard,
				int family);

#endif
