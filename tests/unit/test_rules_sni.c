/* rules_sni: which endpoints are shared, and the rule texts for them.
 * GK_SNI_DUMP=DIR writes the texts there (to load them by hand in a
 * scratch network namespace). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "config.h"
#include "guard.h"
#include "rules.h"
#include "rules_sni.h"
#include "sites.h"

static const char yaml[] = "hook: forward\n"
			   "sites:\n"
			   "  - name: shop\n"
			   "    addresses: [198.51.100.10, \"2001:db8:2::10\"]\n"
			   "    ports: [443, 8443]\n"
			   "    server_names: [shop.example.com]\n"
			   "  - name: blog\n"
			   "    addresses: [198.51.100.10, 198.51.100.11]\n"
			   "    ports: [443]\n"
			   "    server_names: [blog.example.com]\n"
			   "  - name: wiki\n"
			   "    addresses: [\"2001:db8:2::10\", 198.51.100.10]\n"
			   "    ports: [8443]\n"
			   "    server_names: [wiki.example.com]\n";

static struct config *load(void)
{
	struct config_errors errors = {0};
	struct config *cfg = config_parse("t.yaml", yaml, sizeof(yaml) - 1, &errors);

	assert_non_null(cfg);
	return cfg;
}

static void dump(const char *name, const char *text)
{
	const char *dir = getenv("GK_SNI_DUMP");
	char path[512];
	FILE *f;

	if (!dir)
		return;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_endpoints(void **state)
{
	struct config *cfg = load();
	struct rules_endpoint *e;
	char addr[64];

	(void)state;
	/* v4: .10:443 (shop, blog) and .10:8443 (shop, wiki); .11 is blog's alone */
	assert_int_equal(rules_sni_endpoints(cfg, AF_INET, &e), 2);
	assert_string_equal(config_addr_str(&e[0].addr, addr, sizeof(addr)), "198.51.100.10");
	assert_int_equal(e[0].port, 443);
	assert_int_equal(e[1].port, 8443);
	free(e);
	/* v6: ::10 port 8443 (shop, wiki); port 443 is shop's alone */
	assert_int_equal(rules_sni_endpoints(cfg, AF_INET6, &e), 1);
	assert_int_equal(e[0].port, 8443);
	free(e);
	config_free(cfg);
}

static void test_texts(void **state)
{
	struct config *cfg = load();
	char *nft = rules_render_nft_sni(cfg, 9), *xt4 = rules_render_xt_sni(cfg, NULL, AF_INET, 9),
	     *xt6 = rules_render_xt_sni(cfg, NULL, AF_INET6, 9);

	(void)state;
	assert_non_null(nft);
	assert_non_null(xt4);
	assert_non_null(xt6);
	dump("sni.nft", nft);
	dump("sni4.xt", xt4);
	dump("sni6.xt", xt6);
	assert_non_null(strstr(nft, "elements = { 198.51.100.10 . 443, 198.51.100.10 . 8443 }"));
	assert_non_null(strstr(nft, "elements = { 2001:db8:2::10 . 8443 }"));
	assert_non_null(strstr(nft, "type filter hook forward priority -150;"));
	assert_non_null(strstr(nft, "type filter hook forward priority 0;"));
	assert_non_null(strstr(nft, "ct mark set ct mark or 0x10000000"));
	assert_non_null(strstr(nft, "@shared6 meta mark & 0x676b != 0x676b queue num 9 bypass"));
	assert_non_null(strstr(nft, "ct mark set ct mark and 0xefffffff"));
	assert_non_null(strstr(xt4, "-A GATEKEEPER_SNI -d 198.51.100.10 -p tcp -m tcp --dport 443 "
				    "--tcp-flags SYN,ACK SYN -j CONNMARK --or-mark 0x10000000\n"));
	assert_non_null(strstr(xt4, "-m connmark --mark 0x10000000/0x10000000 -m mark ! --mark 0x676b "
				    "-j NFQUEUE --queue-num 9 --queue-bypass\n"));
	assert_null(strstr(xt4, "198.51.100.11"));
	assert_non_null(strstr(xt4, "-I FORWARD 1 -p tcp -j GATEKEEPER_SNI\n"));
	assert_non_null(strstr(xt4, "-I INPUT 1 -j GATEKEEPER_SNI_CLEAR\n"));
	assert_non_null(strstr(xt6, "-d 2001:db8:2::10 -p tcp -m tcp --dport 8443"));
	free(nft);
	free(xt4);
	free(xt6);
	config_free(cfg);
}

