/* health: see health.h. One epoll fd; each check in flight is a small
 * state machine (connect, TLS handshake, write the request, read the
 * response) moved forward by readiness events and ended by its deadline. */
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "gk_version.h"
#include "log.h"

#define EVENT_BATCH 64
#define MAX_SLEEP_MS 60000

enum phase { PHASE_CONNECT, PHASE_HANDSHAKE, PHASE_WRITE, PHASE_READ };

static const char *const phase_names[] = {
	[PHASE_CONNECT] = "connect",
	[PHASE_HANDSHAKE] = "TLS handshake",
	[PHASE_WRITE] = "HTTP request",
	[PHASE_READ] = "HTTP response",
};

struct target {
	struct health_target_info info;
	const struct config_site *site;
	SSL_CTX *ctx; /* shared by the targets of one site (reference counted) */
	uint64_t next_due_ms;
	int probe; /* slot in flight, or -1 */
	size_t first, count; /* the targets of the same site: contiguous */
};

struct probe {
	int fd; /* -1: free slot */
	uint32_t generation;
	size_t target;
	SSL *ssl;
	enum phase phase;
	uint64_t start_us, deadline_ms;
	uint32_t events;
	char *request;
	size_t request_len;
	char *response;
	size_t response_len;
};

struct health {
	int epoll_fd;
	struct target *targets;
	size_t n_targets;
	struct probe probes[HEALTH_MAX_IN_FLIGHT];
	size_t in_flight;
	uint32_t next_generation;
	size_t next_start; /* round-robin start of the due scan */
	bool mark_warned;
};

const char *health_state_name(enum health_state state)
{
	switch (state) {
	case HEALTH_UP: return "up";
	case HEALTH_DOWN: return "down";
	case HEALTH_UNKNOWN: break;
	}
	return "unknown";
}

/* ---- the HTTP verdict ---- */

int health_judge_http(const struct config_check *check, const char *buf, size_t len, bool eof,
		      char *reason, size_t reason_len)
{
	const char *eol = memmem(buf, len, "\r\n", 2), *head_end, *body;
	unsigned status = 0;
	bool expected = false;
	size_t body_len;

	if (!eol) {
		if (!eof && len < HEALTH_RESPONSE_MAX)
			return -1;
		snprintf(reason, reason_len, len ? "not an HTTP response" :
			 "connection closed without a response");
		return 0;
	}
	if (eol - buf < 12 || memcmp(buf, "HTTP/1.", 7) != 0 || buf[8] != ' ' ||
	    buf[9] < '1' || buf[9] > '5' || buf[10] < '0' || buf[10] > '9' || buf[11] < '0' ||
	    buf[11] > '9' || (eol - buf > 12 && buf[12] != ' ')) {
		snprintf(reason, reason_len, "not an HTTP response");
		return 0;
	}
	status = (unsigned)(buf[9] - '0') * 100 + (unsigned)(buf[10] - '0') * 10 +
		 (unsigned)(buf[11] - '0');
	for (size_t i = 0; i < check->n_expect_status; i++)
		expected |= check->expect_status[i] == status;
	snprintf(reason, reason_len, "HTTP %u", status);
	if (!expected)
		return 0;
	if (!check->expect_body)
		return 1;
	head_end = memmem(buf, len, "\r\n\r\n", 4);
	body = head_end ? head_end + 4 : buf + len;
	body_len = (size_t)(buf + len - body);
	if (head_end && memmem(body, body_len, check->expect_body, strlen(check->expect_body)))
		return 1;
	if (!eof && len < HEALTH_RESPONSE_MAX)
		return -1;
	snprintf(reason, reason_len, "HTTP %u, body without \"%.64s\"", status, check->expect_body);
	return 0;
}

/* ---- targets ---- */

static SSL_CTX *make_ctx(const struct config_site *site)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx) {
		log_error("check %s: cannot create a TLS context", site->name);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* many servers close after the response without a close_notify */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	if (site->check->ca_file) {
		if (SSL_CTX_load_verify_locations(ctx, site->check->ca_file, NULL) != 1)
			log_error("check %s: cannot load the CAs of %s; its checks will fail",
				  site->name, site->check->ca_file);
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	}
	ERR_clear_error();
	return ctx;
}

