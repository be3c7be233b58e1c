#include "etcd_client.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "log.h"
#include "strbuf.h"

#define DEFAULT_REQUEST_TIMEOUT_MS 2000
#define MAX_EVENTS 16

struct transfer {
	struct transfer *next;
	struct etcd_client *client;
	CURL *easy;
	uint64_t id;
	enum etcd_op op;
	bool is_watch;
	etcd_client_done_fn *done;
	etcd_client_watch_fn *on_msg;
	void *arg;
	/* the reply (unary), or the stream's bytes not yet split into lines */
	struct strbuf body;
	size_t limit;
	size_t line_len; /* watch: bytes since the last newline */
	bool too_big;
	char errbuf[CURL_ERROR_SIZE];
};

struct etcd_client {
	int epfd;
	CURLM *multi;
	struct curl_slist *headers;
	char **endpoints;
	size_t n_endpoints, endpoint;
	char *ca_file, *cert_file, *key_file;
	long request_timeout_ms, connect_timeout_ms;
	/* curl's timer: when to call it back with CURL_SOCKET_TIMEOUT (0: none) */
	uint64_t deadline_ms;
	uint64_t next_id;
	struct transfer *transfers; /* in the multi handle */
	struct transfer *abandoning; /* taken out by next_endpoint, callbacks due */
	struct transfer *watch;      /* also in transfers */
};

/* libcurl's global state is process-wide: set up by the first client, torn
 * down with the last, so a daemon without fleet config never touches it. */
static unsigned curl_users;

static const char *const paths[] = {
	[ETCD_OP_RANGE] = "/v3/kv/range",
	[ETCD_OP_PUT] = "/v3/kv/put",
	[ETCD_OP_DELETE] = "/v3/kv/deleterange",
	[ETCD_OP_TXN] = "/v3/kv/txn",
	[ETCD_OP_LEASE_GRANT] = "/v3/lease/grant",
	[ETCD_OP_LEASE_KEEPALIVE] = "/v3/lease/keepalive",
	[ETCD_OP_LEASE_REVOKE] = "/v3/lease/revoke",
};

const char *etcd_result_kind_name(enum etcd_result_kind kind)
{
	switch (kind) {
	case ETCD_RESULT_OK:
		return "ok";
	case ETCD_RESULT_ETCD_ERROR:
		return "etcd error";
	case ETCD_RESULT_HTTP_ERROR:
		return "HTTP error";
	case ETCD_RESULT_TIMEOUT:
		return "timeout";
	case ETCD_RESULT_TRANSPORT:
		return "transport error";
	case ETCD_RESULT_BAD_REPLY:
		return "bad reply";
	case ETCD_RESULT_ABANDONED:
		return "abandoned";
	case ETCD_RESULT_WATCH_CANCELED:
		return "watch canceled";
	}
	return "?";
}

/* R's detail, truncated if need be: it is for a person */
__attribute__((format(printf, 2, 3))) static void set_detail(struct etcd_result *r,
							      const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(r->detail, sizeof(r->detail), fmt, ap);
	va_end(ap);
}

/* ---- curl's callbacks: only bookkeeping, never a caller's callback */

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct etcd_client *c = userp;
	struct epoll_event ev = { 0 };

	if (what == CURL_POLL_REMOVE) {
		/* curl may already have closed it, which removed it */
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, fd, NULL);
		return 0;
	}
	ev.events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
	ev.data.fd = fd;
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 &&
	    (errno != ENOENT || epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)) {
		log_warn_errno("etcd: cannot watch socket %d", fd);
		return -1;
	}
	return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct etcd_client *c = userp;

	if (timeout_ms < 0)
		c->deadline_ms = 0;
	else
		c->deadline_ms = clock_now_ms() + (uint64_t)timeout_ms;
	return 0;
}

