/* sites: lookup by (family, address, port), state toggles and counters. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <cmocka.h>

#include "config.h"
#include "sites.h"

/* A config built by hand: site i owns 2001:db8::(i+1) and, for the first
 * 256, 203.0.113.i (documentation ranges only), on PORTS. */
static struct config *make_config(size_t n_sites, const uint16_t *ports, size_t n_ports)
{
	struct config *cfg = calloc(1, sizeof(*cfg));

	assert_non_null(cfg);
	cfg->n_sites = n_sites;
	cfg->sites = calloc(n_sites, sizeof(*cfg->sites));
	assert_non_null(cfg->sites);
	for (size_t i = 0; i < n_sites; i++) {
		struct config_site *s = &cfg->sites[i];
		char text[64];

		assert_true(asprintf(&s->name, "site%zu", i) > 0);
		s->n_addresses = i < 256 ? 2 : 1;
		s->addresses = calloc(2, sizeof(*s->addresses));
		snprintf(text, sizeof(text), "2001:db8::%zx", i + 1);
		assert_int_equal(config_parse_addr(text, &s->addresses[0]), 0);
		snprintf(text, sizeof(text), "203.0.113.%zu", i & 255);
		assert_int_equal(config_parse_addr(text, &s->addresses[1]), 0);
		s->n_ports = n_ports;
		s->ports = calloc(n_ports, sizeof(*s->ports));
		memcpy(s->ports, ports, n_ports * sizeof(*ports));
		s->state = (i % 3 == 0) ? SITE_ONLINE : SITE_OFFLINE;
		s->action = (i % 3 == 2) ? SITE_ACTION_REJECT : SITE_ACTION_DROP;
	}
	return cfg;
}

static const uint8_t *addr4(const struct config *cfg, size_t site)
{
	return cfg->sites[site].addresses[1].bytes;
}

static const uint8_t *addr6(const struct config *cfg, size_t site)
{
	return cfg->sites[site].addresses[0].bytes;
}

static void test_lookup_both_families(void **state)
{
	static const uint16_t ports[] = {443, 8443};
	struct config *cfg = make_config(5, ports, 2);
	struct sites *sites = sites_create(cfg);
	uint8_t other[16] = {0};

	(void)state;
	assert_non_null(sites);
	assert_int_equal(sites_count(sites), 5);
	for (size_t i = 0; i < 5; i++) {
		assert_ptr_equal(sites_lookup(sites, AF_INET, addr4(cfg, i), 443),
				 sites_at(sites, i));
		assert_ptr_equal(sites_lookup(sites, AF_INET, addr4(cfg, i), 8443),
				 sites_at(sites, i));
		assert_ptr_equal(sites_lookup(sites, AF_INET6, addr6(cfg, i), 443),
				 sites_at(sites, i));
		/* a managed address on an unmanaged port is not the site's */
		assert_null(sites_lookup(sites, AF_INET, addr4(cfg, i), 80));
		/* the v4 bytes looked up as v6 (and the reverse) must not match */
		assert_null(sites_lookup(sites, AF_INET6, addr4(cfg, i), 443));
		assert_null(sites_lookup(sites, AF_INET, addr6(cfg, i), 443));
	}
	other[0] = 192;
	assert_null(sites_lookup(sites, AF_INET, other, 443));
	assert_null(sites_lookup(sites, AF_UNIX, addr4(cfg, 0), 443));
	assert_ptr_equal(sites_find(sites, "site3"), sites_at(sites, 3));
	assert_null(sites_find(sites, "nope"));
	assert_null(sites_at(sites, 5));
	sites_free(sites);
	config_free(cfg);
}

static void test_ten_thousand_sites(void **state)
{
	static const uint16_t ports[] = {443};
	struct config *cfg = make_config(10000, ports, 1);
	struct sites *sites = sites_create(cfg);

	(void)state;
	assert_non_null(sites);
	for (size_t i = 0; i < 10000; i++) {
		if (i < 256)
			assert_ptr_equal(sites_lookup(sites, AF_INET, addr4(cfg, i), 443),
					 sites_at(sites, i));
		assert_ptr_equal(sites_lookup(sites, AF_INET6, addr6(cfg, i), 443),
				 sites_at(sites, i));
	}
	sites_free(sites);
	config_free(cfg);
}