static size_t count_targets(const struct config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct config_site *s = &cfg->sites[i];
		if (s->check)
			n += s->check->addresses ? s->check->n_addresses : s->n_addresses;
	}
	return n;
}

/* The targets of CFG, all due now, nothing in flight. */
static struct target *build_targets(const struct config *cfg, size_t *count)
{
	size_t n = count_targets(cfg), k = 0;
	struct target *targets = calloc(n ? n : 1, sizeof(*targets));
	uint64_t now = clock_now_ms();

	if (!targets)
		return NULL;
	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct config_site *s = &cfg->sites[i];
		const struct config_addr *addrs;
		size_t n_addrs;
		SSL_CTX *ctx;

		if (!s->check)
			continue;
		ctx = make_ctx(s);
		addrs = s->check->addresses ? s->check->addresses : s->addresses;
		n_addrs = s->check->addresses ? s->check->n_addresses : s->n_addresses;
		for (size_t a = 0; a < n_addrs; a++) {
			struct target *t = &targets[k++];

			t->first = k - 1 - a;
			t->count = n_addrs;
			t->site = s;
			t->info.site = s->name;
			t->info.check = s->check;
			t->info.addr = addrs[a];
			t->info.port = s->check->port;
			t->next_due_ms = now;
			t->probe = -1;
			if (ctx && a > 0)
				SSL_CTX_up_ref(ctx);
			t->ctx = ctx;
		}
	}
	*count = k;
	return targets;
}

static void free_targets(struct target *targets, size_t n)
{
	for (size_t i = 0; i < n; i++)
		SSL_CTX_free(targets[i].ctx);
	free(targets);
}

/* ---- one check ---- */

static void probe_release(struct health *h, struct probe *p)
{
	if (p->ssl)
		SSL_free(p->ssl);
	if (p->fd >= 0) {
		epoll_ctl(h->epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
	}
	free(p->request);
	free(p->response);
	h->targets[p->target].probe = -1;
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	h->in_flight--;
	ERR_clear_error();
}

static void x509_name_text(const X509_NAME *name, char *buf, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	int n;

	buf[0] = '\0';
	if (!bio)
		return;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_read(bio, buf, (int)len - 1);
		buf[n > 0 ? n : 0] = '\0';
	}
	BIO_free(bio);
}

static void record_cert(struct target *t, SSL *ssl)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	struct health_cert *c = &t->info.cert;
	struct tm tm;

	memset(c, 0, sizeof(*c));
	if (!cert)
		return;
	c->present = true;
	x509_name_text(X509_get_subject_name(cert), c->subject, sizeof(c->subject));
	x509_name_text(X509_get_issuer_name(cert), c->issuer, sizeof(c->issuer));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		c->not_after = (int64_t)timegm(&tm);
	X509_free(cert);
}

/* UP if any target of the range is up, DOWN if all are down. */
static enum health_state range_state(const struct health *h, size_t first, size_t count)
{
	bool all_down = count > 0;

	for (size_t i = first; i < first + count; i++) {
		if (h->targets[i].info.state == HEALTH_UP)
			return HEALTH_UP;
		all_down &= h->targets[i].info.state == HEALTH_DOWN;
	}
	return all_down ? HEALTH_DOWN : HEALTH_UNKNOWN;
}

/* The verdict of target T's site, pushed to the live table when the site
 * is auto. */
static void apply_site(const struct health *h, struct sites *sites, const struct target *t,
		       bool log_change)
{
	const char *name = t->info.site;
	enum health_state verdict = range_state(h, t->first, t->count);
	struct site *site = sites ? sites_find(sites, name) : NULL;
	enum site_state want, was;

	if (!site || !site_config(site)->state_auto || verdict == HEALTH_UNKNOWN)
		return;
	want = verdict == HEALTH_UP ? SITE_ONLINE : SITE_OFFLINE;
	was = site_state(site);
	if (!site_set_check_state(site, want)) {
		if (log_change && was != want)
			log_info("site %s: the check says %s, but a run-time override keeps it %s "
				 "(gatekeeperctl reset %s hands it back to the check)", name,
				 config_state_name(want), config_state_name(was), name);
		return;
	}
	if (was != want)
		log_info("site %s: %s (%s), from its check", name, config_state_name(want),
			 config_action_name(site_action(site)));
}

