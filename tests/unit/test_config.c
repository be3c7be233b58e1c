/* Unit tests for config: the schema, defaults, every kind of error with its
 * exact position, the file-level limits, and the shipped configs.
 *
 * Usage: test_config SOURCE_DIR (meson passes meson.project_source_root()),
 * so the shipped conf/ files are checked by the same program. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "config_assert.h"

static const char *source_dir;

static struct config *parse(const char *text, struct config_errors *errors)
{
	return config_parse("conf.yaml", text, strlen(text), errors);
}

static void assert_addr(const struct config_addr *addr, int family, const char *text)
{
	uint8_t bytes[16] = { 0 };

	assert_int_equal(addr->family, family);
	assert_int_equal(inet_pton(family, text, bytes), 1);
	assert_memory_equal(addr->bytes, bytes, sizeof(bytes));
}

static char *make_temp_dir(void)
{
	const char *tmp = getenv("TMPDIR");
	char *dir;

	assert_true(asprintf(&dir, "%s/test_config.XXXXXX", tmp && *tmp ? tmp : "/tmp") > 0);
	assert_non_null(mkdtemp(dir));
	return dir;
}

/* ---- valid configs ---- */

static void test_full_config(void **state)
{
	struct config *cfg = parse_ok("hook: forward\n"
				      "backend: xt\n"
				      "queue: {num: 10, count: 4, fail_open: false, maxlen: 1024}\n"
				      "control: {socket: /run/gk/c.sock, group: wheel}\n"
				      "state_file: /var/lib/gk/state\n"
				      "user: gk\n"
				      "sites:\n"
				      "  - name: shop\n"
				      "    addresses: [198.51.100.10, \"2001:db8:2::10\"]\n"
				      "    ports: [443, 8443]\n"
				      "    state: offline\n"
				      "    action: reject\n"
				      "  - name: blog.example_1-x\n"
				      "    addresses: ['198.51.100.11']\n");

	(void)state;
	assert_string_equal(cfg->path, "conf.yaml");
	assert_int_equal(cfg->hook, CONFIG_HOOK_FORWARD);
	assert_int_equal(cfg->backend, CONFIG_BACKEND_XT);
	assert_int_equal(cfg->queue.num, 10);
	assert_int_equal(cfg->queue.count, 4);
	assert_false(cfg->queue.fail_open);
	assert_int_equal(cfg->queue.maxlen, 1024);
	assert_string_equal(cfg->control.socket, "/run/gk/c.sock");
	assert_string_equal(cfg->control.group, "wheel");
	assert_string_equal(cfg->state_file, "/var/lib/gk/state");
	assert_string_equal(cfg->user, "gk");
	assert_int_equal(cfg->n_sites, 2);

	assert_string_equal(cfg->sites[0].name, "shop");
	assert_int_equal(cfg->sites[0].line, 8);
	assert_int_equal(cfg->sites[0].n_addresses, 2);
	assert_addr(&cfg->sites[0].addresses[0], AF_INET, "198.51.100.10");
	assert_addr(&cfg->sites[0].addresses[1], AF_INET6, "2001:db8:2::10");
	assert_int_equal(cfg->sites[0].n_ports, 2);
	assert_int_equal(cfg->sites[0].ports[0], 443);
	assert_int_equal(cfg->sites[0].ports[1], 8443);
	assert_int_equal(cfg->sites[0].state, SITE_OFFLINE);
	assert_int_equal(cfg->sites[0].action, SITE_ACTION_REJECT);

	assert_string_equal(cfg->sites[1].name, "blog.example_1-x");
	assert_int_equal(cfg->sites[1].line, 13);
	assert_int_equal(cfg->sites[1].n_addresses, 1);
	assert_addr(&cfg->sites[1].addresses[0], AF_INET, "198.51.100.11");
	assert_int_equal(cfg->sites[1].n_ports, 1);
	assert_int_equal(cfg->sites[1].ports[0], 443);
	assert_int_equal(cfg->sites[1].state, SITE_ONLINE);
	assert_int_equal(cfg->sites[1].action, SITE_ACTION_DROP);
	config_free(cfg);
}

static void test_defaults(void **state)
{
	struct config *cfg = parse_ok("sites:\n  - {name: a, addresses: [192.0.2.1]}\n");

	(void)state;
	assert_string_equal(cfg->path, "conf.yaml");
	assert_int_equal(cfg->hook, CONFIG_HOOK_PREROUTING);
	assert_int_equal(cfg->backend, CONFIG_BACKEND_AUTO);
	assert_int_equal(cfg->queue.num, 0);
	assert_int_equal(cfg->queue.count, 1);
	assert_true(cfg->queue.fail_open);
	assert_int_equal(cfg->queue.maxlen, 16384);
	assert_string_equal(cfg->control.socket, PROTOCOL_DEFAULT_SOCKET);
	assert_null(cfg->control.group);
	assert_string_equal(cfg->state_file, CONFIG_DEFAULT_STATE_FILE);
	assert_null(cfg->user);
	assert_int_equal(cfg->n_sites, 1);
	assert_int_equal(cfg->sites[0].line, 2);
	assert_int_equal(cfg->sites[0].n_ports, 1);
	assert_int_equal(cfg->sites[0].ports[0], 443);
	assert_int_equal(cfg->sites[0].state, SITE_ONLINE);
	assert_int_equal(cfg->sites[0].action, SITE_ACTION_DROP);
	config_free(cfg);
}

static void test_queue_limits_accepted(void **state)
{
	struct config *cfg = parse_ok("queue: {num: 65472, count: 64, maxlen: 1048576}\n"
				      "sites: [{name: a, addresses: [192.0.2.1]}]\n");

	(void)state;
	assert_int_equal(cfg->queue.num, 65472);
	assert_int_equal(cfg->queue.count, 64);
	assert_int_equal(cfg->queue.maxlen, 1048576);
	config_free(cfg);
}