static double seconds_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A reload of 10,000 sites finds each by name: linear in the sites, not
 * quadratic, so building two tables and carrying over takes well under a
 * second. */
static void test_ten_thousand_sites_reload(void **state)
{
	static const uint16_t ports[] = {443};
	struct config *cfg = make_config(10000, ports, 1);
	double start = seconds_now(), took;
	struct sites *old = sites_create(cfg), *fresh = sites_create(cfg);
	struct site_counters c;
	char name[32];

	(void)state;
	assert_non_null(old);
	assert_non_null(fresh);
	site_decide(sites_at(old, 9999));
	site_set_override(sites_at(old, 5000), SITE_OFFLINE, SITE_ACTION_REJECT);
	sites_carry_over_overrides(fresh, old);
	sites_carry_over_counters(fresh, old);
	took = seconds_now() - start;
	print_message("10000 sites: two tables and the carry-over in %.1f ms\n", took * 1e3);
	assert_true(took < 0.5);
	for (size_t i = 0; i < 10000; i += 7) {
		snprintf(name, sizeof(name), "site%zu", i);
		assert_ptr_equal(sites_find(fresh, name), sites_at(fresh, i));
	}
	assert_int_equal(site_action(sites_at(fresh, 5000)), SITE_ACTION_REJECT);
	site_get_counters(sites_at(fresh, 9999), &c);
	assert_int_equal(c.accepted + c.dropped + c.rejected, 1);
	sites_free(old);
	sites_free(fresh);
	config_free(cfg);
}

/* Each worker counts in its own slot; a reader sees the sum. */
static void test_counter_slots(void **state)
{
	static const uint16_t ports[] = {443};
	struct config *cfg = make_config(3, ports, 1);
	struct sites *sites;
	struct site_counters c;

	(void)state;
	cfg->queue.count = 4;
	sites = sites_create(cfg);
	assert_non_null(sites);
	for (unsigned slot = 0; slot < 4; slot++)
		for (unsigned i = 0; i <= slot; i++)
			assert_int_equal(site_decide_on(sites_at(sites, 1), slot), SITE_VERDICT_DROP);
	/* a slot past the table's falls back to slot 0 rather than overrun */
	site_decide_on(sites_at(sites, 1), 99);
	site_get_counters(sites_at(sites, 1), &c);
	assert_int_equal(c.dropped, 1 + 2 + 3 + 4 + 1);
	site_get_counters(sites_at(sites, 0), &c);
	assert_int_equal(c.accepted + c.dropped + c.rejected, 0);
	sites_free(sites);
	config_free(cfg);
}

static void test_decide_and_counters(void **state)
{
	static const uint16_t ports[] = {443};
	struct config *cfg = make_config(3, ports, 1);
	struct sites *sites = sites_create(cfg);
	struct site_counters c;

	(void)state;
	/* site0 online, site1 offline drop, site2 offline reject */
	assert_int_equal(site_decide(sites_at(sites, 0)), SITE_VERDICT_ACCEPT);
	assert_int_equal(site_decide(sites_at(sites, 1)), SITE_VERDICT_DROP);
	assert_int_equal(site_decide(sites_at(sites, 2)), SITE_VERDICT_REJECT);
	assert_int_equal(site_decide(sites_at(sites, 2)), SITE_VERDICT_REJECT);
	site_get_counters(sites_at(sites, 2), &c);
	assert_int_equal(c.accepted, 0);
	assert_int_equal(c.dropped, 0);
	assert_int_equal(c.rejected, 2);
	site_get_counters(sites_at(sites, 0), &c);
	assert_int_equal(c.accepted, 1);
	sites_free(sites);
	config_free(cfg);
}

