/* clienthello: real ClientHellos from OpenSSL (as a client library writes
 * them), the same re-cut into small records and TCP segments, and
 * hand-made malformed ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "clienthello.h"
#include "tls_hello.h"

/* Re-cuts HELLO's one record into records of at most CHUNK handshake bytes
 * each (a TLS implementation may fragment a handshake message so). */
static void split_records(const struct hello *in, size_t chunk, struct hello *out)
{
	const uint8_t *handshake = in->bytes + 5;
	size_t len = (size_t)in->bytes[3] << 8 | in->bytes[4];

	assert_int_equal(len + 5, in->len);
	out->len = 0;
	for (size_t off = 0; off < len; off += chunk) {
		size_t part = len - off < chunk ? len - off : chunk;
		uint8_t *rec = out->bytes + out->len;

		assert_true(out->len + 5 + part <= sizeof(out->bytes));
		memcpy(rec, in->bytes, 3);
		rec[3] = (uint8_t)(part >> 8);
		rec[4] = (uint8_t)part;
		memcpy(rec + 5, handshake + off, part);
		out->len += 5 + part;
	}
}

static void assert_every_prefix_needs_more(const struct hello *hello)
{
	struct clienthello ch;

	for (size_t len = 0; len < hello->len; len++)
		assert_int_equal(clienthello_parse(hello->bytes, len, &ch), CLIENTHELLO_NEED_MORE);
}

static void test_openssl_hello_with_name(void **state)
{
	struct hello hello;
	struct clienthello ch;

	(void)state;
	openssl_hello("Shop.Example.COM", 0, &hello);
	assert_int_equal(clienthello_parse(hello.bytes, hello.len, &ch), CLIENTHELLO_NAME);
	assert_string_equal(ch.name, "shop.example.com");
	assert_int_equal(ch.name_len, strlen("shop.example.com"));
	assert_int_equal(ch.consumed, hello.len);
	assert_every_prefix_needs_more(&hello);
}

static void test_openssl_hello_without_name(void **state)
{
	struct hello hello;
	struct clienthello ch;

	(void)state;
	openssl_hello(NULL, 0, &hello);
	assert_int_equal(clienthello_parse(hello.bytes, hello.len, &ch), CLIENTHELLO_NO_NAME);
	assert_int_equal(ch.consumed, hello.len);
	assert_every_prefix_needs_more(&hello);
}

static void test_trailing_dot_and_bytes_after(void **state)
{
	struct hello hello;
	struct clienthello ch;
	static const uint8_t early_data[] = {23, 3, 3, 0, 1, 0};

	(void)state;
	openssl_hello("www.example.org.", 0, &hello);
	memcpy(hello.bytes + hello.len, early_data, sizeof(early_data));
	assert_int_equal(clienthello_parse(hello.bytes, hello.len + sizeof(early_data), &ch),
			 CLIENTHELLO_NAME);
	assert_string_equal(ch.name, "www.example.org");
	assert_int_equal(ch.consumed, hello.len);
}

static void test_fragmented_over_records(void **state)
{
	struct hello hello, split;
	struct clienthello ch;

	(void)state;
	openssl_hello("a.example.net", 0, &hello);
	for (size_t chunk = 1; chunk <= 300; chunk += 37) {
		split_records(&hello, chunk, &split);
		assert_int_equal(clienthello_parse(split.bytes, split.len, &ch), CLIENTHELLO_NAME);
		assert_string_equal(ch.name, "a.example.net");
		assert_int_equal(ch.consumed, split.len);
	}
	split_records(&hello, 50, &split);
	assert_every_prefix_needs_more(&split);
}

/* A ~1.8 kB ClientHello in two segments at MSS 1460, gathered in order,
 * out of order, and with a retransmit. */
