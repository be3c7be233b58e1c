/* Unit tests for textsafe: what a hostile certificate subject or server
 * answer becomes in the terminal, in a Prometheus label and in JSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "strbuf.h"
#include "textsafe.h"

/* TEXT through MODE must give exactly WANT. */
static void expect(const char *text, enum textsafe_mode mode, const char *want)
{
	struct strbuf b;

	strbuf_init(&b, 0);
	textsafe_append(&b, text, mode);
	assert_false(strbuf_failed(&b));
	assert_string_equal(b.len ? b.data : "", want);
	strbuf_free(&b);
}

/* No byte of OUT is a C0 control (but newline where ALLOW_NL), DEL or the
 * second byte of a UTF-8 C1, and OUT is valid UTF-8. */
static void assert_safe(const char *out, bool allow_nl)
{
	const unsigned char *s = (const unsigned char *)out;

	while (*s) {
		size_t n = textsafe_utf8_len(s);

		assert_true(n > 0);
		if (n == 1)
			assert_true((*s >= 0x20 && *s != 0x7f) || (allow_nl && *s == '\n'));
		if (n == 2)
			assert_false(s[0] == 0xc2 && s[1] <= 0x9f);
		s += n;
	}
}

static void test_utf8_len(void **state)
{
	(void)state;
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"a"), 1);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\xc3\xa9"), 2);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\xe2\x82\xac"), 3);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\xf0\x9f\x98\x80"), 4);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)""), 0);
	/* overlong, surrogate, past U+10FFFF, stray continuation, cut */
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\xc0\xaf"), 0);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\xe0\x80\xaf"), 0);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\xed\xa0\x80"), 0);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\xf4\x90\x80\x80"), 0);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\x80"), 0);
	assert_int_equal(textsafe_utf8_len((const unsigned char *)"\xe2\x82"), 0);
}

static void test_plain_text_unchanged(void **state)
{
	const char *subject = "CN=shop.example,O=Caf\xc3\xa9 M\xc3\xbcller \xe2\x82\xac";

	(void)state;
	expect(subject, TEXTSAFE_TERMINAL, subject);
	expect(subject, TEXTSAFE_PROMETHEUS, subject);
	expect(subject, TEXTSAFE_JSON, subject);
	expect("", TEXTSAFE_JSON, "");
}

static void test_prometheus_escapes(void **state)
{
	(void)state;
	expect("a\\b\"c\nd", TEXTSAFE_PROMETHEUS, "a\\\\b\\\"c\\nd");
	/* other controls: the text \xHH, its backslash escaped */
	expect("x\x1b[2Jy", TEXTSAFE_PROMETHEUS, "x\\\\x1b[2Jy");
	expect("del\x7f", TEXTSAFE_PROMETHEUS, "del\\\\x7f");
	/* C1 CSI (U+009B) as UTF-8 */
	expect("c1\xc2\x9b" "31m", TEXTSAFE_PROMETHEUS, "c1\\\\x9b31m");
	/* U+00A0 is not C1: kept */
	expect("nb\xc2\xa0sp", TEXTSAFE_PROMETHEUS, "nb\xc2\xa0sp");
}

static void test_terminal_escapes(void **state)
{
	(void)state;
	expect("CN=\x1b]0;owned\x07", TEXTSAFE_TERMINAL, "CN=\\x1b]0;owned\\x07");
	expect("a\nb\rc\td", TEXTSAFE_TERMINAL, "a\\x0ab\\x0dc\\x09d");
	expect("O=\xc2\x85\xc2\x9f", TEXTSAFE_TERMINAL, "O=\\x85\\x9f");
	/* quotes and backslashes are for a human to read: as they are */
	expect("O=A\\, B \"C\"", TEXTSAFE_TERMINAL, "O=A\\, B \"C\"");
}

static void test_json_escapes(void **state)
{
	(void)state;
	expect("q\"b\\", TEXTSAFE_JSON, "q\\\"b\\\\");
	expect("\n\r\t\x01\x7f", TEXTSAFE_JSON, "\\n\\r\\t\\u0001\\u007f");
	expect("\xc2\x9b", TEXTSAFE_JSON, "\\u009b");
	expect("bad\xff", TEXTSAFE_JSON, "bad\\ufffd");
}

static void test_invalid_bytes_replaced(void **state)
{
	(void)state;
	/* a stray continuation byte, an overlong '/', a lone lead byte mid-text */
	expect("a\x80z", TEXTSAFE_PROMETHEUS, "a\xef\xbf\xbdz");
	expect("\xc0\xaf", TEXTSAFE_TERMINAL, "\xef\xbf\xbd\xef\xbf\xbd");
	expect("\xe2\x82x", TEXTSAFE_TERMINAL, "\xef\xbf\xbd\xef\xbf\xbdx");
}

/* health_cert's 256-byte buffer filled to the brim: the last character
 * cut after 1 or 2 of its bytes is dropped, not replaced. */
static void test_cut_at_the_end(void **state)
{
	char subject[256];
	struct strbuf b;

	(void)state;
	expect("CN=caf\xc3", TEXTSAFE_PROMETHEUS, "CN=caf");
	expect("\xe2\x82", TEXTSAFE_JSON, "");
	expect("x\xf0\x9f\x98", TEXTSAFE_TERMINAL, "x");
	/* 255 bytes: "CN=" and 126 two-byte characters would be 255 bytes;
	 * make the last one a 3-byte character cut after 2 */
	memset(subject, 0, sizeof(subject));
	memcpy(subject, "CN=", 3);
	for (size_t i = 3; i + 2 <= 253; i += 2)
		memcpy(subject + i, "\xc3\xa9", 2);
	memcpy(subject + 253, "\xe2\x82", 2);
	assert_int_equal(strlen(subject), 255);
	strbuf_init(&b, 0);
	textsafe_append(&b, subject, TEXTSAFE_PROMETHEUS);
	assert_int_equal(b.len, 253);
	assert_safe(b.data, false);
	strbuf_free(&b);
}

/* Every byte value in every position: the output is always safe. */
static void test_every_byte_safe(void **state)
{
	static const enum textsafe_mode modes[] = { TEXTSAFE_TERMINAL, TEXTSAFE_PROMETHEUS,
						    TEXTSAFE_JSON };
	char text[4];

	(void)state;
	for (unsigned a = 1; a < 256; a++) {
		for (unsigned c = 0x80; c < 0xc0; c += 0x1f) {
			text[0] = (char)a;
			text[1] = (char)c;
			text[2] = (char)0xc2;
			text[3] = '\0';
			for (size_t m = 0; m < 3; m++) {
				struct strbuf b;

				strbuf_init(&b, 0);
				textsafe_append(&b, text, modes[m]);
				assert_safe(b.len ? b.data : "", false);
				strbuf_free(&b);
			}
		}
	}
}

static void test_json_string_wrapper(void **state)
{
	struct strbuf b;

	(void)state;
	strbuf_init(&b, 0);
	strbuf_json_string(&b, "CN=\xc2\x9b\x1b");
	assert_string_equal(b.data, "\"CN=\\u009b\\u001b\"");
	strbuf_free(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_utf8_len),
		cmocka_unit_test(test_plain_text_unchanged),
		cmocka_unit_test(test_prometheus_escapes),
		cmocka_unit_test(test_terminal_escapes),
		cmocka_unit_test(test_json_escapes),
		cmocka_unit_test(test_invalid_bytes_replaced),
		cmocka_unit_test(test_cut_at_the_end),
		cmocka_unit_test(test_every_byte_safe),
		cmocka_unit_test(test_json_string_wrapper),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
