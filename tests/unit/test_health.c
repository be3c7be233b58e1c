/* Unit tests for the health checks' pure parts: the "check:" block and
 * "metrics:" of the config (defaults, every error with its position), the
 * duration syntax, the HTTP verdict, and the state of auto sites in the
 * site table. The network side is in tests/e2e/health.sh. */
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
#include "config_assert.h"
#include "health.h"
#include "sites.h"

#define SITE_HEAD "sites:\n  - name: shop\n    addresses: [198.51.100.10, \"2001:db8::10\"]\n"

static void test_durations(void **state)
{
	uint32_t ms;

	(void)state;
	assert_int_equal(config_parse_duration("500ms", &ms), 0);
	assert_int_equal(ms, 500);
	assert_int_equal(config_parse_duration("1s", &ms), 0);
	assert_int_equal(ms, 1000);
	assert_int_equal(config_parse_duration("2m", &ms), 0);
	assert_int_equal(ms, 120000);
	assert_int_equal(config_parse_duration("0s", &ms), 0);
	assert_int_equal(ms, 0);
	assert_int_equal(config_parse_duration("5", &ms), -1);
	assert_int_equal(config_parse_duration("1h", &ms), -1);
	assert_int_equal(config_parse_duration("05s", &ms), -1);
	assert_int_equal(config_parse_duration("s", &ms), -1);
	assert_int_equal(config_parse_duration("1.5s", &ms), -1);
	assert_int_equal(config_parse_duration("1 s", &ms), -1);
	assert_int_equal(config_parse_duration("999999999m", &ms), -1);
}

static void test_check_defaults(void **state)
{
	struct config *cfg = parse_ok(SITE_HEAD "    ports: [8443, 443]\n    state: auto\n"
				      "    check: { type: https }\n");
	const struct config_check *c = cfg->sites[0].check;

	(void)state;
	assert_true(cfg->sites[0].state_auto);
	assert_int_equal(cfg->sites[0].state, SITE_ONLINE);
	assert_non_null(c);
	assert_int_equal(c->type, CONFIG_CHECK_HTTPS);
	assert_int_equal(c->interval_ms, 5000);
	assert_int_equal(c->timeout_ms, 2000);
	assert_int_equal(c->rise, 2);
	assert_int_equal(c->fall, 2);
	assert_int_equal(c->port, 8443); /* the site's first port */
	assert_null(c->addresses);
	assert_string_equal(c->method, "GET");
	assert_string_equal(c->path, "/");
	assert_null(c->host);
	assert_null(c->sni);
	assert_int_equal(c->n_expect_status, 1);
	assert_int_equal(c->expect_status[0], 200);
	assert_false(cfg->metrics.enabled);
	config_free(cfg);
}

static void test_check_full(void **state)
{
	struct config *cfg = parse_ok(
		"metrics: { listen: \"[::1]:9468\" }\n" SITE_HEAD
		"    state: auto\n"
		"    check:\n"
		"      type: https\n      interval: 500ms\n      rise: 3\n      fall: 1\n"
		"      port: 8443\n      addresses: [\"2001:db8::10\"]\n"
		"      sni: www.example.com\n      method: HEAD\n      path: /health?x=1\n"
		"      host: www.example.com:8443\n      expect_status: [200, 204]\n"
		"      expect_body: ok\n"
		"  - name: blog\n    addresses: [198.51.100.11]\n"
		"    check: { type: tls, timeout: 1s, interval: 2m }\n");
	const struct config_check *c = cfg->sites[0].check;

	(void)state;
	assert_int_equal(c->interval_ms, 500);
	assert_int_equal(c->timeout_ms, 250); /* unset: half a short interval */
	assert_int_equal(c->rise, 3);
	assert_int_equal(c->fall, 1);
	assert_int_equal(c->port, 8443);
	assert_int_equal(c->n_addresses, 1);
	assert_int_equal(c->addresses[0].family, AF_INET6);
	assert_string_equal(c->sni, "www.example.com");
	assert_string_equal(c->method, "HEAD");
	assert_string_equal(c->path, "/health?x=1");
	assert_string_equal(c->host, "www.example.com:8443");
	assert_int_equal(c->n_expect_status, 2);
	assert_int_equal(c->expect_status[1], 204);
	assert_string_equal(c->expect_body, "ok");
	c = cfg->sites[1].check;
	assert_false(cfg->sites[1].state_auto);
	assert_int_equal(c->type, CONFIG_CHECK_TLS);
	assert_int_equal(c->timeout_ms, 1000);
	assert_int_equal(c->interval_ms, 120000);
	assert_int_equal(c->port, 443);
	assert_null(c->method);
	assert_true(cfg->metrics.enabled);
	assert_int_equal(cfg->metrics.addr.family, AF_INET6);
	assert_int_equal(cfg->metrics.port, 9468);
	config_free(cfg);
}