static void test_big_hello_over_segments(void **state)
{
	struct hello hello;
	struct clienthello ch;
	static struct clienthello_stream stream;
	const uint32_t isn = 0xfffffa00; /* the stream wraps 2^32 */
	const size_t mss = 1460;

	(void)state;
	openssl_hello("big.example.com", 1, &hello);
	assert_true(hello.len > mss);
	clienthello_stream_init(&stream, isn + 1);
	/* In order, with a retransmit. */
	assert_int_equal(clienthello_stream_add(&stream, isn + 1, hello.bytes, mss), CLIENTHELLO_ADDED);
	assert_int_equal(clienthello_parse(stream.bytes, stream.len, &ch), CLIENTHELLO_NEED_MORE);
	assert_int_equal(clienthello_stream_add(&stream, isn + 1, hello.bytes, mss), CLIENTHELLO_DUPLICATE);
	assert_int_equal(clienthello_stream_add(&stream, isn + 1 + mss, hello.bytes + mss, hello.len - mss),
			 CLIENTHELLO_ADDED);
	assert_int_equal(stream.len, hello.len);
	assert_int_equal(clienthello_parse(stream.bytes, stream.len, &ch), CLIENTHELLO_NAME);
	assert_string_equal(ch.name, "big.example.com");
	/* The second segment first: kept, but nothing runs from the start. */
	clienthello_stream_init(&stream, isn + 1);
	assert_int_equal(clienthello_stream_add(&stream, isn + 1 + mss, hello.bytes + mss, hello.len - mss),
			 CLIENTHELLO_ADDED);
	assert_int_equal(stream.len, 0);
	assert_int_equal(clienthello_parse(stream.bytes, stream.len, &ch), CLIENTHELLO_NEED_MORE);
	assert_int_equal(clienthello_stream_add(&stream, isn + 1, hello.bytes, mss), CLIENTHELLO_ADDED);
	assert_int_equal(stream.len, hello.len);
	assert_int_equal(clienthello_parse(stream.bytes, stream.len, &ch), CLIENTHELLO_NAME);
}

static void test_stream_overlap_conflict_and_bound(void **state)
{
	static struct clienthello_stream stream;
	static uint8_t big[CLIENTHELLO_MAX + 1];
	const uint8_t abc[] = "abcdef", abx[] = "abXdefgh";

	(void)state;
	clienthello_stream_init(&stream, 100);
	assert_int_equal(clienthello_stream_add(&stream, 100, abc, 6), CLIENTHELLO_ADDED);
	/* Starts before the stream (the SYN's sequence number): clipped. */
	assert_int_equal(clienthello_stream_add(&stream, 99, (const uint8_t *)"xabcdefg", 8), CLIENTHELLO_ADDED);
	assert_int_equal(stream.len, 7);
	assert_memory_equal(stream.bytes, "abcdefg", 7);
	assert_int_equal(clienthello_stream_add(&stream, 90, abc, 6), CLIENTHELLO_DUPLICATE);
	/* The same offsets with another byte: two versions of the hello. */
	assert_int_equal(clienthello_stream_add(&stream, 100, abx, 8), CLIENTHELLO_CONFLICT);
	assert_int_equal(stream.len, 7);
	/* the conflicting segment changed nothing, not even its fresh bytes */
	assert_int_equal(clienthello_stream_add(&stream, 107, (const uint8_t *)"h", 1), CLIENTHELLO_ADDED);
	assert_int_equal(stream.len, 8);
	assert_int_equal(clienthello_stream_add(&stream, 108, big, sizeof(big) - 8), CLIENTHELLO_FULL);
	assert_int_equal(clienthello_stream_add(&stream, 108, big, sizeof(big) - 9), CLIENTHELLO_ADDED);
	assert_int_equal(stream.len, CLIENTHELLO_MAX);
}

/* A minimal ClientHello around the extensions EXT[0..EXT_LEN). */
static size_t make_hello(uint8_t *out, const uint8_t *ext, size_t ext_len)
{
	size_t body_len = 2 + 32 + 1 + 4 + 2 + 2 + ext_len;
	uint8_t *p = out;

	*p++ = 22, *p++ = 3, *p++ = 1;
	*p++ = (uint8_t)((body_len + 4) >> 8), *p++ = (uint8_t)(body_len + 4);
	*p++ = 1, *p++ = 0, *p++ = (uint8_t)(body_len >> 8), *p++ = (uint8_t)body_len;
	*p++ = 3, *p++ = 3;
	memset(p, 0x42, 32), p += 32;
	*p++ = 0;                                 /* session id */
	*p++ = 0, *p++ = 2, *p++ = 0x13, *p++ = 1; /* one suite */
	*p++ = 1, *p++ = 0;                       /* null compression */
	*p++ = (uint8_t)(ext_len >> 8), *p++ = (uint8_t)ext_len;
	memcpy(p, ext, ext_len);
	return (size_t)(p - out) + ext_len;
}

