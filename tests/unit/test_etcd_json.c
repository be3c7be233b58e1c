/* Unit tests for etcd_json: every reply and watch message shape etcd 3.4's
 * gateway was seen to send (FLEET-NOTES.md; the texts below are captures
 * from etcd 3.4.23 on loopback, member ids shortened), the request bodies,
 * and what a hostile or broken peer could send instead. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "etcd_json.h"

#define HDR(rev) "\"header\":{\"cluster_id\":\"8170716714847415941\",\"member_id\":\"17643103590991569371\",\"revision\":\"" rev "\",\"raft_term\":\"2\"}"

/* TEXT parsed as OP: returns parse_reply's value, leaves R and E filled. */
static int parse(enum etcd_op op, const char *text, struct etcd_reply *r, struct etcd_error *e)
{
	return etcd_json_parse_reply(op, text, strlen(text), r, e);
}

static void test_range(void **state)
{
	struct etcd_reply r;
	struct etcd_error e;

	(void)state;
	assert_int_equal(parse(ETCD_OP_RANGE,
			       "{" HDR("2") ",\"kvs\":[{\"key\":\"L2EveA==\",\"create_revision\":\"2\","
			       "\"mod_revision\":\"2\",\"version\":\"1\",\"value\":\"aGVsbG8=\"}],\"count\":\"1\"}\n",
			       &r, &e),
			 0);
	assert_int_equal(e.grpc_code, 0);
	assert_int_equal(r.header.revision, 2);
	assert_int_equal(r.n_kvs, 1);
	assert_int_equal(r.count, 1);
	assert_false(r.more);
	assert_int_equal(r.kvs[0].key_len, 4);
	assert_memory_equal(r.kvs[0].key, "/a/x", 4);
	assert_int_equal(r.kvs[0].value_len, 5);
	assert_string_equal(r.kvs[0].value, "hello");
	assert_int_equal(r.kvs[0].create_revision, 2);
	assert_int_equal(r.kvs[0].mod_revision, 2);
	assert_int_equal(r.kvs[0].version, 1);
	assert_int_equal(r.kvs[0].lease, 0);
	etcd_reply_free(&r);

	/* no match: no kvs, no count */
	assert_int_equal(parse(ETCD_OP_RANGE, "{" HDR("1") "}", &r, &e), 0);
	assert_int_equal(r.header.revision, 1);
	assert_int_equal(r.n_kvs, 0);
	assert_null(r.kvs);
	assert_int_equal(r.count, 0);
	etcd_reply_free(&r);

	/* binary key and value, a lease past 2^53, more, numbers as JSON ints */
	assert_int_equal(parse(ETCD_OP_RANGE,
			       "{\"header\":{\"revision\":7},\"kvs\":[{\"key\":\"AP8K\",\"value\":\"AAA=\","
			       "\"lease\":\"9007199254740993\",\"mod_revision\":6},{\"key\":\"eA==\"}],"
			       "\"count\":\"5\",\"more\":true}",
			       &r, &e),
			 0);
	assert_int_equal(r.header.revision, 7);
	assert_int_equal(r.n_kvs, 2);
	assert_int_equal(r.kvs[0].key_len, 3);
	assert_memory_equal(r.kvs[0].key, "\0\xff\n", 3);
	assert_int_equal(r.kvs[0].value_len, 2);
	assert_memory_equal(r.kvs[0].value, "\0\0", 2);
	assert_true(r.kvs[0].lease == INT64_C(9007199254740993));
	assert_int_equal(r.kvs[0].mod_revision, 6);
	assert_int_equal(r.kvs[1].value_len, 0);
	assert_string_equal(r.kvs[1].value, "");
	assert_int_equal(r.count, 5);
	assert_true(r.more);
	etcd_reply_free(&r);
}

