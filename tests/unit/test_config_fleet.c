/* Unit tests for the config's "fleet:" section (config_fleet.c): a valid
 * section and its defaults, and every error with its FILE:LINE:COL. A
 * program of its own: test_config.c is long enough. */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_assert.h"
#include "protocol.h"

/* Line 1 of every config below: the fleet section starts on line 2. */
#define SITES "sites: [{name: a, addresses: [192.0.2.1]}]\n"
/* The fleet's lines 2-4 when a test is about something else. */
#define FLEET "fleet:\n  name: prod\n  box: fe1\n"
#define URL_HELP \
	"is not an etcd client URL (https://ADDRESS:PORT, http://ADDRESS:PORT, [IPv6] in brackets, no path)"
#define PREFIX_HELP \
	"is not a key prefix (like /gatekeeper: starts with /, no trailing /, at most 128 of A-Z a-z 0-9 . _ - /)"

static void test_fleet_full(void **state)
{
	struct config *cfg = parse_ok(
		SITES "fleet:\n"
		      "  name: prod\n"
		      "  box: fe-1.example_2\n"
		      "  endpoints: [\"https://[2001:db8::11]:2379\", https://etcd2.example:2379,\n"
		      "              https://203.0.113.13:65535]\n"
		      "  prefix: /gk/site-a_1.x\n"
		      "  ca_file: /etc/gatekeeper/ca.pem\n"
		      "  cert_file: /etc/gatekeeper/fe1.pem\n"
		      "  key_file: /etc/gatekeeper/fe1.key\n"
		      "  lease_ttl: 10s\n"
		      "  request_timeout: 5s\n"
		      "  checks: all\n");
	const struct config_fleet *f = &cfg->fleet;

	(void)state;
	assert_true(f->enabled);
	assert_string_equal(f->name, "prod");
	assert_string_equal(f->box, "fe-1.example_2");
	assert_int_equal(f->n_endpoints, 3);
	assert_string_equal(f->endpoints[0], "https://[2001:db8::11]:2379");
	assert_string_equal(f->endpoints[1], "https://etcd2.example:2379");
	assert_string_equal(f->endpoints[2], "https://203.0.113.13:65535");
	assert_string_equal(f->prefix, "/gk/site-a_1.x");
	assert_string_equal(f->ca_file, "/etc/gatekeeper/ca.pem");
	assert_string_equal(f->cert_file, "/etc/gatekeeper/fe1.pem");
	assert_string_equal(f->key_file, "/etc/gatekeeper/fe1.key");
	assert_int_equal(f->lease_ttl_ms, 10000);
	/* exactly half the lease is allowed */
	assert_int_equal(f->request_timeout_ms, 5000);
	assert_int_equal(f->checks, CONFIG_FLEET_CHECKS_ALL);
	config_free(cfg);
}