static void test_enums(void **state)
{
	static const struct {
		const char *word;
		enum config_hook value;
	} hooks[] = { { "prerouting", CONFIG_HOOK_PREROUTING },
		      { "input", CONFIG_HOOK_INPUT },
		      { "forward", CONFIG_HOOK_FORWARD } };
	static const struct {
		const char *word;
		enum config_backend value;
	} backends[] = { { "auto", CONFIG_BACKEND_AUTO },
			 { "nft", CONFIG_BACKEND_NFT },
			 { "xt", CONFIG_BACKEND_XT },
			 { "external", CONFIG_BACKEND_EXTERNAL },
			 { "xt-nft", CONFIG_BACKEND_XT_NFT },
			 { "xt-legacy", CONFIG_BACKEND_XT_LEGACY } };
	static const char *const states[] = { "online", "offline" };
	static const char *const actions[] = { "drop", "reject" };
	char text[256];

	(void)state;
	for (size_t i = 0; i < 3; i++) {
		for (size_t b = 0; b < sizeof(backends) / sizeof(backends[0]); b++) {
			snprintf(
				text, sizeof(text),
				"hook: %s\nbackend: %s\nsites: [{name: a, addresses: [\"::2\"]}]\n",
				hooks[i].word, backends[b].word);
			struct config *cfg = parse_ok(text);
			assert_int_equal(cfg->hook, hooks[i].value);
			assert_int_equal(cfg->backend, backends[b].value);
			assert_string_equal(config_hook_name(cfg->hook), hooks[i].word);
			assert_string_equal(config_backend_name(cfg->backend), backends[b].word);
			config_free(cfg);
		}
	}
	for (size_t s = 0; s < 2; s++) {
		for (size_t a = 0; a < 2; a++) {
			snprintf(
				text, sizeof(text),
				"sites: [{name: a, addresses: [\"::2\"], state: %s, action: %s}]\n",
				states[s], actions[a]);
			struct config *cfg = parse_ok(text);
			assert_int_equal(cfg->sites[0].state, (enum site_state)s);
			assert_int_equal(cfg->sites[0].action, (enum site_action)a);
			assert_string_equal(config_state_name(cfg->sites[0].state), states[s]);
			assert_string_equal(config_action_name(cfg->sites[0].action), actions[a]);
			config_free(cfg);
		}
	}
}

static void test_enum_helpers(void **state)
{
	enum site_state st = SITE_ONLINE;
	enum site_action act = SITE_ACTION_DROP;

	(void)state;
	assert_int_equal(config_parse_state("offline", &st), 0);
	assert_int_equal(st, SITE_OFFLINE);
	assert_int_equal(config_parse_state("online", &st), 0);
	assert_int_equal(st, SITE_ONLINE);
	assert_int_equal(config_parse_state("Online", &st), -1);
	assert_int_equal(config_parse_state("", &st), -1);
	assert_int_equal(config_parse_action("reject", &act), 0);
	assert_int_equal(act, SITE_ACTION_REJECT);
	assert_int_equal(config_parse_action("drop", &act), 0);
	assert_int_equal(act, SITE_ACTION_DROP);
	assert_int_equal(config_parse_action("accept", &act), -1);
	assert_string_equal(config_hook_name((enum config_hook)99), "?");
	assert_string_equal(config_backend_name((enum config_backend) - 1), "?");
	assert_string_equal(config_state_name((enum site_state)7), "?");
	assert_string_equal(config_action_name((enum site_action)7), "?");
}

static void test_booleans(void **state)
{
	static const struct {
		const char *word;
		bool value;
	} cases[] = { { "true", true }, { "false", false }, { "yes", true },  { "no", false },
		      { "on", true },	{ "off", false },   { "True", true }, { "OFF", false } };
	char text[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(text, sizeof(text),
			 "queue: {fail_open: %s}\nsites: [{name: a, addresses: [\"::2\"]}]\n",
			 cases[i].word);
		struct config *cfg = parse_ok(text);
		assert_int_equal(cfg->queue.fail_open, cases[i].value);
		config_free(cfg);
	}
}

static void test_optional_names_null(void **state)
{
	struct config *cfg = parse_ok("user: ~\n"
				      "control: {group: }\n"
				      "sites: [{name: a, addresses: [\"::2\"]}]\n");

	(void)state;
	assert_null(cfg->user);
	assert_null(cfg->control.group);
	config_free(cfg);
}

static void test_same_address_other_port_ok(void **state)
{
	struct config *cfg = parse_ok("sites:\n"
				      "  - {name: a, addresses: [192.0.2.1], ports: [443]}\n"
				      "  - {name: b, addresses: [192.0.2.1], ports: [8443]}\n");

	(void)state;
	assert_int_equal(cfg->n_sites, 2);
	config_free(cfg);
}

/* ---- errors ---- */

static void test_unknown_keys(void **state)
{
	(void)state;
	assert_errors(
		"hook: input\n"
		"backend: nft\n"
		"hok: prerouting\n"
		"queue: {nm: 1}\n"
		"control: {sock: /x}\n"
		"sites:\n"
		"  - name: a\n"
		"    adresses: [192.0.2.1]\n",
		"conf.yaml:3:1: unknown key 'hok' (expected one of: hook, backend, queue, "
		"control, state_file, user, sites, metrics, sni, fleet)",
		"conf.yaml:4:9: queue: unknown key 'nm' (expected one of: num, count, "
		"fail_open, maxlen)",
		"conf.yaml:5:11: control: unknown key 'sock' (expected one of: socket, group, mode)",
		"conf.yaml:8:5: site: unknown key 'adresses' (expected one of: name, "
		"addresses, ports, state, action, check, allow, server_names)",
		"conf.yaml:7:5: site: missing required key 'addresses'", NULL);
}

