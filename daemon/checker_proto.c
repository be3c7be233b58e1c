/* checker_proto: see checker_proto.h. Records are read and written field
 * by field through a cursor, never as C structs: no padding, no byte order
 * or ABI question, and the decoder sees every byte. */
#include "checker_proto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "strbuf.h"
#include "textsafe.h"

#define MAX_TIMEOUT_MS 3600000u
#define MAX_LATENCY_US 7200000000ull

/* ---- text ---- */

/* The length of the UTF-8 character at S (1..4), or 0 if invalid or a
 * control character (C0, DEL, C1). */
static size_t utf8_char(const unsigned char *s)
{
	unsigned c = s[0], cp;
	size_t n;

	if (c < 0x20 || c == 0x7f)
		return 0;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		n = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	/* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
	if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
	    (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
		return 0;
	return n;
}

bool checker_text_valid(const char *text)
{
	const unsigned char *s = (const unsigned char *)text;

	while (*s) {
		size_t n = utf8_char(s);
		if (!n)
			return false;
		s += n;
	}
	return true;
}

void checker_text_clean(char *dst, size_t len, const char *src)
{
	struct strbuf safe;
	size_t n;

	if (!len)
		return;
	/* textsafe's terminal form: valid UTF-8, controls as the visible
	 * \xHH (the daemon's outputs escape again, each in its own way) */
	strbuf_init(&safe, 0);
	textsafe_append(&safe, src, TEXTSAFE_TERMINAL);
	n = strbuf_failed(&safe) ? 0 : safe.len;
	if (n > len - 1) {
		n = len - 1;
		while (n > 0 && ((unsigned char)safe.data[n] & 0xc0) == 0x80)
			n--; /* not inside a character */
	}
	if (n)
		memcpy(dst, safe.data, n);
	dst[n] = '\0';
	strbuf_free(&safe);
}

/* ---- cursors ---- */

struct writer {
	uint8_t *p;
	size_t at;
};

static void put_u8(struct writer *w, unsigned v)
{
	w->p[w->at++] = (uint8_t)v;
}

static void put_u16(struct writer *w, unsigned v)
{
	put_u8(w, v >> 8 & 0xff);
	put_u8(w, v & 0xff);
}

static void put_u32(struct writer *w, uint32_t v)
{
	put_u16(w, v >> 16);
	put_u16(w, v & 0xffff);
}

static void put_u64(struct writer *w, uint64_t v)
{
	put_u32(w, (uint32_t)(v >> 32));
	put_u32(w, (uint32_t)v);
}

static void put_bytes(struct writer *w, const void *src, size_t n)
{
	memcpy(w->p + w->at, src, n);
	w->at += n;
}

/* STR (NULL: empty) in a field of SIZE bytes, zero-padded; the caller
 * has checked strlen(STR) < SIZE. */
static void put_str(struct writer *w, const char *str, size_t size)
{
	size_t n = str ? strlen(str) : 0;

	memset(w->p + w->at, 0, size);
	if (n)
		memcpy(w->p + w->at, str, n);
	w->at += size;
}

static void put_header(struct writer *w, unsigned type)
{
	put_u32(w, CHECKER_MAGIC);
	put_u16(w, type);
	put_u16(w, 0);
}

struct reader {
	const uint8_t *p;
	size_t at;
};

static unsigned get_u8(struct reader *r)
{
	return r->p[r->at++];
}

static unsigned get_u16(struct reader *r)
{
	unsigned hi = get_u8(r);
	return hi << 8 | get_u8(r);
}

static uint32_t get_u32(struct reader *r)
{
	uint32_t hi = get_u16(r);
	return hi << 16 | get_u16(r);
}

static uint64_t get_u64(struct reader *r)
{
	uint64_t hi = get_u32(r);
	return hi << 32 | get_u32(r);
}

enum charset { CHARS_TOKEN, CHARS_UPPER, CHARS_BODY, CHARS_TEXT };

static bool char_ok(unsigned char c, enum charset set)
{
	switch (set) {
	case CHARS_TOKEN: return c > 0x20 && c < 0x7f;
	case CHARS_UPPER: return c >= 'A' && c <= 'Z';
	case CHARS_BODY: return c >= 0x20 && c != 0x7f;
	case CHARS_TEXT: break;
	}
	return true; /* checked as UTF-8 afterwards */
}

static bool str_ok(const char *s, enum charset set)
{
	for (const unsigned char *c = (const unsigned char *)s; *c; c++)
		if (!char_ok(*c, set))
			return false;
	return set != CHARS_TEXT || checker_text_valid(s);
}

/* A string field of SIZE bytes into DST[SIZE]: NUL inside, zero after it,
 * characters of SET. */