static void probe_finish(struct health *h, struct probe *p, struct sites *sites, bool ok,
			 const char *reason)
{
	struct target *t = &h->targets[p->target];
	struct health_target_info *i = &t->info;
	const struct config_check *check = t->site->check;
	enum health_state was = i->state;
	char addr[INET6_ADDRSTRLEN];
	uint64_t now = clock_now_ms();

	i->have_result = true;
	i->last_ok = ok;
	snprintf(i->reason, sizeof(i->reason), "%s", reason);
	i->latency_us = clock_now_us() - p->start_us;
	i->last_time = (int64_t)time(NULL);
	if (ok) {
		i->successes++;
		i->ok_streak++;
		i->fail_streak = 0;
	} else {
		i->failures++;
		i->fail_streak++;
		i->ok_streak = 0;
	}
	if (i->state == HEALTH_UNKNOWN)
		i->state = ok ? HEALTH_UP : HEALTH_DOWN;
	else if (i->state == HEALTH_DOWN && ok && i->ok_streak >= check->rise)
		i->state = HEALTH_UP;
	else if (i->state == HEALTH_UP && !ok && i->fail_streak >= check->fall)
		i->state = HEALTH_DOWN;
	/* the next round is counted from this one's start, not its end */
	t->next_due_ms = p->start_us / 1000u + check->interval_ms;
	if (t->next_due_ms < now)
		t->next_due_ms = now;
	if (i->state != was)
		log_info("check %s %s port %u: %s (%s, %llu ms)", i->site,
			 config_addr_str(&i->addr, addr, sizeof(addr)), i->port,
			 health_state_name(i->state), reason,
			 (unsigned long long)(i->latency_us / 1000u));
	else
		log_debug("check %s %s port %u: %s (%s)", i->site,
			  config_addr_str(&i->addr, addr, sizeof(addr)), i->port,
			  ok ? "passed" : "failed", reason);
	probe_release(h, p);
	apply_site(h, sites, t, i->state != was);
}

static void set_events(struct health *h, struct probe *p, uint32_t events)
{
	struct epoll_event ev = {.events = events};

	if (p->events == events)
		return;
	ev.data.u64 = (uint64_t)p->generation << 32 | (uint64_t)(p - h->probes);
	if (epoll_ctl(h->epoll_fd, p->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev) == 0)
		p->events = events;
}

/* What went wrong in an OpenSSL call that did not just want I/O. */
static void tls_failure(struct probe *p, int ret, char *buf, size_t len)
{
	int err = SSL_get_error(p->ssl, ret);
	unsigned long code = ERR_peek_error();
	long verify = SSL_get_verify_result(p->ssl);
	const char *what = p->phase == PHASE_HANDSHAKE ? "handshake failed" : "TLS error";

	if (p->phase == PHASE_HANDSHAKE && verify != X509_V_OK)
		snprintf(buf, len, "certificate verify failed: %s",
			 X509_verify_cert_error_string(verify));
	else if (code && ERR_reason_error_string(code))
		snprintf(buf, len, "%s: %s", what, ERR_reason_error_string(code));
	else if (err == SSL_ERROR_SYSCALL && errno)
		snprintf(buf, len, "%s: %s", what, strerror(errno));
	else
		snprintf(buf, len, "%s: connection closed by the server", what);
}

static const char *host_header(const struct target *t, char *buf, size_t len)
{
	const struct config_check *check = t->site->check;
	char addr[INET6_ADDRSTRLEN];

	if (check->host)
		return check->host;
	if (check->sni)
		snprintf(buf, len, "%s", check->sni);
	else if (t->info.addr.family == AF_INET6)
		snprintf(buf, len, "[%s]", config_addr_str(&t->info.addr, addr, sizeof(addr)));
	else
		snprintf(buf, len, "%s", config_addr_str(&t->info.addr, addr, sizeof(addr)));
	if (t->info.port != 443)
		snprintf(buf + strlen(buf), len - strlen(buf), ":%u", t->info.port);
	return buf;
}