static void test_wrong_kinds(void **state)
{
	(void)state;
	assert_errors("hook: [prerouting]\n"
		      "queue: 5\n"
		      "control: [a]\n"
		      "user: {a: b}\n"
		      "sites:\n"
		      "  - name: [a]\n"
		      "    addresses: 192.0.2.1\n"
		      "    ports: 443\n"
		      "  - just a string\n"
		      "  -\n",
		      "conf.yaml:1:7: hook: expected a single value, found a list",
		      "conf.yaml:2:8: queue: expected a mapping, found a scalar",
		      "conf.yaml:3:10: control: expected a mapping, found a list",
		      "conf.yaml:4:7: user: expected a single value, found a mapping",
		      "conf.yaml:6:11: name: expected a single value, found a list",
		      "conf.yaml:7:16: addresses: expected a list, found a scalar",
		      "conf.yaml:8:12: ports: expected a list, found a scalar",
		      "conf.yaml:9:5: sites: expected a mapping, found a scalar",
		      "conf.yaml:10:4: sites: expected a mapping, found an empty value", NULL);
	assert_errors("sites: {name: a}\n",
		      "conf.yaml:1:8: sites: expected a list, found a mapping", NULL);
	assert_errors("sites:\n", "conf.yaml:1:7: sites: expected a list, found an empty value",
		      NULL);
	assert_errors(
		"? [a]\n: 1\nsites: []\n", "conf.yaml:1:3: keys must be plain words, found a list",
		"conf.yaml:3:8: sites: the list is empty; at least one site is required", NULL);
}

static void test_top_level_not_mapping(void **state)
{
	(void)state;
	assert_errors("- a\n- b\n",
		      "conf.yaml:1:1: expected a mapping at the top level, found a list", NULL);
	assert_errors("just words\n",
		      "conf.yaml:1:1: expected a mapping at the top level, found a scalar", NULL);
	assert_errors("",
		      "conf.yaml: no configuration found (expected a mapping with a 'sites' list)",
		      NULL);
	assert_errors("# only a comment\n",
		      "conf.yaml: no configuration found (expected a mapping with a 'sites' list)",
		      NULL);
}

/* Issue 13: libyaml's reader knows only a byte offset ("syntax error at
 * byte 24"); every error names FILE:LINE:COL, columns in characters. */
static void test_invalid_utf8_located(void **state)
{
	(void)state;
	assert_errors("sites:\n  - name: sh\xffop\n",
		      "conf.yaml:2:13: not valid UTF-8: invalid leading UTF-8 octet (byte 0xff)",
		      NULL);
	/* "# éé " before the bad byte: 5 characters in 7 bytes, so column 6 */
	assert_errors("# caf\xc3\xa9\n# \xc3\xa9\xc3\xa9 \x80\n",
		      "conf.yaml:2:6: not valid UTF-8: invalid leading UTF-8 octet (byte 0x80)",
		      NULL);
	/* a sequence cut by the end of the file */
	assert_errors("sites: []\n# \xe2\x82",
		      "conf.yaml:2:3: not valid UTF-8: incomplete UTF-8 octet sequence", NULL);
}

static void test_bad_addresses(void **state)
{
	(void)state;
	assert_errors(
		"sites:\n"
		"  - name: a\n"
		"    addresses:\n"
		"      - 192.0.2.1\n"
		"      - 192.0.2\n"
		"      - 192.0.2.0/24\n"
		"      - \"::ffff:192.0.2.7\"\n"
		"      - \"2001:db8::1\"\n"
		"      - example.com\n"
		"      - \"2001:DB8:0::1\"\n"
		"      - 192.0.2.1\n"
		"      - \"fe80::1%eth0\"\n"
		"  - name: b\n"
		"    addresses: []\n",
		"conf.yaml:5:9: addresses: '192.0.2' is not an IPv4 or IPv6 address",
		"conf.yaml:6:9: addresses: '192.0.2.0/24' has a prefix length; list single "
		"addresses",
		"conf.yaml:7:9: addresses: '::ffff:192.0.2.7' is an IPv4-mapped IPv6 address; "
		"write it as 192.0.2.7",
		"conf.yaml:9:9: addresses: 'example.com' is not an IPv4 or IPv6 address",
		"conf.yaml:12:9: addresses: 'fe80::1%eth0' is not an IPv4 or IPv6 address",
		"conf.yaml:10:9: addresses: 2001:db8::1 is listed twice (first at 8:9)",
		"conf.yaml:11:9: addresses: 192.0.2.1 is listed twice (first at 4:9)",
		"conf.yaml:14:16: addresses: the list is empty; at least one address is "
		"required",
		NULL);
}

static void test_bad_ports(void **state)
{
	(void)state;
	assert_errors("sites:\n"
		      "  - name: a\n"
		      "    addresses: [192.0.2.1]\n"
		      "    ports: [443, 0, 70000, https, 0443, -1, 99999999999999999999, 443]\n"
		      "  - name: b\n"
		      "    addresses: [192.0.2.2]\n"
		      "    ports: []\n",
		      "conf.yaml:4:18: ports: 0 is not a port (1-65535)",
		      "conf.yaml:4:21: ports: 70000 is not a port (1-65535)",
		      "conf.yaml:4:28: ports: 'https' is not a port (1-65535)",
		      "conf.yaml:4:35: ports: '0443' is not a port (1-65535)",
		      "conf.yaml:4:41: ports: '-1' is not a port (1-65535)",
		      "conf.yaml:4:45: ports: 99999999999999999999 is not a port (1-65535)",
		      "conf.yaml:4:67: ports: 443 is listed twice (first at 4:13)",
		      "conf.yaml:7:12: ports: the list is empty; leave the key out for the default "
		      "[443]",
		      NULL);
}

