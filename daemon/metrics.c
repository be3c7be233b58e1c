/* metrics: the Prometheus text (metrics_render) and the small HTTP
 * listener that serves it. See metrics.h. */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "engine.h"
#include "gk_build.h"
#include "health.h"
#include "log.h"
#include "queue.h"
#include "rules_watch.h"

#define LISTENER_TAG UINT64_MAX
#define EVENT_BATCH 16
#define ACCEPT_BUDGET 16

/* ---- the exposition ---- */

static void family(struct strbuf *b, const char *name, const char *type, const char *help)
{
	strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A label value: backslash, double quote and newline escaped. */
static void label_value(struct strbuf *b, const char *text)
{
	for (const char *p = text; *p; p++) {
		if (*p == '\\' || *p == '"')
			strbuf_printf(b, "\\%c", *p);
		else if (*p == '\n')
			strbuf_puts(b, "\\n");
		else
			strbuf_append(b, p, 1);
	}
}

static void site_label(struct strbuf *b, const char *name, const char *site)
{
	strbuf_printf(b, "%s{site=\"", name);
	label_value(b, site);
	strbuf_puts(b, "\"");
}

static void target_labels(struct strbuf *b, const char *name,
			  const struct health_target_info *t)
{
	char addr[64];

	site_label(b, name, t->site);
	strbuf_printf(b, ",address=\"%s\"", config_addr_str(&t->addr, addr, sizeof(addr)));
}

static const char *source_of(const struct site *site)
{
	if (site_source(site) == SITE_SOURCE_RUNTIME)
		return "runtime";
	return site_config(site)->state_auto ? "check" : "config";
}

static void render_sites(const struct sites *sites, struct strbuf *b)
{
	static const char *const sources[] = { "config", "runtime", "check" };
	size_t n = sites_count(sites);

	family(b, "gatekeeper_syn_verdicts_total", "counter",
	       "New connections (SYNs) decided, by site and verdict.");
	for (size_t i = 0; i < n; i++) {
		const struct site *site = sites_at(sites, i);
		struct site_counters c;

		site_get_counters(site, &c);
		site_label(b, "gatekeeper_syn_verdicts_total", site_name(site));
		strbuf_printf(b, ",verdict=\"accept\"} %" PRIu64 "\n", c.accepted);
		site_label(b, "gatekeeper_syn_verdicts_total", site_name(site));
		strbuf_printf(b, ",verdict=\"drop\"} %" PRIu64 "\n", c.dropped);
		site_label(b, "gatekeeper_syn_verdicts_total", site_name(site));
		strbuf_printf(b, ",verdict=\"reject\"} %" PRIu64 "\n", c.rejected);
	}
	family(b, "gatekeeper_site_online", "gauge", "1 if the site is online, 0 if offline.");
	for (size_t i = 0; i < n; i++) {
		const struct site *site = sites_at(sites, i);

		site_label(b, "gatekeeper_site_online", site_name(site));
		strbuf_printf(b, "} %d\n", site_state(site) == SITE_ONLINE);
	}
	family(b, "gatekeeper_site_state_source", "gauge",
	       "1 for what decides the site's state now: config, runtime (gatekeeperctl) or check.");
	for (size_t i = 0; i < n; i++) {
		const struct site *site = sites_at(sites, i);

		for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
			site_label(b, "gatekeeper_site_state_source", site_name(site));
			strbuf_printf(b, ",source=\"%s\"} %d\n", sources[s],
				      strcmp(source_of(site), sources[s]) == 0);
		}
	}
}

