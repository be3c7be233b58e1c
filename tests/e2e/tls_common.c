/* tls_common: see tls_common.h. */
#include "tls_common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

int64_t tls_common_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *tls_common_addr_str(const struct sockaddr_storage *sa, char *buf, size_t len)
{
	const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
	const char *out = NULL;

	if (sa->ss_family == AF_INET)
		out = inet_ntop(AF_INET, &in4->sin_addr, buf, (socklen_t)len);
	else if (sa->ss_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		out = inet_ntop(AF_INET, &in6->sin6_addr.s6_addr[12], buf, (socklen_t)len);
	else if (sa->ss_family == AF_INET6)
		out = inet_ntop(AF_INET6, &in6->sin6_addr, buf, (socklen_t)len);
	if (!out)
		snprintf(buf, len, "?");
	return buf;
}

static int wait_ready(int fd, int ssl_err, int64_t deadline_ms)
{
	struct pollfd pfd = { .fd = fd };

	pfd.events = ssl_err == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
	for (;;) {
		int64_t left = deadline_ms - tls_common_now_ms();
		int n;

		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -1;
	}
}

const char *tls_common_error(char *buf, size_t len)
{
	unsigned long err = ERR_get_error();

	if (err)
		ERR_error_string_n(err, buf, len);
	else
		snprintf(buf, len, "%s", errno ? strerror(errno) : "unexpected EOF");
	ERR_clear_error();
	return buf;
}

static int run_once(SSL *ssl, enum tls_common_op op, void *buf, int len)
{
	switch (op) {
	case TLS_COMMON_HANDSHAKE:
		return SSL_do_handshake(ssl);
	case TLS_COMMON_READ:
		return SSL_read(ssl, buf, len);
	case TLS_COMMON_WRITE:
		return SSL_write(ssl, buf, len);
	}
	return -1;
}

int tls_common_run(SSL *ssl, int fd, int64_t deadline_ms, enum tls_common_op op, void *buf,
		   int len)
{
	for (;;) {
		int ret, err;

		errno = 0;
		ret = run_once(ssl, op, buf, len);
		if (ret > 0)
			return ret;
		err = SSL_get_error(ssl, ret);
		if (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)
			return -1;
		if (wait_ready(fd, err, deadline_ms) < 0)
			return -1;
	}
}