static void test_bad_enums_and_names(void **state)
{
	(void)state;
	assert_errors(
		"hook: output\n"
		"backend: iptables\n"
		"sites:\n"
		"  - name: \"my shop\"\n"
		"    addresses: [192.0.2.1]\n"
		"    state: up\n"
		"    action: accept\n"
		"  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
		"    addresses: [192.0.2.2]\n"
		"  - name: \"\\e[31mred\"\n"
		"    addresses: [192.0.2.3]\n"
		"  - name: \"\"\n"
		"    addresses: [192.0.2.4]\n",
		"conf.yaml:1:7: hook: 'output' is not valid (expected one of: prerouting, "
		"input, forward)",
		"conf.yaml:2:10: backend: 'iptables' is not valid (expected one of: auto, nft, "
		"xt, external, xt-nft, xt-legacy)",
		"conf.yaml:4:11: name: 'my shop' is not a valid site name (1-64 characters of "
		"A-Z a-z 0-9 . _ -)",
		"conf.yaml:6:12: state: 'up' is not valid (expected one of: online, offline, auto)",
		"conf.yaml:7:13: action: 'accept' is not valid (expected one of: drop, reject)",
		"conf.yaml:8:11: name: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' "
		"is not a valid site name (1-64 characters of A-Z a-z 0-9 . _ -)",
		"conf.yaml:10:11: name: '?[31mred' is not a valid site name (1-64 characters "
		"of A-Z a-z 0-9 . _ -)",
		"conf.yaml:12:11: name: expected a value, found an empty one", NULL);
}

static void test_bad_queue_and_paths(void **state)
{
	(void)state;
	assert_errors(
		"queue:\n"
		"  num: 65536\n"
		"  count: 0\n"
		"  fail_open: maybe\n"
		"  maxlen: 1048577\n"
		"control:\n"
		"  socket: run/control.sock\n"
		"state_file: \"\"\n"
		"sites: [{name: a, addresses: [192.0.2.1]}]\n",
		"conf.yaml:2:8: queue.num: 65536 is not a queue number (0-65535)",
		"conf.yaml:3:10: queue.count: 0 is not a valid queue count (1-64)",
		"conf.yaml:4:14: queue.fail_open: 'maybe' is not a boolean (expected "
		"true/false, yes/no or on/off)",
		"conf.yaml:5:11: queue.maxlen: 1048577 is not a valid queue length (1-1048576)",
		"conf.yaml:7:11: control.socket: 'run/control.sock' is not an absolute path",
		"conf.yaml:8:13: state_file: expected a value, found an empty one", NULL);
	assert_errors(
		"queue: {num: 65500, count: 64}\n"
		"sites: [{name: a, addresses: [192.0.2.1]}]\n",
		"conf.yaml:1:28: queue: num + count - 1 = 65563 is past the last queue number "
		"(65535)",
		NULL);
	assert_errors(
		"control:\n"
		"  socket: /run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\n"
		"sites: [{name: a, addresses: [192.0.2.1]}]\n",
		"conf.yaml:2:11: control.socket: the path is 133 bytes, longer than the 107 a "
		"unix socket allows",
		NULL);
	assert_errors(
		"control: {mode: 0400}\n"
		"sites: [{name: a, addresses: [192.0.2.1]}]\n",
		"conf.yaml:1:17: control.mode: '0400' is not a socket mode (octal, like 0660, "
		"with read and write for the owner)",
		NULL);
	assert_errors(
		"control: {mode: 0689}\n"
		"sites: [{name: a, addresses: [192.0.2.1]}]\n",
		"conf.yaml:1:17: control.mode: '0689' is not a socket mode (octal, like 0660, "
		"with read and write for the owner)",
		NULL);
}

static void test_control_mode(void **state)
{
	static const char text[] = "control: {mode: 0666}\n"
				   "sites: [{name: a, addresses: [192.0.2.1]}]\n";
	struct config_errors errors = { 0 };
	struct config *cfg = config_parse("conf.yaml", text, strlen(text), &errors);

	(void)state;
	assert_non_null(cfg);
	assert_int_equal(cfg->control.mode, 0666);
	config_free(cfg);
	cfg = config_parse("conf.yaml", text + 22, strlen(text + 22), &errors);
	assert_non_null(cfg);
	assert_int_equal(cfg->control.mode, CONFIG_DEFAULT_SOCKET_MODE);
	config_free(cfg);
}

static void test_missing_required(void **state)
{
	(void)state;
	assert_errors("hook: input\n", "conf.yaml:1:1: missing required key 'sites'", NULL);
	assert_errors("sites: []\n",
		      "conf.yaml:1:8: sites: the list is empty; at least one site is required",
		      NULL);
	assert_errors("sites:\n"
		      "  - state: offline\n"
		      "  - {}\n",
		      "conf.yaml:2:5: site: missing required key 'name'",
		      "conf.yaml:2:5: site: missing required key 'addresses'",
		      "conf.yaml:3:5: site: missing required key 'name'",
		      "conf.yaml:3:5: site: missing required key 'addresses'", NULL);
}

static void test_duplicate_keys_and_names(void **state)
{
	(void)state;
	assert_errors("hook: input\n"
		      "queue: {num: 1, num: 2}\n"
		      "hook: forward\n"
		      "sites:\n"
		      "  - name: shop\n"
		      "    addresses: [192.0.2.1]\n"
		      "    name: shop2\n"
		      "  - name: blog\n"
		      "    addresses: [192.0.2.2]\n"
		      "  - name: shop\n"
		      "    addresses: [192.0.2.3]\n"
		      "  - name: blog\n"
		      "    addresses: [192.0.2.4]\n",
		      "conf.yaml:2:17: queue: duplicate key 'num' (first at 2:9)",
		      "conf.yaml:3:1: duplicate key 'hook' (first at 1:1)",
		      "conf.yaml:7:5: site: duplicate key 'name' (first at 5:5)",
		      "conf.yaml:12:11: name: site 'blog' is defined twice (first at line 8)",
		      "conf.yaml:10:11: name: site 'shop' is defined twice (first at line 5)",
		      NULL);
}

