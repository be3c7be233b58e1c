#include "strbuf.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "textsafe.h"

void strbuf_init(struct strbuf *sb, size_t limit)
{
	memset(sb, 0, sizeof(*sb));
	sb->limit = limit;
}

void strbuf_free(struct strbuf *sb)
{
	free(sb->data);
	strbuf_init(sb, sb->limit);
}

void strbuf_reset(struct strbuf *sb)
{
	sb->len = 0;
	sb->failed = false;
	if (sb->data)
		sb->data[0] = '\0';
}

bool strbuf_failed(const struct strbuf *sb)
{
	return sb->failed;
}

/* Room for LEN more bytes plus the terminating NUL. */
static bool reserve(struct strbuf *sb, size_t len)
{
	size_t need, cap;
	char *grown;

	if (sb->failed)
		return false;
	if (len > SIZE_MAX / 2 - sb->len || (sb->limit && sb->len + len > sb->limit)) {
		sb->failed = true;
		return false;
	}
	need = sb->len + len + 1;
	if (need <= sb->cap)
		return true;
	cap = sb->cap ? sb->cap : 256;
	while (cap < need)
		cap *= 2;
	grown = realloc(sb->data, cap);
	if (!grown) {
		sb->failed = true;
		return false;
	}
	sb->data = grown;
	sb->cap = cap;
	return true;
}

void strbuf_append(struct strbuf *sb, const char *data, size_t len)
{
	if (!reserve(sb, len))
		return;
	memcpy(sb->data + sb->len, data, len);
	sb->len += len;
	sb->data[sb->len] = '\0';
}

void strbuf_puts(struct strbuf *sb, const char *text)
{
	strbuf_append(sb, text, strlen(text));
}

void strbuf_printf(struct strbuf *sb, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0) {
		sb->failed = true;
		return;
	}
	if (!reserve(sb, (size_t)n))
		return;
	va_start(ap, fmt);
	vsnprintf(sb->data + sb->len, (size_t)n + 1, fmt, ap);
	va_end(ap);
	sb->len += (size_t)n;
}

void strbuf_json_string(struct strbuf *sb, const char *text)
{
	strbuf_append(sb, "\"", 1);
	textsafe_append(sb, text, TEXTSAFE_JSON);
	strbuf_append(sb, "\"", 1);
}
