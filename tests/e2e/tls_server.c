/* tls_server: a TLS server bound to the wildcard address the way IIS/HTTP.sys
 * binds 0.0.0.0:443 with every site stopped: it completes the handshake on
 * any local address and answers any request with 404. The e2e tests read its
 * log to learn whether a connection got through: every accepted connection
 * is one line on stdout, flushed at once:
 *
 *   accept LOCALADDR CLIENTADDR
 *
 * Usage: tls_server [--status-file FILE | --silent] PORT CERT KEY. Prints
 * "listening" once bound. Serves one connection at a time, each bounded by
 * CONN_TIMEOUT_MS so a client that never speaks cannot stall it;
 * SIGTERM/SIGINT end it with status 0.
 *
 *   --status-file FILE  answer with the status code FILE holds ("200" or
 *                       "404"), read anew for every request: a site that an
 *                       operator stops and starts (the health-check tests)
 *   --silent            accept and never say a word: no TLS, no close (up
 *                       to SILENT_MAX connections held); a hung server */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tls_common.h"

#define CONN_TIMEOUT_MS 2000
#define REQUEST_MAX 4096
#define SILENT_MAX 256

static const char response_404[] = "HTTP/1.1 404 Not Found\r\n"
				   "Content-Type: text/plain\r\n"
				   "Content-Length: 10\r\n"
				   "Connection: close\r\n"
				   "\r\n"
				   "Not Found\n";

static const char response_200[] = "HTTP/1.1 200 OK\r\n"
				   "Content-Type: text/plain\r\n"
				   "Content-Length: 3\r\n"
				   "Connection: close\r\n"
				   "\r\n"
				   "OK\n";

static volatile sig_atomic_t stop_requested;
static const char *status_file;
static int silent_fds[SILENT_MAX];
static size_t silent_count;

/* 404 unless the status file says 200. */
static bool answer_200(void)
{
	char text[16] = "";
	FILE *f;

	if (!status_file || !(f = fopen(status_file, "re")))
		return false;
	if (!fgets(text, sizeof(text), f))
		text[0] = '\0';
	fclose(f);
	return strncmp(text, "200", 3) == 0;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static int listen_wildcard(uint16_t port)
{
	struct sockaddr_in6 sa = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
	int off = 0, on = 1;
	int fd;

	sa.sin6_addr = in6addr_any;
	fd = socket(AF_INET6, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("tls_server: socket");
		return -1;
	}
	/* Dual stack, as HTTP.sys does: v4 clients arrive as ::ffff:a.b.c.d. */
	if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &off, sizeof(off)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(fd, 128) < 0) {
		perror("tls_server: listen");
		close(fd);
		return -1;
	}
	return fd;
}

static SSL_CTX *tls_context(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx)
		return NULL;
	if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	return ctx;
}

static void log_accept(int fd)
{
	struct sockaddr_storage local, peer;
	socklen_t local_len = sizeof(local), peer_len = sizeof(peer);
	char local_text[64], peer_text[64];

	if (getsockname(fd, (struct sockaddr *)&local, &local_len) < 0 ||
	    getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0) {
		perror("tls_server: getsockname");
		return;
	}
	printf("accept %s %s\n", tls_common_addr_str(&local, local_text, sizeof(local_text)),
	       tls_common_addr_str(&peer, peer_text, sizeof(peer_text)));
	fflush(stdout);
}

/* Reads until the end of the request head, EOF, error or the deadline:
 * whatever came, the answer is the same 404. */
static void read_request(SSL *ssl, int fd, int64_t deadline)
{
	char buf[REQUEST_MAX + 1];
	size_t used = 0;

	while (used < REQUEST_MAX) {
		int n = tls_common_run(ssl, fd, deadline, TLS_COMMON_READ, buf + used,
				       (int)(REQUEST_MAX - used));
		if (n <= 0)
			return;
		used += (size_t)n;
		buf[used] = '\0';
		if (strstr(buf, "\r\n\r\n"))
			return;
	}
}

