/* Unit tests for fleet_value: the keys under the fleet's prefix, every
 * value the fleet keeps in etcd and its local cache, encoded and read back,
 * and what a broken or hostile etcd (or a damaged cache file) could hand
 * the decoders instead. Also run under ASan: a refused input must leave
 * nothing allocated. */
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fleet_value.h"
#include "maintenance.h"

#define P "/gatekeeper/prod/"

/* ---- helpers ---- */

static struct site_allow *allow_of(const char *const *nets, size_t n)
{
	struct config_cidr cidrs[CONFIG_MAX_ALLOW];
	char why[128];

	assert_true(n <= CONFIG_MAX_ALLOW);
	for (size_t i = 0; i < n; i++)
		if (config_parse_cidr(nets[i], &cidrs[i], why, sizeof(why)) < 0)
			fail_msg("%s: %s", nets[i], why);
	return site_allow_new(cidrs, n);
}

/* Compared as text: a config_cidr has padding. */
static void assert_allow_equal(const struct site_allow *a, const struct site_allow *b)
{
	char x[CONFIG_CIDR_STRLEN], y[CONFIG_CIDR_STRLEN];

	if (!a || !b) {
		assert_ptr_equal(a, b);
		return;
	}
	assert_int_equal(a->count, b->count);
	for (size_t i = 0; i < a->count; i++)
		assert_string_equal(config_cidr_str(&a->nets[i], x, sizeof(x)),
				    config_cidr_str(&b->nets[i], y, sizeof(y)));
}

static void assert_value_equal(const struct fleet_value *a, const struct fleet_value *b)
{
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->action, b->action);
	assert_allow_equal(a->allow, b->allow);
	assert_int_equal(a->until, b->until);
	assert_int_equal(a->cut, b->cut);
	assert_string_equal(a->by, b->by);
	assert_string_equal(a->box, b->box);
	assert_int_equal(a->at, b->at);
}

/* TEXT decoded as a site override: 0 or -1, WHY filled on -1. */
static int decode(const char *text, struct fleet_value *v, char *why, size_t why_len)
{
	why[0] = '\0';
	return fleet_value_decode(text, strlen(text), v, why, why_len);
}

/* TEXT is refused, with WHY_PART in the reason, and leaves V empty. */
static void assert_value_refused(const char *text, const char *why_part)
{
	struct fleet_value v;
	char why[256];

	if (decode(text, &v, why, sizeof(why)) != -1)
		fail_msg("accepted: %s", text);
	assert_null(v.allow);
	assert_int_equal(v.until, 0);
	assert_string_equal(v.box, "");
	if (!strstr(why, why_part))
		fail_msg("'%s' refused with '%s', not '%s'", text, why, why_part);
}

/* V encoded, decoded, and encoded again: the same value, the same text. */
static void assert_value_round_trip(const struct fleet_value *v)
{
	struct fleet_value back;
	char why[256], *text = fleet_value_encode(v), *again;

	assert_non_null(text);
	if (decode(text, &back, why, sizeof(why)) < 0)
		fail_msg("%s: %s", text, why);
	assert_value_equal(v, &back);
	again = fleet_value_encode(&back);
	assert_non_null(again);
	assert_string_equal(text, again);
	fleet_value_free(&back);
	free(text);
	free(again);
}

/* ---- keys ---- */

static enum fleet_key_kind key_kind(const char *key, size_t len, char *name)
{
	return fleet_key_parse(P, key, len, name);
}

#define KEY(text, name) key_kind(text, sizeof(text) - 1, name)

