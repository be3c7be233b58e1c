/* server_names: pattern syntax, canonical form, matching and overlap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "server_names.h"

static void test_parse(void **state)
{
	static const struct {
		const char *text, *canonical;
	} good[] = {
		{"Shop.Example.COM", "shop.example.com"},
		{"shop.example.com.", "shop.example.com"},
		{"*.Example.com", "*.example.com"},
		{"_dmarc.example", "_dmarc.example"},
		{"localhost", "localhost"},
		{"*.com", "*.com"},
	};
	static const char *const bad[] = {
		"", ".", "*", "*.", "a..b", ".a", "a b", "a*.example.com", "*a.example.com",
		"a.*.example.com", "**.example.com", "*.*.example.com", "é.example", "a/b", "a:443",
		"a..", "*..a",
	};
	char out[SERVER_NAME_MAX + 1];
	const char *why = NULL;

	(void)state;
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(server_name_parse(good[i].text, out, &why), 0);
		assert_string_equal(out, good[i].canonical);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = NULL;
		assert_int_equal(server_name_parse(bad[i], out, &why), -1);
		assert_non_null(why);
	}
}

static void test_length_limits(void **state)
{
	char text[300], out[SERVER_NAME_MAX + 1];
	const char *why;

	(void)state;
	/* 253 bytes in labels of 50: the longest name; a wildcard's suffix
	 * may be 251 at most ("*." + 251 = 253). */
	memset(text, 'a', sizeof(text));
	for (size_t i = 50; i < sizeof(text); i += 51)
		text[i] = '.';
	text[253] = '\0';
	assert_int_equal(server_name_parse(text, out, &why), 0);
	assert_int_equal(strlen(out), 253);
	text[253] = 'a', text[254] = '\0';
	assert_int_equal(server_name_parse(text, out, &why), -1);

	memcpy(text, "*.", 2);
	text[2 + 251] = '\0';
	text[2 + 250] = 'b'; /* not a dot at the end */
	assert_int_equal(server_name_parse(text, out, &why), 0);
	assert_int_equal(strlen(out), 253);
	text[2 + 251] = 'c', text[2 + 252] = '\0';
	assert_int_equal(server_name_parse(text, out, &why), -1);
	/* A label of 64. */
	memset(text, 'x', 64);
	text[64] = '\0';
	assert_int_equal(server_name_parse(text, out, &why), -1);
	text[63] = '\0';
	assert_int_equal(server_name_parse(text, out, &why), 0);
}

static void test_match(void **state)
{
	(void)state;
	assert_true(server_name_match("shop.example.com", "shop.example.com") > 0);
	assert_int_equal(server_name_match("shop.example.com", "www.shop.example.com"), 0);
	assert_true(server_name_match("*.example.com", "a.example.com") > 0);
	assert_true(server_name_match("*.example.com", "a.b.example.com") > 0);
	assert_int_equal(server_name_match("*.example.com", "example.com"), 0);
	assert_int_equal(server_name_match("*.example.com", ".example.com"), 0);
	assert_int_equal(server_name_match("*.example.com", "aexample.com"), 0);
	assert_int_equal(server_name_match("*.example.com", "a.example.org"), 0);
	/* Exact beats every wildcard; a longer wildcard a shorter one. */
	assert_true(server_name_match("a.b.example.com", "a.b.example.com") >
		    server_name_match("*.b.example.com", "a.b.example.com"));
	assert_true(server_name_match("*.b.example.com", "a.b.example.com") >
		    server_name_match("*.example.com", "a.b.example.com"));
	assert_true(server_name_match("x.y", "x.y") > server_name_match("*.b.example.com", "a.b.example.com"));
}

static void test_overlap(void **state)
{
	(void)state;
	assert_true(server_names_overlap("shop.example.com", "shop.example.com"));
	assert_true(server_names_overlap("*.example.com", "*.example.com"));
	assert_false(server_names_overlap("*.example.com", "shop.example.com"));
	assert_false(server_names_overlap("*.example.com", "*.shop.example.com"));
	assert_false(server_names_overlap("a.example", "b.example"));
}

static void test_canonical_bytes(void **state)
{
	char out[SERVER_NAME_MAX + 1];

	(void)state;
	assert_int_equal(server_name_canonical((const uint8_t *)"A.B", 3, out), 3);
	assert_string_equal(out, "a.b");
	assert_int_equal(server_name_canonical((const uint8_t *)"a\0b", 3, out), 0);
	assert_int_equal(server_name_canonical((const uint8_t *)"a.", 2, out), 1);
	assert_int_equal(server_name_canonical((const uint8_t *)"a..", 3, out), 0);
	assert_int_equal(server_name_canonical((const uint8_t *)"", 0, out), 0);
	assert_int_equal(server_name_canonical((const uint8_t *)"\xff", 1, out), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_length_limits),
		cmocka_unit_test(test_match),
		cmocka_unit_test(test_overlap),
		cmocka_unit_test(test_canonical_bytes),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
