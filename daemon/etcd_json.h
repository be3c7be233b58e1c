/* etcd_json: what gatekeeper sends to etcd 3.4's v3 JSON gateway and what
 * it reads back, as C structs. Pure: no I/O, no logging, nothing global,
 * so the unit tests and the fuzzer reach every line. The shapes it accepts
 * are the measured ones in FLEET-NOTES.md:
 *
 * - every 64-bit number is a JSON string ("123"); a JSON integer is taken
 *   too, anything else (a double, "12x", a value past int64, a negative)
 *   makes the message malformed;
 * - proto3 leaves zero values out: no kvs, no count, no succeeded, no TTL,
 *   no watch_id, no type for a PUT event all read as 0 / false / PUT;
 * - streamed calls (watch, lease keepalive) wrap the reply in "result";
 * - errors come as {"error":"..","message":"..","code":N} (unary) or
 *   {"error":{"grpc_code":N,"http_code":N,"message":".."}} (streams); both
 *   shapes are read wherever either may come.
 *
 * Keys and values are base64 in JSON and binary here: each carries its
 * length and is also NUL-terminated for convenience. Limits (below) bound
 * what one reply can make us allocate; a reply past any of them is refused
 * as a whole, since a partial view of a prefix would be silently wrong. */
#ifndef GK_ETCD_JSON_H
#define GK_ETCD_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Fleet keys are short paths; values are small JSON documents. */
#define ETCD_JSON_MAX_KEY 1024
#define ETCD_JSON_MAX_VALUE (64 * 1024)
/* kvs in one range reply, events in one watch message */
#define ETCD_JSON_MAX_ITEMS 100000
/* JSON nesting: the deepest real shape (txn body) is 5 */
#define ETCD_JSON_MAX_DEPTH 16

struct etcd_kv {
	char *key; /* never NULL once parsed */
	size_t key_len;
	char *value; /* "" when absent (a DELETE event's kv) */
	size_t value_len;
	int64_t create_revision, mod_revision, version, lease;
};

/* etcd's own refusal. grpc_code 0: none (success). http_code is only in
 * the stream shape; the caller knows the unary one from the HTTP status. */
struct etcd_error {
	int grpc_code;
	int http_code;
	char message[256]; /* truncated, NUL-terminated, raw bytes from etcd */
};

struct etcd_header {
	int64_t revision; /* 0 when absent (a canceled watch message) */
};

/* The unary calls; each names the reply shape etcd_json_parse_reply reads. */
enum etcd_op {
	ETCD_OP_RANGE,
	ETCD_OP_PUT,
	ETCD_OP_DELETE,
	ETCD_OP_TXN,
	ETCD_OP_LEASE_GRANT,
	ETCD_OP_LEASE_KEEPALIVE,
	ETCD_OP_LEASE_REVOKE,
};

/* One struct for every unary reply; the fields the op does not fill stay 0. */
struct etcd_reply {
	struct etcd_header header;
	struct etcd_kv *kvs; /* RANGE */
	size_t n_kvs;
	int64_t count; /* RANGE: matching keys (more than n_kvs with a limit) */
	bool more;     /* RANGE */
	int64_t deleted; /* DELETE */
	bool succeeded;  /* TXN: the compare held */
	int64_t id;      /* LEASE_GRANT, LEASE_KEEPALIVE */
	int64_t ttl;     /* LEASE_GRANT, LEASE_KEEPALIVE: 0 = the lease is gone */
};

/* Parses TEXT (LEN bytes, no NUL needed) as OP's reply. 0: parsed, and
 * then either OUT is filled (ERR->grpc_code 0) or TEXT was etcd's error
 * (ERR filled, OUT empty). -1: not JSON of that shape; OUT and ERR empty.
 * OUT is always freed with etcd_reply_free, whatever was returned. */
int etcd_json_parse_reply(enum etcd_op op, const char *text, size_t len, struct etcd_reply *out,
			  struct etcd_error *err);
void etcd_reply_free(struct etcd_reply *r);

enum etcd_watch_kind {
	ETCD_WATCH_CREATED,  /* the watch exists; events follow */
	ETCD_WATCH_EVENTS,   /* one or more events, in revision order */
	ETCD_WATCH_PROGRESS, /* header only: everything up to header.revision was sent */
	ETCD_WATCH_CANCELED, /* etcd ended the watch (compacted: compact_revision > 0) */
	ETCD_WATCH_ERROR,    /* the stream's error shape: see error */
};

enum etcd_event_type { ETCD_EVENT_PUT, ETCD_EVENT_DELETE };

struct etcd_event {
	enum etcd_event_type type;
	struct etcd_kv kv; /* a DELETE carries key and mod_revision only */
};

struct etcd_watch_msg {
	enum etcd_watch_kind kind;
	struct etcd_header header;
	int64_t watch_id;
	struct etcd_event *events;
	size_t n_events;
	int64_t compact_revision;  /* CANCELED */
	char cancel_reason[256];   /* CANCELED, may be empty */
	struct etcd_error error;   /* ERROR */
};

/* Parses one line of the watch stream (LEN bytes, without the newline).
 * 0 and OUT filled, or -1 (OUT empty). Free OUT with etcd_watch_msg_free. */
int etcd_json_parse_watch(const char *line, size_t len, struct etcd_watch_msg *out);
void etcd_watch_msg_free(struct etcd_watch_msg *m);

/* Request bodies: malloc'd NUL-terminated JSON, or NULL (out of memory,
 * or a key or value past the limits above). PREFIX makes the key a prefix:
 * range_end is the key with its last byte plus one (trailing 0xff bytes
 * dropped first; an empty or all-0xff prefix means every key from KEY on). */
char *etcd_json_range_body(const void *key, size_t key_len, bool prefix);
/* LEASE 0: no lease. */
char *etcd_json_put_body(const void *key, size_t key_len, const void *value, size_t value_len,
			 int64_t lease);
char *etcd_json_delete_body(const void *key, size_t key_len, bool prefix);
/* Puts KEY only if it does not exist (its create_revision is 0):
 * the reply's succeeded says whether it did. */
char *etcd_json_txn_create_body(const void *key, size_t key_len, const void *value,
				size_t value_len, int64_t lease);
/* START_REVISION 0: from now on. */
char *etcd_json_watch_body(const void *key, size_t key_len, bool prefix, int64_t start_revision,
			   bool progress_notify);
char *etcd_json_lease_grant_body(int64_t ttl_s);
char *etcd_json_lease_keepalive_body(int64_t id);
char *etcd_json_lease_revoke_body(int64_t id);

/* The base64 etcd uses (standard alphabet, padded). Encode: malloc'd
 * NUL-terminated text or NULL. Decode: strict (alphabet, length a multiple
 * of 4, padding only at the end); a malloc'd buffer of *OUT_LEN bytes plus a
 * NUL, or NULL when TEXT is not base64 or decodes past MAX_LEN bytes. */
char *etcd_json_base64_encode(const void *data, size_t len);
char *etcd_json_base64_decode(const char *text, size_t len, size_t max_len, size_t *out_len);

#endif
