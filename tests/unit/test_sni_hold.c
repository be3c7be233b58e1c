/* sni_hold: flows held until their ClientHello names a server, with real
 * OpenSSL hellos cut into segments as a client's TCP would send them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "sni_hold.h"
#include "tls_hello.h"

static struct sni_flow flow_n(unsigned n)
{
	struct sni_flow f = {.family = AF_INET, .sport = (uint16_t)(40000 + n % 20000), .dport = 443};

	memcpy(f.saddr, (const uint8_t[]){192, 0, 2, (uint8_t)(n / 20000 + 1)}, 4);
	memcpy(f.daddr, (const uint8_t[]){198, 51, 100, 10}, 4);
	return f;
}

static void test_one_segment(void **state)
{
	struct sni_hold *h = sni_hold_new(16, 2000);
	struct sni_flow f = flow_n(1);
	struct hello hello;
	struct sni_decision d;

	(void)state;
	openssl_hello("shop.example.com", 0, &hello);
	/* the handshake's ACK: registers the flow, nothing held */
	sni_hold_segment(h, &f, 1001, 777, NULL, 0, 7, 0, 0, &d);
	assert_int_equal(d.result, SNI_HELD);
	assert_int_equal(d.n_ids, 0);
	assert_int_equal(sni_hold_count(h), 1);
	sni_hold_segment(h, &f, 1001, 777, hello.bytes, hello.len, 8, 0, 1, &d);
	assert_int_equal(d.result, SNI_NAME);
	assert_string_equal(d.name, "shop.example.com");
	assert_int_equal(d.n_ids, 1);
	assert_int_equal(d.ids[0], 8);
	assert_int_equal(d.first_seq, 1001);
	assert_int_equal(d.next_seq, 1001 + hello.len);
	assert_int_equal(d.ack, 777);
	assert_int_equal(sni_hold_count(h), 0);
	sni_hold_free(h);
}

/* A ~1.8 kB hello in two segments, in order and the other way round. */
static void test_two_segments(void **state)
{
	struct sni_hold *h = sni_hold_new(16, 2000);
	struct sni_flow f = flow_n(2), g = flow_n(3);
	struct hello hello;
	struct sni_decision d;
	const uint32_t mss = 1460;

	(void)state;
	openssl_hello("big.example.com", 1, &hello);
	sni_hold_segment(h, &f, 5000, 777, NULL, 0, 1, 0, 0, &d);
	sni_hold_segment(h, &f, 5000, 777, hello.bytes, mss, 2, 0, 0, &d);
	assert_int_equal(d.result, SNI_HELD);
	/* a retransmit of the first is held too: it needs its verdict */
	sni_hold_segment(h, &f, 5000, 777, hello.bytes, mss, 3, 0, 0, &d);
	assert_int_equal(d.result, SNI_HELD);
	sni_hold_segment(h, &f, 5000 + mss, 777, hello.bytes + mss, hello.len - mss, 4, 0, 0, &d);
	assert_int_equal(d.result, SNI_NAME);
	assert_string_equal(d.name, "big.example.com");
	assert_int_equal(d.n_ids, 3);
	assert_int_equal(d.ids[0], 2);
	assert_int_equal(d.ids[2], 4);

	/* the second segment first (the first was lost on the way) */
	sni_hold_segment(h, &g, 0xffffff00u, 777, NULL, 0, 10, 0, 0, &d);
	sni_hold_segment(h, &g, (uint32_t)(0xffffff00u + mss), 777, hello.bytes + mss, hello.len - mss, 11, 0, 0, &d);
	assert_int_equal(d.result, SNI_HELD);
	sni_hold_segment(h, &g, 0xffffff00u, 777, hello.bytes, mss, 12, 0, 0, &d);
	assert_int_equal(d.result, SNI_NAME);
	assert_int_equal(d.n_ids, 2);
	assert_int_equal(d.ids[0], 11);
	assert_int_equal(d.ids[1], 12);
	assert_int_equal(d.next_seq, (uint32_t)(0xffffff00u + hello.len));
	sni_hold_free(h);
}

static void test_invalid(void **state)
{
	struct sni_hold *h = sni_hold_new(16, 2000);
	struct sni_flow f = flow_n(4), g = flow_n(5), k = flow_n(6);
	struct hello hello, other;
	struct sni_decision d;

	(void)state;
	sni_hold_segment(h, &f, 1, 777, (const uint8_t *)"GET / HTTP/1.1\r\n", 16, 1, 0, 0, &d);
	assert_int_equal(d.result, SNI_INVALID);
	assert_int_equal(d.n_ids, 1);

	/* two versions of one hello: offline name first, online one after */
	openssl_hello("blog.example.com", 0, &hello);
	openssl_hello("shop.example.com", 0, &other);
	sni_hold_segment(h, &g, 100, 777, hello.bytes, 100, 2, 0, 0, &d);
	assert_int_equal(d.result, SNI_HELD);
	sni_hold_segment(h, &g, 100, 777, other.bytes, other.len, 3, 0, 0, &d);
	assert_int_equal(d.result, SNI_INVALID);
	assert_int_equal(d.n_ids, 2);

	/* dribbled a byte at a time: past SNI_HOLD_MAX_IDS segments */
	openssl_hello("wiki.example.com", 0, &hello);
	for (size_t i = 0; i < SNI_HOLD_MAX_IDS - 1; i++) {
		sni_hold_segment(h, &k, 50 + (uint32_t)i, 777, hello.bytes + i, 1, 10 + (uint32_t)i, 0, 0, &d);
		assert_int_equal(d.result, SNI_HELD);
	}
	sni_hold_segment(h, &k, 50 + SNI_HOLD_MAX_IDS - 1, 777, hello.bytes + SNI_HOLD_MAX_IDS - 1, 1, 99, 0,
			 0, &d);
	assert_int_equal(d.result, SNI_INVALID);
	assert_int_equal(d.n_ids, SNI_HOLD_MAX_IDS);
	assert_int_equal(sni_hold_count(h), 0);
	sni_hold_free(h);
}

