/* textsafe: one walk over UTF-8 that every output shares. See textsafe.h. */
#include "textsafe.h"

#include <stdbool.h>
#include <stdint.h>

size_t textsafe_utf8_len(const unsigned char *s)
{
	uint32_t cp;
	size_t n;

	if (s[0] >= 0x01 && s[0] <= 0x7f)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2, cp = s[0] & 0x1fu;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3, cp = s[0] & 0x0fu;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4, cp = s[0] & 0x07u;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80) /* also stops at the NUL */
			return 0;
		cp = cp << 6 | (s[i] & 0x3fu);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return n;
}

/* True if S holds only the start of a sequence, cut by the NUL: the lead
 * byte and every byte up to the end are what a valid sequence would be. */
static bool cut_at_end(const unsigned char *s)
{
	size_t n, i;

	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		n = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		n = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		n = 4;
	else
		return false;
	for (i = 1; i < n && (s[i] & 0xc0) == 0x80; i++)
		;
	return i < n && s[i] == '\0';
}

/* The code point of the 2-byte sequence at S if it is a C1 control. */
static int c1_control(const unsigned char *s, size_t len)
{
	if (len == 2 && s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f)
		return s[1];
	return -1;
}

static void control(struct strbuf *out, unsigned cp, enum textsafe_mode mode)
{
	switch (mode) {
	case TEXTSAFE_TERMINAL:
		strbuf_printf(out, "\\x%02x", cp);
		break;
	case TEXTSAFE_PROMETHEUS:
		if (cp == '\n')
			strbuf_puts(out, "\\n");
		else
			strbuf_printf(out, "\\\\x%02x", cp);
		break;
	case TEXTSAFE_JSON:
		if (cp == '\n')
			strbuf_puts(out, "\\n");
		else if (cp == '\r')
			strbuf_puts(out, "\\r");
		else if (cp == '\t')
			strbuf_puts(out, "\\t");
		else
			strbuf_printf(out, "\\u%04x", cp);
		break;
	}
}

void textsafe_append(struct strbuf *out, const char *text, enum textsafe_mode mode)
{
	const unsigned char *s = (const unsigned char *)text;

	while (*s) {
		size_t run = 0, n;
		int c1;

		/* the longest stretch of printable ASCII that needs nothing */
		while (s[run] >= 0x20 && s[run] < 0x7f &&
		       (mode == TEXTSAFE_TERMINAL || (s[run] != '"' && s[run] != '\\')))
			run++;
		if (run) {
			strbuf_append(out, (const char *)s, run);
			s += run;
			continue;
		}
		if (*s == '"' || *s == '\\') {
			strbuf_printf(out, "\\%c", *s);
			s++;
			continue;
		}
		if (*s < 0x20 || *s == 0x7f) {
			control(out, *s, mode);
			s++;
			continue;
		}
		n = textsafe_utf8_len(s);
		c1 = c1_control(s, n);
		if (c1 >= 0) {
			control(out, (unsigned)c1, mode);
		} else if (n) {
			strbuf_append(out, (const char *)s, n);
		} else if (cut_at_end(s)) {
			return;
		} else {
			/* U+FFFD REPLACEMENT CHARACTER for the byte at S */
			strbuf_puts(out, mode == TEXTSAFE_JSON ? "\\ufffd" : "\xef\xbf\xbd");
			n = 1;
		}
		s += n;
	}
}
