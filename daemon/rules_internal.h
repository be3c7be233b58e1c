/* What rules.c, rules_probe.c and rules_guard.c share: running nft and the xtables tools,
 * and where each hook's rules live. Not for other modules. */
#ifndef GK_RULES_INTERNAL_H
#define GK_RULES_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "guard.h"
#include "rules.h"

/* The installed tool NAME (iptables-nft-restore, ...) in the system's
 * directories: true with its PATH. */
bool rules_tool_find(const char *name, char *path, size_t len);

/* One libnftables run of TEXT (one kernel transaction); 0 or -1. */
int rules_nft_run(const char *text, bool dry_run, bool quiet);
/* Runs the nft command CMD and returns its output (malloc'ed), or NULL
 * when it failed (with the error in WHY when given). */
char *rules_nft_output(const char *cmd, bool terse, char *why, size_t why_len);

/* Elements in the set block that starts at SET (nft's listing: "elements =
 * { a . p, b . p,\n ... }"); no element contains a comma. */
long rules_nft_count_elements(const char *set);
/* Rules in the chain block that starts at CHAIN ("chain NAME {" in nft's
 * listing: one rule a line below its "policy" line), or -1 when the block
 * has no end. */
long rules_nft_chain_rules(const char *chain);

/* Seconds an xt tool waits for the xtables lock (iptables-legacy; the nft
 * flavour takes no lock and ignores it) before it gives up. */
#define RULES_XT_LOCK_WAIT_S "2"

/* Runs "[ip|ip6]tables-FLAVOUR[-restore] -w SECONDS [--noflush] EXTRA...", feeding
 * INPUT on stdin when given. The exit status, or -1 if it could not run. */
int rules_xt_exec(enum rules_backend backend, int family, bool restore, const char *input,
		  char *const extra[], bool quiet);
/* Runs ip[6]tables-FLAVOUR-save [-c] -t TABLE and hands each line to
 * LINE(ARG, line). 0, or -1 if it could not run or failed. */
int rules_xt_save(enum rules_backend backend, int family, const char *table, bool counters,
		  void (*line)(void *arg, const char *text), void *arg);
const char *rules_xt_flavour(enum rules_backend backend);

/* Where the queueing rules of HOOK live (raw PREROUTING runs before
 * conntrack, mangle INPUT/FORWARD before the filter table's verdicts) and
 * where its guard does: after them at the same hook, in mangle PREROUTING
 * (before any DNAT at nat PREROUTING) or filter INPUT/FORWARD, the only
 * table where xtables' REJECT is allowed. */
const char *rules_xt_table(enum config_hook hook);
const char *rules_xt_guard_table(enum config_hook hook);
const char *rules_xt_base_chain(enum config_hook hook);

/* ---- the guard's texts (rules_guard.c) ---- */

/* "elements = { ADDR . PORT, ... }" of GUARD's FAMILY endpoints with
 * ACTION, or nothing when there are none. */
/* "elements = { ADDR . PORT . SOURCE/LEN, ... }" of GUARD's FAMILY
 * allowed sources, or nothing. */
void rules_guard_put_nft_allows(FILE *out, const struct guard_set *guard, int family);
void rules_guard_put_nft_elements(FILE *out, const struct guard_set *guard, int family,
				  enum site_action action);
/* The guard rules of one family in xtables-restore form for table
 * rules_xt_guard_table(CFG->hook), from "*TABLE" to "COMMIT". FULL: every
 * guard chain declared and filled, OLD_JUMPS stale jumps from the base
 * chain deleted and one inserted at its top; else only the chain of
 * offline endpoints is refilled (the counters run on). */
char *rules_render_xt_guard(const struct config *cfg, const struct guard_set *guard, int family,
			    bool full, unsigned old_jumps);

#endif
