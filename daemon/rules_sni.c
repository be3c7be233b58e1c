#include "rules_sni.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "rules.h"
#include "rules_internal.h"

static int endpoint_cmp(const void *a, const void *b)
{
	const struct rules_endpoint *x = a, *y = b;
	int c = memcmp(x->addr.bytes, y->addr.bytes, sizeof(x->addr.bytes));

	if (c)
		return c;
	return (x->port > y->port) - (x->port < y->port);
}

size_t rules_sni_endpoints(const struct config *cfg, int family, struct rules_endpoint **out)
{
	size_t n = 0, shared = 0;
	struct rules_endpoint *all;

	*out = NULL;
	for (size_t s = 0; s < cfg->n_sites; s++)
		for (size_t a = 0; a < cfg->sites[s].n_addresses; a++)
			if (cfg->sites[s].addresses[a].family == family)
				n += cfg->sites[s].n_ports;
	if (n == 0)
		return 0;
	all = malloc(n * sizeof(*all));
	if (!all)
		return (size_t)-1;
	n = 0;
	for (size_t s = 0; s < cfg->n_sites; s++)
		for (size_t a = 0; a < cfg->sites[s].n_addresses; a++)
			for (size_t p = 0; cfg->sites[s].addresses[a].family == family &&
					   p < cfg->sites[s].n_ports;
			     p++)
				all[n++] = (struct rules_endpoint){cfg->sites[s].addresses[a],
								   cfg->sites[s].ports[p]};
	qsort(all, n, sizeof(*all), endpoint_cmp);
	/* keep one of each run of two or more: a site lists a pair once
	 * (config), so a run means several sites */
	for (size_t i = 0; i < n;) {
		size_t j = i + 1;

		while (j < n && endpoint_cmp(&all[i], &all[j]) == 0)
			j++;
		if (j - i > 1)
			all[shared++] = all[i];
		i = j;
	}
	if (shared == 0) {
		free(all);
		return 0;
	}
	*out = all;
	return shared;
}

static const char *nft_hook(const struct config *cfg)
{
	return config_hook_name(cfg->hook);
}

static void nft_put_set(FILE *out, const char *name, const char *type,
			const struct rules_endpoint *e, size_t n)
{
	char addr[INET6_ADDRSTRLEN];

	fprintf(out, "\tset %s {\n\t\ttype %s . inet_service\n", name, type);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s%s . %u%s", i ? ", " : "\t\telements = { ",
			config_addr_str(&e[i].addr, addr, sizeof(addr)), e[i].port,
			i + 1 == n ? " }\n" : "");
	fputs("\t}\n", out);
}

void rules_sni_put_nft_closed(FILE *out, const char *head, const struct guard_set *guard,
			      int family)
{
	char addr[INET6_ADDRSTRLEN];
	const char *sep = head;

	for (size_t i = 0; guard && i < guard->n_closed; i++) {
		if (guard->closed[i].addr.family != family)
			continue;
		fprintf(out, "%s%s . %u", sep, config_addr_str(&guard->closed[i].addr, addr, sizeof(addr)),
			guard->closed[i].port);
		sep = ", ";
	}
	if (sep != head)
		fputs(" }", out);
}