static size_t write_cb(char *data, size_t size, size_t n, void *userp)
{
	struct transfer *t = userp;
	size_t len = size * n;

	if (t->is_watch) {
		/* bound the line being received; complete lines are split off
		 * by the next dispatch */
		const char *last = memrchr(data, '\n', len);

		t->line_len = last ? len - (size_t)(last + 1 - data) : t->line_len + len;
		/* complete lines wait for the next dispatch (or, in an HTTP
		 * error's body, for the end): bound those too */
		if (t->line_len > ETCD_CLIENT_MAX_WATCH_LINE ||
		    t->body.len + len > 2 * (size_t)ETCD_CLIENT_MAX_WATCH_LINE) {
			t->too_big = true;
			return 0;
		}
	} else if (t->body.len + len > t->limit) {
		t->too_big = true;
		return 0;
	}
	strbuf_append(&t->body, data, len);
	if (strbuf_failed(&t->body)) {
		t->too_big = true;
		return 0;
	}
	return len;
}

/* ---- the client */

static CURLM *multi_new(struct etcd_client *c)
{
	CURLM *m = curl_multi_init();

	if (!m)
		return NULL;
	if (curl_multi_setopt(m, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
	    curl_multi_setopt(m, CURLMOPT_SOCKETDATA, c) != CURLM_OK ||
	    curl_multi_setopt(m, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
	    curl_multi_setopt(m, CURLMOPT_TIMERDATA, c) != CURLM_OK) {
		curl_multi_cleanup(m);
		return NULL;
	}
	return m;
}

static char *dup_or_null(const char *s, bool *failed)
{
	char *d;

	if (!s)
		return NULL;
	d = strdup(s);
	if (!d)
		*failed = true;
	return d;
}

struct etcd_client *etcd_client_open(const struct etcd_client_opts *opts)
{
	struct etcd_client *c;
	bool failed = false;

	if (!opts->n_endpoints) {
		log_error("etcd: no endpoint");
		return NULL;
	}
	if (curl_users == 0 && curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		log_error("etcd: cannot initialise libcurl");
		return NULL;
	}
	curl_users++;
	c = calloc(1, sizeof(*c));
	if (!c)
		goto fail;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	c->endpoints = calloc(opts->n_endpoints, sizeof(*c->endpoints));
	if (c->epfd < 0 || !c->endpoints)
		goto fail;
	c->n_endpoints = opts->n_endpoints;
	for (size_t i = 0; i < opts->n_endpoints; i++) {
		/* a trailing slash would make "//v3/..." */
		size_t n = strlen(opts->endpoints[i]);

		while (n && opts->endpoints[i][n - 1] == '/')
			n--;
		c->endpoints[i] = strndup(opts->endpoints[i], n);
		failed |= !c->endpoints[i];
	}
	c->ca_file = dup_or_null(opts->ca_file, &failed);
	c->cert_file = dup_or_null(opts->cert_file, &failed);
	c->key_file = dup_or_null(opts->key_file, &failed);
	c->request_timeout_ms = opts->request_timeout_ms > 0 ? opts->request_timeout_ms
							     : DEFAULT_REQUEST_TIMEOUT_MS;
	c->connect_timeout_ms =
		opts->connect_timeout_ms > 0 ? opts->connect_timeout_ms : c->request_timeout_ms;
	c->next_id = 1;
	/* hasleader: fail fast on a member cut off from the quorum. Expect:
	 * no 100-continue round trip for bodies past 1 KiB. */
	{
		struct curl_slist *h = NULL;
		static const char *const lines[] = { "Content-Type: application/json",
						     "Grpc-Metadata-hasleader: true", "Expect:" };

		for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
			struct curl_slist *more = curl_slist_append(h, lines[i]);

			if (!more) {
				failed = true;
				break;
			}
			h = more;
		}
		c->headers = h;
	}
	c->multi = multi_new(c);
	if (failed || !c->multi)
		goto fail;
	return c;
fail:
	log_error("etcd: cannot open the client: out of memory or descriptors");
	etcd_client_close(c);
	if (!c && --curl_users == 0)
		curl_global_cleanup();
	return NULL;
}

static void transfer_free(struct transfer *t)
{
	if (t->easy)
		curl_easy_cleanup(t->easy);
	strbuf_free(&t->body);
	free(t);
}

/* Takes T out of the multi handle and the list, without a callback. */
static void transfer_detach(struct etcd_client *c, struct transfer *t)
{
	for (struct transfer **p = &c->transfers; *p; p = &(*p)->next)
		if (*p == t) {
			*p = t->next;
			break;
		}
	t->next = NULL;
	curl_multi_remove_handle(c->multi, t->easy);
	if (c->watch == t)
		c->watch = NULL;
}

void etcd_client_close(struct etcd_client *c)
{
	if (!c)
		return;
	while (c->transfers) {
		struct transfer *t = c->transfers;

		transfer_detach(c, t);
		transfer_free(t);
	}
	while (c->abandoning) {
		struct transfer *t = c->abandoning;

		c->abandoning = t->next;
		transfer_free(t);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	curl_slist_free_all(c->headers);
	for (size_t i = 0; c->endpoints && i < c->n_endpoints; i++)
		free(c->endpoints[i]);
	free(c->endpoints);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	if (c->epfd >= 0)
		close(c->epfd);
	free(c);
	if (--curl_users == 0)
		curl_global_cleanup();
}

int etcd_client_fd(const struct etcd_client *c)
{
	return c->epfd;
}

int etcd_client_timeout_ms(const struct etcd_client *c)
{
	uint64_t now;

	if (!c->deadline_ms)
		return -1;
	now = clock_now_ms();
	if (c->deadline_ms <= now)
		return 0;
	return c->deadline_ms - now > 60000 ? 60000 : (int)(c->deadline_ms - now);
}

const char *etcd_client_endpoint(const struct etcd_client *c)
{
	return c->endpoints[c->endpoint];
}

bool etcd_client_watching(const struct etcd_client *c)
{
	return c->watch != NULL;
}

/* ---- starting a transfer */

static struct transfer *transfer_start(struct etcd_client *c, const char *path, char *body,
				       bool is_watch)
{
	struct transfer *t;
	char url[1024];
	CURL *e;
	bool ok;

	if (!body) {
		log_warn("etcd: cannot build the request for %s (key or value too long?)", path);
		return NULL;
	}
	t = calloc(1, sizeof(*t));
	e = curl_easy_init();
	if (!t || !e ||
	    snprintf(url, sizeof(url), "%s%s", c->endpoints[c->endpoint], path) >= (int)sizeof(url)) {
		log_warn("etcd: cannot start a request to %s", path);
		goto fail;
	}
	t->client = c;
	t->easy = e;
	t->is_watch = is_watch;
	strbuf_init(&t->body, 0);
	ok = curl_easy_setopt(e, CURLOPT_URL, url) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") == CURLE_OK &&
	     /* the gateway speaks HTTP/1.1; h2 on that port is gRPC */
	     curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1) == CURLE_OK &&
	     /* never an http_proxy from the environment */
	     curl_easy_setopt(e, CURLOPT_PROXY, "") == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_HTTPHEADER, c->headers) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, body) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->connect_timeout_ms) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, is_watch ? 0L : c->request_timeout_ms) ==
		     CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_TCP_KEEPIDLE, 10L) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_TCP_KEEPINTVL, 5L) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_WRITEDATA, t) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_PRIVATE, t) == CURLE_OK &&
	     curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf) == CURLE_OK &&
	     (!c->ca_file || curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file) == CURLE_OK) &&
	     (!c->cert_file || curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file) == CURLE_OK) &&
	     (!c->key_file || curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file) == CURLE_OK);
	if (!ok) {
		log_warn("etcd: libcurl refused an option for %s", path);
		goto fail;
	}
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		log_warn("etcd: cannot start a request to %s", path);
		goto fail;
	}
	free(body);
	t->id = c->next_id++;
	t->next = c->transfers;
	c->transfers = t;
	return t;
