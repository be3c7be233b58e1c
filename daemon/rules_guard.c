/* rules_guard: the kernel guard's texts for both backends and the parsers
 * of what the kernel says about it (rules.h, guard.h). The nft guard is
 * part of the table template (kmod-free/gatekeeper.nft.in); here are its
 * set elements and its update. The xt guard is this file's alone:
 *
 *   BASE (mangle PREROUTING | filter INPUT | filter FORWARD)
 *     -p tcp -j GATEKEEPER_GUARD                          (first rule)
 *   GATEKEEPER_GUARD
 *     not decided, not a health check  -j GATEKEEPER_OFFLINE
 *     decided                          -j MARK: the bit taken off again
 *   GATEKEEPER_OFFLINE                 per offline endpoint, first its allowed sources:
 *     -s NET -d ADDR -p tcp --dport PORT                  -j RETURN
 *   then two rules:
 *     -d ADDR -p tcp --dport PORT, a first fragment      -j GATEKEEPER_FRAGMENT
 *     -d ADDR -p tcp --dport PORT --tcp-flags SYN,ACK SYN -j GATEKEEPER_DROP|_REJECT
 *   GATEKEEPER_DROP      -j DROP       (its counter: the guard's drops)
 *   GATEKEEPER_REJECT    -j REJECT --reject-with tcp-reset (filter table),
 *                        -j DROP in mangle PREROUTING, where xtables has no REJECT
 *   GATEKEEPER_FRAGMENT  -j DROP       (first fragments: their flags may be
 *                        in the next fragment, as in a SYN whose first
 *                        fragment holds 8 bytes of TCP header)
 *
 * A first fragment is "MF set, offset 0": u32 on the IPv4 header, the frag
 * match on IPv6's fragment header. iptables-legacy's tcp match would drop
 * an 8-byte one by itself ("tinygram"), but iptables-nft turns the match
 * into nft payload expressions that merely fail to match it.
 *
 * xtables has no sets without ipset (another tool and kernel module): the
 * offline endpoints are rules, walked only by packets the daemon did not
 * decide (a decided one leaves at the first rule of GATEKEEPER_GUARD). */
#include "rules_internal.h"
#include "rules_cut.h"
#include "rules_sni.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Writes HEAD, GUARD's FAMILY endpoints with ACTION as "ADDR . PORT, ..."
 * and " }", or nothing at all when there are none. */
static void put_nft_list(FILE *out, const char *head, const struct guard_set *guard, int family,
			 enum site_action action)
{
	const char *sep = head;
	char addr[64];

	for (size_t i = 0; guard && i < guard->count; i++) {
		const struct guard_endpoint *e = &guard->endpoints[i];

		if (e->addr.family != family || e->action != action)
			continue;
		config_addr_str(&e->addr, addr, sizeof(addr));
		fprintf(out, "%s%s . %u", sep, addr, e->port);
		sep = ", ";
	}
	if (sep != head)
		fputs(" }", out);
}

void rules_guard_put_nft_elements(FILE *out, const struct guard_set *guard, int family,
				  enum site_action action)
{
	put_nft_list(out, "elements = { ", guard, family, action);
}

/* The allowed sources of FAMILY after HEAD, then " }"; nothing if none. */
static void put_nft_allow_list(FILE *out, const char *head, const struct guard_set *guard,
			       int family)
{
	const char *sep = head;
	char addr[64], net[CONFIG_CIDR_STRLEN];

	for (size_t i = 0; guard && i < guard->n_allows; i++) {
		const struct guard_allow *e = &guard->allows[i];

		if (e->addr.family != family)
			continue;
		fprintf(out, "%s%s . %u . %s", sep, config_addr_str(&e->addr, addr, sizeof(addr)),
			e->port, config_cidr_str(&e->source, net, sizeof(net)));
		sep = ", ";
	}
	if (sep != head)
		fputs(" }", out);
}

void rules_guard_put_nft_allows(FILE *out, const struct guard_set *guard, int family)
{
	put_nft_allow_list(out, "elements = { ", guard, family);
}

static const struct {
	const char *set;
	int family;
	enum site_action action;
} nft_guard_sets[] = {
	{"guard_drop4", AF_INET, SITE_ACTION_DROP},
	{"guard_reject4", AF_INET, SITE_ACTION_REJECT},
	{"guard_drop6", AF_INET6, SITE_ACTION_DROP},
	{"guard_reject6", AF_INET6, SITE_ACTION_REJECT},
};

/* The sets with one member per family whose elements come from one
 * routine each. */
static const struct {
	const char *prefix; /* PREFIX4, PREFIX6 */
	void (*put)(FILE *out, const char *head, const struct guard_set *guard, int family);
} family_sets[] = {
	{"guard_allow", put_nft_allow_list},
	{"sni_closed", rules_sni_put_nft_closed},
	{"cut", rules_cut_put_nft_elements},
};