static void test_key_parse(void **state)
{
	char name[PROTOCOL_SITE_NAME_MAX + 1], key[256];

	(void)state;
	assert_int_equal(KEY(P "schema", name), FLEET_KEY_SCHEMA);
	assert_string_equal(name, "");
	assert_int_equal(KEY(P "site/shop", name), FLEET_KEY_SITE);
	assert_string_equal(name, "shop");
	assert_int_equal(KEY(P "site/blog.example_1-x", name), FLEET_KEY_SITE);
	assert_string_equal(name, "blog.example_1-x");
	assert_int_equal(KEY(P "box/fe1", name), FLEET_KEY_BOX);
	assert_string_equal(name, "fe1");

	/* other keys, prefixes and near misses */
	assert_int_equal(KEY(P "check/fe1/shop", name), FLEET_KEY_OTHER);
	assert_string_equal(name, "");
	assert_int_equal(KEY(P "schemas", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "schem", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "Schema", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "sites/shop", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "boxes/fe1", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY("/gatekeeper/stage/site/shop", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY("/gatekeeper/prodsite/shop", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY("/other/prod/site/shop", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY("", name), FLEET_KEY_OTHER);
	/* the prefix itself, shorter, and the prefix and word with no name */
	assert_int_equal(KEY(P, name), FLEET_KEY_OTHER);
	assert_int_equal(KEY("/gatekeeper/prod", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "site/", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "box/", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "site", name), FLEET_KEY_OTHER);

	/* names with characters a site name cannot have */
	assert_int_equal(KEY(P "site/sh op", name), FLEET_KEY_OTHER);
	assert_string_equal(name, "");
	assert_int_equal(KEY(P "site/a/b", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "box/fe1/x", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "site/sh\xc3\xb6p", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "site/shop\n", name), FLEET_KEY_OTHER);

	/* PROTOCOL_SITE_NAME_MAX characters, and one more */
	snprintf(key, sizeof(key), P "site/%0*d", PROTOCOL_SITE_NAME_MAX, 7);
	assert_int_equal(key_kind(key, strlen(key), name), FLEET_KEY_SITE);
	assert_int_equal(strlen(name), PROTOCOL_SITE_NAME_MAX);
	snprintf(key, sizeof(key), P "box/%0*d", PROTOCOL_SITE_NAME_MAX + 1, 7);
	assert_int_equal(key_kind(key, strlen(key), name), FLEET_KEY_OTHER);
	assert_string_equal(name, "");

	/* embedded NUL bytes: the key is KEY_LEN bytes, not a C string */
	assert_int_equal(KEY(P "site/shop\0x", name), FLEET_KEY_OTHER);
	assert_string_equal(name, "");
	assert_int_equal(KEY(P "site/\0shop", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "box/fe1\0", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY(P "schema\0", name), FLEET_KEY_OTHER);
	assert_int_equal(KEY("/gatekeeper/prod\0site/shop", name), FLEET_KEY_OTHER);
	/* and only KEY_LEN bytes are read: no terminator needed */
	memcpy(key, P "site/shopping", sizeof(P "site/shopping"));
	assert_int_equal(key_kind(key, strlen(P "site/shop"), name), FLEET_KEY_SITE);
	assert_string_equal(name, "shop");
}

/* ---- site overrides ---- */

static void test_value_round_trip(void **state)
{
	static const char *const nets[] = { "203.0.113.0/24", "198.51.100.7",    "10.0.0.0/8",
					    "0.0.0.0/0",      "2001:db8:3::/64", "::1/128",
					    "2001:db8::/32" };
	struct fleet_value v = {
		.state = SITE_OFFLINE,
		.action = SITE_ACTION_REJECT,
		.until = 1900000000,
		.cut = true,
		.by = "uid 0 pid 4242 on fe1",
		.box = "fe1",
		.at = 1765000000,
	};
	struct fleet_value copy;

	(void)state;
	v.allow = allow_of(nets, sizeof(nets) / sizeof(nets[0]));
	assert_non_null(v.allow);
	assert_value_round_trip(&v);
	/* a deep copy: its own list */
	assert_int_equal(fleet_value_copy(&copy, &v), 0);
	assert_true(copy.allow != v.allow);
	assert_value_equal(&copy, &v);
	fleet_value_free(&copy);
	assert_null(copy.allow);

	/* allow=none: an empty list, which is not "the config's list" */
	free(v.allow);
	v.allow = site_allow_new(NULL, 0);
	assert_non_null(v.allow);
	assert_value_round_trip(&v);
	fleet_value_free(&v);

	/* the smallest: online, no list, no deadline, no cut, nobody */
	memset(&v, 0, sizeof(v));
	v.state = SITE_ONLINE;
	v.action = SITE_ACTION_DROP;
	assert_value_round_trip(&v);
	/* 64-bit times past 2^53 and negative "at" survive */
	v.until = INT64_MAX;
	v.at = INT64_MIN;
	assert_value_round_trip(&v);
	v.until = 9007199254740993;
	v.at = -1;
	assert_value_round_trip(&v);
}

static void test_value_encoding(void **state)
{
	static const char *const nets[] = { "203.0.113.0/24", "2001:db8:3::/64" };
	struct fleet_value v = { .state = SITE_OFFLINE,
				 .action = SITE_ACTION_REJECT,
				 .until = 1900000000,
				 .cut = true,
				 .by = "uid 0",
				 .box = "fe1",
				 .at = 1765000000 };
	char *text;

	(void)state;
	v.allow = allow_of(nets, 2);
	text = fleet_value_encode(&v);
	assert_non_null(text);
	/* the shape of FLEET-DESIGN.md, 64-bit numbers as strings as etcd does,
	 * slashes as they are (what etcdctl get shows) */
	assert_string_equal(text, "{\"state\":\"offline\",\"action\":\"reject\","
				  "\"allow\":[\"203.0.113.0/24\",\"2001:db8:3::/64\"],"
				  "\"until\":\"1900000000\",\"cut\":true,\"by\":\"uid 0\","
				  "\"box\":\"fe1\",\"at\":\"1765000000\"}");
	free(text);
	fleet_value_free(&v);
	memset(&v, 0, sizeof(v));
	text = fleet_value_encode(&v);
	assert_string_equal(text, "{\"state\":\"online\",\"action\":\"drop\",\"by\":\"\","
				  "\"box\":\"\",\"at\":\"0\"}");
	free(text);
}

static void test_value_decode_fields(void **state)
{
	struct fleet_value v;
	char why[256], text[1024], by[FLEET_BY_MAX + 64];

	(void)state;
	/* numbers as JSON ints or strings; cut false; unknown keys ignored */
	assert_int_equal(decode("{\"state\":\"offline\",\"action\":\"drop\",\"until\":1900000000,"
				"\"at\":\"-5\",\"cut\":false,\"mod_revision\":\"7\",\"x\":[1]}",
				&v, why, sizeof(why)),
			 0);
	assert_int_equal(v.state, SITE_OFFLINE);
	assert_int_equal(v.action, SITE_ACTION_DROP);
	assert_int_equal(v.until, 1900000000);
	assert_int_equal(v.at, -5);
	assert_false(v.cut);
	assert_null(v.allow);
	assert_string_equal(v.by, "");
	assert_string_equal(v.box, "");
	/* the extremes of int64 as strings; as JSON ints they are what json-c
	 * clamps anything larger to, so refused */
	assert_int_equal(
		decode("{\"state\":\"online\",\"action\":\"reject\",\"until\":\"9223372036854775807\","
		       "\"at\":\"-9223372036854775808\"}",
		       &v, why, sizeof(why)),
		0);
	assert_true(v.until == INT64_MAX);
	assert_true(v.at == INT64_MIN);
	assert_int_equal(
		decode("{\"state\":\"online\",\"action\":\"reject\",\"until\":9223372036854775807}",
		       &v, why, sizeof(why)),
		-1);
	assert_int_equal(
		decode("{\"state\":\"online\",\"action\":\"reject\",\"at\":-99999999999999999999}",
		       &v, why, sizeof(why)),
		-1);
	/* a NUL escaped into a word does not cut it short */
	assert_int_equal(decode("{\"state\":\"offline\\u0000junk\",\"action\":\"drop\"}", &v, why,
				sizeof(why)),
			 -1);

	/* invalid box names are dropped, not refused: the box is for display */
	assert_int_equal(decode("{\"state\":\"online\",\"action\":\"drop\",\"box\":\"fe 1\"}", &v,
				why, sizeof(why)),
			 0);
	assert_string_equal(v.box, "");
	assert_int_equal(decode("{\"state\":\"online\",\"action\":\"drop\",\"box\":\"\"}", &v, why,
				sizeof(why)),
			 0);
	assert_string_equal(v.box, "");
	assert_int_equal(decode("{\"state\":\"online\",\"action\":\"drop\",\"box\":7}", &v, why,
				sizeof(why)),
			 0);
	assert_string_equal(v.box, "");
	snprintf(text, sizeof(text), "{\"state\":\"online\",\"action\":\"drop\",\"box\":\"%0*d\"}",
		 PROTOCOL_SITE_NAME_MAX + 1, 1);
	assert_int_equal(decode(text, &v, why, sizeof(why)), 0);
	assert_string_equal(v.box, "");
	snprintf(text, sizeof(text), "{\"state\":\"online\",\"action\":\"drop\",\"box\":\"%0*d\"}",
		 PROTOCOL_SITE_NAME_MAX, 1);
	assert_int_equal(decode(text, &v, why, sizeof(why)), 0);
	assert_int_equal(strlen(v.box), PROTOCOL_SITE_NAME_MAX);

	/* "by" is cut to fit, not refused */
	memset(by, 'u', sizeof(by) - 1);
	by[sizeof(by) - 1] = '\0';
	snprintf(text, sizeof(text), "{\"state\":\"online\",\"action\":\"drop\",\"by\":\"%s\"}",
		 by);
	assert_int_equal(decode(text, &v, why, sizeof(why)), 0);
	assert_int_equal(strlen(v.by), FLEET_BY_MAX - 1);
	assert_int_equal(decode("{\"state\":\"online\",\"action\":\"drop\",\"by\":false}", &v, why,
				sizeof(why)),
			 0);
	assert_string_equal(v.by, "");

	/* 64 networks is the most */
	{
		char *p = text;

		p += sprintf(p, "{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[");
		for (int i = 0; i < CONFIG_MAX_ALLOW; i++)
			p += sprintf(p, "%s\"10.%d.0.0/16\"", i ? "," : "", i);
		strcpy(p, "]}");
		assert_int_equal(decode(text, &v, why, sizeof(why)), 0);
		assert_int_equal(v.allow->count, CONFIG_MAX_ALLOW);
		fleet_value_free(&v);
		p = strrchr(text, ']');
		strcpy(p, ",\"10.250.0.0/16\"]}");
		assert_value_refused(text, "at most 64 networks");
	}
	/* an empty list is a list */
	assert_int_equal(decode("{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[]}", &v, why,
				sizeof(why)),
			 0);
	assert_non_null(v.allow);
	assert_int_equal(v.allow->count, 0);
	fleet_value_free(&v);
}

static void test_value_refused(void **state)
{
	(void)state;
	/* state and action: missing, unknown, not strings */
	assert_value_refused("{\"action\":\"drop\"}", "no valid \"state\"");
	assert_value_refused("{\"state\":\"sideways\",\"action\":\"drop\"}", "no valid \"state\"");
	assert_value_refused("{\"state\":\"auto\",\"action\":\"drop\"}", "no valid \"state\"");
	assert_value_refused("{\"state\":\"OFFLINE\",\"action\":\"drop\"}", "no valid \"state\"");
	assert_value_refused("{\"state\":1,\"action\":\"drop\"}", "no valid \"state\"");
	assert_value_refused("{\"state\":\"offline\"}", "no valid \"action\"");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"tarpit\"}",
			     "no valid \"action\"");
	assert_value_refused("{\"state\":\"offline\",\"action\":null}", "no valid \"action\"");

	/* allow: not a list, a bad network (host bits, garbage, a number) */
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"allow\":\"10.0.0.0/8\"}",
			     "\"allow\" is not a list");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"allow\":{}}",
			     "\"allow\" is not a list");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"allow\":null}",
			     "\"allow\" is not a list");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\","
			     "\"allow\":[\"10.0.0.0/8\",\"10.0.0.1/8\"]}",
			     "\"allow\" item 1 is not a network");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[\"shop\"]}",
			     "\"allow\" item 0 is not a network");
	assert_value_refused(
		"{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[\"10.0.0.0/33\"]}",
		"\"allow\" item 0");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[\"::/129\"]}",
			     "\"allow\" item 0");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[167772160]}",
			     "\"allow\" item 0");
	assert_value_refused(
		"{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[[\"10.0.0.0/8\"]]}",
		"\"allow\" item 0");

	/* until and at: negative, not numbers, out of range, fractions */
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":-1}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":\"-1\"}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":\"soon\"}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":\"\"}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":\"12 \"}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":\"0x10\"}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":1.5}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":true}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"until\":null}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\","
			     "\"until\":\"9223372036854775808\"}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"at\":\"yesterday\"}",
			     "not a time");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\","
			     "\"at\":\"-9223372036854775809\"}",
			     "not a time");

	/* cut: only true or false */
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"cut\":\"true\"}",
			     "\"cut\" is not true or false");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"cut\":1}",
			     "\"cut\" is not true or false");
	assert_value_refused("{\"state\":\"offline\",\"action\":\"drop\",\"cut\":null}",
			     "\"cut\" is not true or false");

	/* the allow-list is the last thing read: a refusal before it leaks nothing,
	 * and one in it frees what was built (ASan checks) */
	assert_value_refused(
		"{\"allow\":[\"10.0.0.0/8\"],\"state\":\"offline\",\"action\":\"drop\","
		"\"cut\":0}",
		"\"cut\"");
}