static void test_address_port_claimed_twice(void **state)
{
	(void)state;
	assert_errors("sites:\n"
		      "  - name: shop\n"
		      "    addresses: [198.51.100.10, \"2001:db8:2::10\"]\n"
		      "    ports: [443, 80]\n"
		      "  - name: blog\n"
		      "    addresses: [\"2001:DB8:2:0::10\"]\n"
		      "    ports: [8443, 80]\n"
		      "  - name: wiki\n"
		      "    addresses: [198.51.100.11, 198.51.100.10]\n",
		      "conf.yaml:9:32: addresses: 198.51.100.10 port 443 is claimed by both site "
		      "'shop' (line 2) and site 'wiki'; sites may share an address only when each lists server_names",
		      "conf.yaml:6:17: addresses: 2001:db8:2::10 port 80 is claimed by both site "
		      "'shop' (line 2) and site 'blog'; sites may share an address only when each lists server_names",
		      NULL);
}

/* Sites that share an address: each lists server_names, no pattern twice
 * on one endpoint, one "*" default at most. */
static void test_server_names(void **state)
{
	struct config *cfg;

	(void)state;
	cfg = parse_ok("sni: {unknown_name: drop, hold: 500ms, max_pending: 100}\n"
		       "sites:\n"
		       "  - name: shop\n"
		       "    addresses: [198.51.100.10]\n"
		       "    server_names: [Shop.Example.com., \"*.shop.example.com\"]\n"
		       "  - name: blog\n"
		       "    addresses: [198.51.100.10, 198.51.100.11]\n"
		       "    server_names: [blog.example.com, \"*.example.com\"]\n"
		       "  - name: rest\n"
		       "    addresses: [198.51.100.10]\n"
		       "    server_names: [\"*\"]\n");
	assert_int_equal(cfg->sites[0].n_server_names, 2);
	assert_string_equal(cfg->sites[0].server_names[0], "shop.example.com");
	assert_string_equal(cfg->sites[0].server_names[1], "*.shop.example.com");
	assert_false(cfg->sites[0].default_name);
	assert_int_equal(cfg->sites[2].n_server_names, 0);
	assert_true(cfg->sites[2].default_name);
	assert_int_equal(cfg->sni.unknown_name, CONFIG_UNKNOWN_DROP);
	assert_int_equal(cfg->sni.hold_ms, 500);
	assert_int_equal(cfg->sni.max_pending, 100);
	config_free(cfg);

	/* a check on a shared address asks for the site's first exact name */
	cfg = parse_ok("sites:\n"
		       "  - name: shop\n"
		       "    addresses: [198.51.100.10]\n"
		       "    check: {type: tls}\n"
		       "    server_names: [\"*.shop.example\", www.shop.example]\n"
		       "  - name: blog\n"
		       "    addresses: [198.51.100.10]\n"
		       "    check: {type: tls, sni: health.blog.example}\n"
		       "    server_names: [blog.example]\n");
	assert_string_equal(cfg->sites[0].check->sni, "www.shop.example");
	assert_string_equal(cfg->sites[1].check->sni, "health.blog.example");
	config_free(cfg);

	/* defaults */
	cfg = parse_ok("sites:\n  - name: shop\n    addresses: [198.51.100.10]\n");
	assert_int_equal(cfg->sni.unknown_name, CONFIG_UNKNOWN_REJECT);
	assert_int_equal(cfg->sni.hold_ms, 2000);
	assert_int_equal(cfg->sni.max_pending, 4096);
	assert_null(cfg->sites[0].server_names);
	config_free(cfg);

	assert_errors("sites:\n"
		      "  - name: shop\n"
		      "    addresses: [198.51.100.10]\n"
		      "    server_names: [a.example, \"a b\", \"*x.example\", A.example, \"*\", \"*\", []]\n",
		      "conf.yaml:4:31: server_names: 'a b': not a host name (letters, digits, '-', "
		      "'_' in dot-separated labels of 1 to 63, at most 253 in all)",
		      "conf.yaml:4:38: server_names: '*x.example': a wildcard is allowed only as a "
		      "whole first label (\"*.example.com\")",
		      "conf.yaml:4:52: server_names: 'a.example' is listed twice",
		      "conf.yaml:4:68: server_names: \"*\" is listed twice",
		      "conf.yaml:4:73: server_names: expected a single value, found a list", NULL);
	/* one site without names on a shared endpoint, the same pattern on
	 * two sites (reported once for all their shared ports), two
	 * defaults */
	assert_errors("sites:\n"
		      "  - name: shop\n"
		      "    addresses: [198.51.100.10]\n"
		      "    ports: [443, 8443]\n"
		      "    server_names: [shop.example, \"*\"]\n"
		      "  - name: blog\n"
		      "    addresses: [198.51.100.10]\n"
		      "    ports: [443, 8443]\n"
		      "    server_names: [blog.example, shop.example, \"*\"]\n"
		      "  - name: wiki\n"
		      "    addresses: [198.51.100.10]\n",
		      "conf.yaml:7:17: server_names: site 'blog' and site 'shop' (line 2) both list "
		      "\"*\" on 198.51.100.10 port 443; one default per shared address",
		      "conf.yaml:9:34: server_names: 'shop.example' is listed by site 'shop' (line 2) "
		      "too, on the shared address 198.51.100.10 port 443",
		      "conf.yaml:11:17: addresses: 198.51.100.10 port 443 is claimed by both site 'shop' "
		      "(line 2) and site 'wiki'; sites may share an address only when each lists "
		      "server_names",
		      "conf.yaml:11:17: addresses: 198.51.100.10 port 443 is claimed by both site 'blog' "
		      "(line 6) and site 'wiki'; sites may share an address only when each lists "
		      "server_names",
		      NULL);
	assert_errors("sni: {unknown_name: maybe, hold: 60s, max_pending: 0}\n"
		      "sites:\n  - name: shop\n    addresses: [198.51.100.10]\n",
		      "conf.yaml:1:21: sni.unknown_name: 'maybe' is not valid (expected one of: reject, "
		      "drop, accept)",
		      "conf.yaml:1:34: sni.hold: 60s is out of range (100ms-10000ms)",
		      "conf.yaml:1:52: sni.max_pending: 0 is not a number of held ClientHellos "
		      "(1-65536)",
		      NULL);
}

