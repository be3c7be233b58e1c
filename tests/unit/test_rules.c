/* rules: the texts handed to nft and iptables-restore, and the backend
 * choice for each combination of kernel features. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "config.h"
#include "guard.h"
#include "rules.h"
#include "rules_internal.h"
#include "rules_cut.h"
#include "sites.h"

static const char yaml[] =
	"hook: forward\n"
	"queue: { num: 3, count: 1, fail_open: true }\n"
	"sites:\n"
	"  - name: shop\n"
	"    addresses: [198.51.100.10, \"2001:db8:2::10\"]\n"
	"    ports: [443, 8443]\n"
	"  - name: blog\n"
	"    addresses: [198.51.100.11]\n";

static struct config *load(const char *text)
{
	struct config_errors errors = {0};
	struct config *cfg = config_parse("t.yaml", text, strlen(text), &errors);

	for (size_t i = 0; i < errors.count; i++)
		print_error("%s\n", errors.messages[i]);
	assert_non_null(cfg);
	return cfg;
}

static void test_nft_text(void **state)
{
	struct config *cfg = load(yaml);
	char *text = rules_render_nft(cfg, NULL);

	(void)state;
	assert_non_null(text);
	/* replaces a stale table in the same transaction */
	assert_non_null(strstr(text, "table inet gatekeeper\ndelete table inet gatekeeper\n"));
	assert_non_null(strstr(text, "type filter hook forward priority -150;"));
	assert_non_null(strstr(text, "elements = { 198.51.100.10 . 443, 198.51.100.10 . 8443, "
				     "198.51.100.11 . 443 }"));
	assert_non_null(strstr(text, "elements = { 2001:db8:2::10 . 443, 2001:db8:2::10 . 8443 }"));
	assert_non_null(strstr(text, "tcp flags & (syn | ack) == syn meta mark != 0x676b ip daddr . "
				     "tcp dport @managed4 queue num 3 bypass"));
	assert_non_null(strstr(text, "tcp flags & (syn | ack) == syn meta mark != 0x676b ip6 daddr . "
				     "tcp dport @managed6 queue num 3 bypass"));
	assert_null(strstr(text, "{{"));
	free(text);
	config_free(cfg);
}

static void test_nft_fanout_no_bypass(void **state)
{
	struct config *cfg = load("queue: { num: 0, count: 2, fail_open: false }\n"
				  "sites:\n  - name: a\n    addresses: [192.0.2.5]\n");
	char *text = rules_render_nft(cfg, NULL);

	(void)state;
	assert_non_null(strstr(text, "hook prerouting priority -300;"));
	assert_non_null(strstr(text, "queue num 0-1 fanout"));
	assert_null(strstr(text, "bypass"));
	/* no IPv6 address: the set is declared without elements */
	assert_null(strstr(text, "elements = { 2001"));
	free(text);
	config_free(cfg);
}

static void test_xt_text(void **state)
{
	struct config *cfg = load(yaml);
	char *v4 = rules_render_xt(cfg, AF_INET, 0);
	char *v6 = rules_render_xt(cfg, AF_INET6, -1);

	(void)state;
	assert_non_null(strstr(v4, "*mangle\n:GATEKEEPER - [0:0]\n"));
	assert_non_null(strstr(v4, "-A GATEKEEPER -d 198.51.100.10 -p tcp -m tcp --dport 8443 "
				   "-m mark ! --mark 0x676b -j NFQUEUE --queue-num 3 --queue-bypass\n"));
	assert_non_null(strstr(v4, "-I FORWARD 1 -p tcp -m tcp --tcp-flags SYN,ACK SYN "
				   "-j GATEKEEPER\n"));
	assert_null(strstr(v4, "2001:db8"));
	assert_non_null(strstr(v6, "-A GATEKEEPER -d 2001:db8:2::10 -p tcp -m tcp --dport 443 "));
	assert_null(strstr(v6, "-I FORWARD"));
	assert_null(strstr(v6, "198.51.100"));
	assert_non_null(strstr(v6, "COMMIT\n"));
	free(v4);
	free(v6);
	config_free(cfg);
}

