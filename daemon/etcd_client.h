/* etcd_client: etcd 3.4's v3 JSON gateway over libcurl's multi interface,
 * on the main thread, never blocking. The client owns an epoll fd with
 * curl's sockets in it: main() polls etcd_client_fd(), sleeps at most
 * etcd_client_timeout_ms() and calls etcd_client_dispatch(), as for
 * listener.h. Every callback runs from etcd_client_dispatch() (or from
 * etcd_client_next_endpoint()), never from inside libcurl, so a callback
 * may start, cancel or move requests; it must not call etcd_client_close().
 *
 * One endpoint is in use at a time. Every request carries
 * `Grpc-Metadata-hasleader: true`, so a member without a leader fails it at
 * once (code 14) instead of hanging, and closes its watches.
 *
 * libcurl is initialised by the first etcd_client_open(), never before: a
 * daemon without fleet config never loads its state. Endpoints should be
 * literal addresses; a host name makes curl's threaded resolver start a
 * thread per lookup (the one thread this module may cause). */
#ifndef GK_ETCD_CLIENT_H
#define GK_ETCD_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "etcd_json.h"

/* Reply bodies past these end the transfer (ETCD_RESULT_BAD_REPLY). */
#define ETCD_CLIENT_MAX_RANGE_REPLY (16 * 1024 * 1024)
#define ETCD_CLIENT_MAX_REPLY (64 * 1024)
/* One line of the watch stream (one message, possibly many events). */
#define ETCD_CLIENT_MAX_WATCH_LINE (4 * 1024 * 1024)

struct etcd_client;

struct etcd_client_opts {
	/* "http://203.0.113.11:2379" or "https://...", no path; copied */
	const char *const *endpoints;
	size_t n_endpoints;
	/* PEM files, NULL for none: the CA that signs etcd's certificate
	 * (NULL: the system's), and this box's client certificate and key */
	const char *ca_file, *cert_file, *key_file;
	/* a whole unary request, connection included (0: 2000) */
	int request_timeout_ms;
	/* establishing a connection, for the watch too (0: request_timeout_ms) */
	int connect_timeout_ms;
};

enum etcd_result_kind {
	ETCD_RESULT_OK,          /* reply parsed: see reply (or watch: the stream ended cleanly) */
	ETCD_RESULT_ETCD_ERROR,  /* etcd refused: see error (and http_status) */
	ETCD_RESULT_HTTP_ERROR,  /* an HTTP status other than 200 without etcd's error body */
	ETCD_RESULT_TIMEOUT,     /* request_timeout_ms (or the connect timeout) passed */
	ETCD_RESULT_TRANSPORT,   /* connection refused, reset, TLS failure...: see detail */
	ETCD_RESULT_BAD_REPLY,   /* not the JSON expected, or past a size limit */
	ETCD_RESULT_ABANDONED,   /* etcd_client_next_endpoint() dropped it: re-issue if needed */
	ETCD_RESULT_WATCH_CANCELED, /* etcd canceled the watch (the message came first); closed */
};

struct etcd_result {
	enum etcd_result_kind kind;
	int http_status;   /* 0: no HTTP response */
	char detail[256];  /* for a person: curl's error text, the status, the limit... */
	struct etcd_error error;        /* ETCD_RESULT_ETCD_ERROR, and a watch's error message */
	const struct etcd_reply *reply; /* ETCD_RESULT_OK of a unary call, else NULL */
};

/* A unary call's completion; RESULT and what it points to live until the
 * callback returns. */
typedef void etcd_client_done_fn(void *arg, const struct etcd_result *result);
/* One watch message, in stream order. */
typedef void etcd_client_watch_fn(void *arg, const struct etcd_watch_msg *msg);

/* Opens a client on OPTS->endpoints[0]. NULL (logged) on failure. */
struct etcd_client *etcd_client_open(const struct etcd_client_opts *opts);
/* Ends every transfer without a callback and frees everything. */
void etcd_client_close(struct etcd_client *c);

int etcd_client_fd(const struct etcd_client *c);
/* How long the poll may sleep before etcd_client_dispatch() must run (-1: forever). */
int etcd_client_timeout_ms(const struct etcd_client *c);
/* Moves every transfer whose socket is ready or whose timer expired, and
 * calls the callbacks of the transfers that finished. */
void etcd_client_dispatch(struct etcd_client *c);

/* Unary calls. Each returns a request id (> 0) that etcd_client_cancel()
 * takes, or 0 (logged) when the request could not start (bad arguments, no
 * memory): then DONE is never called. Otherwise DONE is called exactly once,
 * from a later dispatch, unless the request is cancelled or the client
 * closed first. */
uint64_t etcd_client_range(struct etcd_client *c, const void *key, size_t key_len, bool prefix,
			   etcd_client_done_fn *done, void *arg);
uint64_t etcd_client_put(struct etcd_client *c, const void *key, size_t key_len, const void *value,
			 size_t value_len, int64_t lease, etcd_client_done_fn *done, void *arg);
uint64_t etcd_client_delete(struct etcd_client *c, const void *key, size_t key_len, bool prefix,
			    etcd_client_done_fn *done, void *arg);
/* Puts KEY only if it does not exist: reply->succeeded says whether it did. */
uint64_t etcd_client_txn_create(struct etcd_client *c, const void *key, size_t key_len,
				const void *value, size_t value_len, int64_t lease,
				etcd_client_done_fn *done, void *arg);
uint64_t etcd_client_lease_grant(struct etcd_client *c, int64_t ttl_s, etcd_client_done_fn *done,
				 void *arg);
/* reply->ttl 0: the lease is gone. */
uint64_t etcd_client_lease_keepalive(struct etcd_client *c, int64_t id, etcd_client_done_fn *done,
				     void *arg);
uint64_t etcd_client_lease_revoke(struct etcd_client *c, int64_t id, etcd_client_done_fn *done,
				  void *arg);

/* The one watch stream: KEY (a prefix with PREFIX) from START_REVISION (0:
 * now on), with progress notifications. ON_MSG gets every message; ON_END
 * is called once when the stream is over: a clean end (OK), a curl error,
 * an HTTP error, BAD_REPLY for a line that does not parse, or
 * WATCH_CANCELED after a canceled message (etcd keeps that response open;
 * the client closes it). No request timeout: it lives until it ends. A new
 * watch replaces the old one, whose ON_END is not called. Returns its id
 * (etcd_client_cancel() ends it without ON_END), or 0 (logged). */
uint64_t etcd_client_watch(struct etcd_client *c, const void *key, size_t key_len, bool prefix,
			   int64_t start_revision, etcd_client_watch_fn *on_msg,
			   etcd_client_done_fn *on_end, void *arg);
bool etcd_client_watching(const struct etcd_client *c);

/* Ends request or watch ID; its callback is never called. Unknown or
 * finished IDs are ignored. */
void etcd_client_cancel(struct etcd_client *c, uint64_t id);

/* Gives up the endpoint in use: every transfer on it ends now with
 * ETCD_RESULT_ABANDONED (the watch's ON_END too), its connections are
 * closed, and new requests go to the next endpoint, round-robin. */
void etcd_client_next_endpoint(struct etcd_client *c);
/* The endpoint new requests go to. */
const char *etcd_client_endpoint(const struct etcd_client *c);

/* "timeout", "abandoned"...: for logs. */
const char *etcd_result_kind_name(enum etcd_result_kind kind);

#endif