static int get_str(struct reader *r, char *dst, size_t size, enum charset set)
{
	const uint8_t *f = r->p + r->at;
	const uint8_t *nul = memchr(f, 0, size);

	r->at += size;
	if (!nul)
		return -1;
	for (const uint8_t *z = nul; z < f + size; z++)
		if (*z)
			return -1;
	memcpy(dst, f, size);
	return str_ok(dst, set) ? 0 : -1;
}

static int get_header(struct reader *r, unsigned type)
{
	if (get_u32(r) != CHECKER_MAGIC || get_u16(r) != type || get_u16(r) != 0)
		return -1;
	return 0;
}

static size_t type_size(unsigned type)
{
	switch (type) {
	case CHECKER_MSG_RUN: return CHECKER_RUN_SIZE;
	case CHECKER_MSG_CANCEL: return CHECKER_CANCEL_SIZE;
	case CHECKER_MSG_RESULT: return CHECKER_RESULT_SIZE;
	}
	return 0;
}

int checker_msg_type(const uint8_t *buf, size_t len)
{
	struct reader r = {buf, 0};
	uint32_t magic;
	unsigned type;

	if (len < 8)
		return -1;
	magic = get_u32(&r);
	type = get_u16(&r);
	if (magic != CHECKER_MAGIC || get_u16(&r) != 0 || type_size(type) != len)
		return -1;
	return (int)type;
}

/* ---- jobs ---- */

static void job_link(struct checker_job *job)
{
	struct config_check *c = &job->check;

	c->addresses = NULL;
	c->n_addresses = 0;
	c->ca_file = NULL; /* the checker has the CA's fd, never its path */
	c->sni = job->sni[0] ? job->sni : NULL;
	c->host = job->host[0] ? job->host : NULL;
	c->verify_name = job->verify_name[0] ? job->verify_name : NULL;
	c->method = job->method[0] ? job->method : NULL;
	c->path = job->path[0] ? job->path : NULL;
	c->expect_body = job->expect_body[0] ? job->expect_body : NULL;
	c->expect_status = job->expect_status;
}

void checker_job_copy(struct checker_job *dst, const struct checker_job *src)
{
	memcpy(dst, src, sizeof(*dst));
	job_link(dst);
}

/* A job is sound: what both the encoder and the decoder insist on. */
static int job_valid(const struct checker_job *job)
{
	const struct config_check *c = &job->check;

	if (job->slot >= CHECKER_MAX_JOBS || (job->addr.family != AF_INET &&
					      job->addr.family != AF_INET6))
		return -1;
	if (c->type != CONFIG_CHECK_TLS && c->type != CONFIG_CHECK_HTTPS)
		return -1;
	if (!c->port || !c->timeout_ms || c->timeout_ms > MAX_TIMEOUT_MS)
		return -1;
	if (job->has_ca != (job->ca_key != 0) || c->n_expect_status > 16)
		return -1;
	for (size_t i = 0; i < c->n_expect_status; i++)
		if (job->expect_status[i] < 100 || job->expect_status[i] > 599)
			return -1;
	if (c->type == CONFIG_CHECK_HTTPS &&
	    (!c->n_expect_status || !job->method[0] || job->path[0] != '/'))
		return -1;
	if (!str_ok(job->method, CHARS_UPPER) || !str_ok(job->sni, CHARS_TOKEN) ||
	    !str_ok(job->host, CHARS_TOKEN) || !str_ok(job->verify_name, CHARS_TOKEN) ||
	    !str_ok(job->path, CHARS_TOKEN) || !str_ok(job->expect_body, CHARS_BODY))
		return -1;
	return 0;
}

static int copy_field(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;

	if (n >= size)
		return -1;
	memset(dst, 0, size);
	if (n)
		memcpy(dst, src, n);
	return 0;
}

int checker_job_from_check(struct checker_job *job, uint32_t slot, uint32_t generation,
			   const struct config_check *check, const struct config_addr *addr,
			   uint32_t ca_key)
{
	memset(job, 0, sizeof(*job));
	job->slot = slot;
	job->generation = generation;
	job->ca_key = ca_key;
	job->has_ca = ca_key != 0;
	job->addr = *addr;
	job->check.type = check->type;
	job->check.timeout_ms = check->timeout_ms;
	job->check.interval_ms = check->interval_ms;
	job->check.rise = check->rise;
	job->check.fall = check->fall;
	job->check.port = check->port;
	if (check->n_expect_status > 16)
		return -1;
	job->check.n_expect_status = check->n_expect_status;
	for (size_t i = 0; i < check->n_expect_status; i++)
		job->expect_status[i] = check->expect_status[i];
	if (copy_field(job->method, sizeof(job->method), check->method) < 0 ||
	    copy_field(job->sni, sizeof(job->sni), check->sni) < 0 ||
	    copy_field(job->host, sizeof(job->host), check->host) < 0 ||
	    copy_field(job->verify_name, sizeof(job->verify_name), check->verify_name) < 0 ||
	    copy_field(job->path, sizeof(job->path), check->path) < 0 ||
	    copy_field(job->expect_body, sizeof(job->expect_body), check->expect_body) < 0)
		return -1;
	job_link(job);
	return job_valid(job);
}