static void test_put_delete_txn(void **state)
{
	struct etcd_reply r;
	struct etcd_error e;

	(void)state;
	assert_int_equal(parse(ETCD_OP_PUT, "{" HDR("2") "}", &r, &e), 0);
	assert_int_equal(r.header.revision, 2);
	etcd_reply_free(&r);

	assert_int_equal(parse(ETCD_OP_DELETE, "{" HDR("3") ",\"deleted\":\"1\"}", &r, &e), 0);
	assert_int_equal(r.deleted, 1);
	etcd_reply_free(&r);
	assert_int_equal(parse(ETCD_OP_DELETE, "{" HDR("3") "}", &r, &e), 0);
	assert_int_equal(r.deleted, 0);
	etcd_reply_free(&r);

	assert_int_equal(parse(ETCD_OP_TXN,
			       "{" HDR("4") ",\"succeeded\":true,\"responses\":[{\"response_put\":"
			       "{\"header\":{\"revision\":\"4\"}}}]}",
			       &r, &e),
			 0);
	assert_true(r.succeeded);
	assert_int_equal(r.header.revision, 4);
	etcd_reply_free(&r);
	/* a failed compare: no succeeded */
	assert_int_equal(parse(ETCD_OP_TXN, "{" HDR("4") "}", &r, &e), 0);
	assert_false(r.succeeded);
	etcd_reply_free(&r);
}

static void test_leases(void **state)
{
	struct etcd_reply r;
	struct etcd_error e;

	(void)state;
	assert_int_equal(parse(ETCD_OP_LEASE_GRANT,
			       "{" HDR("4") ",\"ID\":\"2439722066239742987\",\"TTL\":\"5\"}", &r, &e),
			 0);
	assert_true(r.id == INT64_C(2439722066239742987));
	assert_int_equal(r.ttl, 5);
	etcd_reply_free(&r);
	/* a grant without an ID or TTL granted nothing */
	assert_int_equal(parse(ETCD_OP_LEASE_GRANT, "{" HDR("4") ",\"TTL\":\"5\"}", &r, &e), -1);
	etcd_reply_free(&r);

	/* keepalive is a stream: wrapped in result */
	assert_int_equal(parse(ETCD_OP_LEASE_KEEPALIVE,
			       "{\"result\":{" HDR("4") ",\"ID\":\"2439722066239742987\",\"TTL\":\"5\"}}",
			       &r, &e),
			 0);
	assert_true(r.id == INT64_C(2439722066239742987));
	assert_int_equal(r.ttl, 5);
	etcd_reply_free(&r);
	/* a dead lease: no TTL */
	assert_int_equal(parse(ETCD_OP_LEASE_KEEPALIVE, "{\"result\":{" HDR("4") ",\"ID\":\"123\"}}",
			       &r, &e),
			 0);
	assert_int_equal(e.grpc_code, 0);
	assert_int_equal(r.id, 123);
	assert_int_equal(r.ttl, 0);
	etcd_reply_free(&r);

	assert_int_equal(parse(ETCD_OP_LEASE_REVOKE, "{" HDR("5") "}", &r, &e), 0);
	assert_int_equal(r.header.revision, 5);
	etcd_reply_free(&r);
}

static void test_errors(void **state)
{
	struct etcd_reply r;
	struct etcd_error e;

	(void)state;
	assert_int_equal(parse(ETCD_OP_LEASE_REVOKE,
			       "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
			       "\"etcdserver: requested lease not found\",\"code\":5}",
			       &r, &e),
			 0);
	assert_int_equal(e.grpc_code, 5);
	assert_int_equal(e.http_code, 0);
	assert_string_equal(e.message, "etcdserver: requested lease not found");
	assert_int_equal(r.header.revision, 0);
	etcd_reply_free(&r);

	assert_int_equal(parse(ETCD_OP_RANGE,
			       "{\"error\":\"etcdserver: mvcc: required revision has been compacted\","
			       "\"message\":\"etcdserver: mvcc: required revision has been compacted\",\"code\":11}",
			       &r, &e),
			 0);
	assert_int_equal(e.grpc_code, 11);
	etcd_reply_free(&r);

	/* the stream shape, for a keepalive */
	assert_int_equal(parse(ETCD_OP_LEASE_KEEPALIVE,
			       "{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
			       "\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}",
			       &r, &e),
			 0);
	assert_int_equal(e.grpc_code, 14);
	assert_int_equal(e.http_code, 503);
	assert_string_equal(e.message, "etcdserver: no leader");
	etcd_reply_free(&r);

	/* a long message is cut, not overrun */
	{
		char text[1024], msg[600];

		memset(msg, 'm', sizeof(msg) - 1);
		msg[sizeof(msg) - 1] = '\0';
		snprintf(text, sizeof(text), "{\"error\":\"x\",\"message\":\"%s\",\"code\":3}", msg);
		assert_int_equal(parse(ETCD_OP_PUT, text, &r, &e), 0);
		assert_int_equal(e.grpc_code, 3);
		assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
		etcd_reply_free(&r);
	}

	/* error shapes that fit neither form */
	static const char *const bad[] = {
		"{\"error\":\"x\",\"message\":\"y\"}",           /* no code */
		"{\"error\":\"x\",\"message\":\"y\",\"code\":0}", /* 0 is success */
		"{\"error\":\"x\",\"message\":\"y\",\"code\":-3}",
		"{\"error\":\"x\",\"message\":7,\"code\":3}",
		"{\"error\":{\"http_code\":503}}",
		"{\"error\":{\"grpc_code\":\"x\"}}",
		"{\"error\":[1]}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(ETCD_OP_PUT, bad[i], &r, &e), -1);
		assert_int_equal(e.grpc_code, 0);
		etcd_reply_free(&r);
	}
}

