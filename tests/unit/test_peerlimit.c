/* Unit tests for peerlimit: one peer, or a few, never hold every slot of
 * the metrics listener; a newcomer gets in by evicting the heaviest. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "peerlimit.h"

#define N 16
#define PER_PEER 4

static struct peerlimit_peer peer(const char *addr)
{
	struct sockaddr_storage sa = {0};
	struct peerlimit_peer p;

	if (strchr(addr, ':')) {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;

		in6->sin6_family = AF_INET6;
		assert_int_equal(inet_pton(AF_INET6, addr, &in6->sin6_addr), 1);
	} else {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;

		in4->sin_family = AF_INET;
		assert_int_equal(inet_pton(AF_INET, addr, &in4->sin_addr), 1);
	}
	peerlimit_peer_of(&sa, &p);
	return p;
}

/* Places a connection of ADDR at time NOW as the listener would: the
 * slot it got, or -1. */
static int connect_from(struct peerlimit_slot *slots, const char *addr, uint64_t now)
{
	struct peerlimit_peer p = peer(addr);
	bool evict;
	int slot = peerlimit_place(slots, N, PER_PEER, &p, &evict);

	if (slot < 0)
		return -1;
	assert_true(evict == slots[slot].used);
	slots[slot].used = true;
	slots[slot].peer = p;
	slots[slot].since_ms = now;
	return slot;
}

static void test_per_peer_cap(void **state)
{
	struct peerlimit_slot slots[N] = {0};

	(void)state;
	for (int i = 0; i < PER_PEER; i++)
		assert_int_equal(connect_from(slots, "127.0.0.2", (uint64_t)i), i);
	/* a hog's 16 connections: 12 refused */
	for (int i = 0; i < 12; i++)
		assert_int_equal(connect_from(slots, "127.0.0.2", 100), -1);
	assert_int_equal(peerlimit_count(slots, N, &(struct peerlimit_peer){0}), 0);
	/* the scraper still finds a slot */
	assert_true(connect_from(slots, "127.0.0.1", 200) >= 0);
	/* a freed slot is the hog's again */
	slots[0].used = false;
	assert_int_equal(connect_from(slots, "127.0.0.2", 300), 0);
}

static void test_ipv6_by_64(void **state)
{
	struct peerlimit_slot slots[N] = {0};
	char addr[64];

	(void)state;
	/* a /64 is one peer, however many addresses it uses */
	for (int i = 0; i < PER_PEER; i++) {
		snprintf(addr, sizeof(addr), "2001:db8:1::%x", i + 1);
		assert_true(connect_from(slots, addr, 0) >= 0);
	}
	assert_int_equal(connect_from(slots, "2001:db8:1::ffff:1", 0), -1);
	assert_true(connect_from(slots, "2001:db8:2::1", 0) >= 0);
	/* a v4-mapped address is that IPv4 peer */
	for (int i = 0; i < PER_PEER; i++)
		assert_true(connect_from(slots, "192.0.2.7", 0) >= 0);
	assert_int_equal(connect_from(slots, "::ffff:192.0.2.7", 0), -1);
}

/* Four peers at their cap fill the table: a fifth evicts the oldest
 * connection of one of them; so does a sixth (of another heaviest). */
static void test_full_evicts_heaviest_oldest(void **state)
{
	struct peerlimit_slot slots[N] = {0};
	const char *hogs[] = { "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4" };
	uint64_t t = 0;
	int slot;

	(void)state;
	for (int i = 0; i < PER_PEER; i++)
		for (int h = 0; h < 4; h++)
			assert_true(connect_from(slots, hogs[h], t++) >= 0);
	/* the oldest connection of all is hogs[0]'s first (slot 0) */
	slot = connect_from(slots, "198.51.100.9", t++);
	assert_int_equal(slot, 0);
	/* hogs 1..3 now hold 4, hogs[0] 3: the oldest of the 4-holders goes */
	slot = connect_from(slots, "198.51.100.10", t++);
	assert_int_equal(slot, 1);
	/* two more newcomers get two connections each, every one evicting
	 * a hog's (they hold 4, 4, 3, 3 and then 3 each) */
	for (int i = 0; i < 4; i++)
		assert_true(connect_from(slots, i % 2 ? "203.0.113.1" : "203.0.113.2", t++) >= 0);
	/* a third each would put them level with the heaviest: refused */
	assert_int_equal(connect_from(slots, "203.0.113.2", t++), -1);
	/* the hogs ended with 3, 3, 2, 2 (16 - 2 - 4 = 10 slots) */
	{
		struct peerlimit_peer p;
		size_t held = 0;

		for (int h = 0; h < 4; h++) {
			p = peer(hogs[h]);
			held += peerlimit_count(slots, N, &p);
			assert_true(peerlimit_count(slots, N, &p) <= 3);
		}
		assert_int_equal(held, 10);
	}
}

/* Evenly shared: a newcomer that would hold as many as the heaviest is
 * refused rather than take a slot from an equal. */
static void test_full_even_refuses(void **state)
{
	struct peerlimit_slot slots[N] = {0};
	char addr[32];
	bool evict;
	struct peerlimit_peer p;

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(addr, sizeof(addr), "192.0.2.%d", i + 1);
		assert_int_equal(connect_from(slots, addr, (uint64_t)i), i);
	}
	/* 16 peers with one each: a 17th is refused */
	p = peer("192.0.2.200");
	assert_int_equal(peerlimit_place(slots, N, PER_PEER, &p, &evict), -1);
	assert_false(evict);
	/* one of them asking for a second: refused too (it would hold 2, others 1) */
	p = peer("192.0.2.1");
	assert_int_equal(peerlimit_place(slots, N, PER_PEER, &p, &evict), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_per_peer_cap),
		cmocka_unit_test(test_ipv6_by_64),
		cmocka_unit_test(test_full_evicts_heaviest_oldest),
		cmocka_unit_test(test_full_even_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