fail:
	free(body);
	if (e)
		curl_easy_cleanup(e);
	if (t)
		strbuf_free(&t->body);
	free(t);
	return NULL;
}

static uint64_t unary(struct etcd_client *c, enum etcd_op op, char *body, etcd_client_done_fn *done,
		      void *arg)
{
	struct transfer *t = transfer_start(c, paths[op], body, false);

	if (!t)
		return 0;
	t->op = op;
	t->done = done;
	t->arg = arg;
	t->limit = op == ETCD_OP_RANGE ? ETCD_CLIENT_MAX_RANGE_REPLY : ETCD_CLIENT_MAX_REPLY;
	return t->id;
}

uint64_t etcd_client_range(struct etcd_client *c, const void *key, size_t key_len, bool prefix,
			   etcd_client_done_fn *done, void *arg)
{
	return unary(c, ETCD_OP_RANGE, etcd_json_range_body(key, key_len, prefix), done, arg);
}

uint64_t etcd_client_put(struct etcd_client *c, const void *key, size_t key_len, const void *value,
			 size_t value_len, int64_t lease, etcd_client_done_fn *done, void *arg)
{
	return unary(c, ETCD_OP_PUT, etcd_json_put_body(key, key_len, value, value_len, lease), done,
		     arg);
}

uint64_t etcd_client_delete(struct etcd_client *c, const void *key, size_t key_len, bool prefix,
			    etcd_client_done_fn *done, void *arg)
{
	return unary(c, ETCD_OP_DELETE, etcd_json_delete_body(key, key_len, prefix), done, arg);
}