static void test_check_errors(void **state)
{
	(void)state;
	assert_errors(SITE_HEAD "    state: auto\n",
		      "conf.yaml:4:12: state: auto needs a 'check:' block (the check decides the "
		      "state)", NULL);
	assert_errors(SITE_HEAD "    check: { interval: 5, timeout: 1h }\n",
		      "conf.yaml:4:24: check.interval: '5' is not a duration (a whole number with "
		      "a unit: 500ms, 1s, 2m)",
		      "conf.yaml:4:36: check.timeout: '1h' is not a duration (a whole number with "
		      "a unit: 500ms, 1s, 2m)",
		      "conf.yaml:4:12: check: missing required key 'type' (tls or https)", NULL);
	assert_errors(SITE_HEAD "    check: { type: tls, interval: 1s, timeout: 1s, rise: 0 }\n",
		      "conf.yaml:4:58: check.rise: 0 is not a count (1-100)",
		      "conf.yaml:4:48: check: the timeout (1000ms) must be shorter than the "
		      "interval (1000ms)", NULL);
	assert_errors(SITE_HEAD "    check: { type: tls, interval: 50ms, path: /x }\n",
		      "conf.yaml:4:35: check.interval: 50ms is out of range (100ms-3600000ms)",
		      "conf.yaml:4:47: check: 'path' is only for type https", NULL);
	assert_errors(SITE_HEAD "    check:\n      type: https\n      addresses: [198.51.100.99]\n"
		      "      method: get\n      path: health\n      sni: 192.0.2.1\n"
		      "      verify_name: x.example\n      expect_status: [200, 99]\n"
		      "      colour: red\n",
		      "conf.yaml:7:15: check.method: 'get' has a character that is not allowed "
		      "here (position 1)",
		      "conf.yaml:8:13: check.path: 'health' does not start with '/'",
		      "conf.yaml:9:12: check.sni: '192.0.2.1' is an address; SNI takes a host name",
		      "conf.yaml:11:28: check.expect_status: 99 is not an HTTP status (100-599)",
		      "conf.yaml:12:7: check: unknown key 'colour' (expected one of: type, "
		      "interval, timeout, rise, fall, port, addresses, sni, ca_file, verify_name, "
		      "method, path, host, expect_status, expect_body)",
		      "conf.yaml:10:20: check.verify_name: needs check.ca_file (the CAs to verify "
		      "with)",
		      "conf.yaml:6:19: check.addresses: 198.51.100.99 is not one of the site's "
		      "addresses", NULL);
	assert_errors(SITE_HEAD "    check: { type: https, host: \"a b\" }\n",
		      "conf.yaml:4:33: check.host: 'a b' has a character that is not allowed here "
		      "(position 2)", NULL);
	assert_errors(SITE_HEAD "    check: { type: tls, sni: a.example, ca_file: /nonexistent/ca.pem }\n",
		      "conf.yaml:4:50: check.ca_file: cannot read '/nonexistent/ca.pem'", NULL);
	assert_errors("metrics: { listen: 127.0.0.1 }\n" SITE_HEAD,
		      "conf.yaml:1:20: metrics.listen: '127.0.0.1' is not ADDRESS:PORT "
		      "(127.0.0.1:9468, [::1]:9468)", NULL);
	assert_errors("metrics: { listen: \"::1:9468\" }\n" SITE_HEAD,
		      "conf.yaml:1:20: metrics.listen: '::1:9468' is not ADDRESS:PORT "
		      "(127.0.0.1:9468, [::1]:9468)", NULL);
	assert_errors("metrics: { listen: 127.0.0.1:70000 }\n" SITE_HEAD,
		      "conf.yaml:1:20: metrics.listen: '127.0.0.1:70000' is not ADDRESS:PORT "
		      "(127.0.0.1:9468, [::1]:9468)", NULL);
}

