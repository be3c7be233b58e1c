/* Fuzz target: textsafe_append, through which every byte a checked server
 * chooses (a certificate's subject, a check's reason) reaches a terminal,
 * a Prometheus scrape or JSON. Whatever the input, each output must be
 * valid UTF-8 with no C0 control, DEL or C1, and the JSON and label forms
 * must decode back (their escapes) to nothing raw either. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "textsafe.h"
#include "fuzz_check.h"

static void check_safe(const struct strbuf *b)
{
	const unsigned char *s = (const unsigned char *)(b->len ? b->data : "");

	while (*s) {
		size_t n = textsafe_utf8_len(s);

		CHECK(n > 0);
		CHECK(n > 1 || (*s >= 0x20 && *s != 0x7f));
		CHECK(n != 2 || !(s[0] == 0xc2 && s[1] <= 0x9f));
		s += n;
	}
	CHECK((const char *)s == (b->len ? b->data + b->len : (const char *)s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum textsafe_mode modes[] = { TEXTSAFE_TERMINAL, TEXTSAFE_PROMETHEUS,
						    TEXTSAFE_JSON };
	char *text = malloc(size + 1);

	if (!text)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
		struct strbuf b;

		strbuf_init(&b, 0);
		textsafe_append(&b, text, modes[m]);
		CHECK(!strbuf_failed(&b));
		check_safe(&b);
		/* the unquoted forms never end a quoted string early */
		if (modes[m] != TEXTSAFE_TERMINAL)
			for (size_t i = 0; i < b.len; i++)
				if (b.data[i] == '"')
					CHECK(i > 0 && b.data[i - 1] == '\\');
		strbuf_free(&b);
	}
	free(text);
	return 0;
}
