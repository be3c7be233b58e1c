/* rules: the kernel side. Probes what netfilter offers, picks a backend,
 * and installs / updates / removes the daemon's own rules, nothing else.
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

#define RULES_NFT_TABLE "gatekeeper"
#define RULES_XT_CHAIN "GATEKEEPER"
/* The packet mark of the daemon's own health checks (SO_MARK): the
 * queueing rules skip it, so a check from this box is never queued. */
#define RULES_CHECK_MARK 0x676bu
#define RULES_CHECK_MARK_TEXT "0x676b"

enum rules_backend {
	RULES_BACKEND_NFT,
	RULES_BACKEND_XT_NFT,    /* xtables target via iptables-nft */
	RULES_BACKEND_XT_LEGACY, /* xtables target via iptables-legacy */
	RULES_BACKEND_EXTERNAL,
};

struct rules_probe {
	bool nf_tables;       /* CONFIG_NF_TABLES */
	bool nft_queue;       /* CONFIG_NFT_QUEUE */
	bool nft_reject;      /* CONFIG_NFT_REJECT (informational) */
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

/* Installs the rules for CFG, replacing leftovers of a dead instance. */
int rules_install(enum rules_backend backend, const struct config *cfg);
/* Replaces the set of managed address:port pairs in one atomic step. */
int rules_update(enum rules_backend backend, const struct config *cfg);
/* Removes what rules_install put in for CFG's hook. */
int rules_remove(enum rules_backend backend, const struct config *cfg);

/* Whether the rules rules_install put in for CFG are all still in the
 * kernel: 1 intact, 0 damaged or gone (the reason in WHY), -1 the check
 * itself could not run (logged). nft: one in-process listing of our table
 * (terse above RULES_CHECK_MAX_ELEMENTS pairs: then the set elements are not
 * counted); xt: `ip[6]tables-FLAVOUR-save -t TABLE`, run as children and
 * read line by line. external: always 1. */
#define RULES_CHECK_MAX_ELEMENTS 10000
int rules_check(enum rules_backend backend, const struct config *cfg, char *why, size_t why_len);

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
/* LISTING is `nft list table inet gatekeeper`: both sets, a base chain on
 * HOOK with a queueing rule per set, and (when WANT4/WANT6 >= 0) that many
 * elements in each set. 0, or -1 with the reason in WHY. */
int rules_nft_listing_check(const char *listing, const char *hook, long want4, long want6,
			    char *why, size_t why_len);

/* The texts handed to the kernel tools; malloc'ed, NULL on failure.
 * Exposed for the unit tests and for `gatekeeperd --print-rules`. */
char *rules_render_nft(const struct config *cfg);
char *rules_render_xt(const struct config *cfg, int family, bool with_jump);

#endif