uint64_t etcd_client_txn_create(struct etcd_client *c, const void *key, size_t key_len,
				const void *value, size_t value_len, int64_t lease,
				etcd_client_done_fn *done, void *arg)
{
	return unary(c, ETCD_OP_TXN, etcd_json_txn_create_body(key, key_len, value, value_len, lease),
		     done, arg);
}

uint64_t etcd_client_lease_grant(struct etcd_client *c, int64_t ttl_s, etcd_client_done_fn *done,
				 void *arg)
{
	return unary(c, ETCD_OP_LEASE_GRANT, etcd_json_lease_grant_body(ttl_s), done, arg);
}

uint64_t etcd_client_lease_keepalive(struct etcd_client *c, int64_t id, etcd_client_done_fn *done,
				     void *arg)
{
	return unary(c, ETCD_OP_LEASE_KEEPALIVE, etcd_json_lease_keepalive_body(id), done, arg);
}

uint64_t etcd_client_lease_revoke(struct etcd_client *c, int64_t id, etcd_client_done_fn *done,
				  void *arg)
{
	return unary(c, ETCD_OP_LEASE_REVOKE, etcd_json_lease_revoke_body(id), done, arg);
}

uint64_t etcd_client_watch(struct etcd_client *c, const void *key, size_t key_len, bool prefix,
			   int64_t start_revision, etcd_client_watch_fn *on_msg,
			   etcd_client_done_fn *on_end, void *arg)
{
	struct transfer *t;

	if (c->watch) {
		struct transfer *old = c->watch;

		transfer_detach(c, old);
		transfer_free(old);
	}
	t = transfer_start(c, "/v3/watch",
			   etcd_json_watch_body(key, key_len, prefix, start_revision, true), true);
	if (!t)
		return 0;
	t->on_msg = on_msg;
	t->done = on_end;
	t->arg = arg;
	c->watch = t;
	return t->id;
}

void etcd_client_cancel(struct etcd_client *c, uint64_t id)
{
	for (struct transfer *t = c->transfers; t; t = t->next)
		if (t->id == id) {
			transfer_detach(c, t);
			transfer_free(t);
			return;
		}
	for (struct transfer **p = &c->abandoning; *p; p = &(*p)->next)
		if ((*p)->id == id) {
			struct transfer *t = *p;

			*p = t->next;
			transfer_free(t);
			return;
		}
}

/* ---- finishing */

