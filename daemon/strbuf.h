/* strbuf: a growable text buffer for building replies, with the JSON
 * string escaping the control socket needs (no JSON library for that).
 *
 * Errors are sticky: after an allocation failure or once the buffer would
 * pass its limit, every append is a no-op and strbuf_failed() says so, so
 * a builder checks once at the end instead of after every line. */
#ifndef GK_STRBUF_H
#define GK_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *data; /* NUL-terminated when len > 0 */
	size_t len, cap;
	size_t limit; /* 0: no limit */
	bool failed;
};

void strbuf_init(struct strbuf *sb, size_t limit);
void strbuf_free(struct strbuf *sb);
/* Forgets the contents and the failure, keeps the memory. */
void strbuf_reset(struct strbuf *sb);
bool strbuf_failed(const struct strbuf *sb);

void strbuf_append(struct strbuf *sb, const char *data, size_t len);
void strbuf_puts(struct strbuf *sb, const char *text);
__attribute__((format(printf, 2, 3))) void strbuf_printf(struct strbuf *sb, const char *fmt, ...);
/* TEXT as a JSON string, quotes included, made safe by textsafe.h: always
 * valid JSON, and no control character (C0, DEL, C1) but as a \u escape. */
void strbuf_json_string(struct strbuf *sb, const char *text);

#endif
