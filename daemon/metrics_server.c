/* metrics_server: the HTTP listener for the metrics, its retries and its
 * limits. See metrics_server.h. */
#include "metrics_server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "config.h"
#include "engine.h"
#include "listener.h"
#include "log.h"
#include "metrics.h"
#include "peerlimit.h"
#include "prom.h"

/* One per listener slot; the fd and the deadline are the listener's. */
struct metrics_client {
	char in[METRICS_MAX_REQUEST];
	size_t in_len;
	struct strbuf out;
	size_t out_off;
	bool replying;
};

struct metrics_server {
	struct engine *engine;
	struct listener *listener; /* NULL: not listening (none configured, or down) */
	/* what it listens on, or tries to: the config's metrics.listen */
	bool enabled;
	struct config_addr addr;
	uint16_t port;
	/* while down: the last error, since when (wall clock, ms), the
	 * next try (monotonic) and the wait after it */
	int error;
	int64_t down_since_ms;
	uint64_t next_try_ms;
	uint32_t retry_ms;
	uint64_t bind_failures, refused_per_peer, refused_full, evicted, expired;
	struct metrics_client clients[METRICS_MAX_CLIENTS];
	struct peerlimit_slot peers[METRICS_MAX_CLIENTS];
};

/* "127.0.0.1:9468", "[::1]:9468" */
static const char *listen_str(const struct metrics_server *s, char *buf, size_t len)
{
	char addr[64];

	config_addr_str(&s->addr, addr, sizeof(addr));
	snprintf(buf, len, s->addr.family == AF_INET6 ? "[%s]:%u" : "%s:%u", addr, s->port);
	return buf;
}

/* ---- the clients ---- */

static void client_close(struct metrics_server *s, size_t slot)
{
	listener_remove(s->listener, slot);
	strbuf_free(&s->clients[slot].out);
	s->peers[slot].used = false;
}

static void respond(struct metrics_server *s, size_t slot, const char *status,
		    const struct strbuf *body)
{
	struct metrics_client *c = &s->clients[slot];

	strbuf_printf(&c->out, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		      "Connection: close\r\n\r\n", status,
		      body ? METRICS_CONTENT_TYPE : "text/plain; charset=utf-8",
		      body ? body->len : strlen(status) + 1);
	if (body)
		strbuf_append(&c->out, body->data ? body->data : "", body->len);
	else
		strbuf_printf(&c->out, "%s\n", status);
	c->replying = true;
	/* a new deadline for the reply alone: a slow reader gets no more */
	listener_set_deadline(s->listener, slot, clock_now_ms() + METRICS_WRITE_TIMEOUT_MS);
	listener_watch(s->listener, slot, EPOLLOUT);
}

/* The request line decides; headers are read (to the blank line) and
 * ignored. */
static void handle_request(struct metrics_server *s, size_t slot)
{
	struct metrics_client *c = &s->clients[slot];
	char *line_end = memchr(c->in, '\n', c->in_len);
	char *sp, *path, *path_end;
	struct strbuf body;

	if (!line_end) {
		respond(s, slot, "400 Bad Request", NULL);
		return;
	}
	*line_end = '\0';
	sp = strchr(c->in, ' ');
	if (!sp) {
		respond(s, slot, "400 Bad Request", NULL);
		return;
	}
	*sp = '\0';
	path = sp + 1;
	path_end = strchr(path, ' ');
	if (path_end)
		*path_end = '\0';
	if (strcmp(c->in, "GET") != 0) {
		respond(s, slot, "405 Method Not Allowed", NULL);
		return;
	}
	if (strcmp(path, "/metrics") != 0 && strncmp(path, "/metrics?", 9) != 0) {
		respond(s, slot, "404 Not Found", NULL);
		return;
	}
	strbuf_init(&body, 0);
	metrics_render(s->engine, &body);
	if (strbuf_failed(&body))
		respond(s, slot, "500 Internal Server Error", NULL);
	else
		respond(s, slot, "200 OK", &body);
	strbuf_free(&body);
}

static void on_ready(void *owner, size_t slot, uint32_t events)
{
	struct metrics_server *s = owner;
	struct metrics_client *c = &s->clients[slot];
	int fd = listener_client_fd(s->listener, slot);

	if (!c->replying) {
		ssize_t n = recv(fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len, MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(s, slot);
			return;
		}
		if (n < 0)
			return;
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n"))
			handle_request(s, slot);
		else if (c->in_len == sizeof(c->in) - 1)
			respond(s, slot, "431 Request Header Fields Too Large", NULL);
		if (!c->replying)
			return;
	}
	while (c->out_off < c->out.len) {
		ssize_t n = send(fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			client_close(s, slot);
			return;
		}
		c->out_off += (size_t)n;
	}
	client_close(s, slot);
}