static void test_value_not_json_object(void **state)
{
	static const char *const bad[] = {
		"",
		" ",
		"{",
		"{\"state\":\"offline\",\"action\":\"drop\"",
		"{\"state\":\"offline\",\"action\":\"dr",
		"{\"state\":\"offline\",\"action\":\"drop\"} x",
		"{\"state\":\"offline\",\"action\":\"drop\"}{}",
		"{\"state\":\"offline\",\"action\":\"drop\"}}",
		"{\"state\":\"offline\",\"action\":\"drop\",}", /* strict JSON */
		"{'state':'offline','action':'drop'}",
		"{state:\"offline\",action:\"drop\"}",
		"[]",
		"[{\"state\":\"offline\",\"action\":\"drop\"}]",
		"\"offline\"",
		"1",
		"null",
		"true",
		"offline drop",
		/* deeper than the decoder's limit */
		"{\"state\":\"offline\",\"action\":\"drop\",\"x\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}",
		"{\"state\":\"offline\",\"action\":\"drop\",\"x\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":"
		"{\"a\":{\"a\":{\"a\":{}}}}}}}}}}",
	};
	struct fleet_value v;
	char why[256];

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (decode(bad[i], &v, why, sizeof(why)) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(v.allow);
		assert_non_null(strstr(why, "not a JSON object"));
	}
	/* a NUL byte inside the LEN bytes, after a whole object */
	assert_int_equal(fleet_value_decode("{\"state\":\"online\",\"action\":\"drop\"}\0x", 37, &v,
					    why, sizeof(why)),
			 -1);
	/* LEN bytes are read, no more: the same text cut short is refused */
	assert_int_equal(fleet_value_decode("{\"state\":\"online\",\"action\":\"drop\"}", 20, &v,
					    why, sizeof(why)),
			 -1);
	/* nesting within the limit is fine (unknown keys are ignored) */
	assert_int_equal(decode("{\"state\":\"online\",\"action\":\"drop\",\"x\":[[[1]]]}", &v, why,
				sizeof(why)),
			 0);
}