static void test_override_and_reset(void **state)
{
	static const uint16_t ports[] = {443};
	struct config *cfg = make_config(2, ports, 1);
	struct sites *sites = sites_create(cfg);
	struct site *site = sites_at(sites, 0);

	(void)state;
	assert_int_equal(site_source(site), SITE_SOURCE_CONFIG);
	assert_int_equal(site_state(site), SITE_ONLINE);
	site_set_override(site, SITE_OFFLINE, SITE_ACTION_REJECT);
	assert_int_equal(site_state(site), SITE_OFFLINE);
	assert_int_equal(site_action(site), SITE_ACTION_REJECT);
	assert_int_equal(site_source(site), SITE_SOURCE_RUNTIME);
	assert_int_equal(site_decide(site), SITE_VERDICT_REJECT);
	site_clear_override(site);
	assert_int_equal(site_source(site), SITE_SOURCE_CONFIG);
	assert_int_equal(site_decide(site), SITE_VERDICT_ACCEPT);
	sites_free(sites);
	config_free(cfg);
}

/* While offline, a source on the allow-list is accepted and counted as
 * allowed; a run-time list replaces the config's. */
static void test_decide_with_allow_list(void **state)
{
	static const char yaml[] = "sites:\n"
				   "  - name: shop\n"
				   "    addresses: [198.51.100.10]\n"
				   "    state: offline\n"
				   "    action: reject\n"
				   "    allow: [203.0.113.0/24, \"2001:db8:3::/64\"]\n";
	static const uint8_t ops4[4] = {203, 0, 113, 9}, public4[4] = {192, 0, 2, 100};
	static const uint8_t ops6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 3, [15] = 1};
	struct config_errors errors = {0};
	struct config *cfg = config_parse("t.yaml", yaml, sizeof(yaml) - 1, &errors);
	struct sites *sites;
	struct site *site;
	struct config_cidr net;
	struct site_counters c;
	char err[128];

	(void)state;
	assert_non_null(cfg);
	sites = sites_create(cfg);
	site = sites_find(sites, "shop");
	assert_int_equal(site_decide_from(site, 0, AF_INET, ops4), SITE_VERDICT_ACCEPT);
	assert_int_equal(site_decide_from(site, 0, AF_INET6, ops6), SITE_VERDICT_ACCEPT);
	assert_int_equal(site_decide_from(site, 0, AF_INET, public4), SITE_VERDICT_REJECT);
	/* the v4 bytes of a v6 source are no v4 source */
	assert_int_equal(site_decide_from(site, 0, AF_INET6, (const uint8_t[16]){203, 0, 113, 9}),
			 SITE_VERDICT_REJECT);
	site_get_counters(site, &c);
	assert_int_equal(c.allowed, 2);
	assert_int_equal(c.rejected, 2);
	assert_int_equal(c.accepted, 0);
	/* run time: only 192.0.2.0/24 now */
	assert_int_equal(config_parse_cidr("192.0.2.0/24", &net, err, sizeof(err)), 0);
	assert_null(site_swap_allow(site, site_allow_new(&net, 1)));
	assert_true(site_allow_is_runtime(site));
	assert_int_equal(site_decide_from(site, 0, AF_INET, public4), SITE_VERDICT_ACCEPT);
	assert_int_equal(site_decide_from(site, 0, AF_INET, ops4), SITE_VERDICT_REJECT);
	/* online: everyone, counted as accepted */
	site_set_override(site, SITE_ONLINE, SITE_ACTION_REJECT);
	assert_int_equal(site_decide_from(site, 0, AF_INET, public4), SITE_VERDICT_ACCEPT);
	site_get_counters(site, &c);
	assert_int_equal(c.accepted, 1);
	assert_int_equal(c.allowed, 3);
	/* back to the config's list; the caller frees the one it replaced */
	free(site_swap_allow(site, NULL));
	assert_false(site_allow_is_runtime(site));
	assert_int_equal(site_allow_list(site)->count, 2);
	sites_free(sites);
	config_free(cfg);
}

/* Three sites on one address told apart by name, one of them also alone
 * on a second address; the SYN verdict where every outcome agrees. */