static void test_choose(void **state)
{
	struct rules_probe here = {.nf_tables = true, .nft_queue = false, .nft_reject = true,
				   .xt_nfqueue = true, .nfnetlink_queue = true,
				   .iptables_nft = true, .iptables_legacy = true};
	struct rules_probe stock = here;
	enum rules_backend b;
	char why[256];

	(void)state;
	stock.nft_queue = true;
	assert_int_equal(rules_choose(&here, CONFIG_BACKEND_AUTO, &b, why, sizeof(why)), 0);
	assert_int_equal(b, RULES_BACKEND_XT_NFT);
	assert_int_equal(rules_choose(&stock, CONFIG_BACKEND_AUTO, &b, why, sizeof(why)), 0);
	assert_int_equal(b, RULES_BACKEND_NFT);
	assert_int_equal(rules_choose(&stock, CONFIG_BACKEND_XT, &b, why, sizeof(why)), 0);
	assert_int_equal(b, RULES_BACKEND_XT_NFT);
	assert_int_equal(rules_choose(&here, CONFIG_BACKEND_NFT, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "CONFIG_NFT_QUEUE"));
	/* the guard needs nft reject: without it auto falls back to xt */
	stock.nft_reject = false;
	assert_int_equal(rules_choose(&stock, CONFIG_BACKEND_NFT, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "CONFIG_NFT_REJECT"));
	assert_int_equal(rules_choose(&stock, CONFIG_BACKEND_AUTO, &b, why, sizeof(why)), 0);
	assert_int_equal(b, RULES_BACKEND_XT_NFT);
	stock.nft_reject = true;
	assert_int_equal(rules_choose(&here, CONFIG_BACKEND_XT_LEGACY, &b, why, sizeof(why)), 0);
	assert_int_equal(b, RULES_BACKEND_XT_LEGACY);
	assert_int_equal(rules_choose(&stock, CONFIG_BACKEND_XT_NFT, &b, why, sizeof(why)), 0);
	assert_int_equal(b, RULES_BACKEND_XT_NFT);
	here.iptables_nft = false;
	assert_int_equal(rules_choose(&here, CONFIG_BACKEND_XT_NFT, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "iptables-nft-restore not found"));
	assert_int_equal(rules_choose(&here, CONFIG_BACKEND_AUTO, &b, why, sizeof(why)), 0);
	assert_int_equal(b, RULES_BACKEND_XT_LEGACY);
	here.iptables_legacy = false;
	assert_int_equal(rules_choose(&here, CONFIG_BACKEND_AUTO, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "apt-get install iptables"));
	here.nfnetlink_queue = false;
	assert_int_equal(rules_choose(&here, CONFIG_BACKEND_AUTO, &b, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "CONFIG_NETFILTER_NETLINK_QUEUE"));
	assert_int_equal(rules_choose(&here, CONFIG_BACKEND_EXTERNAL, &b, why, sizeof(why)), 0);
	assert_int_equal(b, RULES_BACKEND_EXTERNAL);
}

/* ---- the watchdog's parsers (rules_check) ---- */

static const char xt_save_ok[] =
	"# Generated by iptables-nft-save v1.8.9 (nf_tables) on Fri Nov 27 17:41:00 2026\n"
	"*raw\n"
	":PREROUTING ACCEPT [0:0]\n"
	":OUTPUT ACCEPT [0:0]\n"
	":GATEKEEPER - [0:0]\n"
	"-A PREROUTING -p tcp -m tcp --tcp-flags SYN,ACK SYN -j GATEKEEPER\n"
	"-A GATEKEEPER -d 198.51.100.10/32 -p tcp -m tcp --dport 443 -m mark ! --mark 0x676b "
	"-j NFQUEUE --queue-num 0 --queue-bypass\n"
	"-A GATEKEEPER -d 198.51.100.11/32 -p tcp -m tcp --dport 443 -m mark ! --mark 0x676b "
	"-j NFQUEUE --queue-num 0 --queue-bypass\n"
	"COMMIT\n"
	"# Completed on Fri Nov 27 17:41:00 2026\n";

static int xt_scan_text(const char *text, const char *base, size_t want, char *why, size_t len)
{
	struct rules_xt_scan scan = {.base_chain = base};
	char *copy = strdup(text), *save = NULL;

	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		rules_xt_scan_line(&scan, line);
	free(copy);
	return rules_xt_scan_verdict(&scan, want, why, len);
}

static char *replace(const char *text, const char *from, const char *to)
{
	const char *at = strstr(text, from);
	char *out;

	assert_non_null(at);
	out = malloc(strlen(text) + strlen(to) + 1);
	memcpy(out, text, (size_t)(at - text));
	strcpy(out + (at - text), to);
	strcat(out, at + strlen(from));
	return out;
}