static void render_checks(const struct health *health, struct strbuf *b)
{
	size_t n = health_count(health);
	int64_t now = (int64_t)time(NULL);

	if (n == 0)
		return;
	family(b, "gatekeeper_check_up", "gauge",
	       "The check's judgement of an address after rise/fall: 1 up, 0 down (absent: no result yet).");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (t->state == HEALTH_UNKNOWN)
			continue;
		target_labels(b, "gatekeeper_check_up", t);
		strbuf_printf(b, "} %d\n", t->state == HEALTH_UP);
	}
	family(b, "gatekeeper_check_success", "gauge", "1 if the last check of the address passed.");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (!t->have_result)
			continue;
		target_labels(b, "gatekeeper_check_success", t);
		strbuf_printf(b, "} %d\n", t->last_ok);
	}
	family(b, "gatekeeper_check_duration_seconds", "gauge",
	       "How long the last check of the address took.");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (!t->have_result)
			continue;
		target_labels(b, "gatekeeper_check_duration_seconds", t);
		strbuf_printf(b, "} %" PRIu64 ".%06" PRIu64 "\n", t->latency_us / 1000000u,
			      t->latency_us % 1000000u);
	}
	family(b, "gatekeeper_checks_total", "counter", "Checks run, by address and result.");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		target_labels(b, "gatekeeper_checks_total", t);
		strbuf_printf(b, ",result=\"success\"} %" PRIu64 "\n", t->successes);
		target_labels(b, "gatekeeper_checks_total", t);
		strbuf_printf(b, ",result=\"failure\"} %" PRIu64 "\n", t->failures);
	}
	family(b, "gatekeeper_cert_expiry_seconds", "gauge",
	       "Seconds until the certificate the address served at its last handshake expires "
	       "(negative: expired).");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (!t->cert.present)
			continue;
		target_labels(b, "gatekeeper_cert_expiry_seconds", t);
		strbuf_printf(b, "} %" PRId64 "\n", t->cert.not_after - now);
	}
	family(b, "gatekeeper_cert_info", "gauge",
	       "The certificate the address served at its last handshake.");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (!t->cert.present)
			continue;
		target_labels(b, "gatekeeper_cert_info", t);
		strbuf_puts(b, ",subject=\"");
		label_value(b, t->cert.subject);
		strbuf_puts(b, "\",issuer=\"");
		label_value(b, t->cert.issuer);
		strbuf_puts(b, "\"} 1\n");
	}
}

static void render_queues(const struct config *cfg, struct strbuf *b)
{
	static const struct {
		const char *name, *type, *help;
		size_t offset;
	} figures[] = {
		{ "gatekeeper_queue_length", "gauge", "Packets waiting in the queue now.",
		  offsetof(struct queue_kernel_stats, queue_total) },
		{ "gatekeeper_queue_kernel_dropped_total", "counter",
		  "Packets the kernel dropped because the queue was full (fail_open false only: with "
		  "fail_open true they pass, and the kernel does not count them).",
		  offsetof(struct queue_kernel_stats, queue_dropped) },
		{ "gatekeeper_queue_user_dropped_total", "counter",
		  "Packets lost because the daemon's netlink socket buffer was full.",
		  offsetof(struct queue_kernel_stats, user_dropped) },
	};
	unsigned first = cfg->queue.num, last = first + cfg->queue.count;
	struct queue_kernel_stats k[64];
	bool listed[64];

	for (unsigned q = first; q < last && q - first < 64; q++)
		listed[q - first] = queue_read_kernel_stats((uint16_t)q, &k[q - first]) == 0;
	for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++) {
		family(b, figures[f].name, figures[f].type, figures[f].help);
		for (unsigned q = first; q < last && q - first < 64; q++) {
			uint64_t v;

			if (!listed[q - first])
				continue;
			memcpy(&v, (const char *)&k[q - first] + figures[f].offset, sizeof(v));
			strbuf_printf(b, "%s{queue=\"%u\"} %" PRIu64 "\n", figures[f].name, q, v);
		}
	}
}

static void counter(struct strbuf *b, const char *name, const char *help, uint64_t value)
{
	family(b, name, "counter", help);
	strbuf_printf(b, "%s %" PRIu64 "\n", name, value);
}