static struct config_check http_check(const char *body)
{
	static uint16_t statuses[] = { 200, 204 };
	struct config_check c = { .type = CONFIG_CHECK_HTTPS, .expect_status = statuses,
				  .n_expect_status = 2, .expect_body = (char *)body };
	return c;
}

static int judge(const struct config_check *c, const char *text, bool eof, char *reason)
{
	return health_judge_http(c, text, strlen(text), eof, reason, 192);
}

/* Issue 13: a CA file with no name to check the certificate against let
 * any certificate that CA ever signed pass. A config error now, unless
 * verify_name: "*" says so on purpose. /dev/null stands in for a readable
 * CA file: the config only checks that it can be read. */
static void test_ca_file_needs_a_name(void **state)
{
	static const char no_name[] =
		"conf.yaml:4:34: check.ca_file: no name to verify the certificate against (any "
		"certificate of this CA would pass): set check.sni or check.verify_name, or "
		"verify_name: \"*\" to accept any name on purpose";
	struct config *cfg;

	(void)state;
	assert_errors(SITE_HEAD "    check: { type: tls, ca_file: /dev/null }\n", no_name, NULL);
	/* an address as the Host header is no name either */
	assert_errors(SITE_HEAD "    check: { type: https, ca_file: /dev/null, host: 198.51.100.10 }\n",
		      "conf.yaml:4:36: check.ca_file: no name to verify the certificate against (any "
		      "certificate of this CA would pass): set check.sni or check.verify_name, or "
		      "verify_name: \"*\" to accept any name on purpose", NULL);
	/* "*" is not a host name anywhere else */
	assert_errors(SITE_HEAD "    check: { type: tls, sni: \"*\" }\n",
		      "conf.yaml:4:30: check.sni: '*' has a character that is not allowed here "
		      "(position 1)", NULL);

	cfg = parse_ok(SITE_HEAD "    check: { type: tls, ca_file: /dev/null, sni: a.example }\n");
	config_free(cfg);
	cfg = parse_ok(SITE_HEAD "    check: { type: tls, ca_file: /dev/null, verify_name: b.example }\n");
	config_free(cfg);
	cfg = parse_ok(SITE_HEAD "    check: { type: https, ca_file: /dev/null, host: a.example }\n");
	config_free(cfg);
	cfg = parse_ok(SITE_HEAD "    check: { type: tls, ca_file: /dev/null, verify_name: \"*\" }\n");
	assert_string_equal(cfg->sites[0].check->verify_name, CONFIG_VERIFY_ANY_NAME);
	config_free(cfg);
}

static void test_judge_http(void **state)
{
	struct config_check c = http_check(NULL), b = http_check("ready");
	char reason[192];

	(void)state;
	assert_int_equal(judge(&c, "HTTP/1.1 200 OK\r\n", false, reason), 1);
	assert_string_equal(reason, "HTTP 200");
	assert_int_equal(judge(&c, "HTTP/1.1 204\r\n", false, reason), 1);
	/* the stopped-IIS answer */
	assert_int_equal(judge(&c, "HTTP/1.1 404 Not Found\r\nServer: Microsoft-HTTPAPI/2.0\r\n",
			       false, reason), 0);
	assert_string_equal(reason, "HTTP 404");
	assert_int_equal(judge(&c, "HTTP/1.1 20", false, reason), -1);
	assert_int_equal(judge(&c, "HTTP/1.1 20", true, reason), 0);
	assert_string_equal(reason, "not an HTTP response");
	assert_int_equal(judge(&c, "", true, reason), 0);
	assert_string_equal(reason, "connection closed without a response");
	assert_int_equal(judge(&c, "SSH-2.0-OpenSSH\r\n", false, reason), 0);
	assert_int_equal(judge(&c, "HTTP/1.1 2000 OK\r\n", false, reason), 0);
	assert_int_equal(judge(&b, "HTTP/1.1 200 OK\r\nA: b\r\n\r\nnot yet", false, reason), -1);
	assert_int_equal(judge(&b, "HTTP/1.1 200 OK\r\nA: b\r\n\r\nall ready\n", false, reason), 1);
	assert_int_equal(judge(&b, "HTTP/1.1 200 OK\r\nready: header\r\n\r\nno", true, reason), 0);
	assert_string_equal(reason, "HTTP 200, body without \"ready\"");
	assert_int_equal(judge(&b, "HTTP/1.1 500 x\r\n", false, reason), 0);
	assert_string_equal(reason, "HTTP 500");
}