static void serve_connection(SSL_CTX *ctx, int fd)
{
	int64_t deadline = tls_common_now_ms() + CONN_TIMEOUT_MS;
	char err[256];
	SSL *ssl;

	log_accept(fd);
	ssl = SSL_new(ctx);
	if (!ssl || SSL_set_fd(ssl, fd) != 1)
		goto out;
	SSL_set_accept_state(ssl);
	if (tls_common_run(ssl, fd, deadline, TLS_COMMON_HANDSHAKE, NULL, 0) < 0) {
		fprintf(stderr, "tls_server: handshake: %s\n", tls_common_error(err, sizeof(err)));
		goto out;
	}
	read_request(ssl, fd, deadline);
	if (answer_200() ? tls_common_run(ssl, fd, deadline, TLS_COMMON_WRITE, (void *)response_200,
					  (int)sizeof(response_200) - 1) > 0
			 : tls_common_run(ssl, fd, deadline, TLS_COMMON_WRITE, (void *)response_404,
					  (int)sizeof(response_404) - 1) > 0)
		SSL_shutdown(ssl);
out:
	ERR_clear_error();
	SSL_free(ssl);
	close(fd);
}

/* SIGTERM/SIGINT stay blocked except inside ppoll, so a stop request is
 * never lost between the flag check and the wait. */
static int install_signals(sigset_t *wait_mask)
{
	struct sigaction sa = { .sa_handler = on_stop_signal };
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	if (sigprocmask(SIG_BLOCK, &block, wait_mask) < 0)
		return -1;
	sigdelset(wait_mask, SIGTERM);
	sigdelset(wait_mask, SIGINT);
	signal(SIGPIPE, SIG_IGN);
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return -1;
	return 0;
}

static void serve(SSL_CTX *ctx, int listen_fd, const sigset_t *wait_mask)
{
	struct pollfd pfd = { .fd = listen_fd, .events = POLLIN };

	while (!stop_requested) {
		int fd;

		if (ppoll(&pfd, 1, NULL, wait_mask) < 0) {
			if (errno == EINTR)
				continue;
			perror("tls_server: ppoll");
			return;
		}
		fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				perror("tls_server: accept");
			continue;
		}
		if (!ctx) { /* --silent: hold it, say nothing */
			log_accept(fd);
			if (silent_count == SILENT_MAX)
				close(silent_fds[--silent_count]);
			silent_fds[silent_count++] = fd;
			continue;
		}
		serve_connection(ctx, fd);
	}
}

int main(int argc, char **argv)
{
	SSL_CTX *ctx = NULL;
	sigset_t wait_mask;
	int listen_fd = -1;
	int status = 1;
	long port;
	char *end;

	bool silent = false;

	while (argc > 1 && strncmp(argv[1], "--", 2) == 0) {
		if (strcmp(argv[1], "--silent") == 0) {
			silent = true;
			argv++;
			argc--;
		} else if (strcmp(argv[1], "--status-file") == 0 && argc > 2) {
			status_file = argv[2];
			argv += 2;
			argc -= 2;
		} else {
			break;
		}
	}
	if (argc != 4) {
		fprintf(stderr, "usage: tls_server [--status-file FILE | --silent] PORT CERT KEY\n");
		return 2;
	}
	port = strtol(argv[1], &end, 10);
	if (*end || port < 1 || port > 65535) {
		fprintf(stderr, "tls_server: bad port '%s'\n", argv[1]);
		return 2;
	}
	if (install_signals(&wait_mask) < 0) {
		perror("tls_server: signals");
		return 1;
	}
	ctx = silent ? NULL : tls_context(argv[2], argv[3]);
	if (!ctx && !silent)
		goto cleanup;
	listen_fd = listen_wildcard((uint16_t)port);
	if (listen_fd < 0)
		goto cleanup;
	printf("listening\n");
	fflush(stdout);
	serve(ctx, listen_fd, &wait_mask);
	status = stop_requested ? 0 : 1;
cleanup:
	if (listen_fd >= 0)
		close(listen_fd);
	while (silent_count)
		close(silent_fds[--silent_count]);
	SSL_CTX_free(ctx);
	return status;
}