/* The kernel guard's own counters: what no daemon decided. */
static void render_guard(const struct engine *engine, struct strbuf *b)
{
	struct guard_counters g;
	int rc = engine_guard_counters(engine, &g);

	family(b, "gatekeeper_guard_installed", "gauge",
	       "1 if the daemon keeps a kernel guard (every backend but external).");
	strbuf_printf(b, "gatekeeper_guard_installed %d\n", rc > 0);
	family(b, "gatekeeper_guard_stale", "gauge",
	       "1 if the kernel refused the guard's last update (it holds older states).");
	strbuf_printf(b, "gatekeeper_guard_stale %d\n", engine_guard_stale(engine) ? 1 : 0);
	family(b, "gatekeeper_guard_offline_endpoints", "gauge",
	       "Offline address:port pairs the kernel guard holds.");
	strbuf_printf(b, "gatekeeper_guard_offline_endpoints %zu\n", engine_guard(engine)->count);
	family(b, "gatekeeper_guard_packets_total", "counter",
	       "Packets to offline sites that no daemon decided (queue bypassed or full, "
	       "fragments, unparseable), stopped by the kernel guard, by kind; as of the "
	       "rules watchdog's last check (every 2 s).");
	strbuf_printf(b, "gatekeeper_guard_packets_total{kind=\"syn_dropped\"} %" PRIu64 "\n"
		      "gatekeeper_guard_packets_total{kind=\"syn_rejected\"} %" PRIu64 "\n"
		      "gatekeeper_guard_packets_total{kind=\"fragment_dropped\"} %" PRIu64 "\n",
		      g.syn_dropped, g.syn_rejected, g.fragments);
}

void metrics_render(const struct engine *engine, struct strbuf *b)
{
	struct workers_stats w;
	uint64_t reloads_ok, reloads_failed;
	struct rules_watch_counts rw;

	family(b, "gatekeeper_build_info", "gauge", "The daemon's version, always 1.");
	strbuf_printf(b, "gatekeeper_build_info{version=\"%s\"} 1\n", GK_VERSION);
	render_sites(engine_sites(engine), b);
	render_checks(engine_health(engine), b);
	render_queues(engine_config(engine), b);
	engine_get_stats(engine, &w);
	counter(b, "gatekeeper_packets_total", "Packets the workers received from the queues.",
		w.packets);
	family(b, "gatekeeper_packets_passed_total", "counter",
	       "Packets the workers left to the kernel guard (or, backend external, dropped "
	       "when malformed), by reason.");
	strbuf_printf(b, "gatekeeper_packets_passed_total{reason=\"malformed\"} %" PRIu64 "\n"
		      "gatekeeper_packets_passed_total{reason=\"not_syn\"} %" PRIu64 "\n"
		      "gatekeeper_packets_passed_total{reason=\"unmanaged\"} %" PRIu64 "\n",
		      w.malformed, w.not_syn, w.unmanaged);
	counter(b, "gatekeeper_first_fragments_total",
		"First fragments of SYNs the workers decided (an evasion attempt, or a "
		"very odd client).", w.fragments);
	render_guard(engine, b);
	family(b, "gatekeeper_rsts_total", "counter", "TCP RSTs for rejected SYNs, by outcome.");
	strbuf_printf(b, "gatekeeper_rsts_total{result=\"sent\"} %" PRIu64 "\n"
		      "gatekeeper_rsts_total{result=\"failed\"} %" PRIu64 "\n",
		      w.rst_sent, w.rst_failed);
	family(b, "gatekeeper_worker_errors_total", "counter",
	       "Errors of the queue workers, by kind.");
	strbuf_printf(b, "gatekeeper_worker_errors_total{kind=\"recv\"} %" PRIu64 "\n"
		      "gatekeeper_worker_errors_total{kind=\"verdict\"} %" PRIu64 "\n",
		      w.recv_errors, w.verdict_errors);
	rules_watch_get_counts(&rw);
	counter(b, "gatekeeper_rules_reinstalled_total",
		"Times the daemon found its rules removed or damaged behind its back and "
		"reinstalled them.", rw.reinstalled);
	counter(b, "gatekeeper_rules_check_failures_total",
		"Rules checks that could not run, and reinstalls that failed.", rw.check_failures);
	engine_reload_counts(engine, &reloads_ok, &reloads_failed);
	family(b, "gatekeeper_reloads_total", "counter",
	       "Config reloads (SIGHUP, gatekeeperctl reload), by result.");
	strbuf_printf(b, "gatekeeper_reloads_total{result=\"success\"} %" PRIu64 "\n"
		      "gatekeeper_reloads_total{result=\"failure\"} %" PRIu64 "\n",
		      reloads_ok, reloads_failed);
}

/* ---- the HTTP listener ---- */

