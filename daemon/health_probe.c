/* health_probe: see health_probe.h. Each job in flight is a small state
 * machine (connect, TLS handshake, write the request, read the response)
 * moved forward by readiness events and ended by its deadline. Moved here
 * from the daemon's health.c unchanged in logic when the checks went into
 * their own process. */
#include "health_probe.h"

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
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "clock.h"
#include "gk_version.h"
#include "log.h"

#define EVENT_BATCH 64
#define MAX_SLEEP_MS 60000
/* CA contexts kept between checks, by the daemon's key for one ca_file */
#define CA_CACHE 32

enum phase { PHASE_CONNECT, PHASE_HANDSHAKE, PHASE_WRITE, PHASE_READ };

static const char *const phase_names[] = {
	[PHASE_CONNECT] = "connect",
	[PHASE_HANDSHAKE] = "TLS handshake",
	[PHASE_WRITE] = "HTTP request",
	[PHASE_READ] = "HTTP response",
};

struct probe {
	bool busy;
	int fd;
	uint32_t epoch; /* tells a stale epoll event from this job's */
	struct checker_job job;
	struct checker_result result;
	SSL *ssl;
	enum phase phase;
	uint64_t start_us, deadline_ms;
	uint32_t events;
	char *request;
	size_t request_len;
	char *response;
	size_t response_len;
};

struct ca_entry {
	uint32_t key;
	SSL_CTX *ctx; /* NULL: the file did not load */
};

struct probe_engine {
	int epoll_fd;
	probe_done_fn *done;
	void *done_ctx;
	SSL_CTX *plain_ctx; /* no CA: the certificate is recorded, not verified */
	struct ca_entry cas[CA_CACHE];
	size_t n_cas;
	uint32_t next_epoch;
	struct probe probes[CHECKER_MAX_JOBS];
};

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

/* ---- TLS contexts ---- */

static SSL_CTX *new_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (!ctx)
		return NULL;
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
#ifdef SSL_OP_IGNORE_UNEXPECTED_EOF
	/* many servers close after the response without a close_notify */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
#endif
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* The CA file behind FD (read from its start, at most HEALTH_CA_MAX
 * bytes) as a verifying context; NULL if it holds no certificate. */
static SSL_CTX *ctx_from_ca_fd(int fd)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);
	SSL_CTX *ctx = NULL;
	STACK_OF(X509_INFO) *infos = NULL;
	BIO *bio = NULL;
	int added = 0;

	if (!buf)
		return NULL;
	for (;;) {
		ssize_t n;

		if (len == cap) {
			char *bigger;
			if (cap >= HEALTH_CA_MAX || !(bigger = realloc(buf, cap * 2)))
				goto out;
			buf = bigger;
			cap *= 2;
		}
		n = pread(fd, buf + len, cap - len, (off_t)len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			goto out;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	bio = BIO_new_mem_buf(buf, (int)len);
	ctx = bio ? new_ctx() : NULL;
	if (!ctx)
		goto out;
	infos = PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL);
	for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *info = sk_X509_INFO_value(infos, i);
		if (info->x509 && X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), info->x509) == 1)
			added++;
	}
	if (!added) {
		SSL_CTX_free(ctx);
		ctx = NULL;
	} else {
		SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
	}
out:
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	free(buf);
	ERR_clear_error();
	return ctx;
}

/* The context for a job: the cached one of its CA key, else loaded from
 * CA_FD. *FAILED when the job has a CA that does not load. */
static SSL_CTX *ctx_for(struct probe_engine *e, const struct checker_job *job, int ca_fd,
			bool *failed)
{
	struct ca_entry *entry;

	*failed = false;
	if (!job->has_ca)
		return e->plain_ctx;
	for (size_t i = 0; i < e->n_cas; i++)
		if (e->cas[i].key == job->ca_key) {
			*failed = !e->cas[i].ctx;
			return e->cas[i].ctx;
		}
	if (e->n_cas == CA_CACHE) {
		/* a context in use stays alive: each SSL holds a reference */
		for (size_t i = 0; i < e->n_cas; i++)
			SSL_CTX_free(e->cas[i].ctx);
		e->n_cas = 0;
	}
	entry = &e->cas[e->n_cas++];
	entry->key = job->ca_key;
	entry->ctx = ca_fd >= 0 ? ctx_from_ca_fd(ca_fd) : NULL;
	*failed = !entry->ctx;
	return entry->ctx;
}

/* ---- one job ---- */

