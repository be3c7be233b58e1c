/* rules_watch: the watchdog of the daemon's own rules. An admin's
 * `nft flush ruleset` or a firewall reload removes them behind our back,
 * and then no SYN is queued: offline sites are silently reachable. Every
 * RULES_WATCH_INTERVAL_MS the main loop calls rules_watch_tick(), which
 * runs rules_check() and, when the rules are damaged or gone, says so
 * loudly and reinstalls them with rules_install() (which replaces
 * whatever is left of them).
 *
 * Cost per check: nft, one in-process listing of our table; xt, two
 * `ip[6]tables-*-save -t TABLE` children (about 10 ms of wall time each
 * here), and when sites share an address four more (mangle and filter per
 * family: the SNI chains, rules_sni.h). One watchdog per process: its figures are module state, read by
 * `gatekeeperctl stats` and the metrics. */
#ifndef GK_RULES_WATCH_H
#define GK_RULES_WATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "rules.h"

#define RULES_WATCH_INTERVAL_MS 2000

struct rules_watch_counts {
	uint64_t checks;         /* checks that ran */
	uint64_t damaged;        /* ... that found the rules damaged or gone */
	uint64_t reinstalled;    /* reinstalls that took */
	uint64_t check_failures; /* checks that could not run, reinstalls that failed */
};

/* Checks the rules of BACKEND for CFG if the interval has passed, and
 * repairs them. Returns how long the caller may sleep until the next
 * check (ms), or -1 when there is nothing to watch (backend external). */
int rules_watch_tick(enum rules_backend backend, const struct config *cfg,
		     const struct guard_set *guard);
void rules_watch_get_counts(struct rules_watch_counts *out);
/* The kernel guard's counters as the last intact check read them (no
 * cost of their own: the check lists the rules anyway). False before the
 * first such check, and after rules_watch_forget_guard(). */
bool rules_watch_guard_seen(struct guard_counters *out);
/* The guard's counters were reset (its nft table replaced by a reload):
 * what the last check read is no longer there. */
void rules_watch_forget_guard(void);

#endif