static int build_request(struct probe *p, const struct target *t)
{
	const struct config_check *check = t->site->check;
	char host[300];
	int n;

	n = asprintf(&p->request,
		     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatekeeperd/%s health check\r\n"
		     "Accept: */*\r\nConnection: close\r\n\r\n",
		     check->method, check->path, host_header(t, host, sizeof(host)), GK_VERSION);
	if (n < 0) {
		p->request = NULL;
		return -1;
	}
	p->request_len = (size_t)n;
	return 0;
}

/* The TLS server name: check.sni, else check.host when it is a name. */
static const char *sni_of(const struct config_check *check)
{
	struct config_addr addr;

	if (check->sni)
		return check->sni;
	if (check->host && !strpbrk(check->host, ":[") && config_parse_addr(check->host, &addr) < 0)
		return check->host;
	return NULL;
}

static int start_tls(struct probe *p, const struct target *t)
{
	const struct config_check *check = t->site->check;
	const char *sni = sni_of(check);
	const char *verify = check->verify_name ? check->verify_name : sni;

	if (!t->ctx)
		return -1;
	p->ssl = SSL_new(t->ctx);
	if (!p->ssl || SSL_set_fd(p->ssl, p->fd) != 1)
		return -1;
	if (sni && SSL_set_tlsext_host_name(p->ssl, sni) != 1)
		return -1;
	if (check->ca_file && verify && strcmp(verify, CONFIG_VERIFY_ANY_NAME) != 0 &&
	    SSL_set1_host(p->ssl, verify) != 1)
		return -1;
	SSL_set_connect_state(p->ssl);
	return 0;
}

/* Moves P as far as it goes without blocking; may finish (free) it. */
static void probe_step(struct health *h, struct probe *p, struct sites *sites)
{
	struct target *t = &h->targets[p->target];
	char reason[192];
	int ret = 0, err;

	for (;;) {
		switch (p->phase) {
		case PHASE_CONNECT: {
			socklen_t len = sizeof(err);

			if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
				err = errno;
			if (err == EINPROGRESS || err == EALREADY)
				return;
			if (err) {
				snprintf(reason, sizeof(reason), "connect: %s", strerror(err));
				probe_finish(h, p, sites, false, reason);
				return;
			}
			if (start_tls(p, t) < 0) {
				probe_finish(h, p, sites, false, "cannot set up TLS (out of memory?)");
				return;
			}
			p->phase = PHASE_HANDSHAKE;
			continue;
		}
		case PHASE_HANDSHAKE:
			errno = 0;
			ret = SSL_connect(p->ssl);
			if (ret == 1) {
				record_cert(t, p->ssl);
				if (t->site->check->type == CONFIG_CHECK_TLS) {
					probe_finish(h, p, sites, true, "handshake ok");
					return;
				}
				if (build_request(p, t) < 0 ||
				    !(p->response = malloc(HEALTH_RESPONSE_MAX))) {
					probe_finish(h, p, sites, false, "out of memory");
					return;
				}
				p->phase = PHASE_WRITE;
				continue;
			}
			break;
		case PHASE_WRITE:
			errno = 0;
			ret = SSL_write(p->ssl, p->request, (int)p->request_len);
			if (ret > 0) {
				memmove(p->request, p->request + ret, p->request_len - (size_t)ret);
				p->request_len -= (size_t)ret;
				if (p->request_len == 0)
					p->phase = PHASE_READ;
				continue;
			}
			break;
		case PHASE_READ:
			errno = 0;
			ret = SSL_read(p->ssl, p->response + p->response_len,
				       (int)(HEALTH_RESPONSE_MAX - p->response_len));
			if (ret > 0 || SSL_get_error(p->ssl, ret) == SSL_ERROR_ZERO_RETURN ||
			    (SSL_get_error(p->ssl, ret) == SSL_ERROR_SYSCALL && errno == 0)) {
				bool eof = ret <= 0;
				int verdict;

				if (ret > 0)
					p->response_len += (size_t)ret;
				verdict = health_judge_http(t->site->check, p->response,
							    p->response_len, eof, reason,
							    sizeof(reason));
				if (verdict >= 0) {
					probe_finish(h, p, sites, verdict == 1, reason);
					return;
				}
				continue;
			}
			break;
		}
		err = SSL_get_error(p->ssl, ret);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			set_events(h, p, err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
			return;
		}
		tls_failure(p, ret, reason, sizeof(reason));
		probe_finish(h, p, sites, false, reason);
		return;
	}
}

