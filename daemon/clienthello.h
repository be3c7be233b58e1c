/* clienthello: the server name (SNI) a TLS client asks for, read from the
 * first bytes it sends, and the in-order gathering of those bytes when
 * they come in several TCP segments.
 *
 * Sites that share an address are told apart by this name, before the
 * server answers with a certificate. Everything here reads bytes from the
 * network, so the parser is strict and bounded: it never reads past the
 * bytes it is given, it walks every length field against the bytes that
 * enclose it, and a ClientHello larger than CLIENTHELLO_MAX is refused
 * rather than gathered (a client's first flight is 0.3-2 kB; post-quantum
 * key shares make it ~1.8 kB).
 *
 * A ClientHello may span several TLS records (a handshake message may be
 * fragmented), and those records several TCP segments; the parser takes
 * the client's stream from its first byte, whatever it has so far, and
 * says whether it needs more. */
#ifndef GK_CLIENTHELLO_H
#define GK_CLIENTHELLO_H

#include <stddef.h>
#include <stdint.h>

#include "server_names.h"

/* The most of a client's first bytes we look at: 4 records' worth of a
 * ClientHello and its record headers. */
#define CLIENTHELLO_MAX 8192

enum clienthello_status {
	CLIENTHELLO_NEED_MORE, /* a valid start: the rest is still to come */
	CLIENTHELLO_NAME,      /* a ClientHello with a server name */
	CLIENTHELLO_NO_NAME,   /* a whole ClientHello without server name */
	CLIENTHELLO_INVALID,   /* not TLS, malformed, or larger than MAX */
};

struct clienthello {
	/* CLIENTHELLO_NAME: the host name in canonical form
	 * (server_name_canonical()). */
	char name[SERVER_NAME_MAX + 1];
	size_t name_len;
	/* The bytes the ClientHello took, records included (NAME and
	 * NO_NAME): what must be held before deciding. */
	size_t consumed;
	/* CLIENTHELLO_INVALID: why, for a debug log and the counters. */
	const char *why;
};

/* Reads BUF[0..LEN), the client's stream from its first byte. */
enum clienthello_status clienthello_parse(const uint8_t *buf, size_t len, struct clienthello *out);

/* The status as a short word for logs and metrics labels. */
const char *clienthello_status_name(enum clienthello_status status);

/* The client's first bytes, gathered from TCP segments that may come out
 * of order, twice (retransmits) or overlapping. Bytes past a gap are kept
 * too (the client's stack resends only its oldest unacknowledged segment,
 * and nothing is acknowledged while the hello is held), and LEN is how far
 * the bytes run without a gap from the first. Overlapping bytes must equal
 * the ones kept: a client that sends two versions of its ClientHello is
 * trying to show us one name and the server another. */
struct clienthello_stream {
	uint32_t start_seq; /* the sequence number of the first byte */
	size_t len;         /* bytes[0..len) are all there */
	uint8_t bytes[CLIENTHELLO_MAX];
	uint8_t have[CLIENTHELLO_MAX / 8]; /* which bytes are there */
};

enum clienthello_add {
	CLIENTHELLO_ADDED,     /* new bytes kept (LEN may not have grown) */
	CLIENTHELLO_DUPLICATE, /* nothing new (a retransmit) */
	CLIENTHELLO_CONFLICT,  /* overlaps with different bytes */
	CLIENTHELLO_FULL,      /* reaches past CLIENTHELLO_MAX */
};

/* START_SEQ: the client's initial sequence number + 1 (its first data
 * byte). */
void clienthello_stream_init(struct clienthello_stream *stream, uint32_t start_seq);
enum clienthello_add clienthello_stream_add(struct clienthello_stream *stream, uint32_t seq,
					    const uint8_t *data, size_t len);

#endif
