/* rules: the kernel side. Probes what netfilter offers, picks a backend,
 * and installs / updates / removes the daemon's own rules, nothing else.
 * Beside the queueing rules, at the same hook and right after them, the
 * kernel guard (guard.h): what the daemon did not decide is dropped or
 * rejected there when its endpoint is offline.
 *
 *   nft       native nftables `queue` in our table `inet gatekeeper`
 *             (template: kmod-free/gatekeeper.nft.in), through libnftables
 *   xt        the xtables NFQUEUE target in our chain GATEKEEPER, through
 *             iptables-nft (or iptables-legacy) -restore, for kernels
 *             without the nft queue expression
 *   external  the operator installs the rules; we only serve the queue
 *
 * The daemon never loads a kernel module: a missing feature is reported
 * with the kernel option that provides it. */
#ifndef GK_RULES_H
#define GK_RULES_H

#include <stdbool.h>
#include <stdio.h>

#include "config.h"
#include "guard.h"

#define RULES_NFT_TABLE "gatekeeper"
#define RULES_XT_CHAIN "GATEKEEPER"
/* The xt guard: entry chain, the offline endpoints, and one chain per
 * action whose single rule counts what the guard decided. */
#define RULES_XT_GUARD_CHAIN "GATEKEEPER_GUARD"
#define RULES_XT_OFFLINE_CHAIN "GATEKEEPER_OFFLINE"
#define RULES_XT_DROP_CHAIN "GATEKEEPER_DROP"
#define RULES_XT_REJECT_CHAIN "GATEKEEPER_REJECT"
#define RULES_XT_FRAGMENT_CHAIN "GATEKEEPER_FRAGMENT"
/* The packet mark of the daemon's own health checks (SO_MARK): the
 * queueing rules skip it, so a check from this box is never queued. */
#define RULES_CHECK_MARK 0x676bu
#define RULES_CHECK_MARK_TEXT "0x676b"
/* The bit a worker's verdict adds to the mark of a packet it decided
 * (accepted: the others are dropped): the guard lets such a packet pass and
 * takes the bit off again, so nothing after the hook sees it. A packet
 * without it was not decided by the daemon. */
#define RULES_DECIDED_MARK 0x20000000u
#define RULES_DECIDED_MARK_TEXT "0x20000000"
#define RULES_DECIDED_CLEAR_TEXT "0xdfffffff"

enum rules_backend {
	RULES_BACKEND_NFT,
	RULES_BACKEND_XT_NFT,    /* xtables target via iptables-nft */
	RULES_BACKEND_XT_LEGACY, /* xtables target via iptables-legacy */
	RULES_BACKEND_EXTERNAL,
};

struct rules_probe {
	bool nf_tables;       /* CONFIG_NF_TABLES */
	bool nft_queue;       /* CONFIG_NFT_QUEUE */
	bool nft_reject;      /* CONFIG_NFT_REJECT (the nft guard's reject) */
	bool xt_nfqueue;      /* CONFIG_NETFILTER_XT_TARGET_NFQUEUE */
	bool nfnetlink_queue; /* CONFIG_NETFILTER_NETLINK_QUEUE */
	bool iptables_nft;    /* iptables-nft-restore found */
	bool iptables_legacy; /* iptables-legacy-restore found */
};

/* Looks at the running kernel without changing anything (nft dry runs). */
void rules_probe(struct rules_probe *out);
void rules_probe_print(const struct rules_probe *probe, FILE *out);

/* Picks the backend for WANT. Returns 0, or -1 with the reason in WHY. */
int rules_choose(const struct rules_probe *probe, enum config_backend want,
		 enum rules_backend *out, char *why, size_t why_len);
const char *rules_backend_name(enum rules_backend backend);

/* Installs the rules for CFG with GUARD's offline endpoints, replacing
 * leftovers of a dead instance with no moment without rules (nft: one
 * transaction; xt: our chains refilled and the jumps swapped in one
 * restore per table, then leftovers at other hooks removed). */
int rules_install(enum rules_backend backend, const struct config *cfg,
		  const struct guard_set *guard);
/* Replaces the set of managed address:port pairs and the guard's in one
 * atomic step per table. */
int rules_update(enum rules_backend backend, const struct config *cfg,
		 const struct guard_set *guard);
/* Replaces only the guard's offline endpoints (a site changed state): nft,
 * the guard sets in one transaction; xt, the chain of offline endpoints in
 * one restore per family. The guard's counters run on. */
int rules_guard_update(enum rules_backend backend, const struct config *cfg,
		       const struct guard_set *guard);