static void test_fleet_defaults(void **state)
{
	char host[256] = "";
	struct config *cfg = parse_ok(SITES FLEET "  endpoints: [http://127.0.0.1:2379]\n");

	(void)state;
	assert_true(cfg->fleet.enabled);
	assert_string_equal(cfg->fleet.prefix, "/gatekeeper");
	assert_int_equal(cfg->fleet.lease_ttl_ms, 5000);
	assert_int_equal(cfg->fleet.request_timeout_ms, 1000);
	assert_int_equal(cfg->fleet.checks, CONFIG_FLEET_CHECKS_OWN);
	assert_null(cfg->fleet.ca_file);
	assert_null(cfg->fleet.cert_file);
	assert_null(cfg->fleet.key_file);
	config_free(cfg);

	/* no fleet section: nothing of the fleet */
	cfg = parse_ok(SITES);
	assert_false(cfg->fleet.enabled);
	assert_null(cfg->fleet.name);
	assert_int_equal(cfg->fleet.n_endpoints, 0);
	config_free(cfg);

	/* no box: the host name, when it is a valid name */
	assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
	if (protocol_site_name_valid(host)) {
		cfg = parse_ok(SITES "fleet: {name: prod, endpoints: [\"http://[::1]:2379\"]}\n");
		assert_string_equal(cfg->fleet.box, host);
		config_free(cfg);
	} else {
		char want[512];

		snprintf(want, sizeof(want),
			 "conf.yaml:2:8: fleet: 'box' is not given and the host "
			 "name '%.64s' is not a valid box name: give box: NAME",
			 host);
		assert_errors(SITES "fleet: {name: prod, endpoints: [\"http://[::1]:2379\"]}\n",
			      want, NULL);
	}

	/* the limits that are allowed */
	cfg = parse_ok(
		SITES FLEET
		"  endpoints: [http://e1:1, http://e2:2, http://e3:3, http://e4:4, "
		"http://e5:5, http://e6:6, http://e7:7, http://e8:8, http://e9:9, http://e10:10, "
		"http://e11:11, http://e12:12, http://e13:13, http://e14:14, http://e15:15, "
		"http://e16:16]\n"
		"  lease_ttl: 2s\n"
		"  request_timeout: 1s\n"
		"  prefix: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n");
	assert_int_equal(cfg->fleet.n_endpoints, 16);
	assert_int_equal(cfg->fleet.lease_ttl_ms, 2000);
	assert_int_equal(strlen(cfg->fleet.prefix), 128);
	config_free(cfg);
	cfg = parse_ok(SITES FLEET "  endpoints: [http://e1:2379]\n"
				   "  lease_ttl: 60s\n"
				   "  request_timeout: 30s\n");
	assert_int_equal(cfg->fleet.lease_ttl_ms, 60000);
	assert_int_equal(cfg->fleet.request_timeout_ms, 30000);
	config_free(cfg);
}

static void test_fleet_missing_keys(void **state)
{
	(void)state;
	assert_errors(SITES "fleet:\n  endpoints: [http://127.0.0.1:2379]\n  box: fe1\n",
		      "conf.yaml:3:3: fleet: missing required key 'name' (the fleet's name: its "
		      "keys live under PREFIX/NAME/)",
		      NULL);
	assert_errors(
		SITES FLEET,
		"conf.yaml:3:3: fleet: missing required key 'endpoints' (the etcd client URLs)",
		NULL);
	assert_errors(
		SITES "fleet: {box: fe1}\n",
		"conf.yaml:2:8: fleet: missing required key 'name' (the fleet's name: its "
		"keys live under PREFIX/NAME/)",
		"conf.yaml:2:8: fleet: missing required key 'endpoints' (the etcd client URLs)",
		NULL);
	assert_errors(SITES "fleet: yes\n",
		      "conf.yaml:2:8: fleet: expected a mapping, found a scalar", NULL);
}

static void test_fleet_bad_names(void **state)
{
	(void)state;
	assert_errors(
		SITES "fleet:\n"
		      "  name: \"prod fleet\"\n"
		      "  box: \"fe/1\"\n"
		      "  endpoints: [http://10.0.0.1:2379]\n"
		      "  checks: some\n",
		"conf.yaml:3:9: fleet.name: 'prod fleet' is not a valid name (1-64 of A-Z a-z 0-9 . _ -)",
		"conf.yaml:4:8: fleet.box: 'fe/1' is not a valid name (1-64 of A-Z a-z 0-9 . _ -)",
		"conf.yaml:6:11: fleet.checks: 'some' is not valid (expected one of: own, all)",
		NULL);
}