int checker_encode_run(const struct checker_job *job, uint8_t *out)
{
	struct writer w = {out, 0};
	const struct config_check *c = &job->check;

	if (job_valid(job) < 0)
		return -1;
	put_header(&w, CHECKER_MSG_RUN);
	put_u32(&w, job->slot);
	put_u32(&w, job->generation);
	put_u8(&w, c->type == CONFIG_CHECK_HTTPS ? 1 : 0);
	put_u8(&w, job->addr.family == AF_INET ? 4 : 6);
	put_u8(&w, job->has_ca ? 1 : 0);
	put_u8(&w, (unsigned)c->n_expect_status);
	put_u16(&w, c->port);
	put_u16(&w, 0);
	put_u32(&w, c->timeout_ms);
	put_u32(&w, job->ca_key);
	if (job->addr.family == AF_INET) {
		put_bytes(&w, job->addr.bytes, 4);
		memset(out + w.at, 0, 12);
		w.at += 12;
	} else {
		put_bytes(&w, job->addr.bytes, 16);
	}
	for (size_t i = 0; i < 16; i++)
		put_u16(&w, i < c->n_expect_status ? job->expect_status[i] : 0);
	put_str(&w, job->method, sizeof(job->method));
	put_str(&w, job->sni, sizeof(job->sni));
	put_str(&w, job->host, sizeof(job->host));
	put_str(&w, job->verify_name, sizeof(job->verify_name));
	put_str(&w, job->path, sizeof(job->path));
	put_str(&w, job->expect_body, sizeof(job->expect_body));
	return w.at == CHECKER_RUN_SIZE ? 0 : -1;
}

int checker_decode_run(const uint8_t *buf, size_t len, struct checker_job *job)
{
	struct reader r = {buf, 0};
	unsigned type, family, flags, n_expect;

	if (len != CHECKER_RUN_SIZE || get_header(&r, CHECKER_MSG_RUN) < 0)
		return -1;
	memset(job, 0, sizeof(*job));
	job->slot = get_u32(&r);
	job->generation = get_u32(&r);
	type = get_u8(&r);
	family = get_u8(&r);
	flags = get_u8(&r);
	n_expect = get_u8(&r);
	job->check.port = (uint16_t)get_u16(&r);
	if (type > 1 || (family != 4 && family != 6) || flags > 1 || n_expect > 16 ||
	    get_u16(&r) != 0)
		return -1;
	job->check.type = type ? CONFIG_CHECK_HTTPS : CONFIG_CHECK_TLS;
	job->addr.family = family == 4 ? AF_INET : AF_INET6;
	job->has_ca = flags & 1;
	job->check.n_expect_status = n_expect;
	job->check.timeout_ms = get_u32(&r);
	job->ca_key = get_u32(&r);
	memcpy(job->addr.bytes, buf + r.at, 16);
	r.at += 16;
	if (family == 4)
		for (size_t i = 4; i < 16; i++)
			if (job->addr.bytes[i])
				return -1;
	for (size_t i = 0; i < 16; i++) {
		job->expect_status[i] = (uint16_t)get_u16(&r);
		if (i >= n_expect && job->expect_status[i])
			return -1;
	}
	if (get_str(&r, job->method, sizeof(job->method), CHARS_UPPER) < 0 ||
	    get_str(&r, job->sni, sizeof(job->sni), CHARS_TOKEN) < 0 ||
	    get_str(&r, job->host, sizeof(job->host), CHARS_TOKEN) < 0 ||
	    get_str(&r, job->verify_name, sizeof(job->verify_name), CHARS_TOKEN) < 0 ||
	    get_str(&r, job->path, sizeof(job->path), CHARS_TOKEN) < 0 ||
	    get_str(&r, job->expect_body, sizeof(job->expect_body), CHARS_BODY) < 0)
		return -1;
	job_link(job);
	return r.at == len && job_valid(job) == 0 ? 0 : -1;
}

/* ---- cancel ---- */

int checker_encode_cancel(uint32_t slot, uint32_t generation, uint8_t *out)
{
	struct writer w = {out, 0};

	if (slot >= CHECKER_MAX_JOBS)
		return -1;
	put_header(&w, CHECKER_MSG_CANCEL);
	put_u32(&w, slot);
	put_u32(&w, generation);
	return 0;
}