static void test_value_size_limit(void **state)
{
	static const char head[] = "{\"state\":\"online\",\"action\":\"drop\",\"by\":\"";
	static const char tail[] = "\"}";
	static char text[FLEET_VALUE_MAX + 2];
	size_t len = FLEET_VALUE_MAX;
	struct fleet_value v;
	char why[256];

	(void)state;
	/* exactly FLEET_VALUE_MAX bytes: read ("by" cut) */
	memcpy(text, head, sizeof(head) - 1);
	memset(text + sizeof(head) - 1, 'x', len - (sizeof(head) - 1) - (sizeof(tail) - 1));
	memcpy(text + len - (sizeof(tail) - 1), tail, sizeof(tail));
	assert_int_equal(strlen(text), len);
	assert_int_equal(fleet_value_decode(text, len, &v, why, sizeof(why)), 0);
	assert_int_equal(strlen(v.by), FLEET_BY_MAX - 1);
	/* one more byte: refused unread */
	memmove(text + len - (sizeof(tail) - 1) + 1, text + len - (sizeof(tail) - 1), sizeof(tail));
	text[len - (sizeof(tail) - 1)] = 'x';
	assert_int_equal(strlen(text), len + 1);
	assert_int_equal(fleet_value_decode(text, len + 1, &v, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "at most 16384 bytes"));
	assert_int_equal(fleet_box_decode(text, len + 1, &(struct fleet_box_value){ 0 }), -1);
	assert_int_equal(fleet_schema_decode(text, len + 1, &(struct fleet_schema){ 0 }), -1);
}