static void test_garbage(void **state)
{
	static const char *const bad[] = {
		"",
		"   \n",
		"null",
		"[]",
		"\"header\"",
		"{" HDR("2"),                                     /* truncated */
		"{" HDR("2") "}}",                                /* trailing */
		"{" HDR("2") "} {}",                              /* two values */
		"{\"header\":{\"revision\":\"2x\"}}",
		"{\"header\":{\"revision\":\" 2\"}}",
		"{\"header\":{\"revision\":\"+2\"}}",
		"{\"header\":{\"revision\":\"-2\"}}",
		"{\"header\":{\"revision\":-2}}",
		"{\"header\":{\"revision\":2.5}}",
		"{\"header\":{\"revision\":true}}",
		"{\"header\":{\"revision\":\"9223372036854775807\"}}",   /* INT64_MAX: saturation */
		"{\"header\":{\"revision\":\"9223372036854775808\"}}",
		"{\"header\":{\"revision\":\"99999999999999999999999\"}}",
		"{\"header\":{\"revision\":99999999999999999999999}}",
		"{\"header\":{\"revision\":18446744073709551615}}",
		"{\"header\":{\"revision\":\"\"}}",
		"{\"header\":7}",
		"{\"kvs\":{}}",
		"{\"kvs\":[7]}",
		"{\"kvs\":[{}]}",                                 /* no key */
		"{\"kvs\":[{\"key\":\"L2E\"}]}",                  /* not a multiple of 4 */
		"{\"kvs\":[{\"key\":\"L2E=\",\"value\":\"a=bc\"}]}",
		"{\"kvs\":[{\"key\":\"L2E*\"}]}",
		"{\"kvs\":[{\"key\":\"L2E=\",\"value\":\"====\"}]}",
		"{\"kvs\":[{\"key\":\"L2\\u0000=\"}]}",
		"{\"kvs\":[{\"key\":\"L2E=\",\"mod_revision\":{}}]}",
		"{\"more\":\"yes\"}",
		"{\"count\":[]}",
		"{\"a\":1,}",
		"{\"result\":7}",
		"{\"kvs\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
	};
	struct etcd_reply r;
	struct etcd_error e;

	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = parse(ETCD_OP_RANGE, bad[i], &r, &e);

		if (rc != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(r.kvs);
		assert_int_equal(e.grpc_code, 0);
		etcd_reply_free(&r);
	}
	/* an embedded NUL, given by length */
	assert_int_equal(etcd_json_parse_reply(ETCD_OP_PUT, "{}\0{}", 5, &r, &e), -1);
	/* the largest value that is not the saturation point */
	assert_int_equal(parse(ETCD_OP_RANGE, "{\"header\":{\"revision\":\"9223372036854775806\"}}",
			       &r, &e),
			 0);
	assert_true(r.header.revision == INT64_C(9223372036854775806));
	etcd_reply_free(&r);
}

/* A key of N bytes and a value of M bytes in a range reply. */
static int parse_sized(size_t n, size_t m)
{
	char *k = malloc(n + 1), *v = malloc(m + 1), *kb, *vb, *text;
	struct etcd_reply r;
	struct etcd_error e;
	size_t len;
	int rc;

	memset(k, 'k', n);
	memset(v, 'v', m);
	kb = etcd_json_base64_encode(k, n);
	vb = etcd_json_base64_encode(v, m);
	len = strlen(kb) + strlen(vb) + 64;
	text = malloc(len);
	snprintf(text, len, "{\"kvs\":[{\"key\":\"%s\",\"value\":\"%s\"}]}", kb, vb);
	rc = parse(ETCD_OP_RANGE, text, &r, &e);
	if (rc == 0) {
		assert_int_equal(r.kvs[0].key_len, n);
		assert_int_equal(r.kvs[0].value_len, m);
	}
	etcd_reply_free(&r);
	free(k);
	free(v);
	free(kb);
	free(vb);
	free(text);
	return rc;
}