char *rules_render_nft_guard(const struct guard_set *guard)
{
	char *text = NULL, head[96];
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	/* one transaction: every set flushed and refilled, or none */
	for (size_t i = 0; i < sizeof(nft_guard_sets) / sizeof(nft_guard_sets[0]); i++) {
		fprintf(out, "flush set inet %s %s\n", RULES_NFT_TABLE, nft_guard_sets[i].set);
		snprintf(head, sizeof(head), "add element inet %s %s { ", RULES_NFT_TABLE,
			 nft_guard_sets[i].set);
		put_nft_list(out, head, guard, nft_guard_sets[i].family, nft_guard_sets[i].action);
		fputc('\n', out);
	}
	/* the allow-lists, the closed shared addresses (rules_sni.h) and the
	 * cut's endpoints (rules_cut.h), one set per family each */
	for (size_t i = 0; i < sizeof(family_sets) / sizeof(family_sets[0]); i++) {
		for (int v6 = 0; v6 < 2; v6++) {
			fprintf(out, "flush set inet %s %s%d\n", RULES_NFT_TABLE, family_sets[i].prefix,
				v6 ? 6 : 4);
			snprintf(head, sizeof(head), "add element inet %s %s%d { ", RULES_NFT_TABLE,
				 family_sets[i].prefix, v6 ? 6 : 4);
			family_sets[i].put(out, head, guard, v6 ? AF_INET6 : AF_INET);
			fputc('\n', out);
		}
	}
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- xt ----------------------------------------------------------------- */

/* ENDPOINT's allowed sources leave the chain before its drop rules: they
 * pass the guard as they pass the daemon. */
static void xt_put_allow_rules(FILE *out, const struct guard_set *guard,
			       const struct guard_endpoint *endpoint)
{
	char addr[64], net[CONFIG_CIDR_STRLEN];

	for (size_t i = 0; i < guard->n_allows; i++) {
		const struct guard_allow *a = &guard->allows[i];

		if (a->port != endpoint->port || a->addr.family != endpoint->addr.family ||
		    memcmp(a->addr.bytes, endpoint->addr.bytes, sizeof(a->addr.bytes)) != 0)
			continue;
		fprintf(out, "-A %s -s %s -d %s -p tcp -m tcp --dport %u -j RETURN\n",
			RULES_XT_OFFLINE_CHAIN, config_cidr_str(&a->source, net, sizeof(net)),
			config_addr_str(&a->addr, addr, sizeof(addr)), a->port);
	}
}

static void xt_put_guard_rules(FILE *out, const struct guard_set *guard, int family)
{
	char addr[64];

	for (size_t i = 0; guard && i < guard->count; i++) {
		const struct guard_endpoint *e = &guard->endpoints[i];

		if (e->addr.family != family)
			continue;
		xt_put_allow_rules(out, guard, e);
		config_addr_str(&e->addr, addr, sizeof(addr));
		fprintf(out, "-A %s -d %s -p tcp -m tcp --dport %u %s -j %s\n", RULES_XT_OFFLINE_CHAIN,
			addr, e->port,
			family == AF_INET6 ? "-m frag --fragfirst --fragmore"
					   : "-m u32 --u32 \"0x4&0x3fff=0x2000\"",
			RULES_XT_FRAGMENT_CHAIN);
		fprintf(out, "-A %s -d %s -p tcp -m tcp --dport %u --tcp-flags SYN,ACK SYN -j %s\n",
			RULES_XT_OFFLINE_CHAIN, addr, e->port,
			e->action == SITE_ACTION_REJECT ? RULES_XT_REJECT_CHAIN : RULES_XT_DROP_CHAIN);
	}
}

char *rules_render_xt_guard(const struct config *cfg, const struct guard_set *guard, int family,
			    bool full, unsigned old_jumps)
{
	const char *base = rules_xt_base_chain(cfg->hook);
	bool can_reject = strcmp(rules_xt_guard_table(cfg->hook), "filter") == 0;
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	/* with --noflush, declaring a chain empties it: old and new contents
	 * swap in one commit */
	fprintf(out, "*%s\n:%s - [0:0]\n", rules_xt_guard_table(cfg->hook), RULES_XT_OFFLINE_CHAIN);
	if (full) {
		fprintf(out, ":%s - [0:0]\n:%s - [0:0]\n:%s - [0:0]\n:%s - [0:0]\n",
			RULES_XT_GUARD_CHAIN, RULES_XT_DROP_CHAIN, RULES_XT_REJECT_CHAIN,
			RULES_XT_FRAGMENT_CHAIN);
		fprintf(out, "-A %s -m mark ! --mark %s/%s -m mark ! --mark %s -j %s\n",
			RULES_XT_GUARD_CHAIN, RULES_DECIDED_MARK_TEXT, RULES_DECIDED_MARK_TEXT,
			RULES_CHECK_MARK_TEXT, RULES_XT_OFFLINE_CHAIN);
		fprintf(out, "-A %s -m mark --mark %s/%s -j MARK --set-xmark 0x0/%s\n",
			RULES_XT_GUARD_CHAIN, RULES_DECIDED_MARK_TEXT, RULES_DECIDED_MARK_TEXT,
			RULES_DECIDED_MARK_TEXT);
		fprintf(out, "-A %s -j DROP\n", RULES_XT_DROP_CHAIN);
		fprintf(out, "-A %s -j DROP\n", RULES_XT_FRAGMENT_CHAIN);
		if (can_reject)
			fprintf(out, "-A %s -p tcp -j REJECT --reject-with tcp-reset\n",
				RULES_XT_REJECT_CHAIN);
		else
			fprintf(out, "-A %s -j DROP\n", RULES_XT_REJECT_CHAIN);
	}
	xt_put_guard_rules(out, guard, family);
	if (full) {
		for (unsigned i = 0; i < old_jumps; i++)
			fprintf(out, "-D %s -p tcp -j %s\n", base, RULES_XT_GUARD_CHAIN);
		fprintf(out, "-I %s 1 -p tcp -j %s\n", base, RULES_XT_GUARD_CHAIN);
	}
	fputs("COMMIT\n", out);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* "[PACKETS:BYTES] " in front of a rule of `-save -c`: the packets, and
 * *LINE moved past it. */
static unsigned long long take_counter(const char **line)
{
	const char *p = *line;
	unsigned long long packets;
	char *end;

	if (*p != '[')
		return 0;
	packets = strtoull(p + 1, &end, 10);
	if (*end != ':')
		return 0;
	end = strchr(end, ']');
	if (!end)
		return 0;
	*line = end + 1 + (end[1] == ' ');
	return packets;
}

void rules_xt_guard_scan_line(struct rules_xt_guard_scan *scan, const char *line)
{
	static const char *const chains[] = {RULES_XT_GUARD_CHAIN, RULES_XT_OFFLINE_CHAIN,
					     RULES_XT_DROP_CHAIN, RULES_XT_REJECT_CHAIN,
					     RULES_XT_FRAGMENT_CHAIN};
	unsigned long long packets = take_counter(&line);
	char prefix[64];
	size_t len;

	for (unsigned i = 0; i < 5; i++) {
		snprintf(prefix, sizeof(prefix), ":%s ", chains[i]);
		if (starts_with(line, prefix)) {
			scan->declared |= 1u << i;
			return;
		}
	}
	if (starts_with(line, "-A " RULES_XT_GUARD_CHAIN " ")) {
		scan->guard_rules++;
	} else if (starts_with(line, "-A " RULES_XT_OFFLINE_CHAIN " ")) {
		scan->offline_rules++;
	} else if (starts_with(line, "-A " RULES_XT_DROP_CHAIN " ")) {
		scan->drop_rules++;
		scan->counters.syn_dropped += packets;
	} else if (starts_with(line, "-A " RULES_XT_REJECT_CHAIN " ")) {
		scan->reject_rules++;
		scan->counters.syn_rejected += packets;
	} else if (starts_with(line, "-A " RULES_XT_FRAGMENT_CHAIN " ")) {
		scan->fragment_rules++;
		scan->counters.fragments += packets;
	} else {
		snprintf(prefix, sizeof(prefix), "-A %s ", scan->base_chain);
		len = strcspn(line, "\r\n");
		static const char jump[] = " -j " RULES_XT_GUARD_CHAIN;
		/* the jump ends its line: "-j GATEKEEPER_GUARD" exactly */
		if (starts_with(line, prefix) && len >= sizeof(jump) - 1 &&
		    memcmp(line + len - (sizeof(jump) - 1), jump, sizeof(jump) - 1) == 0)
			scan->jumps++;
	}
}

int rules_xt_guard_scan_verdict(const struct rules_xt_guard_scan *scan, size_t want,
				size_t want_allows, char *why, size_t why_len)
{
	if (scan->declared != 0x1fu)
		snprintf(why, why_len, "a guard chain is gone");
	else if (scan->jumps != 1)
		snprintf(why, why_len, "%zu jumps to %s from %s, want 1", scan->jumps,
			 RULES_XT_GUARD_CHAIN, scan->base_chain);
	else if (scan->guard_rules != 2 || scan->drop_rules != 1 || scan->reject_rules != 1 ||
		 scan->fragment_rules != 1)
		snprintf(why, why_len, "the guard chains hold %zu/%zu/%zu/%zu rules, want 2/1/1/1",
			 scan->guard_rules, scan->drop_rules, scan->reject_rules,
			 scan->fragment_rules);
	else if (scan->offline_rules != 2 * want + want_allows)
		snprintf(why, why_len, "chain %s has %zu rules, want %zu", RULES_XT_OFFLINE_CHAIN,
			 scan->offline_rules, 2 * want + want_allows);
	else
		return 0;
	return -1;
}

long long rules_nft_counter_packets(const char *listing, const char *name)
{
	char head[96];
	const char *p, *packets;

	snprintf(head, sizeof(head), "counter %s {", name);
	p = strstr(listing, head);
	if (!p)
		return -1;
	packets = strstr(p, "packets ");
	if (!packets || (strchr(p, '}') && packets > strchr(p, '}')))
		return -1;
	return strtoll(packets + strlen("packets "), NULL, 10);
}