/* ---- box presence ---- */

static void test_box_value(void **state)
{
	struct fleet_box_value b = { .applied = 9007199254740993,
				     .started = 1765000000,
				     .pins = 3 },
			       back;
	char *text = fleet_box_encode(&b);

	(void)state;
	assert_string_equal(text, "{\"applied\":\"9007199254740993\",\"started\":\"1765000000\","
				  "\"pins\":\"3\"}");
	assert_int_equal(fleet_box_decode(text, strlen(text), &back), 0);
	assert_true(back.applied == b.applied);
	assert_true(back.started == b.started);
	assert_int_equal(back.pins, 3);
	free(text);
	b = (struct fleet_box_value){ .applied = INT64_MAX, .started = 0, .pins = UINT32_MAX };
	text = fleet_box_encode(&b);
	assert_int_equal(fleet_box_decode(text, strlen(text), &back), 0);
	assert_true(back.applied == INT64_MAX);
	assert_int_equal(back.started, 0);
	assert_int_equal(back.pins, UINT32_MAX);
	free(text);

#define BOX(text) fleet_box_decode(text, strlen(text), &back)
	/* JSON ints too; every field may be absent */
	assert_int_equal(BOX("{\"applied\":42,\"started\":7,\"pins\":0}"), 0);
	assert_int_equal(back.applied, 42);
	assert_int_equal(BOX("{}"), 0);
	assert_int_equal(back.applied, 0);
	assert_int_equal(back.pins, 0);
	/* refused */
	assert_int_equal(BOX("{\"applied\":\"x\"}"), -1);
	assert_int_equal(back.applied, 0);
	assert_int_equal(BOX("{\"started\":1.5}"), -1);
	assert_int_equal(BOX("{\"pins\":-1}"), -1);
	assert_int_equal(back.pins, 0);
	/* nothing of a refused one is left (applied was read before pins) */
	assert_int_equal(BOX("{\"applied\":\"5\",\"started\":\"6\",\"pins\":\"x\"}"), -1);
	assert_int_equal(back.applied, 0);
	assert_int_equal(back.started, 0);
	assert_int_equal(BOX("{\"pins\":\"4294967296\"}"), -1);
	assert_int_equal(BOX("{\"applied\":\"9223372036854775808\"}"), -1);
	assert_int_equal(BOX("{\"applied\":\"1\"} x"), -1);
	/* white space after the object is JSON's own */
	assert_int_equal(BOX("{\"applied\":\"1\"} \n"), 0);
	assert_int_equal(BOX("[]"), -1);
	assert_int_equal(BOX(""), -1);
	assert_int_equal(BOX("{\"applied\":\"1\""), -1);
	assert_int_equal(BOX("{\"x\":[[[[[[[[[[[[1]]]]]]]]]]]]}"), -1);
#undef BOX
}

/* ---- schema ---- */

