#include "clienthello.h"

#include <stdbool.h>
#include <string.h>

enum {
	RECORD_HANDSHAKE = 22,
	RECORD_HEADER = 5,
	RECORD_MAX = 16384, /* RFC 8446 5.1: a plaintext record's limit */
	HANDSHAKE_CLIENT_HELLO = 1,
	HANDSHAKE_HEADER = 4,
	EXT_SERVER_NAME = 0,
	SNI_HOST_NAME = 0,
};

/* A reader over bytes that all belong to one length-delimited field: each
 * take fails once the field is used up, and the failure sticks. */
struct reader {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *take(struct reader *r, size_t n)
{
	const uint8_t *at = r->p;

	if (r->bad || n > r->left) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return at;
}

static unsigned take_u8(struct reader *r)
{
	const uint8_t *b = take(r, 1);
	return b ? b[0] : 0;
}

static unsigned take_u16(struct reader *r)
{
	const uint8_t *b = take(r, 2);
	return b ? (unsigned)b[0] << 8 | b[1] : 0;
}

/* A sub-reader over the next N bytes of R (a vector with its length). */
static struct reader take_field(struct reader *r, size_t n)
{
	struct reader field = {.p = take(r, n), .left = n, .bad = false};

	if (!field.p)
		field = (struct reader){.bad = true};
	return field;
}

static enum clienthello_status invalid(struct clienthello *out, const char *why)
{
	out->why = why;
	return CLIENTHELLO_INVALID;
}

/* RFC 6066 3: the name as the client wrote it, kept only if it is a
 * host name (no NUL, no spaces, no empty label). */
static bool take_host_name(const uint8_t *name, size_t len, struct clienthello *out)
{
	out->name_len = server_name_canonical(name, len, out->name);
	return out->name_len > 0;
}

/* The server_name extension's body: a list of names, of which a client
 * sends one host_name (RFC 6066 forbids two of one type). */
static enum clienthello_status read_server_name(struct reader ext, struct clienthello *out)
{
	struct reader list = take_field(&ext, take_u16(&ext));
	bool have_host = false;

	if (ext.bad || ext.left != 0 || list.left == 0)
		return invalid(out, "bad server_name extension");
	while (list.left > 0) {
		unsigned type = take_u8(&list);
		size_t len = take_u16(&list);
		const uint8_t *name = take(&list, len);

		if (!name)
			return invalid(out, "bad server_name list");
		if (type != SNI_HOST_NAME)
			continue;
		if (have_host)
			return invalid(out, "two host names");
		if (!take_host_name(name, len, out))
			return invalid(out, "server name is not a host name");
		have_host = true;
	}
	return have_host ? CLIENTHELLO_NAME : CLIENTHELLO_NO_NAME;
}

/* RFC 8446 4.1.2 (and 5246 7.4.1.2): the ClientHello body, whole. */
static enum clienthello_status read_client_hello(struct reader body, struct clienthello *out)
{
	enum clienthello_status status = CLIENTHELLO_NO_NAME;
	bool seen_server_name = false;
	unsigned version = take_u16(&body);
	struct reader extensions;

	take(&body, 32); /* random */
	take_field(&body, take_u8(&body)); /* legacy_session_id */
	struct reader suites = take_field(&body, take_u16(&body));
	struct reader compression = take_field(&body, take_u8(&body));
	if (body.bad || version >> 8 != 3 || suites.left < 2 || suites.left % 2 != 0 ||
	    compression.left < 1)
		return invalid(out, "bad ClientHello");
	if (body.left == 0)
		return CLIENTHELLO_NO_NAME; /* no extensions at all (SSL 3, old TLS) */

	extensions = take_field(&body, take_u16(&body));
	if (body.bad || body.left != 0)
		return invalid(out, "bad extensions length");
	while (extensions.left > 0) {
		unsigned type = take_u16(&extensions);
		struct reader ext = take_field(&extensions, take_u16(&extensions));

		if (extensions.bad)
			return invalid(out, "bad extension");
		if (type != EXT_SERVER_NAME)
			continue;
		if (seen_server_name)
			return invalid(out, "two server_name extensions");
		seen_server_name = true;
		status = read_server_name(ext, out);
		if (status == CLIENTHELLO_INVALID)
			return status;
	}
	return status;
}

enum clienthello_status clienthello_parse(const uint8_t *buf, size_t len, struct clienthello *out)
{
	/* The handshake bytes gathered from the records read so far. */
	uint8_t handshake[CLIENTHELLO_MAX];
	size_t have = 0, pos = 0;

