/* Fuzz target: etcd_json's readers, which take whatever an etcd endpoint
 * (or anything answering on its address) sends back. Byte 0 picks the
 * reader (a unary reply of each op, or a watch line, or base64), the rest
 * is the text. Whatever the input: no crash, leak or overrun, and what is
 * accepted is within the documented limits and self-consistent; a reply's
 * key and value re-encode to base64 that decodes to the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_json.h"
#include "fuzz_check.h"

static void check_kv(const struct etcd_kv *kv)
{
	char *b64, *back;
	size_t n;

	CHECK(kv->key && kv->value);
	CHECK(kv->key_len <= ETCD_JSON_MAX_KEY && kv->value_len <= ETCD_JSON_MAX_VALUE);
	CHECK(kv->key[kv->key_len] == '\0' && kv->value[kv->value_len] == '\0');
	CHECK(kv->create_revision >= 0 && kv->mod_revision >= 0 && kv->version >= 0 &&
	      kv->lease >= 0);
	b64 = etcd_json_base64_encode(kv->key, kv->key_len);
	CHECK(b64);
	back = etcd_json_base64_decode(b64, strlen(b64), ETCD_JSON_MAX_KEY, &n);
	CHECK(back && n == kv->key_len && !memcmp(back, kv->key, n));
	free(b64);
	free(back);
}

static void check_error(const struct etcd_error *e)
{
	CHECK(e->grpc_code >= 0 && e->grpc_code <= 255);
	CHECK(e->http_code >= 0 && e->http_code <= 999);
	CHECK(memchr(e->message, '\0', sizeof(e->message)));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data + 1;
	size_t len;

	if (size < 1)
		return 0;
	len = size - 1;
	if (data[0] % 9 < 7) {
		struct etcd_reply r;
		struct etcd_error e;
		int rc = etcd_json_parse_reply((enum etcd_op)(data[0] % 9), text, len, &r, &e);

		CHECK(rc == 0 || rc == -1);
		check_error(&e);
		if (rc < 0 || e.grpc_code)
			CHECK(r.n_kvs == 0 && !r.kvs && r.header.revision == 0);
		CHECK(r.n_kvs <= ETCD_JSON_MAX_ITEMS);
		CHECK(r.header.revision >= 0 && r.count >= 0 && r.id >= 0 && r.ttl >= 0);
		for (size_t i = 0; i < r.n_kvs; i++)
			check_kv(&r.kvs[i]);
		etcd_reply_free(&r);
	} else if (data[0] % 9 == 7) {
		struct etcd_watch_msg m;
		int rc = etcd_json_parse_watch(text, len, &m);

		CHECK(rc == 0 || rc == -1);
		if (rc < 0)
			CHECK(!m.events && m.n_events == 0);
		if (rc == 0 && m.kind == ETCD_WATCH_EVENTS)
			CHECK(m.n_events > 0);
		if (rc == 0 && m.kind == ETCD_WATCH_ERROR)
			CHECK(m.error.grpc_code > 0);
		check_error(&m.error);
		CHECK(m.n_events <= ETCD_JSON_MAX_ITEMS && m.compact_revision >= 0);
		for (size_t i = 0; i < m.n_events; i++)
			check_kv(&m.events[i].kv);
		etcd_watch_msg_free(&m);
	} else {
		size_t n;
		char *dec = etcd_json_base64_decode(text, len, 4096, &n);

		if (dec) {
			char *enc = etcd_json_base64_encode(dec, n);

			CHECK(n <= 4096 && enc);
			/* one spelling per byte string, but for the unused low bits of the last quantum */
			CHECK(strlen(enc) == len);
			free(enc);
			free(dec);
		}
	}
	return 0;
}