static void test_limits(void **state)
{
	(void)state;
	assert_int_equal(parse_sized(ETCD_JSON_MAX_KEY, ETCD_JSON_MAX_VALUE), 0);
	assert_int_equal(parse_sized(ETCD_JSON_MAX_KEY + 1, 1), -1);
	assert_int_equal(parse_sized(1, ETCD_JSON_MAX_VALUE + 1), -1);
	/* bodies refuse what replies would */
	{
		char *big = calloc(1, ETCD_JSON_MAX_VALUE + 1), *b;

		assert_null(etcd_json_put_body(big, ETCD_JSON_MAX_KEY + 1, "v", 1, 0));
		assert_null(etcd_json_put_body("k", 1, big, ETCD_JSON_MAX_VALUE + 1, 0));
		assert_null(etcd_json_range_body(big, ETCD_JSON_MAX_KEY + 1, true));
		assert_null(etcd_json_txn_create_body("k", 1, big, ETCD_JSON_MAX_VALUE + 1, 0));
		assert_null(etcd_json_lease_grant_body(-1));
		b = etcd_json_put_body(big, ETCD_JSON_MAX_KEY, big, ETCD_JSON_MAX_VALUE, 0);
		assert_non_null(b);
		free(b);
		free(big);
	}
}

static void test_base64(void **state)
{
	static const struct {
		const char *plain;
		size_t len;
		const char *b64;
	} cases[] = {
		{ "", 0, "" },        { "f", 1, "Zg==" },       { "fo", 2, "Zm8=" },
		{ "foo", 3, "Zm9v" }, { "\0\xff", 2, "AP8=" }, { "/gatekeeper/", 12, "L2dhdGVrZWVwZXIv" },
	};
	size_t n;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *enc = etcd_json_base64_encode(cases[i].plain, cases[i].len);
		char *dec = etcd_json_base64_decode(cases[i].b64, strlen(cases[i].b64), 100, &n);

		assert_string_equal(enc, cases[i].b64);
		assert_non_null(dec);
		assert_int_equal(n, cases[i].len);
		assert_memory_equal(dec, cases[i].plain, n);
		assert_int_equal(dec[n], '\0');
		free(enc);
		free(dec);
	}
	assert_null(etcd_json_base64_decode("Zm9v", 4, 2, &n));
	assert_null(etcd_json_base64_decode("Zm9", 3, 100, &n));
	assert_null(etcd_json_base64_decode("Z=9v", 4, 100, &n));
	assert_null(etcd_json_base64_decode("Zm9 ", 4, 100, &n));
	assert_null(etcd_json_base64_decode("Z===", 4, 100, &n));
}