static void test_schema(void **state)
{
	struct fleet_schema s = { .version = FLEET_SCHEMA_VERSION,
				  .id = "0123456789abcdef0123456789abcdef",
				  .by = "uid 0 on fe1",
				  .at = 1765000000 },
			    back;
	char *text = fleet_schema_encode(&s), *again;

	(void)state;
	assert_string_equal(text, "{\"version\":\"1\",\"id\":\"0123456789abcdef0123456789abcdef\","
				  "\"by\":\"uid 0 on fe1\",\"at\":\"1765000000\"}");
	assert_int_equal(fleet_schema_decode(text, strlen(text), &back), 0);
	assert_int_equal(back.version, 1);
	assert_string_equal(back.id, s.id);
	assert_string_equal(back.by, s.by);
	assert_int_equal(back.at, s.at);
	again = fleet_schema_encode(&back);
	assert_string_equal(text, again);
	free(text);
	free(again);

#define ID "\"id\":\"ffffffffffffffffffffffffffffffff\""
#define SCHEMA(text) fleet_schema_decode(text, strlen(text), &back)
	assert_int_equal(SCHEMA("{\"version\":1," ID "}"), 0);
	assert_string_equal(back.by, "");
	assert_int_equal(back.at, 0);
	assert_int_equal(SCHEMA("{\"version\":\"1000\"," ID ",\"at\":5,\"by\":\"x\"}"), 0);
	assert_int_equal(back.version, 1000);
	/* the version: present, 1..1000 */
	assert_int_equal(SCHEMA("{" ID "}"), -1);
	assert_int_equal(SCHEMA("{\"version\":0," ID "}"), -1);
	assert_int_equal(SCHEMA("{\"version\":1001," ID "}"), -1);
	assert_int_equal(SCHEMA("{\"version\":\"one\"," ID "}"), -1);
	assert_int_equal(SCHEMA("{\"version\":1," ID ",\"at\":\"now\"}"), -1);
	/* the id: exactly 32 lowercase hex digits */
	assert_int_equal(SCHEMA("{\"version\":1}"), -1);
	assert_string_equal(back.id, "");
	assert_int_equal(SCHEMA("{\"version\":1,\"id\":\"0123456789ABCDEF0123456789abcdef\"}"), -1);
	assert_int_equal(SCHEMA("{\"version\":1,\"id\":\"0123456789abcdef0123456789abcde\"}"), -1);
	assert_int_equal(SCHEMA("{\"version\":1,\"id\":\"0123456789abcdef0123456789abcdef0\"}"),
			 -1);
	assert_int_equal(SCHEMA("{\"version\":1,\"id\":\"0123456789abcdeg0123456789abcdef\"}"), -1);
	assert_int_equal(SCHEMA("{\"version\":1,\"id\":\"0123456789abcdef 123456789abcdef\"}"), -1);
	assert_int_equal(SCHEMA("{\"version\":1,\"id\":12345678901234567890123456789012}"), -1);
	assert_int_equal(SCHEMA("{\"version\":1,\"id\":\"\"}"), -1);
	/* not an object */
	assert_int_equal(SCHEMA("[1]"), -1);
	assert_int_equal(SCHEMA("{\"version\":1," ID "}x"), -1);
	assert_int_equal(SCHEMA("{\"version\":1," ID), -1);
	assert_int_equal(back.version, 0);
#undef SCHEMA
#undef ID
}

/* ---- the local cache ---- */

static const struct fleet_cache_entry *cache_find(const struct fleet_cache *c, const char *name)
{
	for (size_t i = 0; i < c->count; i++)
		if (strcmp(c->entries[i].name, name) == 0)
			return &c->entries[i];
	return NULL;
}

static void test_cache_round_trip(void **state)
{
	static const char *const nets[] = { "192.0.2.0/24", "2001:db8::/48" };
	struct fleet_cache_entry entries[3] = {
		{ .name = "shop",
		  .value = { .state = SITE_OFFLINE,
			     .action = SITE_ACTION_REJECT,
			     .until = 1900000000,
			     .cut = true,
			     .by = "uid 0",
			     .box = "fe1",
			     .at = 1765000000 },
		  .mod_revision = 17 },
		{ .name = "blog.example_1-x",
		  .value = { .state = SITE_ONLINE,
			     .action = SITE_ACTION_DROP,
			     .by = "uid 1000",
			     .box = "fe2",
			     .at = 1765000001 },
		  .mod_revision = 9007199254740993 },
		{ .name = "api",
		  .value = { .state = SITE_OFFLINE, .action = SITE_ACTION_DROP },
		  .mod_revision = 3 },
	};
	struct fleet_cache c = { .keys = "/gatekeeper/edge/",
				 .schema_id = "0123456789abcdef0123456789abcdef",
				 .revision = 9007199254740999,
				 .entries = entries,
				 .count = 3 },
			   back;
	char why[256], *text, *again;

	(void)state;
	entries[0].value.allow = allow_of(nets, 2);
	entries[2].value.allow = site_allow_new(NULL, 0);
	text = fleet_cache_encode(&c);
	assert_non_null(text);
	if (fleet_cache_decode(text, strlen(text), &back, why, sizeof(why)) < 0)
		fail_msg("%s: %s", text, why);
	assert_string_equal(back.keys, c.keys);
	assert_string_equal(back.schema_id, c.schema_id);
	assert_true(back.revision == c.revision);
	assert_int_equal(back.count, 3);
	for (size_t i = 0; i < 3; i++) {
		const struct fleet_cache_entry *e = cache_find(&back, entries[i].name);

		assert_non_null(e);
		assert_value_equal(&e->value, &entries[i].value);
		assert_true(e->mod_revision == entries[i].mod_revision);
	}
	again = fleet_cache_encode(&back);
	assert_string_equal(text, again);
	free(again);
	free(text);
	fleet_cache_free(&back);
	assert_null(back.entries);
	assert_int_equal(back.count, 0);
	fleet_value_free(&entries[0].value);
	fleet_value_free(&entries[2].value);

	/* a fresh box: no schema seen, nothing cached */
	c = (struct fleet_cache){ 0 };
	text = fleet_cache_encode(&c);
	assert_string_equal(text, "{\"format\":\"gatekeeper-fleet-cache 1\",\"keys\":\"\","
				  "\"schema\":\"\",\"revision\":\"0\",\"sites\":{}}");
	assert_int_equal(fleet_cache_decode(text, strlen(text), &back, why, sizeof(why)), 0);
	assert_string_equal(back.schema_id, "");
	assert_int_equal(back.count, 0);
	fleet_cache_free(&back);
	free(text);

	/* a cache written before it named its fleet: read, keys unknown */
	text = "{\"format\":\"gatekeeper-fleet-cache 1\",\"schema\":\"\",\"revision\":\"7\","
	       "\"sites\":{}}";
	assert_int_equal(fleet_cache_decode(text, strlen(text), &back, why, sizeof(why)), 0);
	assert_string_equal(back.keys, "");
	assert_true(back.revision == 7);
	fleet_cache_free(&back);
}

