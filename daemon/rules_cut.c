/* rules_cut: the kernel side of `gatekeeperctl offline SITE --cut` for the
 * xt backends (the nft one is part of kmod-free/gatekeeper.nft.in: sets
 * cut4/cut6, chain cut). Always in the filter table, whatever the hook:
 * it is the only table where xtables has REJECT, and INPUT + FORWARD +
 * OUTPUT see both directions of every flow through or to this box, also
 * when the queueing hook is prerouting:
 *
 *   INPUT, FORWARD, OUTPUT
 *     -p tcp -m conntrack --ctstate (every state) -j GATEKEEPER_CUT  (first rule)
 *   GATEKEEPER_CUT          only while a site of the family is cut:
 *     mark RULES_CHECK_MARK               -j RETURN  (the daemon's probes, checks)
 *     SYN or RST set                      -j RETURN  (new connections: the guard's)
 *     per cut endpoint, its allowed sources, both directions -j RETURN
 *     -d ADDR --dport PORT                -j GATEKEEPER_CUT_RESET  (client -> server)
 *     -s ADDR --sport PORT                -j GATEKEEPER_CUT_RESET  (server -> client)
 *   GATEKEEPER_CUT_RESET   -j REJECT --reject-with tcp-reset  (its counter: the cut's RSTs)
 *
 * The RST REJECT sends goes to the packet's sender with the packet's ack as
 * its sequence number: exactly what that end expects next, so it accepts
 * it. The conntrack match of the jump matches every packet; it is there so
 * that the kernel tracks connections from start-up (conntrack registers its
 * hooks in a namespace only once a rule needs them), which the prober of
 * idle connections (cut.h) lists. */
#include "rules_cut.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "rules_internal.h"

#define JUMP_SPEC "-p tcp -m conntrack --ctstate INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED"

static const char *const bases[] = {"INPUT", "FORWARD", "OUTPUT"};
#define N_BASES (sizeof(bases) / sizeof(bases[0]))

static bool has_cut(const struct guard_set *guard, int family)
{
	for (size_t i = 0; guard && i < guard->count; i++)
		if (guard->endpoints[i].cut && guard->endpoints[i].addr.family == family)
			return true;
	return false;
}

static bool same_endpoint(const struct guard_allow *a, const struct guard_endpoint *e)
{
	return a->port == e->port && a->addr.family == e->addr.family &&
	       memcmp(a->addr.bytes, e->addr.bytes, sizeof(a->addr.bytes)) == 0;
}

static void put_cut_rules(FILE *out, const struct guard_set *guard, int family)
{
	char addr[64], net[CONFIG_CIDR_STRLEN];

	if (!has_cut(guard, family))
		return; /* an empty chain: the jump costs one rule per TCP packet */
	fprintf(out, "-A %s -m mark --mark %s -j RETURN\n", RULES_XT_CUT_CHAIN, RULES_CHECK_MARK_TEXT);
	fprintf(out, "-A %s -p tcp -m tcp --tcp-flags SYN SYN -j RETURN\n", RULES_XT_CUT_CHAIN);
	fprintf(out, "-A %s -p tcp -m tcp --tcp-flags RST RST -j RETURN\n", RULES_XT_CUT_CHAIN);
	for (size_t i = 0; i < guard->count; i++) {
		const struct guard_endpoint *e = &guard->endpoints[i];

		if (!e->cut || e->addr.family != family)
			continue;
		config_addr_str(&e->addr, addr, sizeof(addr));
		/* the allow-list lets its sources in while offline: their
		 * connections are not cut either */
		for (size_t a = 0; a < guard->n_allows; a++) {
			if (!same_endpoint(&guard->allows[a], e))
				continue;
			config_cidr_str(&guard->allows[a].source, net, sizeof(net));
			fprintf(out, "-A %s -s %s -d %s -p tcp -m tcp --dport %u -j RETURN\n",
				RULES_XT_CUT_CHAIN, net, addr, e->port);
			fprintf(out, "-A %s -s %s -d %s -p tcp -m tcp --sport %u -j RETURN\n",
				RULES_XT_CUT_CHAIN, addr, net, e->port);
		}
		fprintf(out, "-A %s -d %s -p tcp -m tcp --dport %u -j %s\n", RULES_XT_CUT_CHAIN, addr,
			e->port, RULES_XT_CUT_RESET_CHAIN);
		fprintf(out, "-A %s -s %s -p tcp -m tcp --sport %u -j %s\n", RULES_XT_CUT_CHAIN, addr,
			e->port, RULES_XT_CUT_RESET_CHAIN);
	}
}

char *rules_render_xt_cut(const struct guard_set *guard, int family, bool full,
			  const unsigned old_jumps[3])
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	/* with --noflush, declaring a chain empties it */
	fprintf(out, "*filter\n:%s - [0:0]\n", RULES_XT_CUT_CHAIN);
	if (full)
		fprintf(out, ":%s - [0:0]\n-A %s -p tcp -j REJECT --reject-with tcp-reset\n",
			RULES_XT_CUT_RESET_CHAIN, RULES_XT_CUT_RESET_CHAIN);
	put_cut_rules(out, guard, family);
	for (size_t b = 0; full && b < N_BASES; b++) {
		for (unsigned i = 0; old_jumps && i < old_jumps[b]; i++)
			fprintf(out, "-D %s " JUMP_SPEC " -j %s\n", bases[b], RULES_XT_CUT_CHAIN);
		fprintf(out, "-I %s 1 " JUMP_SPEC " -j %s\n", bases[b], RULES_XT_CUT_CHAIN);
	}
	fputs("COMMIT\n", out);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