struct metrics_client {
	int fd; /* -1: free */
	uint32_t generation;
	char in[METRICS_MAX_REQUEST];
	size_t in_len;
	struct strbuf out;
	size_t out_off;
	bool replying;
	uint64_t deadline_ms;
};

struct metrics_server {
	struct engine *engine;
	int epoll_fd, listen_fd;
	uint32_t next_generation;
	struct metrics_client clients[METRICS_MAX_CLIENTS];
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void client_close(struct metrics_server *s, struct metrics_client *c)
{
	epoll_ctl(s->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	c->fd = -1;
	strbuf_free(&c->out);
}

static void client_watch(struct metrics_server *s, struct metrics_client *c, uint32_t events,
			 int op)
{
	struct epoll_event ev = {.events = events};

	ev.data.u64 = (uint64_t)c->generation << 32 | (uint64_t)(c - s->clients);
	if (epoll_ctl(s->epoll_fd, op, c->fd, &ev) < 0)
		c->deadline_ms = 0; /* ended at the next dispatch */
}

static void respond(struct metrics_server *s, struct metrics_client *c, const char *status,
		    const struct strbuf *body)
{
	strbuf_printf(&c->out, "HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
		      "Connection: close\r\n\r\n", status,
		      body ? METRICS_CONTENT_TYPE : "text/plain; charset=utf-8",
		      body ? body->len : strlen(status) + 1);
	if (body)
		strbuf_append(&c->out, body->data ? body->data : "", body->len);
	else
		strbuf_printf(&c->out, "%s\n", status);
	c->replying = true;
	client_watch(s, c, EPOLLOUT, EPOLL_CTL_MOD);
}

/* The request line decides; headers are read (to the blank line) and
 * ignored. */
static void handle_request(struct metrics_server *s, struct metrics_client *c)
{
	char *line_end = memchr(c->in, '\n', c->in_len);
	char *sp, *path, *path_end;
	struct strbuf body;

	if (!line_end) {
		respond(s, c, "400 Bad Request", NULL);
		return;
	}
	*line_end = '\0';
	sp = strchr(c->in, ' ');
	if (!sp) {
		respond(s, c, "400 Bad Request", NULL);
		return;
	}
	*sp = '\0';
	path = sp + 1;
	path_end = strchr(path, ' ');
	if (path_end)
		*path_end = '\0';
	if (strcmp(c->in, "GET") != 0) {
		respond(s, c, "405 Method Not Allowed", NULL);
		return;
	}
	if (strcmp(path, "/metrics") != 0 && strncmp(path, "/metrics?", 9) != 0) {
		respond(s, c, "404 Not Found", NULL);
		return;
	}
	strbuf_init(&body, 0);
	metrics_render(s->engine, &body);
	if (strbuf_failed(&body))
		respond(s, c, "500 Internal Server Error", NULL);
	else
		respond(s, c, "200 OK", &body);
	strbuf_free(&body);
}

static void client_event(struct metrics_server *s, struct metrics_client *c)
{
	if (!c->replying) {
		ssize_t n = recv(c->fd, c->in + c->in_len, sizeof(c->in) - 1 - c->in_len,
				 MSG_DONTWAIT);

		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			client_close(s, c);
			return;
		}
		if (n < 0)
			return;
		c->in_len += (size_t)n;
		c->in[c->in_len] = '\0';
		if (strstr(c->in, "\r\n\r\n") || strstr(c->in, "\n\n"))
			handle_request(s, c);
		else if (c->in_len == sizeof(c->in) - 1)
			respond(s, c, "431 Request Header Fields Too Large", NULL);
		if (!c->replying)
			return;
	}
	while (c->out_off < c->out.len) {
		ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off,
				 MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0) {
			client_close(s, c);
			return;
		}
		c->out_off += (size_t)n;
	}
	client_close(s, c);
}

static void accept_clients(struct metrics_server *s)
{
	for (int i = 0; i < ACCEPT_BUDGET; i++) {
		struct metrics_client *c = NULL;
		int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0)
			return;
		for (size_t k = 0; k < METRICS_MAX_CLIENTS && !c; k++)
			if (s->clients[k].fd < 0)
				c = &s->clients[k];
		if (!c) { /* a scraper retries; the oldest clients end by their deadline */
			close(fd);
			continue;
		}
		memset(c, 0, sizeof(*c));
		c->fd = fd;
		c->generation = ++s->next_generation;
		c->deadline_ms = now_ms() + METRICS_TIMEOUT_MS;
		strbuf_init(&c->out, 0);
		client_watch(s, c, EPOLLIN, EPOLL_CTL_ADD);
	}
}