#define CACHE_HEAD \
	"{\"format\":\"gatekeeper-fleet-cache 1\",\"schema\":\"0123456789abcdef0123456789abcdef\",\"revision\":\"5\","
#define GOOD_ENTRY \
	"\"good\":{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[\"10.0.0.0/8\"],\"mod_revision\":\"4\"}"

static void assert_cache_refused(const char *text, const char *why_part)
{
	struct fleet_cache c;
	char why[256] = "";

	if (fleet_cache_decode(text, strlen(text), &c, why, sizeof(why)) != -1)
		fail_msg("accepted: %s", text);
	assert_null(c.entries);
	assert_int_equal(c.count, 0);
	assert_string_equal(c.schema_id, "");
	if (!strstr(why, why_part))
		fail_msg("'%s' refused with '%s', not '%s'", text, why, why_part);
}

static void test_cache_refused(void **state)
{
	struct fleet_cache c;
	char why[256];

	(void)state;
	/* the shape itself */
	assert_cache_refused("{\"format\":\"gatekeeper-fleet-cache 2\",\"schema\":\"\","
			     "\"revision\":\"0\",\"sites\":{}}",
			     "not a fleet cache");
	assert_cache_refused("{\"format\":\"gatekeeper-state 1\",\"schema\":\"\","
			     "\"revision\":\"0\",\"sites\":{}}",
			     "not a fleet cache");
	assert_cache_refused("{\"schema\":\"\",\"revision\":\"0\",\"sites\":{}}",
			     "not a fleet cache");
	assert_cache_refused("{\"format\":1,\"schema\":\"\",\"revision\":\"0\",\"sites\":{}}",
			     "not a fleet cache");
	assert_cache_refused("{\"format\":\"gatekeeper-fleet-cache 1\",\"revision\":\"0\","
			     "\"sites\":{}}",
			     "no schema, revision or sites");
	{
		char long_keys[FLEET_KEYS_MAX + 128] = "{\"format\":\"gatekeeper-fleet-cache 1\",\"keys\":\"";
		size_t n = strlen(long_keys);

		memset(long_keys + n, 'k', FLEET_KEYS_MAX);
		snprintf(long_keys + n + FLEET_KEYS_MAX, sizeof(long_keys) - n - FLEET_KEYS_MAX,
			 "\",\"schema\":\"\",\"revision\":\"0\",\"sites\":{}}");
		assert_cache_refused(long_keys, "keys longer than 255 bytes");
	}
	assert_cache_refused("{\"format\":\"gatekeeper-fleet-cache 1\",\"keys\":7,\"schema\":\"\","
			     "\"revision\":\"0\",\"sites\":{}}",
			     "keys is not a string");
	assert_cache_refused(
		"{\"format\":\"gatekeeper-fleet-cache 1\",\"schema\":"
		"\"0123456789abcdef0123456789abcdef0\",\"revision\":\"0\",\"sites\":{}}",
		"no schema, revision or sites");
	assert_cache_refused(CACHE_HEAD "\"sites\":[]}", "no schema, revision or sites");
	assert_cache_refused("{\"format\":\"gatekeeper-fleet-cache 1\",\"schema\":\"\","
			     "\"revision\":\"x\",\"sites\":{}}",
			     "no schema, revision or sites");
	assert_cache_refused("{\"format\":\"gatekeeper-fleet-cache 1\",\"schema\":\"\","
			     "\"revision\":\"0\"}",
			     "no schema, revision or sites");
	assert_cache_refused(CACHE_HEAD "\"sites\":{}", "not a JSON object");
	assert_cache_refused(CACHE_HEAD "\"sites\":{}}\n{}", "not a JSON object");
	assert_cache_refused("[]", "not a JSON object");
	assert_cache_refused("", "not a JSON object");

	/* a bad entry after a good one (with an allow-list): all freed */
	assert_cache_refused(CACHE_HEAD "\"sites\":{" GOOD_ENTRY ",\"bad name\":"
					"{\"state\":\"offline\",\"action\":\"drop\"}}}",
			     "site entry 'bad name' is not valid");
	assert_cache_refused(CACHE_HEAD "\"sites\":{" GOOD_ENTRY ",\"\":"
					"{\"state\":\"offline\",\"action\":\"drop\"}}}",
			     "site entry '' is not valid");
	assert_cache_refused(CACHE_HEAD "\"sites\":{" GOOD_ENTRY ",\"a/b\":"
					"{\"state\":\"offline\",\"action\":\"drop\"}}}",
			     "site entry 'a/b' is not valid");
	assert_cache_refused(CACHE_HEAD "\"sites\":{" GOOD_ENTRY ",\"x\":"
					"{\"state\":\"maybe\",\"action\":\"drop\"}}}",
			     "site entry 'x' is not valid");
	assert_cache_refused(
		CACHE_HEAD
		"\"sites\":{" GOOD_ENTRY ",\"x\":"
		"{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[\"10.0.0.1/8\"]}}}",
		"site entry 'x' is not valid");
	assert_cache_refused(CACHE_HEAD "\"sites\":{" GOOD_ENTRY ",\"x\":\"offline\"}}",
			     "site entry 'x' is not valid");
	/* a bad mod_revision once the entry's list is built: freed too */
	assert_cache_refused(
		CACHE_HEAD "\"sites\":{" GOOD_ENTRY ",\"x\":"
			   "{\"state\":\"offline\",\"action\":\"drop\",\"allow\":[\"10.0.0.0/8\"],"
			   "\"mod_revision\":\"r5\"}}}",
		"site entry 'x': bad mod_revision");
	assert_cache_refused(CACHE_HEAD
			     "\"sites\":{" GOOD_ENTRY ",\"x\":"
			     "{\"state\":\"offline\",\"action\":\"drop\",\"mod_revision\":[]}}}",
			     "bad mod_revision");

	/* the good entry alone is read */
	{
		static const char text[] = CACHE_HEAD "\"sites\":{" GOOD_ENTRY "}}";

		assert_int_equal(fleet_cache_decode(text, strlen(text), &c, why, sizeof(why)), 0);
		assert_int_equal(c.count, 1);
		assert_string_equal(c.entries[0].name, "good");
		assert_int_equal(c.entries[0].mod_revision, 4);
		assert_int_equal(c.entries[0].value.allow->count, 1);
		assert_int_equal(c.revision, 5);
		fleet_cache_free(&c);
	}
	/* over FLEET_CACHE_MAX: refused before it is read */
	assert_int_equal(
		fleet_cache_decode("{}", (size_t)FLEET_CACHE_MAX + 1, &c, why, sizeof(why)), -1);
	assert_null(c.entries);
}