/* The whole nft table: the shared endpoints' sets and chains inside it. */
static void test_whole_table(void **state)
{
	struct config *cfg = load();
	struct sites *sites = sites_create(cfg);
	struct guard_set guard = {0};
	char *text;

	(void)state;
	assert_non_null(sites);
	assert_int_equal(guard_set_build(&guard, sites), 0);
	text = rules_render_nft(cfg, &guard);
	assert_non_null(text);
	dump("table.nft", text);
	assert_non_null(strstr(text, "\tset shared4 {"));
	assert_non_null(strstr(text, "\tchain sni_clear {"));
	/* inside the table: its closing brace comes last */
	assert_true(strrchr(text, '}') > strstr(text, "chain sni_clear"));
	free(text);
	guard_set_free(&guard);
	sites_free(sites);
	config_free(cfg);
}

/* The watchdog's nft check on our own table's text (its layout is the
 * listing's: one rule a line, a chain's brace on a line of its own). */
static void test_nft_check(void **state)
{
	struct config *cfg = load();
	struct sites *sites = sites_create(cfg);
	struct guard_set guard = {0};
	char *text, *p, why[256] = "";

	(void)state;
	assert_non_null(sites);
	assert_int_equal(guard_set_build(&guard, sites), 0);
	text = rules_render_nft(cfg, &guard);
	assert_non_null(text);
	assert_int_equal(rules_sni_nft_listing_check(text, cfg, &guard, true, why, sizeof(why)), 0);
	/* one rule of chain sni gone (an admin's "nft delete rule") */
	p = strstr(strstr(text, "chain sni {"), "policy accept;\n") + strlen("policy accept;");
	memmove(p, strchr(p + 1, '\n'), strlen(strchr(p + 1, '\n')) + 1);
	assert_int_equal(rules_sni_nft_listing_check(text, cfg, &guard, true, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "chain sni "));
	free(text);
	/* chain sni_clear gone */
	text = rules_render_nft(cfg, &guard);
	memcpy(strstr(text, "chain sni_clear {"), "chain sni_xxxxx {", 17);
	assert_int_equal(rules_sni_nft_listing_check(text, cfg, &guard, true, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "sni_clear"));
	free(text);
	/* a set emptied */
	text = rules_render_nft(cfg, &guard);
	p = strstr(strstr(text, "set shared4 {"), "elements");
	memcpy(p, "elementx", 8);
	assert_int_equal(rules_sni_nft_listing_check(text, cfg, &guard, true, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "shared4"));
	/* ... unseen without the elements (a terse listing) */
	assert_int_equal(rules_sni_nft_listing_check(text, cfg, &guard, false, why, sizeof(why)), 0);
	free(text);
	guard_set_free(&guard);
	sites_free(sites);
	config_free(cfg);
}

static void scan_text(struct rules_xt_sni_scan *scan, const char *text)
{
	char line[512];

	while (*text) {
		size_t len = strcspn(text, "\n");

		snprintf(line, sizeof(line), "%.*s\n", (int)len, text);
		rules_xt_sni_scan_line(scan, line);
		text += len + (text[len] == '\n');
	}
}