static void test_auto_state(void **state)
{
	struct config *cfg = parse_ok(SITE_HEAD "    state: auto\n    action: reject\n"
				      "    check: { type: tls }\n");
	struct sites *sites = sites_create(cfg);
	struct site *site = sites_find(sites, "shop");

	(void)state;
	assert_int_equal(site_state(site), SITE_ONLINE);
	assert_true(site_set_check_state(site, SITE_OFFLINE));
	assert_int_equal(site_state(site), SITE_OFFLINE);
	assert_int_equal(site_action(site), SITE_ACTION_REJECT);
	assert_int_equal(site_source(site), SITE_SOURCE_CONFIG);
	assert_int_equal(site_decide(site), SITE_VERDICT_REJECT);
	/* a run-time override wins until cleared */
	site_set_override(site, SITE_ONLINE, SITE_ACTION_DROP);
	assert_false(site_set_check_state(site, SITE_OFFLINE));
	assert_int_equal(site_state(site), SITE_ONLINE);
	/* ended, it goes straight back to the check's last verdict (kept
	 * while the override was in force), not to the config's online */
	site_clear_override(site);
	assert_int_equal(site_state(site), SITE_OFFLINE);
	assert_int_equal(site_source(site), SITE_SOURCE_CONFIG);
	site_set_fleet_override(site, SITE_ONLINE, SITE_ACTION_DROP);
	assert_false(site_set_check_state(site, SITE_ONLINE));
	assert_false(site_set_check_state(site, SITE_OFFLINE));
	site_clear_override(site);
	assert_int_equal(site_state(site), SITE_OFFLINE);
	site_set_override(site, SITE_OFFLINE, SITE_ACTION_DROP);
	assert_false(site_set_check_state(site, SITE_ONLINE));
	site_clear_override(site);
	assert_int_equal(site_state(site), SITE_ONLINE);
	assert_true(site_set_check_state(site, SITE_OFFLINE));
	assert_int_equal(site_state(site), SITE_OFFLINE);
	/* a reload's table keeps the verdict for an override carried over */
	{
		struct sites *fresh = sites_create(cfg);
		struct site *again;

		assert_non_null(fresh);
		again = sites_find(fresh, "shop");
		assert_non_null(again);
		site_set_override(site, SITE_ONLINE, SITE_ACTION_DROP);
		sites_carry_over_overrides(fresh, sites);
		assert_int_equal(site_state(again), SITE_ONLINE);
		site_clear_override(again);
		assert_int_equal(site_state(again), SITE_OFFLINE);
		site_clear_override(site);
		sites_free(fresh);
	}
	/* a health module with no result yet leaves the state alone */
	{
		struct health *h = health_open(cfg);

		assert_non_null(h);
		assert_int_equal(health_count(h), 2);
		assert_int_equal(health_site_state(h, "shop"), HEALTH_UNKNOWN);
		health_apply(h, sites);
		assert_int_equal(site_state(site), SITE_OFFLINE);
		health_close(h);
	}
	sites_free(sites);
	config_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_check_defaults),
		cmocka_unit_test(test_check_full),
		cmocka_unit_test(test_check_errors),
		cmocka_unit_test(test_ca_file_needs_a_name),
		cmocka_unit_test(test_judge_http),
		cmocka_unit_test(test_auto_state),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