/* The largest "until" a value may carry reaches the maintenance timer as
 * it is (a site's deadline): the timer must neither overflow (UBSan) nor
 * spin; it waits its longest. */
static void test_far_until_reaches_the_timer(void **state)
{
	static const char conf[] = "sites: [{name: shop, addresses: [192.0.2.1]}]\n";
	static const char text[] = "{\"state\":\"offline\",\"action\":\"drop\","
				   "\"until\":\"9223372036854775807\"}";
	struct config_errors errors = { 0 };
	struct config *cfg = config_parse("conf.yaml", conf, strlen(conf), &errors);
	struct sites *sites;
	struct fleet_value v;
	char why[256];

	(void)state;
	assert_non_null(cfg);
	sites = sites_create(cfg);
	assert_non_null(sites);
	assert_int_equal(maintenance_timeout_ms(sites), -1);
	assert_int_equal(fleet_value_decode(text, strlen(text), &v, why, sizeof(why)), 0);
	site_set_until(sites_at(sites, 0), v.until);
	assert_int_equal(maintenance_timeout_ms(sites), 60000);
	site_set_until(sites_at(sites, 0), INT64_MAX / 1000 + 1);
	assert_int_equal(maintenance_timeout_ms(sites), 60000);
	site_set_until(sites_at(sites, 0), 1);
	assert_int_equal(maintenance_timeout_ms(sites), 0);
	sites_free(sites);
	config_free(cfg);
	config_errors_free(&errors);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_parse),
		cmocka_unit_test(test_value_round_trip),
		cmocka_unit_test(test_value_encoding),
		cmocka_unit_test(test_value_decode_fields),
		cmocka_unit_test(test_value_refused),
		cmocka_unit_test(test_value_not_json_object),
		cmocka_unit_test(test_value_size_limit),
		cmocka_unit_test(test_box_value),
		cmocka_unit_test(test_schema),
		cmocka_unit_test(test_cache_round_trip),
		cmocka_unit_test(test_cache_refused),
		cmocka_unit_test(test_far_until_reaches_the_timer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