/* A refused scraper hears why, if its socket takes the few bytes now. */
static void refuse(int fd)
{
	static const char busy[] = "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 0\r\n"
				   "Connection: close\r\n\r\n";

	(void)!send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static void on_accepted(void *owner, int fd)
{
	struct metrics_server *s = owner;
	struct sockaddr_storage sa = {0};
	socklen_t sa_len = sizeof(sa);
	struct peerlimit_peer peer;
	bool evict;
	int slot;

	if (getpeername(fd, (struct sockaddr *)&sa, &sa_len) < 0) {
		close(fd);
		return;
	}
	peerlimit_peer_of(&sa, &peer);
	slot = peerlimit_place(s->peers, METRICS_MAX_CLIENTS, METRICS_MAX_PER_PEER, &peer, &evict);
	if (slot < 0) {
		if (peerlimit_count(s->peers, METRICS_MAX_CLIENTS, &peer) >= METRICS_MAX_PER_PEER)
			s->refused_per_peer++;
		else
			s->refused_full++;
		refuse(fd);
		return;
	}
	if (evict) {
		client_close(s, (size_t)slot);
		s->evicted++;
	}
	slot = listener_add(s->listener, fd, EPOLLIN, clock_now_ms() + METRICS_REQUEST_TIMEOUT_MS);
	if (slot < 0) {
		close(fd);
		return;
	}
	memset(&s->clients[slot], 0, sizeof(s->clients[slot]));
	strbuf_init(&s->clients[slot].out, 0);
	s->peers[slot].used = true;
	s->peers[slot].peer = peer;
	s->peers[slot].since_ms = clock_now_ms();
}

static void on_expired(void *owner, size_t slot)
{
	struct metrics_server *s = owner;

	s->expired++;
	client_close(s, slot);
}

static const struct listener_handlers handlers = {
	.accepted = on_accepted,
	.ready = on_ready,
	.expired = on_expired,
};

/* ---- listening, and trying again ---- */

static int bind_socket(const struct metrics_server *s)
{
	struct sockaddr_storage sa = {0};
	socklen_t sa_len;
	int on = 1, fd, saved;

	if (s->addr.family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;
		in4->sin_family = AF_INET;
		in4->sin_port = htons(s->port);
		memcpy(&in4->sin_addr, s->addr.bytes, 4);
		sa_len = sizeof(*in4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(s->port);
		memcpy(&in6->sin6_addr, s->addr.bytes, 16);
		sa_len = sizeof(*in6);
	}
	fd = socket(s->addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    (s->addr.family == AF_INET6 &&
	     setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) ||
	    bind(fd, (struct sockaddr *)&sa, sa_len) < 0 || listen(fd, 64) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	return fd;
}

static void stop_listening(struct metrics_server *s)
{
	if (!s->listener)
		return;
	for (size_t i = 0; i < METRICS_MAX_CLIENTS; i++)
		if (listener_client_fd(s->listener, i) >= 0)
			client_close(s, i);
	listener_close(s->listener);
	s->listener = NULL;
}

/* One attempt. The first failure is an error in the log, a changed one a
 * warning; the same one again only at debug level, so a squatter cannot
 * fill the journal. */
static void try_listen(struct metrics_server *s)
{
	char where[80];
	int fd = bind_socket(s), err;

	listen_str(s, where, sizeof(where));
	if (fd >= 0)
		s->listener = listener_open("metrics", fd, METRICS_MAX_CLIENTS, &handlers, s);
	if (s->listener) {
		if (s->error)
			log_info("metrics: listening on http://%s/metrics after %" PRId64 " s down",
				 where, (clock_wall_ms() - s->down_since_ms) / 1000);
		else
			log_info("metrics: http://%s/metrics", where);
		s->error = 0;
		s->retry_ms = METRICS_RETRY_MIN_MS;
		return;
	}
	err = fd < 0 ? errno : ENOMEM;
	s->bind_failures++;
	if (s->error == 0) {
		s->down_since_ms = clock_wall_ms();
		log_error("metrics.listen: cannot listen on %s: %s; SYN verdicts and rules are "
			  "unaffected, retrying after %u s, backing off to every %u s", where,
			  strerror(err), METRICS_RETRY_MIN_MS / 1000, METRICS_RETRY_MAX_MS / 1000);
	} else if (err != s->error) {
		log_warn("metrics.listen: still cannot listen on %s: %s", where, strerror(err));
	} else {
		log_debug("metrics.listen: still cannot listen on %s: %s", where, strerror(err));
	}
	s->error = err;
	s->next_try_ms = clock_now_ms() + s->retry_ms;
	s->retry_ms = s->retry_ms * 2 > METRICS_RETRY_MAX_MS ? METRICS_RETRY_MAX_MS : s->retry_ms * 2;
}

/* Takes the config's metrics.listen; a change closes the old listener
 * and tries the new address at once. */
static void follow_config(struct metrics_server *s)
{
	const struct config *cfg = engine_config(s->engine);

	if (cfg->metrics.enabled == s->enabled &&
	    (!s->enabled || (cfg->metrics.port == s->port &&
			     memcmp(&cfg->metrics.addr, &s->addr, sizeof(s->addr)) == 0)))
		return;
	stop_listening(s);
	s->enabled = cfg->metrics.enabled;
	s->addr = cfg->metrics.addr;
	s->port = cfg->metrics.port;
	s->error = 0;
	s->retry_ms = METRICS_RETRY_MIN_MS;
	if (s->enabled)
		try_listen(s);
	else
		log_info("metrics: listener closed (metrics.listen removed)");
}

void metrics_server_dispatch(struct metrics_server *s)
{
	if (!s)
		return;
	follow_config(s);
	if (s->listener)
		listener_dispatch(s->listener);
	else if (s->enabled && clock_now_ms() >= s->next_try_ms)
		try_listen(s);
}

int metrics_server_fd(const struct metrics_server *s)
{
	return s && s->listener ? listener_fd(s->listener) : -1;
}

int metrics_server_timeout_ms(const struct metrics_server *s)
{
	uint64_t now;

	if (!s || !s->enabled)
		return -1;
	if (s->listener)
		return listener_timeout_ms(s->listener);
	now = clock_now_ms();
	return s->next_try_ms <= now ? 0 : (int)(s->next_try_ms - now);
}

int metrics_server_open(struct engine *engine, struct metrics_server **out)
{
	struct metrics_server *s = calloc(1, sizeof(*s));

	*out = NULL;
	if (!s) {
		log_error("metrics: out of memory");
		return -1;
	}
	s->engine = engine;
	follow_config(s);
	*out = s;
	return 0;
}

void metrics_server_close(struct metrics_server *s)
{
	if (!s)
		return;
	stop_listening(s);
	free(s);
}

/* ---- what status, stats and the exposition say of it ---- */

static const char *state_word(const struct metrics_server *s)
{
	return s->listener ? "listening" : "down";
}

void metrics_server_status_text(const struct metrics_server *s, struct strbuf *b)
{
	char where[80];

	if (!s || !s->enabled)
		return;
	listen_str(s, where, sizeof(where));
	if (s->listener) {
		strbuf_printf(b, "metrics        listening on http://%s/metrics\n", where);
		return;
	}
	strbuf_printf(b, "metrics        DOWN: cannot listen on %s: %s; down for %" PRId64
		      " s, next try in %d ms (SYN verdicts are unaffected)\n", where,
		      strerror(s->error), (clock_wall_ms() - s->down_since_ms) / 1000,
		      metrics_server_timeout_ms(s));
}

void metrics_server_status_json(const struct metrics_server *s, struct strbuf *b)
{
	char where[80];

	if (!s || !s->enabled)
		return;
	strbuf_puts(b, ",\"metrics\":{\"listen\":");
	strbuf_json_string(b, listen_str(s, where, sizeof(where)));
	strbuf_printf(b, ",\"state\":\"%s\"", state_word(s));
	if (!s->listener) {
		strbuf_puts(b, ",\"error\":");
		strbuf_json_string(b, strerror(s->error));
		strbuf_printf(b, ",\"down_since\":%" PRId64 ",\"next_try_ms\":%d",
			      s->down_since_ms / 1000, metrics_server_timeout_ms(s));
	}
	strbuf_printf(b, ",\"bind_failures\":%" PRIu64 ",\"refused_per_peer\":%" PRIu64
		      ",\"refused_full\":%" PRIu64 ",\"evicted\":%" PRIu64 ",\"expired\":%" PRIu64 "}",
		      s->bind_failures, s->refused_per_peer, s->refused_full, s->evicted, s->expired);
}

void metrics_server_render(const struct metrics_server *s, struct strbuf *b)
{
	if (!s || !s->enabled)
		return;
	prom_gauge(b, "gatekeeper_metrics_listener_up",
		   "1 if metrics.listen is bound (0: down, retried; see gatekeeperctl status).",
		   s->listener != NULL);
	prom_family(b, "gatekeeper_metrics_connections_ended_total", "counter",
		    "Metrics connections the listener ended early, by reason (per_peer and full: "
		    "refused at accept; evicted: for another peer; expired: past the request or "
		    "reply deadline).");
	strbuf_printf(b, "gatekeeper_metrics_connections_ended_total{reason=\"per_peer\"} %" PRIu64 "\n"
		      "gatekeeper_metrics_connections_ended_total{reason=\"full\"} %" PRIu64 "\n"
		      "gatekeeper_metrics_connections_ended_total{reason=\"evicted\"} %" PRIu64 "\n"
		      "gatekeeper_metrics_connections_ended_total{reason=\"expired\"} %" PRIu64 "\n",
		      s->refused_per_peer, s->refused_full, s->evicted, s->expired);
}