static void test_xt_scan(void **state)
{
	char why[256], *text;

	(void)state;
	assert_int_equal(xt_scan_text(xt_save_ok, "PREROUTING", 2, why, sizeof(why)), 0);
	/* one pair fewer in the config than in the kernel, or one more */
	assert_int_equal(xt_scan_text(xt_save_ok, "PREROUTING", 3, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "2 queueing rules (want 3)"));
	/* the jump from another base chain does not count */
	assert_int_equal(xt_scan_text(xt_save_ok, "FORWARD", 2, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "0 jumps"));
	/* a firewall reload: the table as iptables-save prints it when empty */
	assert_int_equal(xt_scan_text("*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n",
				      "PREROUTING", 2, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "chain GATEKEEPER is gone"));
	/* the jump deleted, the chain left */
	text = replace(xt_save_ok, "-A PREROUTING -p tcp -m tcp --tcp-flags SYN,ACK SYN -j GATEKEEPER\n", "");
	assert_int_equal(xt_scan_text(text, "PREROUTING", 2, why, sizeof(why)), -1);
	free(text);
	/* a second jump (someone re-ran an old script), or a jump to a longer name */
	text = replace(xt_save_ok, "COMMIT", "-A PREROUTING -j GATEKEEPER\nCOMMIT");
	assert_int_equal(xt_scan_text(text, "PREROUTING", 2, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "2 jumps"));
	free(text);
	text = replace(xt_save_ok, "SYN -j GATEKEEPER\n", "SYN -j GATEKEEPER2\n");
	assert_int_equal(xt_scan_text(text, "PREROUTING", 2, why, sizeof(why)), -1);
	free(text);
	/* a foreign rule in our chain */
	text = replace(xt_save_ok, "COMMIT", "-A GATEKEEPER -j ACCEPT\nCOMMIT");
	assert_int_equal(xt_scan_text(text, "PREROUTING", 2, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "1 others"));
	free(text);
	/* no pairs of this family: the chain and the jump are still expected */
	text = replace(xt_save_ok, "-A GATEKEEPER -d 198.51.100.10", "-X -d");
	assert_int_equal(xt_scan_text(text, "PREROUTING", 1, why, sizeof(why)), 0);
	free(text);
}

/* `nft list table inet gatekeeper` as nftables 1.0.6 prints it. */
static const char nft_listing_ok[] =
	"table inet gatekeeper {\n"
	"\tcounter guard_syn_dropped {\n"
	"\t\tpackets 7 bytes 420\n"
	"\t}\n"
	"\n"
	"\tcounter guard_syn_rejected {\n"
	"\t\tpackets 0 bytes 0\n"
	"\t}\n"
	"\n"
	"\tcounter guard_fragments {\n"
	"\t\tpackets 12 bytes 900\n"
	"\t}\n"
	"\n"
	"\tset managed4 {\n"
	"\t\ttype ipv4_addr . inet_service\n"
	"\t\telements = { 198.51.100.10 . 443,\n"
	"\t\t\t     198.51.100.11 . 443,\n"
	"\t\t\t     198.51.100.12 . 8443 }\n"
	"\t}\n"
	"\n"
	"\tset managed6 {\n"
	"\t\ttype ipv6_addr . inet_service\n"
	"\t}\n"
	"\n"
	"\tset guard_drop4 {\n"
	"\t\ttype ipv4_addr . inet_service\n"
	"\t\telements = { 198.51.100.11 . 443 }\n"
	"\t}\n"
	"\n"
	"\tset guard_reject4 {\n"
	"\t\ttype ipv4_addr . inet_service\n"
	"\t}\n"
	"\n"
	"\tset guard_drop6 {\n"
	"\t\ttype ipv6_addr . inet_service\n"
	"\t}\n"
	"\n"
	"\tset guard_reject6 {\n"
	"\t\ttype ipv6_addr . inet_service\n"
	"\t}\n"
	"\n"
	"\tset guard_allow4 {\n"
	"\t\ttype ipv4_addr . inet_service . ipv4_addr\n"
	"\t\tflags interval\n"
	"\t\telements = { 198.51.100.11 . 443 . 203.0.113.0/24 }\n"
	"\t}\n"
	"\n"
	"\tset guard_allow6 {\n"
	"\t\ttype ipv6_addr . inet_service . ipv6_addr\n"
	"\t\tflags interval\n"
	"\t}\n"
	"\n"
	"\tchain syn {\n"
	"\t\ttype filter hook prerouting priority raw; policy accept;\n"
	"\t\ttcp flags syn / syn,ack meta mark != 0x0000676b ip daddr . tcp dport @managed4 "
	"queue flags bypass to 0\n"
	"\t\ttcp flags syn / syn,ack meta mark != 0x0000676b ip6 daddr . tcp dport @managed6 "
	"queue flags bypass to 0\n"
	"\t}\n"
	"\n"
	"\tchain guard {\n"
	"\t\ttype filter hook prerouting priority raw + 10; policy accept;\n"
	"\t\tmeta mark & 0x20000000 == 0x20000000 meta mark set meta mark & 0xdfffffff accept\n"
	"\t\tmeta mark 0x0000676b accept\n"
	"\t\tip daddr . tcp dport . ip saddr @guard_allow4 accept\n"
	"\t\tip6 daddr . tcp dport . ip6 saddr @guard_allow6 accept\n"
	"\t\tip frag-off & 16383 == 8192 ip daddr . tcp dport @guard_drop4 counter name \"guard_fragments\" drop\n"
	"\t\tip frag-off & 16383 == 8192 ip daddr . tcp dport @guard_reject4 counter name \"guard_fragments\" drop\n"
	"\t\tfrag more-fragments 1 frag frag-off 0 ip6 daddr . tcp dport @guard_drop6 counter name \"guard_fragments\" drop\n"
	"\t\tfrag more-fragments 1 frag frag-off 0 ip6 daddr . tcp dport @guard_reject6 counter name \"guard_fragments\" drop\n"
	"\t\ttcp flags syn / syn,ack ip daddr . tcp dport @guard_drop4 counter name \"guard_syn_dropped\" drop\n"
	"\t\ttcp flags syn / syn,ack ip daddr . tcp dport @guard_reject4 counter name \"guard_syn_rejected\" reject with tcp reset\n"
	"\t\ttcp flags syn / syn,ack ip6 daddr . tcp dport @guard_drop6 counter name \"guard_syn_dropped\" drop\n"
	"\t\ttcp flags syn / syn,ack ip6 daddr . tcp dport @guard_reject6 counter name \"guard_syn_rejected\" reject with tcp reset\n"
	"\t}\n"
	"}\n";

