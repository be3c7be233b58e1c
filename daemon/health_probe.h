/* health_probe: the checks themselves (TCP connect, TLS handshake with
 * OpenSSL, one HTTP/1.1 request, the verdict on the response), on
 * non-blocking sockets driven from one epoll fd. It runs in the checker
 * process (daemon/checker.c), never in the daemon: it parses what checked
 * servers send.
 *
 * It never creates a socket: each job comes with the socket to use (made
 * and marked by the daemon) and, with a CA, an fd of the CA file; it
 * never opens a file. Each job ends in exactly one result through the
 * DONE callback, or in a cancel (no result). */
#ifndef GK_HEALTH_PROBE_H
#define GK_HEALTH_PROBE_H

#include <stdbool.h>
#include <stddef.h>

#include "checker_proto.h"
#include "config.h"

/* The part of a response kept to judge it (status line, headers, body). */
#define HEALTH_RESPONSE_MAX 16384
/* The largest CA file read from a CA fd. */
#define HEALTH_CA_MAX (4u << 20)

struct probe_engine;
typedef void probe_done_fn(void *ctx, const struct checker_result *result);

struct probe_engine *probe_engine_new(probe_done_fn *done, void *ctx);
void probe_engine_free(struct probe_engine *engine);
int probe_engine_fd(const struct probe_engine *engine);
/* How long the caller may sleep before the next deadline (-1: none). */
int probe_engine_timeout_ms(const struct probe_engine *engine);
/* Starts JOB on SOCK (a fresh TCP socket), with CA_FD (or -1): both are
 * owned by the engine from here on. A job still in JOB's slot is ended
 * without a result. */
void probe_engine_start(struct probe_engine *engine, const struct checker_job *job, int sock,
			int ca_fd);
void probe_engine_cancel(struct probe_engine *engine, uint32_t slot, uint32_t generation);
/* Moves every job as far as it goes without blocking; ends those past
 * their deadline. */
void probe_engine_dispatch(struct probe_engine *engine);

/* Judges the response bytes BUF[0..LEN) of an https check: 1 passed,
 * 0 failed, -1 undecided (read more; with EOF it never returns -1). The
 * reason ("HTTP 200", "HTTP 404", ...) goes to REASON. */
int health_judge_http(const struct config_check *check, const char *buf, size_t len, bool eof,
		      char *reason, size_t reason_len);

#endif