/* What ip[6]tables-save shows of our SNI rules, and the watchdog's verdict. */
static void test_xt_scan(void **state)
{
	static const char mangle[] =
		"*mangle\n:FORWARD ACCEPT [0:0]\n:GATEKEEPER_SNI - [0:0]\n"
		"-A FORWARD -p tcp -j GATEKEEPER_SNI\n"
		"-A GATEKEEPER_SNI -d 198.51.100.10/32 -p tcp -m tcp --dport 443 --tcp-flags SYN,ACK SYN "
		"-j CONNMARK --or-mark 0x10000000\n"
		"-A GATEKEEPER_SNI -d 198.51.100.10/32 -p tcp -m tcp --dport 443 ! --tcp-flags SYN SYN "
		"-m connmark --mark 0x10000000/0x10000000 -m mark ! --mark 0x676b -j NFQUEUE "
		"--queue-num 9\nCOMMIT\n";
	static const char filter[] =
		"*filter\n:GATEKEEPER_SNI_CLEAR - [0:0]\n:GATEKEEPER_SNI_CLOSED - [0:0]\n"
		"-A INPUT -j GATEKEEPER_SNI_CLEAR\n-A FORWARD -j GATEKEEPER_SNI_CLEAR\n"
		"-A FORWARD -p tcp -j GATEKEEPER_GUARD\n"
		"-A GATEKEEPER_SNI_CLEAR -m mark --mark 0x10000000/0x10000000 -j CONNMARK --and-mark 0xefffffff\n"
		"-A GATEKEEPER_SNI_CLEAR -m mark --mark 0x10000000/0x10000000 -j MARK --and-mark 0xefffffff\n"
		"-A GATEKEEPER_SNI_CLEAR -p tcp -j GATEKEEPER_SNI_CLOSED\n"
		"-A GATEKEEPER_SNI_CLEAR -m mark --mark 0x8000000/0x8000000 -j MARK --and-mark 0xf7ffffff\n"
		"-A GATEKEEPER_SNI_CLOSED -d 198.51.100.10/32 -p tcp -m tcp --dport 443 -j DROP\n"
		"COMMIT\n";
	struct rules_xt_sni_scan scan = {.hook_base = "FORWARD"};
	char why[256] = "";

	(void)state;
	scan_text(&scan, mangle);
	scan_text(&scan, filter);
	assert_int_equal(scan.hook_jumps, 1);
	assert_int_equal(scan.forward_jumps, 1);
	assert_int_equal(scan.input_jumps, 1);
	assert_int_equal(rules_xt_sni_scan_verdict(&scan, 1, 1, why, sizeof(why)), 0);
	assert_int_equal(rules_xt_sni_scan_verdict(&scan, 2, 1, why, sizeof(why)), -1);
	assert_int_equal(rules_xt_sni_scan_verdict(&scan, 1, 0, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "GATEKEEPER_SNI_CLOSED"));
	/* "iptables -t mangle -F": the chain stays declared, jump and rules go */
	scan = (struct rules_xt_sni_scan){.hook_base = "FORWARD"};
	scan_text(&scan, "*mangle\n:GATEKEEPER_SNI - [0:0]\nCOMMIT\n");
	scan_text(&scan, filter);
	assert_int_equal(rules_xt_sni_scan_verdict(&scan, 1, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "jumps to GATEKEEPER_SNI from FORWARD"));
	/* the filter table's jumps gone */
	scan = (struct rules_xt_sni_scan){.hook_base = "FORWARD"};
	scan_text(&scan, mangle);
	scan_text(&scan, strstr(filter, "-A FORWARD -p tcp"));
	scan.clear_declared = scan.closed_declared = true;
	assert_int_equal(rules_xt_sni_scan_verdict(&scan, 1, 1, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "GATEKEEPER_SNI_CLEAR"));
}

/* A replacement in place deletes the jumps there were in its own commit. */
static void test_xt_replace(void **state)
{
	struct config *cfg = load();
	struct rules_xt_sni_scan old = {.hook_base = "FORWARD", .hook_jumps = 1,
					.forward_jumps = 2, .input_jumps = 1};
	char *text = rules_render_xt_sni_replace(cfg, NULL, AF_INET, 9, &old);
	const char *mangle_commit;

	(void)state;
	assert_non_null(text);
	mangle_commit = strstr(text, "COMMIT");
	assert_true(strstr(text, "-D FORWARD -p tcp -j GATEKEEPER_SNI\n") < mangle_commit);
	assert_true(strstr(text, "-D FORWARD -p tcp -j GATEKEEPER_SNI\n") <
		    strstr(text, "-I FORWARD 1 -p tcp -j GATEKEEPER_SNI\n"));
	assert_non_null(strstr(text, "-D FORWARD -j GATEKEEPER_SNI_CLEAR\n"
				     "-D FORWARD -j GATEKEEPER_SNI_CLEAR\n"
				     "-D INPUT -j GATEKEEPER_SNI_CLEAR\n-I FORWARD 1"));
	free(text);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_texts),
		cmocka_unit_test(test_whole_table),
		cmocka_unit_test(test_nft_check),
		cmocka_unit_test(test_xt_scan),
		cmocka_unit_test(test_xt_replace),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