static void probe_release(struct probe_engine *e, struct probe *p)
{
	if (p->ssl)
		SSL_free(p->ssl);
	if (p->fd >= 0) {
		epoll_ctl(e->epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
		close(p->fd);
	}
	free(p->request);
	free(p->response);
	memset(p, 0, sizeof(*p));
	p->fd = -1;
	ERR_clear_error();
}

static void x509_name_text(const X509_NAME *name, char *buf, size_t len)
{
	BIO *bio = BIO_new(BIO_s_mem());
	char raw[CHECKER_NAME_LEN];
	int n;

	buf[0] = '\0';
	if (!bio)
		return;
	if (X509_NAME_print_ex(bio, name, 0, XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB) >= 0) {
		n = BIO_read(bio, raw, (int)sizeof(raw) - 1);
		raw[n > 0 ? n : 0] = '\0';
		/* a certificate is the server's: no control characters, no
		 * UTF-8 cut in the middle of a character */
		checker_text_clean(buf, len, raw);
	}
	BIO_free(bio);
}

static void record_cert(struct probe *p)
{
	X509 *cert = SSL_get1_peer_certificate(p->ssl);
	struct checker_result *r = &p->result;
	struct tm tm;

	r->cert_present = false;
	r->subject[0] = r->issuer[0] = '\0';
	r->not_after = 0;
	if (!cert)
		return;
	r->cert_present = true;
	x509_name_text(X509_get_subject_name(cert), r->subject, sizeof(r->subject));
	x509_name_text(X509_get_issuer_name(cert), r->issuer, sizeof(r->issuer));
	if (ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) == 1)
		r->not_after = (int64_t)timegm(&tm);
	X509_free(cert);
}

static void probe_finish(struct probe_engine *e, struct probe *p, bool ok, const char *reason)
{
	struct checker_result *r = &p->result;

	r->slot = p->job.slot;
	r->generation = p->job.generation;
	r->ok = ok;
	checker_text_clean(r->reason, sizeof(r->reason), reason);
	if (!r->reason[0])
		snprintf(r->reason, sizeof(r->reason), "%s", ok ? "ok" : "failed");
	r->latency_us = clock_now_us() - p->start_us;
	e->done(e->done_ctx, r);
	probe_release(e, p);
}

static void set_events(struct probe_engine *e, struct probe *p, uint32_t events)
{
	struct epoll_event ev = {.events = events};

	if (p->events == events)
		return;
	ev.data.u64 = (uint64_t)p->epoch << 32 | (uint64_t)(p - e->probes);
	if (epoll_ctl(e->epoll_fd, p->events ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, p->fd, &ev) == 0)
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

static const char *host_header(const struct checker_job *job, char *buf, size_t len)
{
	const struct config_check *check = &job->check;
	char addr[INET6_ADDRSTRLEN];

	if (check->host)
		return check->host;
	if (check->sni)
		snprintf(buf, len, "%s", check->sni);
	else if (job->addr.family == AF_INET6)
		snprintf(buf, len, "[%s]", config_addr_str(&job->addr, addr, sizeof(addr)));
	else
		snprintf(buf, len, "%s", config_addr_str(&job->addr, addr, sizeof(addr)));
	if (check->port != 443)
		snprintf(buf + strlen(buf), len - strlen(buf), ":%u", check->port);
	return buf;
}

static int build_request(struct probe *p)
{
	const struct config_check *check = &p->job.check;
	char host[300];
	int n;

	n = asprintf(&p->request,
		     "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatekeeperd/%s health check\r\n"
		     "Accept: */*\r\nConnection: close\r\n\r\n",
		     check->method, check->path, host_header(&p->job, host, sizeof(host)),
		     GK_VERSION);
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

static int start_tls(struct probe *p, SSL_CTX *ctx)
{
	const struct checker_job *job = &p->job;
	const char *sni = sni_of(&job->check);
	const char *verify = job->check.verify_name ? job->check.verify_name : sni;

	p->ssl = SSL_new(ctx);
	if (!p->ssl || SSL_set_fd(p->ssl, p->fd) != 1)
		return -1;
	if (sni && SSL_set_tlsext_host_name(p->ssl, sni) != 1)
		return -1;
	if (job->has_ca && verify && strcmp(verify, CONFIG_VERIFY_ANY_NAME) != 0 &&
	    SSL_set1_host(p->ssl, verify) != 1)
		return -1;
	SSL_set_connect_state(p->ssl);
	return 0;
}

/* Moves P as far as it goes without blocking; may finish (free) it. */
static void probe_step(struct probe_engine *e, struct probe *p)
{
	char reason[CHECKER_REASON_LEN];
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
				probe_finish(e, p, false, reason);
				return;
			}
			p->phase = PHASE_HANDSHAKE;
			continue;
		}
		case PHASE_HANDSHAKE:
			errno = 0;
			ret = SSL_connect(p->ssl);
			if (ret == 1) {
				record_cert(p);
				if (p->job.check.type == CONFIG_CHECK_TLS) {
					probe_finish(e, p, true, "handshake ok");
					return;
				}
				if (build_request(p) < 0 ||
				    !(p->response = malloc(HEALTH_RESPONSE_MAX))) {
					probe_finish(e, p, false, "out of memory");
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
				verdict = health_judge_http(&p->job.check, p->response,
							    p->response_len, eof, reason,
							    sizeof(reason));
				if (verdict >= 0) {
					probe_finish(e, p, verdict == 1, reason);
					return;
				}
				continue;
			}
			break;
		}
		err = SSL_get_error(p->ssl, ret);
		if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) {
			set_events(e, p, err == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT);
			return;
		}
		tls_failure(p, ret, reason, sizeof(reason));
		probe_finish(e, p, false, reason);
		return;
	}
}