static void test_allow_list(void **state)
{
	struct config *cfg;
	char text[CONFIG_CIDR_STRLEN];

	(void)state;
	cfg = parse_ok("sites:\n"
		       "  - name: shop\n"
		       "    addresses: [198.51.100.10]\n"
		       "    allow: [203.0.113.0/24, \"2001:db8:3::/64\", 192.0.2.7, 0.0.0.0/0]\n");
	assert_int_equal(cfg->sites[0].n_allow, 4);
	assert_string_equal(config_cidr_str(&cfg->sites[0].allow[0], text, sizeof(text)),
			    "203.0.113.0/24");
	assert_string_equal(config_cidr_str(&cfg->sites[0].allow[1], text, sizeof(text)),
			    "2001:db8:3::/64");
	/* a single address is its whole length */
	assert_string_equal(config_cidr_str(&cfg->sites[0].allow[2], text, sizeof(text)),
			    "192.0.2.7/32");
	assert_true(config_cidr_contains(&cfg->sites[0].allow[0], AF_INET,
					 (const uint8_t[]){203, 0, 113, 99}));
	assert_false(config_cidr_contains(&cfg->sites[0].allow[0], AF_INET,
					  (const uint8_t[]){203, 0, 114, 1}));
	assert_true(config_cidr_contains(&cfg->sites[0].allow[3], AF_INET,
					 (const uint8_t[]){8, 8, 8, 8}));
	/* a v4 network never matches a v6 source */
	assert_false(config_cidr_contains(&cfg->sites[0].allow[3], AF_INET6,
					  (const uint8_t[16]){0}));
	config_free(cfg);
	assert_errors("sites:\n"
		      "  - name: shop\n"
		      "    addresses: [198.51.100.10]\n"
		      "    allow: [203.0.113.7/24, 10.0.0.0/33, nonsense, \"2001:db8::/129\", [1]]\n",
		      "conf.yaml:4:13: allow: '203.0.113.7/24' has host bits set; the network is "
		      "203.0.113.0/24",
		      "conf.yaml:4:29: allow: '10.0.0.0/33': the length must be 0 to 32",
		      "conf.yaml:4:42: allow: 'nonsense' is not an IPv4 or IPv6 network (ADDRESS/LENGTH)",
		      "conf.yaml:4:52: allow: '2001:db8::/129': the length must be 0 to 128",
		      "conf.yaml:4:70: allow: expected a single value, found a list", NULL);
	assert_errors("sites:\n"
		      "  - name: shop\n"
		      "    addresses: [198.51.100.10]\n"
		      "    allow: 203.0.113.0/24\n",
		      "conf.yaml:4:12: allow: expected a list, found a scalar", NULL);
}

static void test_several_errors_together(void **state)
{
	(void)state;
	assert_errors(
		"hook: sideways\n"
		"queue:\n"
		"  count: 100\n"
		"sites:\n"
		"  - name: shop\n"
		"    addresses: [198.51.100.10, 300.1.1.1]\n"
		"    ports: [70000]\n"
		"    colour: blue\n"
		"user: 42\n"
		"extra: true\n",
		"conf.yaml:1:7: hook: 'sideways' is not valid (expected one of: prerouting, "
		"input, forward)",
		"conf.yaml:3:10: queue.count: 100 is not a valid queue count (1-64)",
		"conf.yaml:6:32: addresses: '300.1.1.1' is not an IPv4 or IPv6 address",
		"conf.yaml:7:13: ports: 70000 is not a port (1-65535)",
		"conf.yaml:8:5: site: unknown key 'colour' (expected one of: name, addresses, "
		"ports, state, action, check, allow, server_names)",
		"conf.yaml:10:1: unknown key 'extra' (expected one of: hook, backend, queue, "
		"control, state_file, user, sites, metrics, sni, fleet)",
		NULL);
}

static void test_error_cap(void **state)
{
	struct config_errors errors = { 0 };
	size_t size = 64 + 200 * 3, used;
	char *text = malloc(size);
	struct config *cfg;

	(void)state;
	assert_non_null(text);
	used = (size_t)snprintf(text, size, "sites: [{name: a, addresses: [\"::2\"], ports: [");
	for (int i = 0; i < 200; i++)
		used += (size_t)snprintf(text + used, size - used, "%s0", i ? "," : "");
	snprintf(text + used, size - used, "]}]\n");
	cfg = parse(text, &errors);
	assert_null(cfg);
	assert_int_equal(errors.count, CONFIG_MAX_ERRORS);
	assert_string_equal(errors.messages[0], "conf.yaml:1:47: ports: 0 is not a port (1-65535)");
	assert_string_equal(errors.messages[CONFIG_MAX_ERRORS - 1],
			    "conf.yaml: too many errors, stopped after 99");
	config_errors_free(&errors);
	assert_int_equal(errors.count, 0);
	assert_null(errors.messages);
	free(text);
}

