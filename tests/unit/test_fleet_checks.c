/* fleet_checks (fleet.checks: all): the other boxes' verdicts as the watch
 * hands them over, kept by (box, site), and what they make of this box's
 * own "down". Thousands of entries, so the index grows, loses entries to
 * deletions and a forget, and is filled again: every answer must stay the
 * same as a plain reading of the keys would give. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "etcd_json.h"
#include "fleet_internal.h"

#define N_SITES 3000

static struct fleet *fleet_new(void)
{
	struct fleet *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->p, sizeof(f->p), "/gatekeeper/edge/");
	snprintf(f->box, sizeof(f->box), "A");
	f->phase = FLEET_UP;
	f->combine_checks = true;
	for (const char *b = "ABC"; *b; b++)
		snprintf(f->boxes[f->n_boxes++].name, sizeof(f->boxes[0].name), "%c", *b);
	return f;
}

static void fleet_free(struct fleet *f)
{
	free(f->checks);
	free(f->check_slots);
	free(f);
}

/* The watch's event for check/BOX/site<N>: VALUE, or a delete (NULL). */
static void event(struct fleet *f, const char *box, int n, const char *value)
{
	char key[FLEET_KEYS_MAX + 64];
	struct etcd_kv kv = {0};

	snprintf(key, sizeof(key), "%scheck/%s/site%d", f->p, box, n);
	kv.key = key;
	kv.key_len = strlen(key);
	kv.value = (char *)(value ? value : "");
	kv.value_len = strlen(kv.value);
	assert_true(fleet_checks_key(f, &kv, value == NULL));
}

static enum health_state combined(struct fleet *f, int n)
{
	char site[32];

	snprintf(site, sizeof(site), "site%d", n);
	return fleet_checks_combine(f, site, HEALTH_DOWN);
}

static void test_others_keep_a_site_up(void **state)
{
	struct fleet *f = fleet_new();
	struct etcd_kv other = {.key = "/gatekeeper/edge/site/shop", .value = ""};

	(void)state;
	other.key_len = strlen(other.key);
	assert_false(fleet_checks_key(f, &other, false));
	/* B sees every site down, C every third up */
	for (int n = 0; n < N_SITES; n++) {
		event(f, "B", n, "down");
		event(f, "C", n, n % 3 == 0 ? "up" : "down");
	}
	assert_int_equal(f->n_checks, 2 * N_SITES);
	for (int n = 0; n < N_SITES; n++)
		assert_int_equal(combined(f, n), n % 3 == 0 ? HEALTH_UP : HEALTH_DOWN);
	/* this box's own "up" is never changed, nor is anything while stale */
	assert_int_equal(fleet_checks_combine(f, "site1", HEALTH_UP), HEALTH_UP);
	f->stale_since = 1;
	assert_int_equal(combined(f, 0), HEALTH_DOWN);
	f->stale_since = 0;

	/* C withdraws its even sites, then says up for every fifth */
	for (int n = 0; n < N_SITES; n += 2)
		event(f, "C", n, NULL);
	assert_int_equal(f->n_checks, 2 * N_SITES - N_SITES / 2);
	for (int n = 0; n < N_SITES; n += 5)
		event(f, "C", n, "up");
	for (int n = 0; n < N_SITES; n++)
		assert_int_equal(combined(f, n), (n % 3 == 0 && n % 2 == 1) || n % 5 == 0
							 ? HEALTH_UP
							 : HEALTH_DOWN);

	/* C's lease ends: its verdicts no longer count, though still kept */
	f->n_boxes = 2;
	for (int n = 0; n < N_SITES; n++)
		assert_int_equal(combined(f, n), HEALTH_DOWN);
	f->n_boxes = 3;

	/* a full read: every other box's verdicts dropped, then read again */
	fleet_checks_forget(f);
	assert_int_equal(f->n_checks, 0);
	assert_int_equal(combined(f, 0), HEALTH_DOWN);
	for (int n = 0; n < N_SITES; n++)
		event(f, "B", n, n % 7 == 0 ? "up" : "down");
	for (int n = 0; n < N_SITES; n++)
		assert_int_equal(combined(f, n), n % 7 == 0 ? HEALTH_UP : HEALTH_DOWN);
	fleet_free(f);
}

/* This box's own keys are what it publishes: they never count for it. */
static void test_own_keys_do_not_count(void **state)
{
	struct fleet *f = fleet_new();

	(void)state;
	event(f, "A", 1, "up");
	assert_int_equal(f->n_checks, 0);
	assert_int_equal(combined(f, 1), HEALTH_DOWN);
	event(f, "A", 1, NULL);
	assert_int_equal(f->n_checks, 0);
	fleet_free(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_others_keep_a_site_up),
		cmocka_unit_test(test_own_keys_do_not_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
