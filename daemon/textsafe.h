/* textsafe: text from outside (a certificate's subject, a checked server's
 * answer) made safe for each place the daemon shows it.
 *
 * Every output is valid UTF-8 and carries no control character: C0, DEL
 * and C1 (U+0080..U+009F, which terminals take for escape sequences as
 * the bytes 0x80..0x9f) are written as a visible escape. A byte that
 * starts no valid UTF-8 sequence becomes U+FFFD, except a sequence cut off
 * by the end of the text (a fixed-size buffer filled to the brim), which
 * is dropped: the text is truncated at the last whole character. */
#ifndef GK_TEXTSAFE_H
#define GK_TEXTSAFE_H

#include <stddef.h>

#include "strbuf.h"

enum textsafe_mode {
	/* for a terminal (status text): controls as \xHH, the rest as is */
	TEXTSAFE_TERMINAL,
	/* a Prometheus label value (text format 0.0.4), without the quotes:
	 * \ " and newline escaped as the format says, other controls as
	 * the four characters \xHH (the backslash escaped) */
	TEXTSAFE_PROMETHEUS,
	/* a JSON string, without the quotes: " and \ escaped, controls as
	 * \n \r \t or \u00HH */
	TEXTSAFE_JSON,
};

/* Length of the valid UTF-8 sequence at S (1..4; 1 for ASCII), or 0 if
 * none starts there. Overlong forms, surrogates and code points past
 * U+10FFFF are invalid; a NUL ends every sequence. */
size_t textsafe_utf8_len(const unsigned char *s);

/* Appends TEXT (NUL-terminated) to OUT, made safe for MODE. */
void textsafe_append(struct strbuf *out, const char *text, enum textsafe_mode mode);

#endif