static void test_fleet_bad_endpoints(void **state)
{
	(void)state;
	assert_errors(SITES FLEET "  endpoints:\n"
				  "    - 127.0.0.1:2379\n"
				  "    - http://etcd1:2379/v3\n"
				  "    - http://etcd1\n"
				  "    - http://etcd1:0\n"
				  "    - http://etcd1:70000\n"
				  "    - ftp://etcd1:2379\n"
				  "    - http://[::1]\n"
				  "    - http://[]:2379\n"
				  "    - http://etcd1:2379/\n"
				  "    - http://:2379\n"
				  "    - http://etcd1:02379\n"
				  "    - \"http://etcd 1:2379\"\n",
		      "conf.yaml:6:7: fleet.endpoints: '127.0.0.1:2379' " URL_HELP,
		      "conf.yaml:7:7: fleet.endpoints: 'http://etcd1:2379/v3' " URL_HELP,
		      "conf.yaml:8:7: fleet.endpoints: 'http://etcd1' " URL_HELP,
		      "conf.yaml:9:7: fleet.endpoints: 'http://etcd1:0' " URL_HELP,
		      "conf.yaml:10:7: fleet.endpoints: 'http://etcd1:70000' " URL_HELP,
		      "conf.yaml:11:7: fleet.endpoints: 'ftp://etcd1:2379' " URL_HELP,
		      "conf.yaml:12:7: fleet.endpoints: 'http://[::1]' " URL_HELP,
		      "conf.yaml:13:7: fleet.endpoints: 'http://[]:2379' " URL_HELP,
		      "conf.yaml:14:7: fleet.endpoints: 'http://etcd1:2379/' " URL_HELP,
		      "conf.yaml:15:7: fleet.endpoints: 'http://:2379' " URL_HELP,
		      "conf.yaml:16:7: fleet.endpoints: 'http://etcd1:02379' " URL_HELP,
		      "conf.yaml:17:7: fleet.endpoints: 'http://etcd 1:2379' " URL_HELP, NULL);
	/* mixed schemes, at the list */
	assert_errors(SITES FLEET "  endpoints: [https://10.0.0.1:2379, http://10.0.0.2:2379]\n",
		      "conf.yaml:5:14: fleet.endpoints: all https or all http, not both", NULL);
	/* none, too many, not a list */
	assert_errors(SITES FLEET "  endpoints: []\n",
		      "conf.yaml:5:14: fleet.endpoints: want 1 to 16 etcd endpoints, found 0",
		      NULL);
	assert_errors(
		SITES FLEET "  endpoints: [http://e1:1, http://e2:2, http://e3:3, http://e4:4, "
			    "http://e5:5, http://e6:6, http://e7:7, http://e8:8, http://e9:9, "
			    "http://e10:10, http://e11:11, http://e12:12, http://e13:13, "
			    "http://e14:14, http://e15:15, http://e16:16, http://e17:17]\n",
		"conf.yaml:5:14: fleet.endpoints: want 1 to 16 etcd endpoints, found 17", NULL);
	assert_errors(SITES FLEET "  endpoints: http://10.0.0.1:2379\n",
		      "conf.yaml:5:14: fleet.endpoints: expected a list, found a scalar", NULL);
}

static void test_fleet_tls_files(void **state)
{
	(void)state;
	assert_errors(SITES FLEET "  endpoints: [https://10.0.0.1:2379]\n"
				  "  cert_file: /etc/gk/c.pem\n",
		      "conf.yaml:3:3: fleet: cert_file and key_file go together (the box's client "
		      "certificate and its key)",
		      NULL);
	assert_errors(SITES FLEET "  endpoints: [https://10.0.0.1:2379]\n"
				  "  key_file: /etc/gk/k.pem\n",
		      "conf.yaml:3:3: fleet: cert_file and key_file go together (the box's client "
		      "certificate and its key)",
		      NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
				  "  ca_file: /etc/gk/ca.pem\n",
		      "conf.yaml:3:3: fleet: ca_file/cert_file/key_file need https:// endpoints",
		      NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
				  "  cert_file: /etc/gk/c.pem\n"
				  "  key_file: /etc/gk/k.pem\n",
		      "conf.yaml:3:3: fleet: ca_file/cert_file/key_file need https:// endpoints",
		      NULL);
	assert_errors(SITES FLEET "  endpoints: [https://10.0.0.1:2379]\n"
				  "  ca_file: etc/gk/ca.pem\n",
		      "conf.yaml:6:12: fleet.ca_file: 'etc/gk/ca.pem' is not an absolute path",
		      NULL);
}