static void test_nft_listing(void **state)
{
	char why[256], *text;

	(void)state;
	assert_int_equal(rules_nft_listing_check(nft_listing_ok, "prerouting", 3, 0, why, sizeof(why)), 0);
	/* terse: elements not counted */
	assert_int_equal(rules_nft_listing_check(nft_listing_ok, "prerouting", -1, -1, why, sizeof(why)), 0);
	assert_int_equal(rules_nft_listing_check(nft_listing_ok, "prerouting", 4, 0, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "managed4 has 3 elements, want 4"));
	assert_int_equal(rules_nft_listing_check(nft_listing_ok, "prerouting", 3, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "managed6 has 0 elements, want 1"));
	assert_int_equal(rules_nft_listing_check(nft_listing_ok, "forward", 3, 0, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "hook forward"));
	assert_int_equal(rules_nft_listing_check("", "prerouting", 3, 0, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "is gone"));
	/* an admin flushed the chain: sets left, rules gone */
	text = replace(nft_listing_ok, "queue flags bypass to 0\n\t\ttcp", "accept\n\t\ttcp");
	assert_int_equal(rules_nft_listing_check(text, "prerouting", 3, 0, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "queueing rule"));
	free(text);
	text = replace(nft_listing_ok, "set managed6", "set other6");
	assert_int_equal(rules_nft_listing_check(text, "prerouting", 3, 0, why, sizeof(why)), -1);
	free(text);
	/* the guard: chain gone, a rule gone */
	text = replace(nft_listing_ok, "chain guard {", "chain other {");
	assert_int_equal(rules_nft_listing_check(text, "prerouting", 3, 0, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "guard chain"));
	free(text);
	text = replace(nft_listing_ok, "\t\tmeta mark 0x0000676b accept\n", "");
	assert_int_equal(rules_nft_listing_check(text, "prerouting", 3, 0, why, sizeof(why)), -1);
	free(text);
	/* its sets and counters */
	assert_int_equal(rules_nft_guard_elements(nft_listing_ok), 2);
	text = replace(nft_listing_ok, "set guard_reject6", "set other6");
	assert_int_equal(rules_nft_guard_elements(text), -1);
	free(text);
	assert_int_equal(rules_nft_counter_packets(nft_listing_ok, "guard_syn_dropped"), 7);
	assert_int_equal(rules_nft_counter_packets(nft_listing_ok, "guard_syn_rejected"), 0);
	assert_int_equal(rules_nft_counter_packets(nft_listing_ok, "guard_fragments"), 12);
	assert_int_equal(rules_nft_counter_packets(nft_listing_ok, "guard_other"), -1);
}

/* Two offline sites: blog (drop, v4 + v6) and wiki (reject, v4). */
static const char guard_yaml[] =
	"hook: prerouting\n"
	"sites:\n"
	"  - name: shop\n"
	"    addresses: [198.51.100.10]\n"
	"  - name: blog\n"
	"    addresses: [198.51.100.11, \"2001:db8:2::11\"]\n"
	"    state: offline\n"
	"    allow: [203.0.113.0/24, \"2001:db8:ff::/48\"]\n"
	"  - name: wiki\n"
	"    addresses: [198.51.100.12]\n"
	"    ports: [443, 8443]\n"
	"    state: offline\n"
	"    action: reject\n";

static void guard_of(const struct config *cfg, struct guard_set *guard)
{
	struct sites *sites = sites_create(cfg);

	assert_non_null(sites);
	assert_int_equal(guard_set_build(guard, sites), 0);
	sites_free(sites);
}