static void test_syntax_errors(void **state)
{
	(void)state;
	assert_errors("hook: forward\n"
		      "  bad: 1\n",
		      "conf.yaml:2:6: syntax error: mapping values are not allowed in this context",
		      NULL);
	assert_errors(
		"sites:\n"
		"  - name: a\n"
		"    addresses: [192.0.2.1\n",
		"conf.yaml:4:1: syntax error: did not find expected ',' or ']' (while parsing a "
		"flow sequence at 3:16)",
		NULL);
	assert_errors("sites:\n"
		      "\t- name: a\n",
		      "conf.yaml:2:1: syntax error: found character that cannot start any token",
		      NULL);
}

static void test_anchors_and_aliases_rejected(void **state)
{
	(void)state;
	assert_errors("ports: &p [443]\n"
		      "sites:\n"
		      "  - name: a\n"
		      "    addresses: [192.0.2.1]\n"
		      "    ports: *p\n",
		      "conf.yaml:1:8: anchors (&p) are not allowed in the config",
		      "conf.yaml:5:12: aliases (*p) are not allowed in the config", NULL);
	/* The shape of "billion laughs": refused before anything is expanded. */
	assert_errors("a: &a [x, x]\nb: [*a, *a]\n",
		      "conf.yaml:1:4: anchors (&a) are not allowed in the config",
		      "conf.yaml:2:5: aliases (*a) are not allowed in the config",
		      "conf.yaml:2:9: aliases (*a) are not allowed in the config", NULL);
}

static void test_multiple_documents(void **state)
{
	(void)state;
	assert_errors("sites: [{name: a, addresses: [\"::2\"]}]\n"
		      "---\n"
		      "sites: [{name: b, addresses: [\"::3\"]}]\n",
		      "conf.yaml:2:1: only one YAML document is allowed", NULL);
}

static void test_deep_nesting(void **state)
{
	char text[64];

	(void)state;
	snprintf(text, sizeof(text), "a: %s\n", "[[[[[[[[[[[[[[[[[[[[");
	assert_errors(text, "conf.yaml:1:19: nested more than 16 levels deep", NULL);
}

static void test_pair_limit(void **state)
{
	/* 1100 addresses x 1000 ports = 1.1 M pairs, just over the limit. */
	size_t size = 64 + 1100 * 16 + 1000 * 6, used;
	char *text = malloc(size);

	(void)state;
	assert_non_null(text);
	used = (size_t)snprintf(text, size, "sites:\n- name: a\n  addresses: [");
	for (int i = 0; i < 1100; i++)
		used += (size_t)snprintf(text + used, size - used, "%s10.0.%d.%d", i ? "," : "",
					 i / 256, i % 256);
	used += (size_t)snprintf(text + used, size - used, "]\n  ports: [");
	for (int i = 1; i <= 1000; i++)
		used += (size_t)snprintf(text + used, size - used, "%s%d", i > 1 ? "," : "", i);
	snprintf(text + used, size - used, "]\n");
	assert_errors(text,
		      "conf.yaml:2:1: sites: more than 1048576 address:port pairs in all "
		      "(addresses x ports)",
		      NULL);
	free(text);
}

static void test_errors_append(void **state)
{
	struct config_errors errors = { 0 };

	(void)state;
	assert_null(parse("hook: x\nsites: []\n", &errors));
	assert_int_equal(errors.count, 2);
	assert_null(parse("sites: []\n", &errors));
	assert_int_equal(errors.count, 3);
	config_errors_free(&errors);
}

/* ---- addresses ---- */

static void test_addr_helpers(void **state)
{
	struct config_addr addr;
	char buf[INET6_ADDRSTRLEN];

	(void)state;
	memset(&addr, 0xaa, sizeof(addr));
	assert_int_equal(config_parse_addr("198.51.100.10", &addr), 0);
	assert_addr(&addr, AF_INET, "198.51.100.10");
	assert_string_equal(config_addr_str(&addr, buf, sizeof(buf)), "198.51.100.10");
	assert_int_equal(config_parse_addr("2001:DB8:2:0::10", &addr), 0);
	assert_addr(&addr, AF_INET6, "2001:db8:2::10");
	assert_string_equal(config_addr_str(&addr, buf, sizeof(buf)), "2001:db8:2::10");
	assert_int_equal(config_parse_addr("198.51.100", &addr), -1);
	assert_int_equal(config_parse_addr("198.51.100.10/32", &addr), -1);
	assert_int_equal(config_parse_addr("", &addr), -1);
	assert_int_equal(config_parse_addr(" 198.51.100.10", &addr), -1);
}

/* ---- files ---- */

static void test_load_file(void **state)
{
	static const char text[] = "sites: [{name: a, addresses: [192.0.2.1]}]\n";
	struct config_errors errors = { 0 };
	char *dir = make_temp_dir(), *path;
	struct config *cfg;
	int fd;

	(void)state;
	assert_true(asprintf(&path, "%s/gk.yaml", dir) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, sizeof(text) - 1), (ssize_t)(sizeof(text) - 1));
	close(fd);
	cfg = config_load(path, &errors);
	assert_non_null(cfg);
	assert_int_equal(errors.count, 0);
	assert_string_equal(cfg->path, path);
	assert_string_equal(cfg->sites[0].name, "a");
	config_free(cfg);
	unlink(path);
	rmdir(dir);
	free(path);
	free(dir);
}

static void test_load_oversize(void **state)
{
	struct config_errors errors = { 0 };
	char *dir = make_temp_dir(), *path, *want;
	int fd;

	(void)state;
	assert_true(asprintf(&path, "%s/big.yaml", dir) > 0);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	assert_true(fd >= 0);
	/* Sparse: the size check must come before any byte is read. */
	assert_int_equal(ftruncate(fd, (off_t)CONFIG_MAX_FILE_SIZE + 1), 0);
	close(fd);
	assert_null(config_load(path, &errors));
	assert_int_equal(errors.count, 1);
	assert_true(asprintf(&want, "%s: file is 16777217 bytes, larger than the 16 MiB limit",
			     path) > 0);
	assert_string_equal(errors.messages[0], want);
	config_errors_free(&errors);
	unlink(path);
	rmdir(dir);
	free(want);
	free(path);
	free(dir);
}

