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
#include "rules.h"

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
	char *text = rules_render_nft(cfg);

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
	char *text = rules_render_nft(cfg);

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
	char *v4 = rules_render_xt(cfg, AF_INET, true);
	char *v6 = rules_render_xt(cfg, AF_INET6, false);

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nft_text),
		cmocka_unit_test(test_nft_fanout_no_bypass),
		cmocka_unit_test(test_xt_text),
		cmocka_unit_test(test_choose),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