static void test_guard_set(void **state)
{
	struct config *cfg = load(guard_yaml);
	struct guard_set a, b;
	struct sites *sites = sites_create(cfg);

	(void)state;
	assert_int_equal(guard_set_build(&a, sites), 0);
	assert_int_equal(a.count, 4);
	/* blog's allow-list: one network per family, for its one port */
	assert_int_equal(a.n_allows, 2);
	assert_int_equal(guard_set_build(&b, sites), 0);
	assert_true(guard_set_equal(&a, &b));
	/* a toggle changes the set; the action counts too */
	site_set_override(sites_find(sites, "shop"), SITE_OFFLINE, SITE_ACTION_DROP);
	guard_set_free(&b);
	assert_int_equal(guard_set_build(&b, sites), 0);
	assert_int_equal(b.count, 5);
	assert_false(guard_set_equal(&a, &b));
	site_set_override(sites_find(sites, "shop"), SITE_ONLINE, SITE_ACTION_DROP);
	site_set_override(sites_find(sites, "blog"), SITE_OFFLINE, SITE_ACTION_REJECT);
	guard_set_free(&b);
	assert_int_equal(guard_set_build(&b, sites), 0);
	assert_int_equal(b.count, 4);
	assert_false(guard_set_equal(&a, &b));
	guard_set_move(&a, &b);
	assert_int_equal(a.count, 4);
	assert_int_equal(b.count, 0);
	guard_set_free(&a);
	sites_free(sites);
	config_free(cfg);
}

static void test_guard_nft_text(void **state)
{
	struct config *cfg = load(guard_yaml);
	struct guard_set guard;
	char *text, *update;

	(void)state;
	guard_of(cfg, &guard);
	text = rules_render_nft(cfg, &guard);
	assert_non_null(strstr(text, "type filter hook prerouting priority -290;"));
	assert_non_null(strstr(text, "set guard_drop4 {\n\t\ttype ipv4_addr . inet_service\n"
				     "\t\telements = { 198.51.100.11 . 443 }"));
	assert_non_null(strstr(text, "elements = { 198.51.100.12 . 443, 198.51.100.12 . 8443 }"));
	assert_non_null(strstr(text, "elements = { 2001:db8:2::11 . 443 }"));
	assert_non_null(strstr(text, "meta mark & 0x20000000 == 0x20000000 meta mark set meta mark & "
				     "0xdfffffff accept"));
	assert_non_null(strstr(text, "@guard_reject4 counter name guard_syn_rejected reject with tcp reset"));
	assert_null(strstr(text, "{{"));
	update = rules_render_nft_guard(&guard);
	assert_string_equal(update,
			    "flush set inet gatekeeper guard_drop4\n"
			    "add element inet gatekeeper guard_drop4 { 198.51.100.11 . 443 }\n"
			    "flush set inet gatekeeper guard_reject4\n"
			    "add element inet gatekeeper guard_reject4 { 198.51.100.12 . 443, "
			    "198.51.100.12 . 8443 }\n"
			    "flush set inet gatekeeper guard_drop6\n"
			    "add element inet gatekeeper guard_drop6 { 2001:db8:2::11 . 443 }\n"
			    "flush set inet gatekeeper guard_reject6\n\n"
			    "flush set inet gatekeeper guard_allow4\n"
			    "add element inet gatekeeper guard_allow4 { 198.51.100.11 . 443 . 203.0.113.0/24 }\n"
			    "flush set inet gatekeeper guard_allow6\n"
			    "add element inet gatekeeper guard_allow6 { 2001:db8:2::11 . 443 . 2001:db8:ff::/48 }\n"
			    "flush set inet gatekeeper sni_closed4\n\n"
			    "flush set inet gatekeeper sni_closed6\n\n"
			    "flush set inet gatekeeper cut4\n\n"
			    "flush set inet gatekeeper cut6\n\n");
	assert_non_null(strstr(text, "elements = { 198.51.100.11 . 443 . 203.0.113.0/24 }"));
	assert_non_null(strstr(text, "ip daddr . tcp dport . ip saddr @guard_allow4 accept\n"));
	free(update);
	free(text);
	guard_set_free(&guard);
	config_free(cfg);
}

/* blog (2 addresses, allow-list) offline with --cut */
static void cut_guard_of(const struct config *cfg, struct guard_set *guard)
{
	struct sites *sites = sites_create(cfg);

	assert_non_null(sites);
	site_set_cut(sites_find(sites, "blog"), true);
	assert_int_equal(guard_set_build(guard, sites), 0);
	sites_free(sites);
}