static void test_fleet_timing(void **state)
{
	(void)state;
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
				  "  request_timeout: 2501ms\n",
		      "conf.yaml:3:3: fleet: request_timeout (2501 ms) must be at most half of "
		      "lease_ttl (5000 ms): a box's heartbeat must fit in its lease",
		      NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
				  "  lease_ttl: 4s\n"
				  "  request_timeout: 3s\n",
		      "conf.yaml:3:3: fleet: request_timeout (3000 ms) must be at most half of "
		      "lease_ttl (4000 ms): a box's heartbeat must fit in its lease",
		      NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
				  "  lease_ttl: 1s\n",
		      "conf.yaml:6:14: fleet.lease_ttl: 1s is out of range (2000ms-60000ms)", NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
				  "  lease_ttl: 1999ms\n"
				  "  request_timeout: 500ms\n",
		      "conf.yaml:6:14: fleet.lease_ttl: 1999ms is out of range (2000ms-60000ms)",
		      NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
				  "  lease_ttl: 61s\n"
				  "  request_timeout: 50ms\n",
		      "conf.yaml:6:14: fleet.lease_ttl: 61s is out of range (2000ms-60000ms)",
		      "conf.yaml:7:20: fleet.request_timeout: 50ms is out of range (100ms-30000ms)",
		      NULL);
	assert_errors(
		SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
			    "  lease_ttl: 5\n",
		"conf.yaml:6:14: fleet.lease_ttl: '5' is not a duration (a whole number with a "
		"unit: 500ms, 1s, 2m)",
		NULL);
}

static void test_fleet_bad_prefix(void **state)
{
	(void)state;
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  prefix: gatekeeper\n",
		      "conf.yaml:6:11: fleet.prefix: 'gatekeeper' " PREFIX_HELP, NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  prefix: /gatekeeper/\n",
		      "conf.yaml:6:11: fleet.prefix: '/gatekeeper/' " PREFIX_HELP, NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  prefix: /gate//keeper\n",
		      "conf.yaml:6:11: fleet.prefix: '/gate//keeper' " PREFIX_HELP, NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  prefix: //gatekeeper\n",
		      "conf.yaml:6:11: fleet.prefix: '//gatekeeper' " PREFIX_HELP, NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  prefix: /\n",
		      "conf.yaml:6:11: fleet.prefix: '/' " PREFIX_HELP, NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  prefix: /a b\n",
		      "conf.yaml:6:11: fleet.prefix: '/a b' " PREFIX_HELP, NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  prefix: \"\"\n",
		      "conf.yaml:6:11: fleet.prefix: expected a value, found an empty one", NULL);
	/* 129 bytes (the message cuts the value it shows) */
	assert_errors(
		SITES FLEET
		"  endpoints: [http://10.0.0.1:2379]\n"
		"  prefix: /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"/bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb\n",
		"conf.yaml:6:11: fleet.prefix: '/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' " PREFIX_HELP,
		NULL);
}

static void test_fleet_unknown_and_duplicate_keys(void **state)
{
	(void)state;
	assert_errors(
		SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  colour: blue\n",
		"conf.yaml:6:3: fleet: unknown key 'colour' (expected one of: name, endpoints, "
		"box, prefix, ca_file, cert_file, key_file, lease_ttl, request_timeout, checks)",
		NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n  name: stage\n",
		      "conf.yaml:6:3: fleet: duplicate key 'name' (first at 3:3)", NULL);
	assert_errors(SITES FLEET "  endpoints: [http://10.0.0.1:2379]\n"
				  "  endpoints: [http://10.0.0.2:2379]\n",
		      "conf.yaml:6:3: fleet: duplicate key 'endpoints' (first at 5:3)", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fleet_full),
		cmocka_unit_test(test_fleet_defaults),
		cmocka_unit_test(test_fleet_missing_keys),
		cmocka_unit_test(test_fleet_bad_names),
		cmocka_unit_test(test_fleet_bad_endpoints),
		cmocka_unit_test(test_fleet_tls_files),
		cmocka_unit_test(test_fleet_timing),
		cmocka_unit_test(test_fleet_bad_prefix),
		cmocka_unit_test(test_fleet_unknown_and_duplicate_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