static void probe_start(struct health *h, size_t target, struct sites *sites)
{
	struct target *t = &h->targets[target];
	const struct config_check *check = t->site->check;
	struct sockaddr_storage sa = {0};
	struct linger linger = {.l_onoff = 1, .l_linger = 0};
	uint32_t mark = HEALTH_SOCKET_MARK;
	struct probe *p = NULL;
	socklen_t sa_len;
	char reason[192];

	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT && !p; i++)
		if (h->probes[i].fd < 0 && !h->probes[i].start_us)
			p = &h->probes[i];
	if (!p)
		return;
	memset(p, 0, sizeof(*p));
	p->target = target;
	p->generation = ++h->next_generation;
	p->start_us = clock_now_us();
	p->deadline_ms = p->start_us / 1000u + check->timeout_ms;
	p->phase = PHASE_CONNECT;
	t->probe = (int)(p - h->probes);
	h->in_flight++;
	if (t->info.addr.family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;
		in4->sin_family = AF_INET;
		in4->sin_port = htons(t->info.port);
		memcpy(&in4->sin_addr, t->info.addr.bytes, 4);
		sa_len = sizeof(*in4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(t->info.port);
		memcpy(&in6->sin6_addr, t->info.addr.bytes, 16);
		sa_len = sizeof(*in6);
	}
	p->fd = socket(t->info.addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		snprintf(reason, sizeof(reason), "socket: %s", strerror(errno));
		probe_finish(h, p, sites, false, reason);
		return;
	}
	if (setsockopt(p->fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0 && !h->mark_warned) {
		log_warn_errno("health checks: cannot mark the check sockets (SO_MARK): with hook "
			       "input or prerouting, checks of a site on this box pass the queue");
		h->mark_warned = true;
	}
	/* an abortive close: a checker on a short interval leaves no TIME_WAIT */
	setsockopt(p->fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
	if (connect(p->fd, (struct sockaddr *)&sa, sa_len) == 0) {
		probe_step(h, p, sites);
		return;
	}
	if (errno != EINPROGRESS) {
		snprintf(reason, sizeof(reason), "connect: %s", strerror(errno));
		probe_finish(h, p, sites, false, reason);
		return;
	}
	/* SO_ERROR says 0 while the connect is still under way: wait for it */
	set_events(h, p, EPOLLOUT);
}

/* ---- the module ---- */

struct health *health_open(const struct config *cfg)
{
	struct health *h = calloc(1, sizeof(*h));

	if (!h) {
		log_error("health: out of memory");
		return NULL;
	}
	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT; i++)
		h->probes[i].fd = -1;
	h->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (h->epoll_fd < 0) {
		log_error_errno("health: epoll_create1");
		free(h);
		return NULL;
	}
	h->targets = build_targets(cfg, &h->n_targets);
	if (!h->targets) {
		log_error("health: out of memory");
		health_close(h);
		return NULL;
	}
	if (h->n_targets)
		log_info("health checks: %zu address%s of %s", h->n_targets,
			 h->n_targets == 1 ? "" : "es", "the configured sites");
	return h;
}

static void cancel_all(struct health *h)
{
	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT; i++)
		if (h->probes[i].fd >= 0 || h->probes[i].start_us)
			probe_release(h, &h->probes[i]);
}

void health_close(struct health *h)
{
	if (!h)
		return;
	if (h->targets)
		cancel_all(h);
	free_targets(h->targets, h->n_targets);
	if (h->epoll_fd >= 0)
		close(h->epoll_fd);
	free(h);
}

static bool same_target(const struct target *a, const struct target *b)
{
	return strcmp(a->info.site, b->info.site) == 0 && a->info.port == b->info.port &&
	       a->info.addr.family == b->info.addr.family &&
	       memcmp(a->info.addr.bytes, b->info.addr.bytes, 16) == 0;
}