static void test_load_missing_and_directory(void **state)
{
	struct config_errors errors = { 0 };
	char *dir = make_temp_dir(), *path, *want;

	(void)state;
	assert_true(asprintf(&path, "%s/absent.yaml", dir) > 0);
	assert_null(config_load(path, &errors));
	assert_int_equal(errors.count, 1);
	assert_true(asprintf(&want, "%s: cannot open: %s", path, strerror(ENOENT)) > 0);
	assert_string_equal(errors.messages[0], want);
	config_errors_free(&errors);
	free(want);

	assert_null(config_load(dir, &errors));
	assert_int_equal(errors.count, 1);
	assert_true(asprintf(&want, "%s: cannot open: %s", dir, strerror(EISDIR)) > 0);
	assert_string_equal(errors.messages[0], want);
	config_errors_free(&errors);
	free(want);
	rmdir(dir);
	free(path);
	free(dir);
}

static struct config *load_shipped(const char *name)
{
	struct config_errors errors = { 0 };
	struct config *cfg;
	char *path;

	if (!source_dir)
		fail_msg("no source dir: run as test_config SOURCE_DIR (meson passes "
			 "meson.project_source_root())");
	assert_true(asprintf(&path, "%s/conf/%s", source_dir, name) > 0);
	cfg = config_load(path, &errors);
	if (!cfg) {
		print_errors(&errors);
		config_errors_free(&errors);
		free(path);
		fail_msg("shipped config %s refused", name);
	}
	assert_int_equal(errors.count, 0);
	free(path);
	return cfg;
}

static void test_shipped_default(void **state)
{
	struct config *cfg = load_shipped("gatekeeper.yaml");

	(void)state;
	assert_int_equal(cfg->hook, CONFIG_HOOK_PREROUTING);
	assert_int_equal(cfg->backend, CONFIG_BACKEND_AUTO);
	assert_string_equal(cfg->control.socket, PROTOCOL_DEFAULT_SOCKET);
	assert_string_equal(cfg->state_file, CONFIG_DEFAULT_STATE_FILE);
	assert_int_equal(cfg->n_sites, 1);
	assert_string_equal(cfg->sites[0].name, "shop");
	assert_int_equal(cfg->sites[0].n_addresses, 2);
	assert_addr(&cfg->sites[0].addresses[0], AF_INET, "198.51.100.10");
	assert_addr(&cfg->sites[0].addresses[1], AF_INET6, "2001:db8:2::10");
	config_free(cfg);
}

static void test_shipped_demo(void **state)
{
	static const struct {
		const char *name, *v4, *v6;
		enum site_state state;
		enum site_action action;
	} want[] = {
		{ "shop", "198.51.100.10", "2001:db8:2::10", SITE_ONLINE, SITE_ACTION_DROP },
		{ "blog", "198.51.100.11", "2001:db8:2::11", SITE_OFFLINE, SITE_ACTION_DROP },
		{ "wiki", "198.51.100.12", "2001:db8:2::12", SITE_OFFLINE, SITE_ACTION_REJECT },
	};
	struct config *cfg = load_shipped("demo.yaml");

	(void)state;
	assert_int_equal(cfg->hook, CONFIG_HOOK_FORWARD);
	assert_string_equal(cfg->control.socket, "/run/gatekeeper-demo/control.sock");
	assert_string_equal(cfg->state_file, "/run/gatekeeper-demo/state");
	assert_int_equal(cfg->n_sites, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct config_site *site = &cfg->sites[i];

		assert_string_equal(site->name, want[i].name);
		assert_int_equal(site->n_addresses, 2);
		assert_addr(&site->addresses[0], AF_INET, want[i].v4);
		assert_addr(&site->addresses[1], AF_INET6, want[i].v6);
		assert_int_equal(site->n_ports, 1);
		assert_int_equal(site->ports[0], 443);
		assert_int_equal(site->state, want[i].state);
		assert_int_equal(site->action, want[i].action);
	}
	config_free(cfg);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full_config),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_queue_limits_accepted),
		cmocka_unit_test(test_enums),
		cmocka_unit_test(test_enum_helpers),
		cmocka_unit_test(test_booleans),
		cmocka_unit_test(test_optional_names_null),
		cmocka_unit_test(test_same_address_other_port_ok),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_wrong_kinds),
		cmocka_unit_test(test_top_level_not_mapping),
		cmocka_unit_test(test_invalid_utf8_located),
		cmocka_unit_test(test_bad_addresses),
		cmocka_unit_test(test_bad_ports),
		cmocka_unit_test(test_bad_enums_and_names),
		cmocka_unit_test(test_bad_queue_and_paths),
		cmocka_unit_test(test_control_mode),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_duplicate_keys_and_names),
		cmocka_unit_test(test_address_port_claimed_twice),
		cmocka_unit_test(test_several_errors_together),
		cmocka_unit_test(test_allow_list),
		cmocka_unit_test(test_server_names),
		cmocka_unit_test(test_error_cap),
		cmocka_unit_test(test_syntax_errors),
		cmocka_unit_test(test_anchors_and_aliases_rejected),
		cmocka_unit_test(test_multiple_documents),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_pair_limit),
		cmocka_unit_test(test_errors_append),
		cmocka_unit_test(test_addr_helpers),
		cmocka_unit_test(test_load_file),
		cmocka_unit_test(test_load_oversize),
		cmocka_unit_test(test_load_missing_and_directory),
		cmocka_unit_test(test_shipped_default),
		cmocka_unit_test(test_shipped_demo),
	};

	source_dir = argc > 1 ? argv[1] : NULL;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