/* Reads the guard's kernel counters. 1 read, 0 no guard there (nothing
 * installed, or backend external), -1 the read failed (logged). */
int rules_guard_read(enum rules_backend backend, const struct config *cfg,
		     struct guard_counters *out);
/* Removes what rules_install put in for CFG's hook. */
int rules_remove(enum rules_backend backend, const struct config *cfg);

/* Whether the rules rules_install put in for CFG (with GUARD's offline
 * endpoints) are all still in the kernel: 1 intact, and then the guard's
 * counters in SEEN (when not NULL), read from the same listing; 0 damaged
 * or gone (the reason in WHY), -1 the check itself could not run (logged). nft: one in-process listing of our table
 * (terse above RULES_CHECK_MAX_ELEMENTS pairs: then the set elements are not
 * counted); xt: `ip[6]tables-FLAVOUR-save -t TABLE`, run as children and
 * read line by line. external: always 1. */
#define RULES_CHECK_MAX_ELEMENTS 10000
int rules_check(enum rules_backend backend, const struct config *cfg,
		const struct guard_set *guard, struct guard_counters *seen, char *why,
		size_t why_len);

/* ---- the parsers of rules_check, pure, exposed for the unit tests ---- */

/* What an ip[6]tables-save listing of one table says about our rules. */
struct rules_xt_scan {
	const char *base_chain; /* PREROUTING, INPUT, FORWARD */
	size_t jumps;           /* -A BASE ... -j GATEKEEPER */
	size_t queue_rules;     /* -A GATEKEEPER ... -j NFQUEUE */
	size_t other_rules;     /* -A GATEKEEPER anything else */
	bool chain_declared;    /* :GATEKEEPER */
};
/* Feeds one line (with or without its newline). */
void rules_xt_scan_line(struct rules_xt_scan *scan, const char *line);
/* Our chain is there, jumped to once from the base chain, and queues
 * exactly WANT pairs. 0, or -1 with the reason in WHY. */
int rules_xt_scan_verdict(const struct rules_xt_scan *scan, size_t want, char *why, size_t why_len);

/* What an `ip[6]tables-save -c` listing of the guard's table says. */
struct rules_xt_guard_scan {
	const char *base_chain;
	size_t jumps;         /* -A BASE ... -j GATEKEEPER_GUARD */
	size_t guard_rules;   /* -A GATEKEEPER_GUARD */
	size_t offline_rules; /* -A GATEKEEPER_OFFLINE */
	size_t drop_rules, reject_rules, fragment_rules;
	unsigned declared;    /* bit per guard chain declared (5 of them) */
	struct guard_counters counters; /* the DROP / REJECT / FRAGMENT chains' rules */
};
void rules_xt_guard_scan_line(struct rules_xt_guard_scan *scan, const char *line);
/* Every guard chain there, jumped to once, WANT offline endpoints (two
 * rules each: first fragments, SYNs) and WANT_ALLOWS allowed sources (one
 * RETURN rule each). */
int rules_xt_guard_scan_verdict(const struct rules_xt_guard_scan *scan, size_t want,
				size_t want_allows, char *why, size_t why_len);
/* Elements in the six guard sets (offline endpoints, allowed sources) of an nft listing; -1 if one is gone. */
long rules_nft_guard_elements(const char *listing);
/* The packets of "counter NAME { packets N bytes M }" in an nft listing;
 * -1 when NAME is not there. */
long long rules_nft_counter_packets(const char *listing, const char *name);
/* LISTING is `nft list table inet gatekeeper`: both sets, a base chain on
 * HOOK with a queueing rule per set, and (when WANT4/WANT6 >= 0) that many
 * elements in each set. 0, or -1 with the reason in WHY. */
int rules_nft_listing_check(const char *listing, const char *hook, long want4, long want6,
			    char *why, size_t why_len);

/* The texts handed to the kernel tools; malloc'ed, NULL on failure.
 * Exposed for the unit tests and for `gatekeeperd --print-rules`.
 * rules_render_xt: the queueing chain of FAMILY; with OLD_JUMPS >= 0 also
 * that many stale jumps deleted and one inserted at the base chain's top. */
char *rules_render_nft(const struct config *cfg, const struct guard_set *guard);
char *rules_render_xt(const struct config *cfg, int family, int old_jumps);
/* The nft transaction of rules_guard_update. */
char *rules_render_nft_guard(const struct guard_set *guard);
/* Both of an xt family's tables, as rules_install hands them over. */
char *rules_render_xt_install(const struct config *cfg, const struct guard_set *guard, int family,
			      unsigned old_queue_jumps, unsigned old_guard_jumps);

#endif