static long http_status(struct transfer *t)
{
	long status = 0;

	curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* What curl's outcome CODE and the HTTP status make of T, before the body
 * is read. true: R is final. */
static bool transport_result(struct transfer *t, CURLcode code, struct etcd_result *r)
{
	memset(r, 0, sizeof(*r));
	r->http_status = (int)http_status(t);
	if (t->too_big) {
		r->kind = ETCD_RESULT_BAD_REPLY;
		set_detail(r, "reply past %zu bytes",
			 t->is_watch ? (size_t)ETCD_CLIENT_MAX_WATCH_LINE : t->limit);
		return true;
	}
	if (code == CURLE_OK)
		return false;
	r->kind = code == CURLE_OPERATION_TIMEDOUT ? ETCD_RESULT_TIMEOUT : ETCD_RESULT_TRANSPORT;
	set_detail(r, "curl error %d: %s", (int)code,
		 t->errbuf[0] ? t->errbuf : curl_easy_strerror(code));
	return true;
}

/* A non-200 reply: etcd's error if the body is one. */
static void http_error(struct transfer *t, struct etcd_result *r)
{
	struct etcd_reply reply = { 0 };

	if (t->body.len &&
	    etcd_json_parse_reply(ETCD_OP_PUT, t->body.data, t->body.len, &reply, &r->error) == 0 &&
	    r->error.grpc_code) {
		r->kind = ETCD_RESULT_ETCD_ERROR;
		set_detail(r, "HTTP %d, code %d", r->http_status,
			 r->error.grpc_code);
	} else {
		struct etcd_watch_msg m = { 0 };

		r->kind = ETCD_RESULT_HTTP_ERROR;
		set_detail(r, "HTTP %d", r->http_status);
		/* a stream's error shape */
		if (t->body.len &&
		    etcd_json_parse_watch(t->body.data, t->body.len, &m) == 0 &&
		    m.kind == ETCD_WATCH_ERROR) {
			r->kind = ETCD_RESULT_ETCD_ERROR;
			r->error = m.error;
		}
		etcd_watch_msg_free(&m);
	}
	etcd_reply_free(&reply);
}

static void finish_unary(struct transfer *t, CURLcode code)
{
	struct etcd_result r;
	struct etcd_reply reply = { 0 };

	if (!transport_result(t, code, &r)) {
		if (r.http_status != 200) {
			http_error(t, &r);
		} else if (etcd_json_parse_reply(t->op, t->body.data ? t->body.data : "",
						 t->body.len, &reply, &r.error) < 0) {
			r.kind = ETCD_RESULT_BAD_REPLY;
			set_detail(&r, "not a %s reply", paths[t->op]);
		} else if (r.error.grpc_code) {
			r.kind = ETCD_RESULT_ETCD_ERROR;
			set_detail(&r, "code %d", r.error.grpc_code);
		} else {
			r.kind = ETCD_RESULT_OK;
			r.reply = &reply;
		}
	}
	if (t->done)
		t->done(t->arg, &r);
	etcd_reply_free(&reply);
}

/* Ends the watch T (detached already) with R. */
static void end_watch(struct transfer *t, const struct etcd_result *r)
{
	if (t->done)
		t->done(t->arg, r);
	transfer_free(t);
}

/* Hands the watch's complete lines to its callback. A canceled or error
 * message, or a line that does not parse, ends the watch. true: the watch
 * is still on. */
static bool deliver_lines(struct etcd_client *c)
{
	struct transfer *t = c->watch;
	uint64_t id = t->id;
	size_t start = 0;

	/* an HTTP error's body is read whole at the end */
	if (http_status(t) != 200)
		return true;
	while (c->watch && c->watch->id == id) {
		struct etcd_result r = { 0 };
		struct etcd_watch_msg m;
		char *nl = t->body.len > start ? memchr(t->body.data + start, '\n', t->body.len - start)
					       : NULL;
		size_t len;

		if (!nl)
			break;
		len = (size_t)(nl - (t->body.data + start));
		if (len == 0 || (len == 1 && t->body.data[start] == '\r')) {
			start += len + 1;
			continue;
		}
		if (etcd_json_parse_watch(t->body.data + start, len, &m) < 0) {
			r.kind = ETCD_RESULT_BAD_REPLY;
			r.http_status = 200;
			set_detail(&r, "a watch line that does not parse");
			transfer_detach(c, t);
			end_watch(t, &r);
			return false;
		}
		start += len + 1;
		t->on_msg(t->arg, &m);
		if (!c->watch || c->watch->id != id) {
			/* the callback cancelled or replaced the watch */
			etcd_watch_msg_free(&m);
			return false;
		}
		if (m.kind == ETCD_WATCH_CANCELED || m.kind == ETCD_WATCH_ERROR) {
			r.http_status = 200;
			if (m.kind == ETCD_WATCH_CANCELED) {
				r.kind = ETCD_RESULT_WATCH_CANCELED;
				set_detail(&r, "canceled by etcd%s%s",
					 m.cancel_reason[0] ? ": " : "", m.cancel_reason);
			} else {
				r.kind = ETCD_RESULT_ETCD_ERROR;
				r.error = m.error;
				set_detail(&r, "stream error, code %d",
					 m.error.grpc_code);
			}
			etcd_watch_msg_free(&m);
			transfer_detach(c, t);
			end_watch(t, &r);
			return false;
		}
		etcd_watch_msg_free(&m);
	}
	if (start) {
		memmove(t->body.data, t->body.data + start, t->body.len - start);
		t->body.len -= start;
		t->body.data[t->body.len] = '\0';
	}
	return true;
}

static void finish_watch(struct etcd_client *c, struct transfer *t, CURLcode code)
{
	struct etcd_result r;

	/* what came before the end still counts */
	if (!deliver_lines(c))
		return;
	transfer_detach(c, t);
	if (!transport_result(t, code, &r)) {
		if (r.http_status != 200) {
			http_error(t, &r);
		} else {
			r.kind = ETCD_RESULT_OK;
			set_detail(&r, "the stream ended");
		}
	}
	end_watch(t, &r);
}

static struct transfer *find_easy(struct etcd_client *c, CURL *easy)
{
	for (struct transfer *t = c->transfers; t; t = t->next)
		if (t->easy == easy)
			return t;
	return NULL;
}

void etcd_client_dispatch(struct etcd_client *c)
{
	struct epoll_event evs[MAX_EVENTS];
	int running, n, left;
	CURLMsg *msg;

	do {
		n = epoll_wait(c->epfd, evs, MAX_EVENTS, 0);
		for (int i = 0; i < n; i++) {
			int flags = (evs[i].events & EPOLLIN ? CURL_CSELECT_IN : 0) |
				    (evs[i].events & EPOLLOUT ? CURL_CSELECT_OUT : 0) |
				    (evs[i].events & (EPOLLERR | EPOLLHUP) ? CURL_CSELECT_ERR : 0);

			curl_multi_socket_action(c->multi, evs[i].data.fd, flags, &running);
		}
	} while (n == MAX_EVENTS);
	if (c->deadline_ms && c->deadline_ms <= clock_now_ms()) {
		c->deadline_ms = 0;
		curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	}
	if (c->watch)
		deliver_lines(c);
	/* one message at a time: a callback may remove other transfers, whose
	 * messages curl then drops */
	while ((msg = curl_multi_info_read(c->multi, &left))) {
		struct transfer *t;
		CURLcode code;

		if (msg->msg != CURLMSG_DONE)
			continue;
		code = msg->data.result;
		t = find_easy(c, msg->easy_handle);
		if (!t)
			continue;
		if (t->is_watch) {
			finish_watch(c, t, code);
		} else {
			transfer_detach(c, t);
			finish_unary(t, code);
			transfer_free(t);
		}
	}
}

void etcd_client_next_endpoint(struct etcd_client *c)
{
	CURLM *fresh = multi_new(c);

	/* everything on the old endpoint goes on the abandoned list first, so
	 * that the callbacks below can already start requests on the new one */
	while (c->transfers) {
		struct transfer *t = c->transfers;

		transfer_detach(c, t);
		t->next = c->abandoning;
		c->abandoning = t;
	}
	/* a fresh multi handle closes the old endpoint's idle connections */
	if (fresh) {
		curl_multi_cleanup(c->multi);
		c->multi = fresh;
		c->deadline_ms = 0;
	}
	c->endpoint = (c->endpoint + 1) % c->n_endpoints;
	log_info("etcd: now using %s", c->endpoints[c->endpoint]);
	while (c->abandoning) {
		struct transfer *t = c->abandoning;
		struct etcd_result r = { .kind = ETCD_RESULT_ABANDONED };

		c->abandoning = t->next;
		set_detail(&r, "abandoned: moved to %s",
			 c->endpoints[c->endpoint]);
		if (t->done)
			t->done(t->arg, &r);
		transfer_free(t);
	}
}