static bool ends_with_jump(const char *line)
{
	static const char jump[] = " -j " RULES_XT_CUT_CHAIN;
	size_t len = strcspn(line, "\r\n");

	return len >= sizeof(jump) - 1 &&
	       memcmp(line + len - (sizeof(jump) - 1), jump, sizeof(jump) - 1) == 0;
}

void rules_xt_cut_scan_line(struct rules_xt_cut_scan *scan, const char *line)
{
	char prefix[32];

	if (line[0] == '[') { /* a counter in front: -save -c */
		const char *close = strchr(line, ']');
		unsigned long long packets = strtoull(line + 1, NULL, 10);

		if (!close)
			return;
		line = close + 1 + (close[1] == ' ');
		if (strncmp(line, "-A " RULES_XT_CUT_RESET_CHAIN " ",
			    sizeof("-A " RULES_XT_CUT_RESET_CHAIN)) == 0)
			scan->resets += packets;
	}
	for (size_t b = 0; b < N_BASES; b++) {
		snprintf(prefix, sizeof(prefix), "-A %s ", bases[b]);
		if (strncmp(line, prefix, strlen(prefix)) == 0 && ends_with_jump(line))
			scan->jumps[b]++;
	}
}

static void scan_cb(void *arg, const char *line)
{
	rules_xt_cut_scan_line(arg, line);
}

static const int families[] = {AF_INET, AF_INET6};

int rules_xt_cut_apply(enum rules_backend backend, const struct guard_set *guard, bool full)
{
	for (size_t f = 0; f < 2; f++) {
		struct rules_xt_cut_scan scan = {0};
		char *text;
		int rc;

		if (full && rules_xt_save(backend, families[f], "filter", false, scan_cb, &scan) < 0)
			return -1;
		text = rules_render_xt_cut(guard, families[f], full, scan.jumps);
		if (!text)
			return -1;
		rc = rules_xt_exec(backend, families[f], true, text, NULL, false);
		free(text);
		if (rc != 0) {
			log_error("%stables-%s-restore failed for the cut's rules (exit %d)",
				  families[f] == AF_INET6 ? "ip6" : "ip", rules_xt_flavour(backend), rc);
			return -1;
		}
	}
	return 0;
}

void rules_xt_cut_remove(enum rules_backend backend)
{
	for (size_t f = 0; f < 2; f++) {
		struct rules_xt_cut_scan scan = {0};
		char *flush[] = {"-t", "filter", "-F", NULL, NULL};
		char *del[] = {"-t", "filter", "-X", NULL, NULL};
		char *text = NULL;
		size_t size = 0;
		FILE *out;

		if (rules_xt_save(backend, families[f], "filter", false, scan_cb, &scan) < 0)
			continue;
		out = open_memstream(&text, &size);
		if (!out)
			continue;
		fputs("*filter\n", out);
		for (size_t b = 0; b < N_BASES; b++)
			for (unsigned i = 0; i < scan.jumps[b]; i++)
				fprintf(out, "-D %s " JUMP_SPEC " -j %s\n", bases[b], RULES_XT_CUT_CHAIN);
		fputs("COMMIT\n", out);
		if (fclose(out) == 0)
			rules_xt_exec(backend, families[f], true, text, NULL, true);
		free(text);
		/* CUT first: it jumps to CUT_RESET, and a referenced chain stays */
		flush[3] = del[3] = RULES_XT_CUT_CHAIN;
		rules_xt_exec(backend, families[f], false, NULL, flush, true);
		rules_xt_exec(backend, families[f], false, NULL, del, true);
		flush[3] = del[3] = RULES_XT_CUT_RESET_CHAIN;
		rules_xt_exec(backend, families[f], false, NULL, flush, true);
		rules_xt_exec(backend, families[f], false, NULL, del, true);
	}
}

uint64_t rules_xt_cut_resets(enum rules_backend backend)
{
	uint64_t total = 0;

	for (size_t f = 0; f < 2; f++) {
		struct rules_xt_cut_scan scan = {0};

		if (rules_xt_save(backend, families[f], "filter", true, scan_cb, &scan) == 0)
			total += scan.resets;
	}
	return total;
}

/* ---- nft ---- */

uint64_t rules_nft_cut_resets(void)
{
	char *listing = rules_nft_output("list counter inet " RULES_NFT_TABLE " cut_resets", false,
					 NULL, 0);
	long long packets = listing ? rules_nft_counter_packets(listing, "cut_resets") : -1;

	free(listing);
	return packets > 0 ? (uint64_t)packets : 0;
}

void rules_cut_put_nft_elements(FILE *out, const char *head, const struct guard_set *guard,
				int family)
{
	const char *sep = head;
	char addr[64];

	for (size_t i = 0; guard && i < guard->count; i++) {
		const struct guard_endpoint *e = &guard->endpoints[i];

		if (!e->cut || e->addr.family != family)
			continue;
		config_addr_str(&e->addr, addr, sizeof(addr));
		fprintf(out, "%s%s . %u", sep, addr, e->port);
		sep = ", ";
	}
	if (sep != head)
		fputs(" }", out);
}
