/* Fuzz target: clienthello_parse on any first bytes a client could send,
 * and the gathering of those bytes from segments cut at fuzzer-chosen
 * places. A name it finds must be a clean DNS name; what it decides on the
 * bytes it consumed must not change when more bytes follow; gathering in
 * any cut gives back the bytes in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clienthello.h"
#include "fuzz_check.h"

static void check_name(const struct clienthello *ch)
{
	CHECK(ch->name_len > 0 && ch->name_len <= SERVER_NAME_MAX);
	CHECK(strlen(ch->name) == ch->name_len);
	CHECK(ch->name[0] != '.' && ch->name[ch->name_len - 1] != '.');
	for (size_t i = 0; i < ch->name_len; i++) {
		char c = ch->name[i];
		CHECK((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.');
		CHECK(!(c == '.' && ch->name[i + 1] == '.'));
	}
}

static void check_parse(const uint8_t *data, size_t size)
{
	struct clienthello ch, again;
	enum clienthello_status status = clienthello_parse(data, size, &ch);

	if (status == CLIENTHELLO_NAME)
		check_name(&ch);
	if (status == CLIENTHELLO_NAME || status == CLIENTHELLO_NO_NAME) {
		CHECK(ch.consumed > 0 && ch.consumed <= size);
		/* The decision rests on the consumed bytes alone. */
		CHECK(clienthello_parse(data, ch.consumed, &again) == status);
		CHECK(again.consumed == ch.consumed);
		CHECK(strcmp(again.name, ch.name) == 0);
		/* One byte fewer: not yet decided (or already refused). */
		CHECK(clienthello_parse(data, ch.consumed - 1, &again) != CLIENTHELLO_NAME);
	}
	if (status == CLIENTHELLO_INVALID)
		CHECK(ch.why != NULL);
}

static void check_stream(const uint8_t *data, size_t size)
{
	static struct clienthello_stream stream;
	uint32_t isn = size >= 4 ? (uint32_t)data[0] << 24 | (uint32_t)data[1] << 16 | (uint32_t)data[2] << 8 |
					   data[3]
				 : 0;
	size_t pos = 0, step = size > 4 ? data[4] % 97 + 1 : 1;

	clienthello_stream_init(&stream, isn);
	/* Each segment resends the last few bytes of the previous one. */
	while (pos < size) {
		size_t back = pos >= 3 ? 3 : pos, len = size - pos < step ? size - pos : step;
		enum clienthello_add r = clienthello_stream_add(&stream, isn + (uint32_t)(pos - back),
								data + pos - back, len + back);
		if (r == CLIENTHELLO_FULL)
			break;
		CHECK(r == CLIENTHELLO_ADDED);
		pos += len;
	}
	CHECK(stream.len == pos);
	CHECK(memcmp(stream.bytes, data, pos) == 0);
	CHECK(stream.len <= CLIENTHELLO_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_parse(data, size);
	check_stream(data, size);
	return 0;
}