static void test_shared_endpoint(void **state)
{
	static const char yaml[] = "sni: {unknown_name: drop}\n"
				   "sites:\n"
				   "  - name: shop\n"
				   "    addresses: [198.51.100.10]\n"
				   "    server_names: [shop.example.com, \"*.shop.example.com\"]\n"
				   "  - name: blog\n"
				   "    addresses: [198.51.100.10, 198.51.100.11]\n"
				   "    server_names: [blog.example.com, \"*.example.com\"]\n"
				   "    state: offline\n"
				   "    action: reject\n"
				   "  - name: wiki\n"
				   "    addresses: [198.51.100.10]\n"
				   "    server_names: [wiki.example.com]\n";
	static const uint8_t shared4[4] = {198, 51, 100, 10}, alone4[4] = {198, 51, 100, 11};
	static const uint8_t client4[4] = {192, 0, 2, 100};
	struct config_errors errors = {0};
	struct config *cfg = config_parse("t.yaml", yaml, sizeof(yaml) - 1, &errors);
	struct sites *sites;
	const struct site_endpoint *e;
	struct site *shop, *blog, *wiki;
	enum site_verdict v;

	(void)state;
	assert_non_null(cfg);
	sites = sites_create(cfg);
	assert_non_null(sites);
	shop = sites_find(sites, "shop");
	blog = sites_find(sites, "blog");
	wiki = sites_find(sites, "wiki");
	assert_int_equal(sites_shared_count(sites), 1);
	/* the shared address has no one site; the other one has blog */
	assert_null(sites_lookup(sites, AF_INET, shared4, 443));
	assert_ptr_equal(sites_lookup(sites, AF_INET, alone4, 443), blog);
	assert_null(sites_lookup_shared(sites, AF_INET, alone4, 443));
	e = sites_lookup_shared(sites, AF_INET, shared4, 443);
	assert_non_null(e);
	assert_null(sites_lookup_shared(sites, AF_INET, shared4, 80));
	assert_int_equal(site_endpoint_count(e), 3);

	/* exact beats wildcard, the longer wildcard the shorter */
	assert_ptr_equal(site_endpoint_for_name(e, "shop.example.com"), shop);
	assert_ptr_equal(site_endpoint_for_name(e, "a.shop.example.com"), shop);
	assert_ptr_equal(site_endpoint_for_name(e, "wiki.example.com"), wiki);
	assert_ptr_equal(site_endpoint_for_name(e, "x.example.com"), blog);
	assert_ptr_equal(site_endpoint_for_name(e, "blog.example.com"), blog);
	/* no site takes these: unknown_name decides */
	assert_null(site_endpoint_for_name(e, "example.com"));
	assert_null(site_endpoint_for_name(e, "shop.example.org"));
	assert_null(site_endpoint_for_name(e, NULL));
	assert_int_equal(site_endpoint_unknown_verdict(e, AF_INET, client4), SITE_VERDICT_DROP);

	/* the hello decides, counted for the site that takes it */
	{
		struct site *taker;
		struct site_counters c;

		assert_int_equal(site_endpoint_decide(e, "a.shop.example.com", 1, AF_INET, client4, &taker),
				 SITE_VERDICT_ACCEPT);
		assert_ptr_equal(taker, shop);
		assert_int_equal(site_endpoint_decide(e, "blog.example.com", 1, AF_INET, client4, &taker),
				 SITE_VERDICT_REJECT);
		assert_ptr_equal(taker, blog);
		assert_int_equal(site_endpoint_decide(e, NULL, 1, AF_INET, client4, &taker),
				 SITE_VERDICT_DROP);
		assert_null(taker);
		site_get_counters(shop, &c);
		assert_int_equal(c.accepted, 1);
		site_get_counters(blog, &c);
		assert_int_equal(c.rejected, 1);
	}
	/* shop and wiki online, blog offline: no SYN verdict for everyone */
	assert_false(site_endpoint_agree(e, AF_INET, client4, &v));
	/* all offline with one verdict (drop, like unknown names): decided at the SYN */
	site_set_override(shop, SITE_OFFLINE, SITE_ACTION_DROP);
	site_set_override(blog, SITE_OFFLINE, SITE_ACTION_DROP);
	site_set_override(wiki, SITE_OFFLINE, SITE_ACTION_DROP);
	assert_true(site_endpoint_agree(e, AF_INET, client4, &v));
	assert_int_equal(v, SITE_VERDICT_DROP);
	/* one of them rejects instead: the hello decides again */
	site_set_override(wiki, SITE_OFFLINE, SITE_ACTION_REJECT);
	assert_false(site_endpoint_agree(e, AF_INET, client4, &v));
	sites_free(sites);
	config_free(cfg);
}