	memset(out, 0, sizeof(*out));
	if (len > CLIENTHELLO_MAX)
		len = CLIENTHELLO_MAX;
	while (pos < len) {
		size_t avail = len - pos, record_len, part;

		/* Judge each header byte as soon as it is there: a client that
		 * is not speaking TLS is told apart on its first segment. */
		if (buf[pos] != RECORD_HANDSHAKE)
			return invalid(out, "not a TLS handshake record");
		if (avail >= 2 && buf[pos + 1] != 3)
			return invalid(out, "not a TLS record version");
		if (avail < RECORD_HEADER)
			return CLIENTHELLO_NEED_MORE;
		record_len = (size_t)buf[pos + 3] << 8 | buf[pos + 4];
		if (record_len == 0 || record_len > RECORD_MAX)
			return invalid(out, "bad record length");
		part = avail - RECORD_HEADER < record_len ? avail - RECORD_HEADER : record_len;
		memcpy(handshake + have, buf + pos + RECORD_HEADER, part);
		have += part;
		pos += RECORD_HEADER + part;

		if (have > 0 && handshake[0] != HANDSHAKE_CLIENT_HELLO)
			return invalid(out, "first handshake message is not a ClientHello");
		if (have >= HANDSHAKE_HEADER) {
			size_t body_len = (size_t)handshake[1] << 16 | (size_t)handshake[2] << 8 | handshake[3];
			struct reader body = {.p = handshake + HANDSHAKE_HEADER, .left = body_len};
			enum clienthello_status status;

			/* Records cost 5 bytes each on top of the body: a body
			 * that cannot fit in MAX with one header is refused now
			 * instead of after gathering. */
			if (body_len + HANDSHAKE_HEADER + RECORD_HEADER > CLIENTHELLO_MAX)
				return invalid(out, "ClientHello larger than the limit");
			if (have >= HANDSHAKE_HEADER + body_len) {
				status = read_client_hello(body, out);
				if (status != CLIENTHELLO_INVALID)
					out->consumed = pos - (have - HANDSHAKE_HEADER - body_len);
				return status;
			}
		}
	}
	if (len == CLIENTHELLO_MAX)
		return invalid(out, "ClientHello larger than the limit");
	return CLIENTHELLO_NEED_MORE;
}

const char *clienthello_status_name(enum clienthello_status status)
{
	switch (status) {
	case CLIENTHELLO_NEED_MORE:
		return "partial";
	case CLIENTHELLO_NAME:
		return "name";
	case CLIENTHELLO_NO_NAME:
		return "no_name";
	case CLIENTHELLO_INVALID:
		break;
	}
	return "invalid";
}

void clienthello_stream_init(struct clienthello_stream *stream, uint32_t start_seq)
{
	stream->start_seq = start_seq;
	stream->len = 0;
	memset(stream->have, 0, sizeof(stream->have));
}

static bool have_byte(const struct clienthello_stream *stream, size_t at)
{
	return stream->have[at / 8] >> (at % 8) & 1;
}

enum clienthello_add clienthello_stream_add(struct clienthello_stream *stream, uint32_t seq,
					    const uint8_t *data, size_t len)
{
	/* Offsets in 32-bit sequence space: wraps are handled by the
	 * unsigned subtraction; a segment that starts before the stream (an
	 * offset near 2^32) is clipped to its part from the first byte on. */
	uint32_t offset = seq - stream->start_seq;
	size_t skip = 0;
	bool fresh = false;

	if (offset > UINT32_MAX / 2) {
		skip = (size_t)(UINT32_MAX - offset) + 1;
		if (skip >= len)
			return CLIENTHELLO_DUPLICATE;
		offset = 0;
	}
	data += skip;
	len -= skip;
	if (offset >= sizeof(stream->bytes) || len > sizeof(stream->bytes) - offset)
		return CLIENTHELLO_FULL;
	/* every byte checked before any is kept: a conflict changes nothing */
	for (size_t i = 0; i < len; i++) {
		if (!have_byte(stream, offset + i))
			fresh = true;
		else if (stream->bytes[offset + i] != data[i])
			return CLIENTHELLO_CONFLICT;
	}
	if (!fresh)
		return CLIENTHELLO_DUPLICATE;
	for (size_t i = 0; i < len; i++) {
		stream->bytes[offset + i] = data[i];
		stream->have[(offset + i) / 8] |= (uint8_t)(1u << ((offset + i) % 8));
	}
	while (stream->len < sizeof(stream->bytes) && have_byte(stream, stream->len))
		stream->len++;
	return CLIENTHELLO_ADDED;
}