char *rules_render_nft_sni(const struct config *cfg, uint16_t queue)
{
	struct rules_endpoint *e4 = NULL, *e6 = NULL;
	size_t n4 = rules_sni_endpoints(cfg, AF_INET, &e4), n6;
	char *text = NULL;
	size_t size = 0;
	FILE *out;
	static const char *const fams[2][2] = {{"ip", "shared4"}, {"ip6", "shared6"}};

	if (n4 == (size_t)-1)
		return NULL;
	n6 = rules_sni_endpoints(cfg, AF_INET6, &e6);
	out = n6 == (size_t)-1 ? NULL : open_memstream(&text, &size);
	if (!out) {
		free(e4);
		free(e6);
		return NULL;
	}
	nft_put_set(out, "shared4", "ipv4_addr", e4, n4);
	nft_put_set(out, "shared6", "ipv6_addr", e6, n6);
	fprintf(out, "\tchain sni {\n\t\ttype filter hook %s priority -150; policy accept;\n",
		nft_hook(cfg));
	for (size_t f = 0; f < 2; f++)
		fprintf(out,
			"\t\tmeta l4proto tcp tcp flags & (syn | ack) == syn %s daddr . tcp dport @%s "
			"ct mark set ct mark or 0x%08x\n",
			fams[f][0], fams[f][1], RULES_SNI_PENDING);
	for (size_t f = 0; f < 2; f++)
		fprintf(out,
			"\t\tmeta l4proto tcp tcp flags & syn == 0 ct mark & 0x%08x == 0x%08x %s daddr . "
			"tcp dport @%s meta mark & 0x%04x != 0x%04x queue num %u%s\n",
			RULES_SNI_PENDING, RULES_SNI_PENDING, fams[f][0], fams[f][1], RULES_CHECK_MARK,
			RULES_CHECK_MARK, queue, cfg->queue.fail_open ? " bypass" : "");
	fprintf(out, "\t}\n\tchain sni_clear {\n\t\ttype filter hook %s priority 0; policy accept;\n",
		nft_hook(cfg));
	fprintf(out,
		"\t\tmeta mark & 0x%08x == 0x%08x ct mark set ct mark and 0x%08x meta mark set "
		"meta mark and 0x%08x\n",
		RULES_SNI_DECIDED, RULES_SNI_DECIDED, ~RULES_SNI_PENDING, ~RULES_SNI_DECIDED);
	/* undecided client data (no daemon bound) to a closed shared address */
	for (size_t f = 0; f < 2; f++)
		fprintf(out,
			"\t\tmeta l4proto tcp tcp flags & syn == 0 ct direction original ct mark & 0x%08x "
			"== 0x%08x meta mark & 0x%08x == 0 %s daddr . tcp dport @sni_closed%s drop\n",
			RULES_SNI_PENDING, RULES_SNI_PENDING, RULES_SNI_SEEN, fams[f][0], f ? "6" : "4");
	fprintf(out, "\t\tmeta mark & 0x%08x == 0x%08x meta mark set meta mark and 0x%08x\n\t}\n",
		RULES_SNI_SEEN, RULES_SNI_SEEN, ~RULES_SNI_SEEN);
	free(e4);
	free(e6);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static void xt_put_closed(FILE *out, const struct guard_set *guard, int family)
{
	char addr[INET6_ADDRSTRLEN];

	for (size_t i = 0; guard && i < guard->n_closed; i++)
		if (guard->closed[i].addr.family == family)
			fprintf(out, "-A %s -d %s -p tcp -m tcp --dport %u -j DROP\n",
				RULES_XT_SNI_CLOSED_CHAIN,
				config_addr_str(&guard->closed[i].addr, addr, sizeof(addr)),
				guard->closed[i].port);
}

char *rules_render_xt_sni_closed(const struct guard_set *guard, int family)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	fprintf(out, "*filter\n:%s - [0:0]\n", RULES_XT_SNI_CLOSED_CHAIN);
	xt_put_closed(out, guard, family);
	fputs("COMMIT\n", out);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

char *rules_render_xt_sni(const struct config *cfg, const struct guard_set *guard, int family,
			  uint16_t queue)
{
	return rules_render_xt_sni_replace(cfg, guard, family, queue, NULL);
}

/* "-D BASE SPEC -j CHAIN" N times: the jumps there were, gone in the same
 * commit that puts one back (never none, never two) */
static void xt_put_deletes(FILE *out, size_t n, const char *base, const char *spec,
			   const char *chain)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "-D %s %s-j %s\n", base, spec, chain);
}