/* A server_name extension naming NAME (LEN bytes). */
static size_t make_sni(uint8_t *out, const char *name, size_t len)
{
	out[0] = 0, out[1] = 0;
	out[2] = (uint8_t)((len + 5) >> 8), out[3] = (uint8_t)(len + 5);
	out[4] = (uint8_t)((len + 3) >> 8), out[5] = (uint8_t)(len + 3);
	out[6] = 0;
	out[7] = (uint8_t)(len >> 8), out[8] = (uint8_t)len;
	memcpy(out + 9, name, len);
	return 9 + len;
}

static enum clienthello_status parse_with_ext(const uint8_t *ext, size_t ext_len, struct clienthello *ch)
{
	static uint8_t buf[CLIENTHELLO_MAX];
	size_t len = make_hello(buf, ext, ext_len);

	return clienthello_parse(buf, len, ch);
}

static void test_names(void **state)
{
	static const struct {
		const char *name;
		enum clienthello_status want;
	} cases[] = {
		{"example.com", CLIENTHELLO_NAME},  {"_acme.x-y.example", CLIENTHELLO_NAME},
		{"a", CLIENTHELLO_NAME},            {"", CLIENTHELLO_INVALID},
		{".", CLIENTHELLO_INVALID},         {"a..b", CLIENTHELLO_INVALID},
		{".a", CLIENTHELLO_INVALID},        {"a b", CLIENTHELLO_INVALID},
		{"a\xc3\xa9", CLIENTHELLO_INVALID}, {"a/b", CLIENTHELLO_INVALID},
		{"1.2.3.4", CLIENTHELLO_NAME},
	};
	uint8_t ext[512];
	struct clienthello ch;
	char label[70], long_name[300];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t n = make_sni(ext, cases[i].name, strlen(cases[i].name));
		assert_int_equal(parse_with_ext(ext, n, &ch), cases[i].want);
	}
	/* A NUL inside the name must not cut it short. */
	assert_int_equal(parse_with_ext(ext, make_sni(ext, "a\0b", 3), &ch), CLIENTHELLO_INVALID);
	/* Labels of 63 bytes pass, 64 do not; names up to 253. */
	memset(label, 'x', 64);
	label[64] = '\0';
	assert_int_equal(parse_with_ext(ext, make_sni(ext, label, 64), &ch), CLIENTHELLO_INVALID);
	assert_int_equal(parse_with_ext(ext, make_sni(ext, label, 63), &ch), CLIENTHELLO_NAME);
	memset(long_name, 'a', sizeof(long_name));
	for (size_t i = 50; i < sizeof(long_name); i += 51)
		long_name[i] = '.';
	assert_int_equal(parse_with_ext(ext, make_sni(ext, long_name, 253), &ch), CLIENTHELLO_NAME);
	assert_int_equal(ch.name_len, 253);
	assert_int_equal(parse_with_ext(ext, make_sni(ext, long_name, 254), &ch), CLIENTHELLO_INVALID);
}