static void test_watch(void **state)
{
	struct etcd_watch_msg m;

	(void)state;
#define WATCH(text) etcd_json_parse_watch(text, strlen(text), &m)
	/* the first message has no watch_id */
	assert_int_equal(WATCH("{\"result\":{" HDR("2") ",\"created\":true}}"), 0);
	assert_int_equal(m.kind, ETCD_WATCH_CREATED);
	assert_int_equal(m.watch_id, 0);
	assert_int_equal(m.header.revision, 2);
	etcd_watch_msg_free(&m);

	/* a PUT has no type */
	assert_int_equal(WATCH("{\"result\":{" HDR("2") ",\"events\":[{\"kv\":{\"key\":\"L2EveA==\","
			       "\"create_revision\":\"2\",\"mod_revision\":\"2\",\"version\":\"1\","
			       "\"value\":\"aGVsbG8=\"}}]}}"),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_EVENTS);
	assert_int_equal(m.n_events, 1);
	assert_int_equal(m.events[0].type, ETCD_EVENT_PUT);
	assert_memory_equal(m.events[0].kv.key, "/a/x", 4);
	assert_string_equal(m.events[0].kv.value, "hello");
	assert_int_equal(m.events[0].kv.mod_revision, 2);
	etcd_watch_msg_free(&m);

	/* a DELETE has key and mod_revision only; several revisions in one */
	assert_int_equal(WATCH("{\"result\":{" HDR("4") ",\"watch_id\":\"3\",\"events\":["
			       "{\"type\":\"DELETE\",\"kv\":{\"key\":\"L2EveA==\",\"mod_revision\":\"3\"}},"
			       "{\"type\":\"PUT\",\"kv\":{\"key\":\"L2EveA==\",\"mod_revision\":\"4\",\"value\":\"eA==\"}}]}}\r\n"),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_EVENTS);
	assert_int_equal(m.watch_id, 3);
	assert_int_equal(m.n_events, 2);
	assert_int_equal(m.events[0].type, ETCD_EVENT_DELETE);
	assert_int_equal(m.events[0].kv.mod_revision, 3);
	assert_int_equal(m.events[0].kv.value_len, 0);
	assert_int_equal(m.events[1].type, ETCD_EVENT_PUT);
	assert_int_equal(m.events[1].kv.mod_revision, 4);
	etcd_watch_msg_free(&m);

	/* progress: header only */
	assert_int_equal(WATCH("{\"result\":{" HDR("4") "}}"), 0);
	assert_int_equal(m.kind, ETCD_WATCH_PROGRESS);
	assert_int_equal(m.header.revision, 4);
	etcd_watch_msg_free(&m);

	/* compacted: the header has no revision */
	assert_int_equal(WATCH("{\"result\":{\"header\":{\"cluster_id\":\"1\",\"member_id\":\"2\","
			       "\"raft_term\":\"2\"},\"canceled\":true,\"compact_revision\":\"3\"}}"),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_CANCELED);
	assert_int_equal(m.compact_revision, 3);
	assert_int_equal(m.header.revision, 0);
	etcd_watch_msg_free(&m);
	assert_int_equal(WATCH("{\"result\":{\"canceled\":true,\"cancel_reason\":\"permission denied\"}}"), 0);
	assert_int_equal(m.kind, ETCD_WATCH_CANCELED);
	assert_string_equal(m.cancel_reason, "permission denied");
	etcd_watch_msg_free(&m);

	/* the stream's error shape */
	assert_int_equal(WATCH("{\"error\":{\"grpc_code\":14,\"http_code\":503,\"message\":"
			       "\"etcdserver: no leader\",\"http_status\":\"Service Unavailable\"}}"),
			 0);
	assert_int_equal(m.kind, ETCD_WATCH_ERROR);
	assert_int_equal(m.error.grpc_code, 14);
	assert_int_equal(m.error.http_code, 503);
	etcd_watch_msg_free(&m);

	static const char *const bad[] = {
		"",
		"{}",
		"{\"result\":{\"created\":true}",
		"{\"result\":[]}",
		"{\"result\":{\"created\":\"true\"}}",
		"{\"result\":{\"events\":[{\"type\":\"PATCH\",\"kv\":{\"key\":\"eA==\"}}]}}",
		"{\"result\":{\"events\":[{\"type\":\"PUT\"}]}}",
		"{\"result\":{\"events\":[{\"kv\":{}}]}}",
		"{\"result\":{\"events\":[{\"kv\":{\"key\":\"eA==\"}},7]}}",
		"{\"result\":{\"events\":{}}}",
		"{\"result\":{\"compact_revision\":\"-1\",\"canceled\":true}}",
		"{\"error\":{\"grpc_code\":0}}",
		"{\"error\":{\"grpc_code\":14,\"http_code\":100000}}",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (WATCH(bad[i]) != -1)
			fail_msg("accepted: %s", bad[i]);
		assert_null(m.events);
		etcd_watch_msg_free(&m);
	}
#undef WATCH
}

/* BODY parsed back with json-c, member PATH (a.b.0.c) as a string. */
static const char *member_at(json_object *root, const char *path)
{
	char buf[128], *save = NULL;
	json_object *o = root;

	snprintf(buf, sizeof(buf), "%s", path);
	for (char *p = strtok_r(buf, ".", &save); p && o; p = strtok_r(NULL, ".", &save)) {
		if (*p >= '0' && *p <= '9')
			o = json_object_array_get_idx(o, (size_t)atoi(p));
		else if (!json_object_object_get_ex(o, p, &o))
			o = NULL;
	}
	return o ? json_object_get_string(o) : NULL;
}