char *rules_render_xt_sni_replace(const struct config *cfg, const struct guard_set *guard,
				  int family, uint16_t queue, const struct rules_xt_sni_scan *old)
{
	struct rules_endpoint *e = NULL;
	size_t n = rules_sni_endpoints(cfg, family, &e);
	char *text = NULL, addr[INET6_ADDRSTRLEN];
	size_t size = 0;
	FILE *out;

	if (n == (size_t)-1 || !(out = open_memstream(&text, &size))) {
		free(e);
		return NULL;
	}
	fprintf(out, "*mangle\n:%s - [0:0]\n", RULES_XT_SNI_CHAIN);
	for (size_t i = 0; i < n; i++) {
		config_addr_str(&e[i].addr, addr, sizeof(addr));
		fprintf(out, "-A %s -d %s -p tcp -m tcp --dport %u --tcp-flags SYN,ACK SYN "
			"-j CONNMARK --or-mark 0x%08x\n",
			RULES_XT_SNI_CHAIN, addr, e[i].port, RULES_SNI_PENDING);
		fprintf(out, "-A %s -d %s -p tcp -m tcp --dport %u ! --tcp-flags SYN SYN "
			"-m connmark --mark 0x%08x/0x%08x -m mark ! --mark %s -j NFQUEUE --queue-num %u%s\n",
			RULES_XT_SNI_CHAIN, addr, e[i].port, RULES_SNI_PENDING, RULES_SNI_PENDING,
			RULES_CHECK_MARK_TEXT, queue, cfg->queue.fail_open ? " --queue-bypass" : "");
	}
	if (old)
		xt_put_deletes(out, old->hook_jumps, rules_xt_base_chain(cfg->hook), "-p tcp ",
			       RULES_XT_SNI_CHAIN);
	fprintf(out, "-I %s 1 -p tcp -j %s\nCOMMIT\n", rules_xt_base_chain(cfg->hook),
		RULES_XT_SNI_CHAIN);
	/* after conntrack and the queue, whatever the hook: decided flows
	 * leave the SNI queue; undecided client data (no daemon bound, the
	 * queue bypassed) meets the guard of the closed endpoints */
	fprintf(out, "*filter\n:%s - [0:0]\n:%s - [0:0]\n", RULES_XT_SNI_CLEAR_CHAIN,
		RULES_XT_SNI_CLOSED_CHAIN);
	fprintf(out, "-A %s -m mark --mark 0x%08x/0x%08x -j CONNMARK --and-mark 0x%08x\n",
		RULES_XT_SNI_CLEAR_CHAIN, RULES_SNI_DECIDED, RULES_SNI_DECIDED, ~RULES_SNI_PENDING);
	fprintf(out, "-A %s -m mark --mark 0x%08x/0x%08x -j MARK --and-mark 0x%08x\n",
		RULES_XT_SNI_CLEAR_CHAIN, RULES_SNI_DECIDED, RULES_SNI_DECIDED, ~RULES_SNI_DECIDED);
	fprintf(out, "-A %s -p tcp -m tcp ! --tcp-flags SYN SYN -m conntrack --ctdir ORIGINAL "
		"-m connmark --mark 0x%08x/0x%08x -m mark --mark 0x0/0x%08x -j %s\n",
		RULES_XT_SNI_CLEAR_CHAIN, RULES_SNI_PENDING, RULES_SNI_PENDING, RULES_SNI_SEEN,
		RULES_XT_SNI_CLOSED_CHAIN);
	fprintf(out, "-A %s -m mark --mark 0x%08x/0x%08x -j MARK --and-mark 0x%08x\n",
		RULES_XT_SNI_CLEAR_CHAIN, RULES_SNI_SEEN, RULES_SNI_SEEN, ~RULES_SNI_SEEN);
	xt_put_closed(out, guard, family);
	if (old) {
		xt_put_deletes(out, old->forward_jumps, "FORWARD", "", RULES_XT_SNI_CLEAR_CHAIN);
		xt_put_deletes(out, old->input_jumps, "INPUT", "", RULES_XT_SNI_CLEAR_CHAIN);
	}
	fprintf(out, "-I FORWARD 1 -j %s\n-I INPUT 1 -j %s\nCOMMIT\n", RULES_XT_SNI_CLEAR_CHAIN,
		RULES_XT_SNI_CLEAR_CHAIN);
	free(e);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static const int sni_families[] = {AF_INET, AF_INET6};

/* Deletes every "-A BASE SPEC" from TABLE (a jump may be there twice after
 * a crash) and then CHAIN itself. Quiet: absent is fine. */
static void xt_drop_chain(enum rules_backend backend, int family, const char *table,
			  const char *const *bases, size_t n_bases, const char *chain,
			  bool tcp_only)
{
	char *flush[] = {"-t", (char *)table, "-F", (char *)chain, NULL};
	char *del[] = {"-t", (char *)table, "-X", (char *)chain, NULL};

	for (size_t b = 0; b < n_bases; b++) {
		char *jump_tcp[] = {"-t", (char *)table, "-D", (char *)bases[b], "-p", "tcp", "-j",
				    (char *)chain, NULL};
		char *jump_all[] = {"-t", (char *)table, "-D", (char *)bases[b], "-j", (char *)chain,
				    NULL};

		for (int tries = 0; tries < 16; tries++)
			if (rules_xt_exec(backend, family, false, NULL, tcp_only ? jump_tcp : jump_all,
					  true) != 0)
				break;
	}
	rules_xt_exec(backend, family, false, NULL, flush, true);
	rules_xt_exec(backend, family, false, NULL, del, true);
}

void rules_xt_sni_remove(enum rules_backend backend, const struct config *cfg)
{
	static const char *const filter_bases[] = {"FORWARD", "INPUT"};
	const char *hook_base = rules_xt_base_chain(cfg->hook);

	for (size_t f = 0; f < 2; f++) {
		xt_drop_chain(backend, sni_families[f], "mangle", &hook_base, 1, RULES_XT_SNI_CHAIN,
			      true);
		xt_drop_chain(backend, sni_families[f], "filter", filter_bases, 2,
			      RULES_XT_SNI_CLEAR_CHAIN, false);
		xt_drop_chain(backend, sni_families[f], "filter", NULL, 0, RULES_XT_SNI_CLOSED_CHAIN,
			      false);
	}
}

static bool has_shared(const struct config *cfg)
{
	struct rules_endpoint *e4 = NULL, *e6 = NULL;
	size_t n4 = rules_sni_endpoints(cfg, AF_INET, &e4), n6 = rules_sni_endpoints(cfg, AF_INET6, &e6);

	free(e4);
	free(e6);
	return n4 || n6;
}

char *rules_render_xt_sni_guard(const struct config *cfg, const struct guard_set *guard,
				int family)
{
	return has_shared(cfg) ? rules_render_xt_sni_closed(guard, family) : strdup("");
}

static void xt_sni_scan_cb(void *arg, const char *line)
{
	rules_xt_sni_scan_line(arg, line);
}

/* What FAMILY's mangle and filter tables hold of ours now; 0 or -1. */
static int xt_sni_scan(enum rules_backend backend, const struct config *cfg, int family,
		       struct rules_xt_sni_scan *scan)
{
	*scan = (struct rules_xt_sni_scan){.hook_base = rules_xt_base_chain(cfg->hook)};
	if (rules_xt_save(backend, family, "mangle", false, xt_sni_scan_cb, scan) < 0)
		return -1;
	return rules_xt_save(backend, family, "filter", false, xt_sni_scan_cb, scan);
}

int rules_xt_sni_apply(enum rules_backend backend, const struct config *cfg,
		       const struct guard_set *guard, uint16_t queue)
{
	if (!has_shared(cfg)) {
		rules_xt_sni_remove(backend, cfg);
		return 0;
	}
	/* in place: with --noflush, declaring a chain empties it, and the old
	 * jumps go in the commit that adds the new one, so a reload leaves no
	 * moment in which a shared endpoint's hello is not queued */
	for (size_t f = 0; f < 2; f++) {
		struct rules_xt_sni_scan old;
		char *text;
		int rc;

		if (xt_sni_scan(backend, cfg, sni_families[f], &old) < 0)
			return -1;
		text = rules_render_xt_sni_replace(cfg, guard, sni_families[f], queue, &old);
		if (!text)
			return -1;
		rc = rules_xt_exec(backend, sni_families[f], true, text, NULL, false);
		free(text);
		if (rc != 0) {
			log_error("cannot load the shared endpoints' rules (%s)",
				  sni_families[f] == AF_INET ? "IPv4" : "IPv6");
			return -1;
		}
	}
	return 0;
}

/* ---- the watchdog's check --------------------------------------------------- */

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Whether LINE is "-A BASE ... -j CHAIN" (CHAIN exactly: not a longer name). */
static bool is_jump(const char *line, const char *base, const char *chain)
{
	size_t len = strcspn(line, "\r\n"), n = strlen(chain);

	return strncmp(line, "-A ", 3) == 0 && starts_with(line + 3, base) &&
	       line[3 + strlen(base)] == ' ' && len >= n + 4 &&
	       memcmp(line + len - n - 4, " -j ", 4) == 0 && memcmp(line + len - n, chain, n) == 0;
}

void rules_xt_sni_scan_line(struct rules_xt_sni_scan *scan, const char *line)
{
	if (starts_with(line, ":" RULES_XT_SNI_CHAIN " "))
		scan->sni_declared = true;
	else if (starts_with(line, ":" RULES_XT_SNI_CLEAR_CHAIN " "))
		scan->clear_declared = true;
	else if (starts_with(line, ":" RULES_XT_SNI_CLOSED_CHAIN " "))
		scan->closed_declared = true;
	else if (starts_with(line, "-A " RULES_XT_SNI_CHAIN " ")) {
		if (strstr(line, " -j NFQUEUE"))
			scan->queue_rules++;
		else if (strstr(line, " -j CONNMARK"))
			scan->mark_rules++;
		else
			scan->other_rules++;
	} else if (starts_with(line, "-A " RULES_XT_SNI_CLEAR_CHAIN " "))
		scan->clear_rules++;
	else if (starts_with(line, "-A " RULES_XT_SNI_CLOSED_CHAIN " "))
		scan->closed_rules++;
	else if (is_jump(line, scan->hook_base, RULES_XT_SNI_CHAIN))
		scan->hook_jumps++;
	else if (is_jump(line, "FORWARD", RULES_XT_SNI_CLEAR_CHAIN))
		scan->forward_jumps++;
	else if (is_jump(line, "INPUT", RULES_XT_SNI_CLEAR_CHAIN))
		scan->input_jumps++;
}

/* The rules of GATEKEEPER_SNI_CLEAR: clear PENDING, clear DECIDED, the
 * jump to the closed endpoints, clear SEEN (rules_render_xt_sni). */
#define XT_SNI_CLEAR_RULES 4

int rules_xt_sni_scan_verdict(const struct rules_xt_sni_scan *scan, size_t shared, size_t closed,
			      char *why, size_t why_len)
{
	if (!scan->sni_declared || !scan->clear_declared || !scan->closed_declared)
		snprintf(why, why_len, "chain %s is gone",
			 !scan->sni_declared     ? RULES_XT_SNI_CHAIN
			 : !scan->clear_declared ? RULES_XT_SNI_CLEAR_CHAIN
						 : RULES_XT_SNI_CLOSED_CHAIN);
	else if (scan->hook_jumps != 1)
		snprintf(why, why_len, "%zu jumps to %s from %s, want 1", scan->hook_jumps,
			 RULES_XT_SNI_CHAIN, scan->hook_base);
	else if (scan->forward_jumps != 1 || scan->input_jumps != 1)
		snprintf(why, why_len, "%zu jumps to %s from FORWARD and %zu from INPUT, want 1 each",
			 scan->forward_jumps, RULES_XT_SNI_CLEAR_CHAIN, scan->input_jumps);
	else if (scan->mark_rules != shared || scan->queue_rules != shared || scan->other_rules)
		snprintf(why, why_len, "chain %s has %zu marking and %zu queueing rules (want %zu each) "
			 "and %zu others", RULES_XT_SNI_CHAIN, scan->mark_rules, scan->queue_rules,
			 shared, scan->other_rules);
	else if (scan->clear_rules != XT_SNI_CLEAR_RULES)
		snprintf(why, why_len, "chain %s has %zu rules, want %d", RULES_XT_SNI_CLEAR_CHAIN,
			 scan->clear_rules, XT_SNI_CLEAR_RULES);
	else if (scan->closed_rules != closed)
		snprintf(why, why_len, "chain %s has %zu rules, want %zu", RULES_XT_SNI_CLOSED_CHAIN,
			 scan->closed_rules, closed);
	else
		return 0;
	return -1;
}

static size_t closed_count(const struct guard_set *guard, int family)
{
	size_t n = 0;

	for (size_t i = 0; guard && i < guard->n_closed; i++)
		n += guard->closed[i].addr.family == family;
	return n;
}

int rules_xt_sni_check(enum rules_backend backend, const struct config *cfg,
		       const struct guard_set *guard, char *why, size_t why_len)
{
	if (!has_shared(cfg))
		return 1;
	for (size_t f = 0; f < 2; f++) {
		struct rules_xt_sni_scan scan;
		struct rules_endpoint *e = NULL;
		size_t shared = rules_sni_endpoints(cfg, sni_families[f], &e);
		char reason[160];

		free(e);
		if (shared == (size_t)-1 || xt_sni_scan(backend, cfg, sni_families[f], &scan) < 0)
			return -1;
		if (rules_xt_sni_scan_verdict(&scan, shared, closed_count(guard, sni_families[f]),
					      reason, sizeof(reason)) < 0) {
			snprintf(why, why_len, "IPv%d, shared addresses: %s",
				 sni_families[f] == AF_INET6 ? 6 : 4, reason);
			return 0;
		}
	}
	return 1;
}

/* Rules of chain sni (mark the SYN, queue the data; each per family) and
 * of sni_clear (clear PENDING, drop undecided data to closed endpoints per
 * family, clear SEEN): rules_render_nft_sni. */
#define NFT_SNI_RULES 4
#define NFT_SNI_CLEAR_RULES 4

int rules_sni_nft_listing_check(const char *listing, const struct config *cfg,
				const struct guard_set *guard, bool count, char *why,
				size_t why_len)
{
	static const char *const sets[2][2] = {{"set shared4 {", "set sni_closed4 {"},
					       {"set shared6 {", "set sni_closed6 {"}};
	const char *sni = strstr(listing, "chain sni {");
	const char *clear = strstr(listing, "chain sni_clear {");

	if (!has_shared(cfg))
		return 0;
	if (!sni || rules_nft_chain_rules(sni) != NFT_SNI_RULES) {
		snprintf(why, why_len, "the shared addresses' chain sni is gone or damaged");
		return -1;
	}
	if (!clear || rules_nft_chain_rules(clear) != NFT_SNI_CLEAR_RULES) {
		snprintf(why, why_len, "the shared addresses' chain sni_clear is gone or damaged");
		return -1;
	}
	for (size_t f = 0; f < 2; f++) {
		const char *shared = strstr(listing, sets[f][0]);
		const char *closed = strstr(listing, sets[f][1]);
		struct rules_endpoint *e = NULL;
		size_t want = rules_sni_endpoints(cfg, sni_families[f], &e);
		long have;

		free(e);
		if (!shared || !closed) {
			snprintf(why, why_len, "%s is gone", shared ? sets[f][1] : sets[f][0]);
			return -1;
		}
		if (count && want != (size_t)-1 &&
		    (have = rules_nft_count_elements(shared)) != (long)want) {
			snprintf(why, why_len, "set shared%d has %ld elements, want %zu",
				 f ? 6 : 4, have, want);
			return -1;
		}
		if (count && (have = rules_nft_count_elements(closed)) !=
				     (long)closed_count(guard, sni_families[f])) {
			snprintf(why, why_len, "set sni_closed%d has %ld elements, want %zu",
				 f ? 6 : 4, have, closed_count(guard, sni_families[f]));
			return -1;
		}
	}
	return 0;
}

uint16_t rules_sni_queue(const struct config *cfg)
{
	return (uint16_t)(cfg->queue.num + (cfg->queue.count ? cfg->queue.count : 1));
}