static void test_cut_texts(void **state)
{
	struct config *cfg = load(guard_yaml);
	struct guard_set guard, plain;
	const unsigned stale[3] = {1, 0, 2};
	char *v4, *v6, *update, *nft;

	(void)state;
	cut_guard_of(cfg, &guard);
	guard_of(cfg, &plain);
	assert_false(guard_set_equal(&guard, &plain)); /* a cut is a change to sync */

	v4 = rules_render_xt_cut(&guard, AF_INET, true, stale);
	assert_non_null(strstr(v4, "*filter\n:GATEKEEPER_CUT - [0:0]\n:GATEKEEPER_CUT_RESET - [0:0]\n"
				   "-A GATEKEEPER_CUT_RESET -p tcp -j REJECT --reject-with tcp-reset\n"));
	assert_non_null(strstr(v4, "-A GATEKEEPER_CUT -m mark --mark 0x676b -j RETURN\n"));
	assert_non_null(strstr(v4, "-A GATEKEEPER_CUT -p tcp -m tcp --tcp-flags SYN SYN -j RETURN\n"));
	/* the allow-list, both directions, before the RST rules */
	assert_non_null(strstr(v4, "-A GATEKEEPER_CUT -s 203.0.113.0/24 -d 198.51.100.11 -p tcp -m tcp "
				   "--dport 443 -j RETURN\n"
				   "-A GATEKEEPER_CUT -s 198.51.100.11 -d 203.0.113.0/24 -p tcp -m tcp "
				   "--sport 443 -j RETURN\n"
				   "-A GATEKEEPER_CUT -d 198.51.100.11 -p tcp -m tcp --dport 443 "
				   "-j GATEKEEPER_CUT_RESET\n"
				   "-A GATEKEEPER_CUT -s 198.51.100.11 -p tcp -m tcp --sport 443 "
				   "-j GATEKEEPER_CUT_RESET\n"));
	/* wiki is offline without --cut: drained, not cut */
	assert_null(strstr(v4, "198.51.100.12"));
	/* stale jumps out, one in at each top, in the same commit */
	assert_non_null(strstr(v4, "-D INPUT -p tcp -m conntrack --ctstate "
				   "INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED -j GATEKEEPER_CUT\n"
				   "-I INPUT 1 -p tcp -m conntrack"));
	assert_null(strstr(v4, "-D FORWARD"));
	assert_non_null(strstr(v4, "-I FORWARD 1 -p tcp"));
	assert_non_null(strstr(v4, "-D OUTPUT -p tcp -m conntrack --ctstate "
				   "INVALID,NEW,RELATED,ESTABLISHED,UNTRACKED -j GATEKEEPER_CUT\n-D OUTPUT"));
	assert_non_null(strstr(v4, "COMMIT\n"));
	v6 = rules_render_xt_cut(&guard, AF_INET6, false, NULL);
	/* an update refills GATEKEEPER_CUT only: the RST counter runs on */
	assert_null(strstr(v6, "GATEKEEPER_CUT_RESET - [0:0]"));
	assert_null(strstr(v6, "-I INPUT"));
	assert_non_null(strstr(v6, "-A GATEKEEPER_CUT -s 2001:db8:2::11 -p tcp -m tcp --sport 443 "
				   "-j GATEKEEPER_CUT_RESET\n"));
	free(v4);
	free(v6);
	/* no cut: an empty chain, nothing walked */
	v4 = rules_render_xt_cut(&plain, AF_INET, false, NULL);
	assert_string_equal(v4, "*filter\n:GATEKEEPER_CUT - [0:0]\nCOMMIT\n");
	free(v4);

	update = rules_render_nft_guard(&guard);
	assert_non_null(strstr(update, "flush set inet gatekeeper cut4\n"
				       "add element inet gatekeeper cut4 { 198.51.100.11 . 443 }\n"
				       "flush set inet gatekeeper cut6\n"
				       "add element inet gatekeeper cut6 { 2001:db8:2::11 . 443 }\n"));
	free(update);
	nft = rules_render_nft(cfg, &guard);
	assert_non_null(strstr(nft, "set cut4 {\n\t\ttype ipv4_addr . inet_service\n"
				    "\t\telements = { 198.51.100.11 . 443 }"));
	assert_non_null(strstr(nft, "ip saddr . tcp sport @cut4 counter name cut_resets reject with tcp reset"));
	assert_non_null(strstr(nft, "type filter hook output priority 0;"));
	assert_non_null(strstr(nft, "meta mark 0x676b return"));
	assert_null(strstr(nft, "{{"));
	free(nft);
	guard_set_free(&guard);
	guard_set_free(&plain);
	config_free(cfg);
}

static void test_xt_cut_scan(void **state)
{
	struct rules_xt_cut_scan scan = {0};

	(void)state;
	rules_xt_cut_scan_line(&scan, "-A INPUT -p tcp -m conntrack --ctstate INVALID,NEW,RELATED,"
				      "ESTABLISHED,UNTRACKED -j GATEKEEPER_CUT\n");
	rules_xt_cut_scan_line(&scan, "[3:180] -A OUTPUT -p tcp -j GATEKEEPER_CUT");
	rules_xt_cut_scan_line(&scan, "-A OUTPUT -p tcp -j GATEKEEPER_CUT_RESET\n"); /* not a jump to CUT */
	rules_xt_cut_scan_line(&scan, "[7:280] -A GATEKEEPER_CUT_RESET -p tcp -j REJECT --reject-with tcp-reset\n");
	rules_xt_cut_scan_line(&scan, "[9:360] -A GATEKEEPER_CUT -d 198.51.100.11/32 -j GATEKEEPER_CUT_RESET\n");
	rules_xt_cut_scan_line(&scan, "[bad");
	assert_int_equal(scan.jumps[0], 1);
	assert_int_equal(scan.jumps[1], 0);
	assert_int_equal(scan.jumps[2], 1);
	assert_int_equal(scan.resets, 7);
}