static void test_malformed_extensions(void **state)
{
	uint8_t ext[256];
	struct clienthello ch;
	size_t n;

	(void)state;
	/* No extensions block at all: a valid (old) hello without a name. */
	static uint8_t buf[256];
	size_t len = make_hello(buf, (const uint8_t *)"", 0) - 2;
	buf[3] = 0, buf[4] = (uint8_t)(len - 5);
	buf[7] = 0, buf[8] = (uint8_t)(len - 9);
	assert_int_equal(clienthello_parse(buf, len, &ch), CLIENTHELLO_NO_NAME);

	/* Two server_name extensions. */
	n = make_sni(ext, "a.example", 9);
	n += make_sni(ext + n, "b.example", 9);
	assert_int_equal(parse_with_ext(ext, n, &ch), CLIENTHELLO_INVALID);

	/* Two host names in one list. */
	n = make_sni(ext, "a.example", 9);
	ext[3] += 12, ext[5] += 12;
	memcpy(ext + n, "\x00\x00\x09" "b.example", 12);
	assert_int_equal(parse_with_ext(ext, n + 12, &ch), CLIENTHELLO_INVALID);

	/* Another name type before the host name is skipped. */
	n = make_sni(ext, "a.example", 9);
	memmove(ext + 9, ext + 6, n - 6);
	memcpy(ext + 6, "\x07\x00\x00", 3);
	ext[3] += 3, ext[5] += 3;
	assert_int_equal(parse_with_ext(ext, n + 3, &ch), CLIENTHELLO_NAME);
	assert_string_equal(ch.name, "a.example");

	/* Length fields that claim more than their parent holds. */
	n = make_sni(ext, "a.example", 9);
	ext[8] = 10; /* name */
	assert_int_equal(parse_with_ext(ext, n, &ch), CLIENTHELLO_INVALID);
	n = make_sni(ext, "a.example", 9);
	ext[5] = 200; /* list */
	assert_int_equal(parse_with_ext(ext, n, &ch), CLIENTHELLO_INVALID);
	n = make_sni(ext, "a.example", 9);
	ext[3] = 200; /* extension */
	assert_int_equal(parse_with_ext(ext, n, &ch), CLIENTHELLO_INVALID);
	/* An empty server_name extension (a server's reply form). */
	assert_int_equal(parse_with_ext((const uint8_t *)"\0\0\0\0", 4, &ch), CLIENTHELLO_INVALID);
	/* Other extensions only. */
	assert_int_equal(parse_with_ext((const uint8_t *)"\0\x17\0\0\xff\x01\0\x01\0", 9, &ch),
			 CLIENTHELLO_NO_NAME);
}

static void test_not_a_client_hello(void **state)
{
	struct clienthello ch;
	uint8_t buf[64];
	static const uint8_t server_hello[] = {22, 3, 3, 0, 4, 2, 0, 0, 0};

	(void)state;
	assert_int_equal(clienthello_parse((const uint8_t *)"GET / HTTP/1.1\r\n", 16, &ch),
			 CLIENTHELLO_INVALID);
	assert_int_equal(clienthello_parse((const uint8_t *)"G", 1, &ch), CLIENTHELLO_INVALID);
	assert_int_equal(clienthello_parse((const uint8_t *)"\x16\x02", 2, &ch), CLIENTHELLO_INVALID);
	/* SSL 2 style hello. */
	assert_int_equal(clienthello_parse((const uint8_t *)"\x80\x2e\x01\x03\x01", 5, &ch),
			 CLIENTHELLO_INVALID);
	assert_int_equal(clienthello_parse(server_hello, sizeof(server_hello), &ch), CLIENTHELLO_INVALID);
	/* A record of length 0, and one above 2^14. */
	assert_int_equal(clienthello_parse((const uint8_t *)"\x16\x03\x01\x00\x00", 5, &ch),
			 CLIENTHELLO_INVALID);
	assert_int_equal(clienthello_parse((const uint8_t *)"\x16\x03\x01\x40\x01", 5, &ch),
			 CLIENTHELLO_INVALID);
	/* A hello that says it is 1 MB long is refused at once. */
	memcpy(buf, "\x16\x03\x01\x40\x00\x01\x10\x00\x00", 9);
	assert_int_equal(clienthello_parse(buf, 9, &ch), CLIENTHELLO_INVALID);
	/* A hello that ends before its fixed fields. */
	memcpy(buf, "\x16\x03\x01\x00\x08\x01\x00\x00\x04\x03\x03\x00\x00", 13);
	assert_int_equal(clienthello_parse(buf, 13, &ch), CLIENTHELLO_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_openssl_hello_with_name),
		cmocka_unit_test(test_openssl_hello_without_name),
		cmocka_unit_test(test_trailing_dot_and_bytes_after),
		cmocka_unit_test(test_fragmented_over_records),
		cmocka_unit_test(test_big_hello_over_segments),
		cmocka_unit_test(test_stream_overlap_conflict_and_bound),
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_malformed_extensions),
		cmocka_unit_test(test_not_a_client_hello),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