int health_update(struct health *h, const struct config *cfg)
{
	size_t n;
	struct target *targets;

	if (!h)
		return 0;
	targets = build_targets(cfg, &n);
	if (!targets) {
		log_error("health: out of memory; the checks keep the previous config");
		return -1;
	}
	/* in-flight checks point at the old config: end them, the new
	 * targets are due at once */
	cancel_all(h);
	for (size_t i = 0; i < n; i++) {
		for (size_t k = 0; k < h->n_targets; k++) {
			struct health_target_info keep;

			if (!same_target(&targets[i], &h->targets[k]))
				continue;
			keep = h->targets[k].info;
			keep.site = targets[i].info.site;
			keep.check = targets[i].info.check;
			targets[i].info = keep;
			break;
		}
	}
	free_targets(h->targets, h->n_targets);
	h->targets = targets;
	h->n_targets = n;
	h->next_start = 0;
	return 0;
}

void health_apply(const struct health *h, struct sites *sites)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_targets; i += h->targets[i].count ? h->targets[i].count : 1)
		apply_site(h, sites, &h->targets[i], false);
}

int health_fd(const struct health *h)
{
	return h ? h->epoll_fd : -1;
}

int health_timeout_ms(const struct health *h)
{
	uint64_t now = clock_now_ms(), next = UINT64_MAX;

	if (!h || h->n_targets == 0)
		return -1;
	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT; i++)
		if (h->probes[i].fd >= 0 && h->probes[i].deadline_ms < next)
			next = h->probes[i].deadline_ms;
	/* with every slot busy, a due check waits for a deadline or an event */
	if (h->in_flight < HEALTH_MAX_IN_FLIGHT)
		for (size_t i = 0; i < h->n_targets; i++)
			if (h->targets[i].probe < 0 && h->targets[i].next_due_ms < next)
				next = h->targets[i].next_due_ms;
	if (next == UINT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return next - now > MAX_SLEEP_MS ? MAX_SLEEP_MS : (int)(next - now);
}

void health_dispatch(struct health *h, struct sites *sites)
{
	struct epoll_event events[EVENT_BATCH];
	char reason[192];
	uint64_t now;
	int n;

	if (!h)
		return;
	n = epoll_wait(h->epoll_fd, events, EVENT_BATCH, 0);
	for (int i = 0; i < n; i++) {
		struct probe *p = &h->probes[events[i].data.u64 & 0xffffffffu];

		/* a slot ended and reused earlier in this batch is not this event's */
		if (p->fd >= 0 && p->generation == (uint32_t)(events[i].data.u64 >> 32))
			probe_step(h, p, sites);
	}
	now = clock_now_ms();
	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT; i++) {
		struct probe *p = &h->probes[i];

		if (p->fd < 0 || now < p->deadline_ms)
			continue;
		snprintf(reason, sizeof(reason), "timeout during the %s (%u ms)",
			 phase_names[p->phase], h->targets[p->target].site->check->timeout_ms);
		probe_finish(h, p, sites, false, reason);
	}
	for (size_t k = 0; k < h->n_targets && h->in_flight < HEALTH_MAX_IN_FLIGHT; k++) {
		size_t i = (h->next_start + k) % h->n_targets;

		if (h->targets[i].probe < 0 && h->targets[i].next_due_ms <= now) {
			probe_start(h, i, sites);
			h->next_start = (i + 1) % h->n_targets;
		}
	}
}

size_t health_count(const struct health *h)
{
	return h ? h->n_targets : 0;
}

const struct health_target_info *health_at(const struct health *h, size_t index)
{
	return h && index < h->n_targets ? &h->targets[index].info : NULL;
}

enum health_state health_site_state(const struct health *h, const char *name)
{
	for (size_t i = 0; h && i < h->n_targets; i += h->targets[i].count ? h->targets[i].count : 1)
		if (strcmp(h->targets[i].info.site, name) == 0)
			return range_state(h, i, h->targets[i].count);
	return HEALTH_UNKNOWN;
}