static void test_timeout_and_full(void **state)
{
	struct sni_hold *h = sni_hold_new(2, 500);
	struct sni_flow a = flow_n(7), b = flow_n(8), c = flow_n(9);
	struct hello hello;
	struct sni_decision d;

	(void)state;
	openssl_hello("shop.example.com", 0, &hello);
	sni_hold_segment(h, &a, 1, 777, hello.bytes, 10, 1, 0, 1000, &d);
	sni_hold_segment(h, &b, 1, 777, hello.bytes, 10, 2, 0, 1200, &d);
	assert_int_equal(sni_hold_next_due(h), 1500);
	/* a third flow finds no room: decided at once by the default */
	sni_hold_segment(h, &c, 1, 777, hello.bytes, 10, 3, 0, 1200, &d);
	assert_int_equal(d.result, SNI_FULL);
	assert_int_equal(d.n_ids, 1);
	assert_int_equal(d.ids[0], 3);
	/* ... unless its one segment is a whole hello: decided by its name */
	sni_hold_segment(h, &c, 1, 777, hello.bytes, hello.len, 5, 0, 1200, &d);
	assert_int_equal(d.result, SNI_NAME);
	assert_string_equal(d.name, "shop.example.com");
	assert_int_equal(sni_hold_count(h), 2);
	assert_false(sni_hold_expire(h, 1499, &d));
	assert_true(sni_hold_expire(h, 1500, &d));
	assert_int_equal(d.result, SNI_TIMEOUT);
	assert_int_equal(d.ids[0], 1);
	assert_false(sni_hold_expire(h, 1500, &d));
	/* room again */
	sni_hold_segment(h, &c, 1, 777, hello.bytes, 10, 4, 0, 1600, &d);
	assert_int_equal(d.result, SNI_HELD);
	assert_true(sni_hold_drain(h, &d));
	assert_int_equal(d.ids[0], 2);
	assert_true(sni_hold_drain(h, &d));
	assert_int_equal(d.ids[0], 4);
	assert_false(sni_hold_drain(h, &d));
	sni_hold_free(h);
}

/* A reload's sni.hold: flows held from then on get it, those held already
 * keep their deadline. */
static void test_hold_changed(void **state)
{
	struct sni_hold *h = sni_hold_new(4, 500);
	struct sni_flow a = flow_n(1), b = flow_n(2);
	struct hello hello;
	struct sni_decision d;

	(void)state;
	openssl_hello("shop.example.com", 0, &hello);
	sni_hold_segment(h, &a, 1, 777, hello.bytes, 10, 1, 0, 1000, &d);
	sni_hold_set_hold_ms(h, 3000);
	sni_hold_segment(h, &b, 1, 777, hello.bytes, 10, 2, 0, 1100, &d);
	assert_false(sni_hold_expire(h, 1499, &d));
	assert_true(sni_hold_expire(h, 1500, &d));
	assert_int_equal(d.ids[0], 1);
	assert_false(sni_hold_expire(h, 4099, &d));
	assert_true(sni_hold_expire(h, 4100, &d));
	assert_int_equal(d.ids[0], 2);
	sni_hold_free(h);
}

/* Thousands of flows come and go in an order unlike their arrival: every
 * one still finds its own bytes (the table's deletions keep probes whole). */
static void test_many_flows(void **state)
{
	enum { N = 3000 };
	struct sni_hold *h = sni_hold_new(N, 2000);
	static struct hello hello;
	struct sni_decision d;

	(void)state;
	openssl_hello("many.example.com", 0, &hello);
	for (unsigned i = 0; i < N; i++) {
		struct sni_flow f = flow_n(i);

		sni_hold_segment(h, &f, i * 7919u, 777, hello.bytes, 40, i, 0, 0, &d);
		assert_int_equal(d.result, SNI_HELD);
	}
	assert_int_equal(sni_hold_count(h), N);
	for (unsigned step = 0; step < N; step++) {
		unsigned i = (step * 1103u) % N; /* 1103 and 3000 are coprime */
		struct sni_flow f = flow_n(i);

		sni_hold_segment(h, &f, i * 7919u + 40, 777, hello.bytes + 40, hello.len - 40, N + i, 0, 0, &d);
		assert_int_equal(d.result, SNI_NAME);
		assert_int_equal(d.n_ids, 2);
		assert_int_equal(d.ids[0], i);
		assert_int_equal(d.ids[1], N + i);
	}
	assert_int_equal(sni_hold_count(h), 0);
	sni_hold_free(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_segment),
		cmocka_unit_test(test_two_segments),
		cmocka_unit_test(test_invalid),
		cmocka_unit_test(test_timeout_and_full),
		cmocka_unit_test(test_hold_changed),
		cmocka_unit_test(test_many_flows),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
