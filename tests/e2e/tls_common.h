/* tls_common: the few helpers tls_server and tls_probe share: a monotonic
 * clock, address formatting, and waiting on a non-blocking TLS socket
 * against a deadline. Test-only code; not part of the daemon. */
#ifndef GK_E2E_TLS_COMMON_H
#define GK_E2E_TLS_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include <openssl/ssl.h>

/* Milliseconds on CLOCK_MONOTONIC. */
int64_t tls_common_now_ms(void);

/* Formats the address (no port) of SA into BUF; a v4-mapped IPv6 address
 * is printed as plain IPv4, the way an operator reads it. */
const char *tls_common_addr_str(const struct sockaddr_storage *sa, char *buf, size_t len);

enum tls_common_op { TLS_COMMON_HANDSHAKE, TLS_COMMON_READ, TLS_COMMON_WRITE };

/* Runs OP on SSL over the non-blocking FD until it completes, fails or
 * DEADLINE_MS passes. BUF/LEN are for READ and WRITE. Returns the OpenSSL
 * call's positive result, or -1 (errno ETIMEDOUT when the time ran out). */
int tls_common_run(SSL *ssl, int fd, int64_t deadline_ms, enum tls_common_op op, void *buf,
		   int len);

/* The last OpenSSL error as text, or strerror(errno) when the queue is
 * empty (a reset or EOF during the handshake leaves only errno). */
const char *tls_common_error(char *buf, size_t len);

#endif