int checker_decode_cancel(const uint8_t *buf, size_t len, uint32_t *slot, uint32_t *generation)
{
	struct reader r = {buf, 0};

	if (len != CHECKER_CANCEL_SIZE || get_header(&r, CHECKER_MSG_CANCEL) < 0)
		return -1;
	*slot = get_u32(&r);
	*generation = get_u32(&r);
	return *slot < CHECKER_MAX_JOBS ? 0 : -1;
}

/* ---- results ---- */

static int result_valid(const struct checker_result *res)
{
	if (res->slot >= CHECKER_MAX_JOBS || res->latency_us > MAX_LATENCY_US || !res->reason[0])
		return -1;
	if (!res->cert_present && (res->not_after || res->subject[0] || res->issuer[0]))
		return -1;
	if (memchr(res->reason, 0, sizeof(res->reason)) == NULL ||
	    memchr(res->subject, 0, sizeof(res->subject)) == NULL ||
	    memchr(res->issuer, 0, sizeof(res->issuer)) == NULL)
		return -1;
	if (!checker_text_valid(res->reason) || !checker_text_valid(res->subject) ||
	    !checker_text_valid(res->issuer))
		return -1;
	return 0;
}

int checker_encode_result(const struct checker_result *res, uint8_t *out)
{
	struct writer w = {out, 0};

	if (result_valid(res) < 0)
		return -1;
	put_header(&w, CHECKER_MSG_RESULT);
	put_u32(&w, res->slot);
	put_u32(&w, res->generation);
	put_u8(&w, res->ok);
	put_u8(&w, res->cert_present);
	put_u16(&w, 0);
	put_u64(&w, res->latency_us);
	put_u64(&w, (uint64_t)res->not_after);
	put_str(&w, res->reason, sizeof(res->reason));
	put_str(&w, res->subject, sizeof(res->subject));
	put_str(&w, res->issuer, sizeof(res->issuer));
	return w.at == CHECKER_RESULT_SIZE ? 0 : -1;
}

int checker_decode_result(const uint8_t *buf, size_t len, struct checker_result *res)
{
	struct reader r = {buf, 0};
	unsigned ok, cert;

	if (len != CHECKER_RESULT_SIZE || get_header(&r, CHECKER_MSG_RESULT) < 0)
		return -1;
	memset(res, 0, sizeof(*res));
	res->slot = get_u32(&r);
	res->generation = get_u32(&r);
	ok = get_u8(&r);
	cert = get_u8(&r);
	if (ok > 1 || cert > 1 || get_u16(&r) != 0)
		return -1;
	res->ok = ok;
	res->cert_present = cert;
	res->latency_us = get_u64(&r);
	res->not_after = (int64_t)get_u64(&r);
	if (get_str(&r, res->reason, sizeof(res->reason), CHARS_TEXT) < 0 ||
	    get_str(&r, res->subject, sizeof(res->subject), CHARS_TEXT) < 0 ||
	    get_str(&r, res->issuer, sizeof(res->issuer), CHARS_TEXT) < 0)
		return -1;
	return r.at == len && result_valid(res) == 0 ? 0 : -1;
}

/* ---- the socket ---- */

int checker_send(int fd, const uint8_t *buf, size_t len, const int *fds, int n_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(2 * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (n_fds < 0 || n_fds > 2) {
		errno = EINVAL;
		return -1;
	}
	if (n_fds) {
		struct cmsghdr *cmsg;

		memset(&control, 0, sizeof(control));
		msg.msg_control = control.buf;
		msg.msg_controllen = CMSG_SPACE((size_t)n_fds * sizeof(int));
		cmsg = CMSG_FIRSTHDR(&msg);
		cmsg->cmsg_level = SOL_SOCKET;
		cmsg->cmsg_type = SCM_RIGHTS;
		cmsg->cmsg_len = CMSG_LEN((size_t)n_fds * sizeof(int));
		memcpy(CMSG_DATA(cmsg), fds, (size_t)n_fds * sizeof(int));
	}
	do
		n = sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return -1;
	if ((size_t)n != len) {
		errno = EMSGSIZE;
		return -1;
	}
	return 0;
}

long checker_recv(int fd, uint8_t *buf, size_t size, int *fds, int *n_fds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} control;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
			     .msg_controllen = sizeof(control.buf)};
	bool bad = false;
	ssize_t n;

	*n_fds = 0;
	do
		n = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n <= 0)
		return n;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t count;
		int got[4];

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0)) {
			bad = true;
			continue;
		}
		count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		if (count > 4)
			count = 4;
		memcpy(got, CMSG_DATA(c), count * sizeof(int));
		for (size_t i = 0; i < count; i++) {
			if (*n_fds < 2)
				fds[(*n_fds)++] = got[i];
			else {
				close(got[i]);
				bad = true;
			}
		}
	}
	if (bad || (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
		for (int i = 0; i < *n_fds; i++)
			close(fds[i]);
		*n_fds = 0;
		errno = EPROTO;
		return -1;
	}
	return (long)n;
}