/* With a "*" site, what no name matches (and hellos without one) is its. */
static void test_shared_default_site(void **state)
{
	static const char yaml[] = "sites:\n"
				   "  - name: shop\n"
				   "    addresses: [\"2001:db8:2::10\"]\n"
				   "    server_names: [shop.example.com]\n"
				   "  - name: rest\n"
				   "    addresses: [\"2001:db8:2::10\"]\n"
				   "    server_names: [\"*\"]\n";
	static const uint8_t shared6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 2, [15] = 0x10};
	static const uint8_t client6[16] = {0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 0x64};
	struct config_errors errors = {0};
	struct config *cfg = config_parse("t.yaml", yaml, sizeof(yaml) - 1, &errors);
	struct sites *sites;
	const struct site_endpoint *e;
	enum site_verdict v;

	(void)state;
	assert_non_null(cfg);
	sites = sites_create(cfg);
	e = sites_lookup_shared(sites, AF_INET6, shared6, 443);
	assert_non_null(e);
	assert_ptr_equal(site_endpoint_for_name(e, "other.example"), sites_find(sites, "rest"));
	assert_ptr_equal(site_endpoint_for_name(e, NULL), sites_find(sites, "rest"));
	/* both online and the default takes the rest: accepted at the SYN */
	assert_true(site_endpoint_agree(e, AF_INET6, client6, &v));
	assert_int_equal(v, SITE_VERDICT_ACCEPT);
	site_set_override(sites_find(sites, "rest"), SITE_OFFLINE, SITE_ACTION_REJECT);
	assert_int_equal(site_endpoint_unknown_verdict(e, AF_INET6, client6), SITE_VERDICT_REJECT);
	assert_false(site_endpoint_agree(e, AF_INET6, client6, &v));
	sites_free(sites);
	config_free(cfg);
}

static void test_carry_over(void **state)
{
	static const uint16_t ports[] = {443};
	struct config *old_cfg = make_config(3, ports, 1);
	struct config *new_cfg = make_config(2, ports, 1);
	struct sites *old = sites_create(old_cfg), *fresh;
	struct site_counters c;

	(void)state;
	free(new_cfg->sites[1].name);
	new_cfg->sites[1].name = strdup("brand-new");
	fresh = sites_create(new_cfg);
	site_set_override(sites_at(old, 0), SITE_OFFLINE, SITE_ACTION_DROP);
	site_set_override(sites_at(old, 1), SITE_ONLINE, SITE_ACTION_DROP);
	site_decide(sites_at(old, 0));
	site_decide(sites_at(old, 0));

	sites_carry_over_overrides(fresh, old);
	assert_int_equal(site_state(sites_at(fresh, 0)), SITE_OFFLINE);
	assert_int_equal(site_source(sites_at(fresh, 0)), SITE_SOURCE_RUNTIME);
	/* a site new in the config starts from the config */
	assert_int_equal(site_source(sites_at(fresh, 1)), SITE_SOURCE_CONFIG);
	site_decide(sites_at(fresh, 0));
	sites_carry_over_counters(fresh, old);
	site_get_counters(sites_at(fresh, 0), &c);
	assert_int_equal(c.dropped, 3);
	sites_free(old);
	sites_free(fresh);
	config_free(old_cfg);
	config_free(new_cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lookup_both_families),
		cmocka_unit_test(test_ten_thousand_sites),
		cmocka_unit_test(test_ten_thousand_sites_reload),
		cmocka_unit_test(test_counter_slots),
		cmocka_unit_test(test_decide_and_counters),
		cmocka_unit_test(test_override_and_reset),
		cmocka_unit_test(test_carry_over),
		cmocka_unit_test(test_decide_with_allow_list),
		cmocka_unit_test(test_shared_endpoint),
		cmocka_unit_test(test_shared_default_site),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