void probe_engine_start(struct probe_engine *e, const struct checker_job *job, int sock,
			int ca_fd)
{
	struct probe *p = &e->probes[job->slot];
	struct sockaddr_storage sa = {0};
	char reason[CHECKER_REASON_LEN];
	socklen_t sa_len;
	bool ca_failed;
	SSL_CTX *ctx;

	if (p->busy)
		probe_release(e, p);
	p->busy = true;
	p->fd = sock;
	p->epoch = ++e->next_epoch;
	checker_job_copy(&p->job, job);
	p->start_us = clock_now_us();
	p->deadline_ms = p->start_us / 1000u + job->check.timeout_ms;
	p->phase = PHASE_CONNECT;
	ctx = ctx_for(e, job, ca_fd, &ca_failed);
	if (ca_fd >= 0)
		close(ca_fd);
	if (ca_failed || !ctx) {
		probe_finish(e, p, false, ca_failed ? "cannot load the CAs of check.ca_file"
						    : "cannot set up TLS (out of memory?)");
		return;
	}
	if (start_tls(p, ctx) < 0) {
		probe_finish(e, p, false, "cannot set up TLS (out of memory?)");
		return;
	}
	if (job->addr.family == AF_INET) {
		struct sockaddr_in *in4 = (struct sockaddr_in *)&sa;
		in4->sin_family = AF_INET;
		in4->sin_port = htons(job->check.port);
		memcpy(&in4->sin_addr, job->addr.bytes, 4);
		sa_len = sizeof(*in4);
	} else {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&sa;
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(job->check.port);
		memcpy(&in6->sin6_addr, job->addr.bytes, 16);
		sa_len = sizeof(*in6);
	}
	if (connect(p->fd, (struct sockaddr *)&sa, sa_len) == 0) {
		probe_step(e, p);
		return;
	}
	if (errno != EINPROGRESS) {
		snprintf(reason, sizeof(reason), "connect: %s", strerror(errno));
		probe_finish(e, p, false, reason);
		return;
	}
	/* SO_ERROR says 0 while the connect is still under way: wait for it */
	set_events(e, p, EPOLLOUT);
}

void probe_engine_cancel(struct probe_engine *e, uint32_t slot, uint32_t generation)
{
	struct probe *p = &e->probes[slot % CHECKER_MAX_JOBS];

	if (p->busy && p->job.generation == generation)
		probe_release(e, p);
}

/* ---- the engine ---- */

struct probe_engine *probe_engine_new(probe_done_fn *done, void *ctx)
{
	struct probe_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->done = done;
	e->done_ctx = ctx;
	for (size_t i = 0; i < CHECKER_MAX_JOBS; i++)
		e->probes[i].fd = -1;
	e->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	e->plain_ctx = new_ctx();
	if (e->epoll_fd < 0 || !e->plain_ctx) {
		probe_engine_free(e);
		return NULL;
	}
	return e;
}

void probe_engine_free(struct probe_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < CHECKER_MAX_JOBS; i++)
		if (e->probes[i].busy)
			probe_release(e, &e->probes[i]);
	for (size_t i = 0; i < e->n_cas; i++)
		SSL_CTX_free(e->cas[i].ctx);
	SSL_CTX_free(e->plain_ctx);
	if (e->epoll_fd >= 0)
		close(e->epoll_fd);
	free(e);
}

int probe_engine_fd(const struct probe_engine *e)
{
	return e->epoll_fd;
}

int probe_engine_timeout_ms(const struct probe_engine *e)
{
	uint64_t now = clock_now_ms(), next = UINT64_MAX;

	for (size_t i = 0; i < CHECKER_MAX_JOBS; i++)
		if (e->probes[i].busy && e->probes[i].deadline_ms < next)
			next = e->probes[i].deadline_ms;
	if (next == UINT64_MAX)
		return -1;
	if (next <= now)
		return 0;
	return next - now > MAX_SLEEP_MS ? MAX_SLEEP_MS : (int)(next - now);
}

void probe_engine_dispatch(struct probe_engine *e)
{
	struct epoll_event events[EVENT_BATCH];
	char reason[CHECKER_REASON_LEN];
	uint64_t now;
	int n;

	n = epoll_wait(e->epoll_fd, events, EVENT_BATCH, 0);
	for (int i = 0; i < n; i++) {
		struct probe *p = &e->probes[(events[i].data.u64 & 0xffffffffu) % CHECKER_MAX_JOBS];

		/* a slot ended and reused earlier in this batch is not this event's */
		if (p->busy && p->epoch == (uint32_t)(events[i].data.u64 >> 32))
			probe_step(e, p);
	}
	now = clock_now_ms();
	for (size_t i = 0; i < CHECKER_MAX_JOBS; i++) {
		struct probe *p = &e->probes[i];

		if (!p->busy || now < p->deadline_ms)
			continue;
		snprintf(reason, sizeof(reason), "timeout during the %s (%u ms)",
			 phase_names[p->phase], p->job.check.timeout_ms);
		probe_finish(e, p, false, reason);
	}
}