static void test_guard_xt_text(void **state)
{
	struct config *cfg = load(guard_yaml);
	struct guard_set guard;
	char *v4, *v6;

	(void)state;
	guard_of(cfg, &guard);
	/* install: both tables, guard first, stale jumps swapped in the commit */
	v4 = rules_render_xt_install(cfg, &guard, AF_INET, 2, 1);
	assert_non_null(strstr(v4, "*mangle\n:GATEKEEPER_OFFLINE - [0:0]\n:GATEKEEPER_GUARD - [0:0]\n"));
	/* first fragments by address and port: their flags may come later */
	assert_non_null(strstr(v4, "-A GATEKEEPER_OFFLINE -d 198.51.100.11 -p tcp -m tcp --dport 443 "
				   "-m u32 --u32 \"0x4&0x3fff=0x2000\" -j GATEKEEPER_FRAGMENT\n"));
	assert_non_null(strstr(v4, "-A GATEKEEPER_FRAGMENT -j DROP\n"));
	assert_true(strstr(v4, "*mangle") < strstr(v4, "*raw"));
	assert_non_null(strstr(v4, "-A GATEKEEPER_GUARD -m mark ! --mark 0x20000000/0x20000000 "
				   "-m mark ! --mark 0x676b -j GATEKEEPER_OFFLINE\n"));
	assert_non_null(strstr(v4, "-A GATEKEEPER_OFFLINE -d 198.51.100.12 -p tcp -m tcp --dport 8443 "
				   "--tcp-flags SYN,ACK SYN -j GATEKEEPER_REJECT\n"));
	/* prerouting: the guard is in mangle, where xtables has no REJECT */
	assert_non_null(strstr(v4, "-A GATEKEEPER_REJECT -j DROP\n"));
	assert_non_null(strstr(v4, "-D PREROUTING -p tcp -j GATEKEEPER_GUARD\n"
				   "-I PREROUTING 1 -p tcp -j GATEKEEPER_GUARD\n"));
	assert_non_null(strstr(v4, "-D PREROUTING -p tcp -m tcp --tcp-flags SYN,ACK SYN -j GATEKEEPER\n"
				   "-D PREROUTING -p tcp -m tcp --tcp-flags SYN,ACK SYN -j GATEKEEPER\n"
				   "-I PREROUTING 1"));
	assert_null(strstr(v4, "2001:db8"));
	free(v4);
	/* a toggle: only the offline chain, counters kept */
	v6 = rules_render_xt_guard(cfg, &guard, AF_INET6, false, 0);
	assert_string_equal(v6, "*mangle\n:GATEKEEPER_OFFLINE - [0:0]\n"
				"-A GATEKEEPER_OFFLINE -s 2001:db8:ff::/48 -d 2001:db8:2::11 -p tcp -m tcp "
				"--dport 443 -j RETURN\n"
				"-A GATEKEEPER_OFFLINE -d 2001:db8:2::11 -p tcp -m tcp --dport 443 "
				"-m frag --fragfirst --fragmore -j GATEKEEPER_FRAGMENT\n"
				"-A GATEKEEPER_OFFLINE -d 2001:db8:2::11 -p tcp -m tcp --dport 443 "
				"--tcp-flags SYN,ACK SYN -j GATEKEEPER_DROP\nCOMMIT\n");
	free(v6);
	guard_set_free(&guard);
	config_free(cfg);
	/* input: filter INPUT, with REJECT */
	cfg = load("hook: input\nsites:\n  - name: a\n    addresses: [192.0.2.5]\n");
	v4 = rules_render_xt_install(cfg, NULL, AF_INET, 0, 0);
	assert_non_null(strstr(v4, "*filter\n"));
	assert_non_null(strstr(v4, "-A GATEKEEPER_REJECT -p tcp -j REJECT --reject-with tcp-reset\n"));
	assert_non_null(strstr(v4, "-I INPUT 1 -p tcp -j GATEKEEPER_GUARD\n"));
	free(v4);
	config_free(cfg);
}

