#include "server_names.h"

#include <string.h>

size_t server_name_canonical(const uint8_t *name, size_t len, char *out)
{
	size_t label = 0;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > SERVER_NAME_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		uint8_t c = name[i];

		if (c >= 'A' && c <= 'Z')
			c = (uint8_t)(c - 'A' + 'a');
		if (c == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
		out[i] = (char)c;
	}
	if (label == 0)
		return 0; /* "a." was cut to "a", but "a.." ends in an empty label */
	out[len] = '\0';
	return len;
}

int server_name_parse(const char *text, char *out, const char **why)
{
	size_t len = strlen(text), skip = 0;

	if (len >= 2 && text[0] == '*' && text[1] == '.') {
		memcpy(out, "*.", 2);
		skip = 2;
	}
	if (strchr(text + skip, '*')) {
		*why = "a wildcard is allowed only as a whole first label (\"*.example.com\")";
		return -1;
	}
	/* A wildcard's suffix leaves room for the label it stands for. */
	if ((skip && len - skip > SERVER_NAME_MAX - 2) ||
	    !server_name_canonical((const uint8_t *)text + skip, len - skip, out + skip)) {
		*why = "not a host name (letters, digits, '-', '_' in dot-separated labels of 1 to 63, at "
		       "most 253 in all)";
		return -1;
	}
	return 0;
}

size_t server_name_match(const char *pattern, const char *name)
{
	size_t plen = strlen(pattern), nlen = strlen(name);

	if (pattern[0] != '*')
		return strcmp(pattern, name) == 0 ? SERVER_NAME_MAX + 1 + plen : 0;
	/* "*.example.com" (plen 13): NAME must end in ".example.com" with at
	 * least one byte before the dot. */
	if (nlen < plen || strcmp(name + nlen - (plen - 1), pattern + 1) != 0)
		return 0;
	return plen - 1;
}

bool server_names_overlap(const char *a, const char *b)
{
	return strcmp(a, b) == 0;
}