static json_object *parsed(char *body)
{
	json_object *o;

	assert_non_null(body);
	o = json_tokener_parse(body);
	free(body);
	assert_non_null(o);
	return o;
}

static void test_bodies(void **state)
{
	json_object *o;

	(void)state;
	o = parsed(etcd_json_range_body("/a/", 3, false));
	assert_string_equal(member_at(o, "key"), "L2Ev");
	assert_null(member_at(o, "range_end"));
	json_object_put(o);

	/* prefix: the last byte plus one ("/a/" -> "/a0") */
	o = parsed(etcd_json_range_body("/a/", 3, true));
	assert_string_equal(member_at(o, "range_end"), "L2Ew");
	json_object_put(o);
	/* trailing 0xff dropped: "a\xff" -> "b" */
	o = parsed(etcd_json_range_body("a\xff", 2, true));
	assert_string_equal(member_at(o, "key"), "Yf8=");
	assert_string_equal(member_at(o, "range_end"), "Yg==");
	json_object_put(o);
	/* every key: "\0" both */
	o = parsed(etcd_json_range_body("", 0, true));
	assert_string_equal(member_at(o, "key"), "AA==");
	assert_string_equal(member_at(o, "range_end"), "AA==");
	json_object_put(o);
	o = parsed(etcd_json_delete_body("\xff\xff", 2, true));
	assert_string_equal(member_at(o, "key"), "//8=");
	assert_string_equal(member_at(o, "range_end"), "AA==");
	json_object_put(o);

	o = parsed(etcd_json_put_body("k", 1, "v", 1, INT64_C(2439722066239742987)));
	assert_string_equal(member_at(o, "key"), "aw==");
	assert_string_equal(member_at(o, "value"), "dg==");
	assert_string_equal(member_at(o, "lease"), "2439722066239742987");
	json_object_put(o);
	o = parsed(etcd_json_put_body("k", 1, "", 0, 0));
	assert_string_equal(member_at(o, "value"), "");
	assert_null(member_at(o, "lease"));
	json_object_put(o);

	o = parsed(etcd_json_txn_create_body("k", 1, "v", 1, 7));
	assert_string_equal(member_at(o, "compare.0.key"), "aw==");
	assert_string_equal(member_at(o, "compare.0.target"), "CREATE");
	assert_string_equal(member_at(o, "compare.0.result"), "EQUAL");
	assert_string_equal(member_at(o, "compare.0.create_revision"), "0");
	assert_string_equal(member_at(o, "success.0.request_put.key"), "aw==");
	assert_string_equal(member_at(o, "success.0.request_put.value"), "dg==");
	assert_string_equal(member_at(o, "success.0.request_put.lease"), "7");
	json_object_put(o);

	o = parsed(etcd_json_watch_body("/p/", 3, true, 42, true));
	assert_string_equal(member_at(o, "create_request.key"), "L3Av");
	assert_string_equal(member_at(o, "create_request.range_end"), "L3Aw");
	assert_string_equal(member_at(o, "create_request.start_revision"), "42");
	assert_string_equal(member_at(o, "create_request.progress_notify"), "true");
	json_object_put(o);
	o = parsed(etcd_json_watch_body("/p", 2, false, 0, false));
	assert_null(member_at(o, "create_request.start_revision"));
	assert_null(member_at(o, "create_request.progress_notify"));
	json_object_put(o);

	o = parsed(etcd_json_lease_grant_body(5));
	assert_string_equal(member_at(o, "TTL"), "5");
	json_object_put(o);
	o = parsed(etcd_json_lease_keepalive_body(INT64_C(9007199254740993)));
	assert_string_equal(member_at(o, "ID"), "9007199254740993");
	json_object_put(o);
	o = parsed(etcd_json_lease_revoke_body(12));
	assert_string_equal(member_at(o, "ID"), "12");
	json_object_put(o);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_range),  cmocka_unit_test(test_put_delete_txn),
		cmocka_unit_test(test_leases), cmocka_unit_test(test_errors),
		cmocka_unit_test(test_garbage), cmocka_unit_test(test_limits),
		cmocka_unit_test(test_base64), cmocka_unit_test(test_watch),
		cmocka_unit_test(test_bodies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