void metrics_server_dispatch(struct metrics_server *s)
{
	struct epoll_event events[EVENT_BATCH];
	uint64_t now;
	int n;

	if (!s)
		return;
	n = epoll_wait(s->epoll_fd, events, EVENT_BATCH, 0);
	for (int i = 0; i < n; i++) {
		struct metrics_client *c;

		if (events[i].data.u64 == LISTENER_TAG) {
			accept_clients(s);
			continue;
		}
		c = &s->clients[events[i].data.u64 & 0xffffffffu];
		if (c->fd >= 0 && c->generation == (uint32_t)(events[i].data.u64 >> 32))
			client_event(s, c);
	}
	now = now_ms();
	for (size_t i = 0; i < METRICS_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0 && now >= s->clients[i].deadline_ms)
			client_close(s, &s->clients[i]);
}

int metrics_server_fd(const struct metrics_server *s)
{
	return s ? s->epoll_fd : -1;
}

int metrics_server_timeout_ms(const struct metrics_server *s)
{
	uint64_t now = now_ms(), next = 0;

	for (size_t i = 0; s && i < METRICS_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0 && (!next || s->clients[i].deadline_ms < next))
			next = s->clients[i].deadline_ms;
	if (!next)
		return -1;
	return next <= now ? 0 : (int)(next - now);
}

int metrics_server_start(struct engine *engine, struct metrics_server **out)
{
	const struct config *cfg = engine_config(engine);
	struct metrics_server *s;
	struct sockaddr_storage sa = {0};
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = LISTENER_TAG};
	socklen_t sa_len;
	char addr[64];
	int on = 1;

	*out = NULL;
	if (!cfg->metrics.enabled)
		return 0;
	s = calloc(1, sizeof(*s));
	if (!s) {
		log_error("metrics: out of memory");
		return -1;
	}
	s->engine = engine;
	for (size_t i = 0; i < METRICS_MAX_CLIENTS; i++)
		s->clients[i].fd = -1;
	s->listen_fd = -1;
	config_addr_str(&cfg->metrics.addr, addr, sizeof(addr));
	if (cfg->metrics.addr.family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;
		in4->sin_family = AF_INET;
		in4->sin_port = htons(cfg->metrics.port);
		memcpy(&in4->sin_addr, cfg->metrics.addr.bytes, 4);
		sa_len = sizeof(*in4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(cfg->metrics.port);
		memcpy(&in6->sin6_addr, cfg->metrics.addr.bytes, 16);
		sa_len = sizeof(*in6);
	}
	s->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	s->listen_fd = socket(cfg->metrics.addr.family,
			      SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->epoll_fd < 0 || s->listen_fd < 0 ||
	    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    (cfg->metrics.addr.family == AF_INET6 &&
	     setsockopt(s->listen_fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) < 0) ||
	    bind(s->listen_fd, (struct sockaddr *)&sa, sa_len) < 0 ||
	    listen(s->listen_fd, 64) < 0 ||
	    epoll_ctl(s->epoll_fd, EPOLL_CTL_ADD, s->listen_fd, &ev) < 0) {
		log_error_errno("metrics.listen: cannot listen on %s%s%s port %u",
				sa.ss_family == AF_INET6 ? "[" : "", addr,
				sa.ss_family == AF_INET6 ? "]" : "", cfg->metrics.port);
		metrics_server_stop(s);
		return -1;
	}
	log_info("metrics: http://%s%s%s:%u/metrics", sa.ss_family == AF_INET6 ? "[" : "", addr,
		 sa.ss_family == AF_INET6 ? "]" : "", cfg->metrics.port);
	*out = s;
	return 0;
}

void metrics_server_stop(struct metrics_server *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < METRICS_MAX_CLIENTS; i++)
		if (s->clients[i].fd >= 0)
			client_close(s, &s->clients[i]);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	if (s->epoll_fd >= 0)
		close(s->epoll_fd);
	free(s);
}