static const char xt_guard_save_ok[] =
	"*mangle\n"
	":PREROUTING ACCEPT [0:0]\n"
	":GATEKEEPER_DROP - [0:0]\n"
	":GATEKEEPER_FRAGMENT - [0:0]\n"
	":GATEKEEPER_GUARD - [0:0]\n"
	":GATEKEEPER_OFFLINE - [0:0]\n"
	":GATEKEEPER_REJECT - [0:0]\n"
	"[3:180] -A PREROUTING -p tcp -j GATEKEEPER_GUARD\n"
	"[5:300] -A GATEKEEPER_DROP -j DROP\n"
	"[4:112] -A GATEKEEPER_FRAGMENT -j DROP\n"
	"[3:180] -A GATEKEEPER_GUARD -m mark ! --mark 0x20000000/0x20000000 -m mark ! --mark 0x676b "
	"-j GATEKEEPER_OFFLINE\n"
	"[0:0] -A GATEKEEPER_GUARD -m mark --mark 0x20000000/0x20000000 -j MARK --set-xmark "
	"0x0/0x20000000\n"
	"[4:112] -A GATEKEEPER_OFFLINE -d 198.51.100.11/32 -p tcp -m tcp --dport 443 "
	"-m u32 --u32 \"0x4&0x3fff=0x2000\" -j GATEKEEPER_FRAGMENT\n"
	"[1:60] -A GATEKEEPER_OFFLINE -d 198.51.100.11/32 -p tcp -m tcp --dport 443 "
	"--tcp-flags SYN,ACK SYN -j GATEKEEPER_DROP\n"
	"[2:120] -A GATEKEEPER_REJECT -j DROP\n"
	"COMMIT\n";

static int xt_guard_scan_allows(const char *text, size_t want, size_t want_allows,
				struct rules_xt_guard_scan *scan, char *why, size_t len)
{
	char *copy = strdup(text), *save = NULL;

	*scan = (struct rules_xt_guard_scan){.base_chain = "PREROUTING"};
	for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		rules_xt_guard_scan_line(scan, line);
	free(copy);
	return rules_xt_guard_scan_verdict(scan, want, want_allows, why, len);
}

static int xt_guard_scan_text(const char *text, size_t want, struct rules_xt_guard_scan *scan,
			      char *why, size_t len)
{
	return xt_guard_scan_allows(text, want, 0, scan, why, len);
}

static void test_xt_guard_scan(void **state)
{
	struct rules_xt_guard_scan scan;
	char why[256], *text;

	(void)state;
	assert_int_equal(xt_guard_scan_text(xt_guard_save_ok, 1, &scan, why, sizeof(why)), 0);
	assert_int_equal(scan.counters.syn_dropped, 5);
	assert_int_equal(scan.counters.syn_rejected, 2);
	assert_int_equal(scan.counters.fragments, 4);
	assert_int_equal(xt_guard_scan_text(xt_guard_save_ok, 2, &scan, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "GATEKEEPER_OFFLINE has 2 rules, want 4"));
	text = replace(xt_guard_save_ok, "[3:180] -A PREROUTING -p tcp -j GATEKEEPER_GUARD\n", "");
	assert_int_equal(xt_guard_scan_text(text, 1, &scan, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "0 jumps"));
	free(text);
	text = replace(xt_guard_save_ok, ":GATEKEEPER_REJECT - [0:0]\n", "");
	assert_int_equal(xt_guard_scan_text(text, 1, &scan, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "guard chain is gone"));
	free(text);
	text = replace(xt_guard_save_ok, "[2:120] -A GATEKEEPER_REJECT -j DROP\n", "");
	assert_int_equal(xt_guard_scan_text(text, 1, &scan, why, sizeof(why)), -1);
	free(text);
	/* an allowed source: one RETURN rule more, expected or not */
	text = replace(xt_guard_save_ok, "[4:112] -A GATEKEEPER_OFFLINE -d 198.51.100.11/32",
		       "[0:0] -A GATEKEEPER_OFFLINE -s 203.0.113.0/24 -d 198.51.100.11/32 -p tcp -m tcp "
		       "--dport 443 -j RETURN\n[4:112] -A GATEKEEPER_OFFLINE -d 198.51.100.11/32");
	assert_int_equal(xt_guard_scan_allows(text, 1, 1, &scan, why, sizeof(why)), 0);
	assert_int_equal(xt_guard_scan_allows(text, 1, 0, &scan, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "has 3 rules, want 2"));
	assert_int_equal(xt_guard_scan_allows(xt_guard_save_ok, 1, 1, &scan, why, sizeof(why)), -1);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nft_text),
		cmocka_unit_test(test_nft_fanout_no_bypass),
		cmocka_unit_test(test_xt_text),
		cmocka_unit_test(test_choose),
		cmocka_unit_test(test_xt_scan),
		cmocka_unit_test(test_nft_listing),
		cmocka_unit_test(test_guard_set),
		cmocka_unit_test(test_guard_nft_text),
		cmocka_unit_test(test_guard_xt_text),
		cmocka_unit_test(test_cut_texts),
		cmocka_unit_test(test_xt_cut_scan),
		cmocka_unit_test(test_xt_guard_scan),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
