/* tls_probe: one TLS client connection, reported as exactly one line.
 *
 * Usage: tls_probe ADDR PORT TIMEOUT_MS   (ADDR IPv4 or IPv6)
 *
 *   handshake ok cn=NAME ms=N   exit 0  TCP and TLS handshakes completed
 *   refused ms=N                exit 1  the SYN was answered with a RST
 *   timeout ms=N                exit 2  no answer within TIMEOUT_MS
 *   error MSG ms=N              exit 3  anything else
 *
 * TIMEOUT_MS bounds connect and handshake together; N is the time from the
 * start of the connect. The peer certificate is not verified (the tests use
 * a throw-away self-signed one); its subject CN is printed instead. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls_common.h"

enum probe_result { PROBE_OK, PROBE_REFUSED, PROBE_TIMEOUT, PROBE_ERROR };

struct probe {
	struct sockaddr_storage addr;
	socklen_t addr_len;
	int64_t start_ms, deadline_ms;
	char message[300]; /* for PROBE_OK the CN, for PROBE_ERROR the reason */
};

static int parse_target(struct probe *p, const char *text, const char *port_text)
{
	struct sockaddr_in *in4 = (struct sockaddr_in *)&p->addr;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&p->addr;
	char *end;
	long port = strtol(port_text, &end, 10);

	if (*end || port < 1 || port > 65535)
		return -1;
	memset(&p->addr, 0, sizeof(p->addr));
	if (inet_pton(AF_INET, text, &in4->sin_addr) == 1) {
		in4->sin_family = AF_INET;
		in4->sin_port = htons((uint16_t)port);
		p->addr_len = sizeof(*in4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		p->addr_len = sizeof(*in6);
		return 0;
	}
	return -1;
}

static enum probe_result from_errno(struct probe *p, const char *what, int err)
{
	if (err == ECONNREFUSED)
		return PROBE_REFUSED;
	if (err == ETIMEDOUT)
		return PROBE_TIMEOUT;
	snprintf(p->message, sizeof(p->message), "%s: %s", what, strerror(err));
	return PROBE_ERROR;
}

static enum probe_result tcp_connect(struct probe *p, int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLOUT };
	socklen_t len = sizeof(int);
	int err = 0;

	if (connect(fd, (struct sockaddr *)&p->addr, p->addr_len) == 0)
		return PROBE_OK;
	if (errno != EINPROGRESS)
		return from_errno(p, "connect", errno);
	for (;;) {
		int64_t left = p->deadline_ms - tls_common_now_ms();
		int n;

		if (left <= 0)
			return PROBE_TIMEOUT;
		n = poll(&pfd, 1, (int)left);
		if (n > 0)
			break;
		if (n < 0 && errno != EINTR)
			return from_errno(p, "poll", errno);
	}
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return from_errno(p, "getsockopt", errno);
	return err ? from_errno(p, "connect", err) : PROBE_OK;
}

static void peer_cn(SSL *ssl, char *buf, size_t len)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);

	snprintf(buf, len, "-");
	if (cert && X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf,
					      (int)len) < 0)
		snprintf(buf, len, "-");
	X509_free(cert);
}

static enum probe_result tls_handshake(struct probe *p, int fd)
{
	enum probe_result result = PROBE_ERROR;
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	char err[256];

	if (!ssl || SSL_set_fd(ssl, fd) != 1) {
		snprintf(p->message, sizeof(p->message), "tls setup: %s",
			 tls_common_error(err, sizeof(err)));
		goto out;
	}
	SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
	SSL_set_connect_state(ssl);
	if (tls_common_run(ssl, fd, p->deadline_ms, TLS_COMMON_HANDSHAKE, NULL, 0) < 0) {
		if (errno == ETIMEDOUT)
			result = PROBE_TIMEOUT;
		else
			snprintf(p->message, sizeof(p->message), "handshake: %s",
				 tls_common_error(err, sizeof(err)));
		goto out;
	}
	peer_cn(ssl, p->message, sizeof(p->message));
	SSL_shutdown(ssl);
	result = PROBE_OK;
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return result;
}

static enum probe_result run_probe(struct probe *p)
{
	enum probe_result result;
	int fd = socket(p->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return from_errno(p, "socket", errno);
	result = tcp_connect(p, fd);
	if (result == PROBE_OK)
		result = tls_handshake(p, fd);
	close(fd);
	return result;
}

int main(int argc, char **argv)
{
	struct probe p = { .message = "" };
	enum probe_result result;
	long timeout_ms;
	int64_t ms;
	char *end;

	if (argc != 4) {
		fprintf(stderr, "usage: tls_probe ADDR PORT TIMEOUT_MS\n");
		printf("error usage ms=0\n");
		return PROBE_ERROR;
	}
	timeout_ms = strtol(argv[3], &end, 10);
	if (parse_target(&p, argv[1], argv[2]) < 0 || *end || timeout_ms < 1 ||
	    timeout_ms > 600000) {
		printf("error bad-arguments ms=0\n");
		return PROBE_ERROR;
	}
	signal(SIGPIPE, SIG_IGN);
	p.start_ms = tls_common_now_ms();
	p.deadline_ms = p.start_ms + timeout_ms;
	result = run_probe(&p);
	ms = tls_common_now_ms() - p.start_ms;
	switch (result) {
	case PROBE_OK:
		printf("handshake ok cn=%s ms=%lld\n", p.message, (long long)ms);
		break;
	case PROBE_REFUSED:
		printf("refused ms=%lld\n", (long long)ms);
		break;
	case PROBE_TIMEOUT:
		printf("timeout ms=%lld\n", (long long)ms);
		break;
	case PROBE_ERROR:
		printf("error %s ms=%lld\n", p.message, (long long)ms);
		break;
	}
	return result;
}
