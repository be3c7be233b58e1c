/* metrics: the daemon's figures in the Prometheus text exposition format
 * (version 0.0.4), for `gatekeeperctl metrics` and for an optional HTTP
 * listener (config metrics.listen) that serves GET /metrics.
 *
 * The listener runs on the main thread from one epoll fd that main()
 * polls, like the control socket: non-blocking, at most
 * METRICS_MAX_CLIENTS at once, a request of at most METRICS_MAX_REQUEST
 * bytes, and METRICS_TIMEOUT_MS for each connection from accept to the
 * last byte of the reply; one connection per request (HTTP/1.0 style). */
#ifndef GK_METRICS_H
#define GK_METRICS_H

#include "strbuf.h"

#define METRICS_MAX_CLIENTS 16
#define METRICS_MAX_REQUEST 2048
#define METRICS_TIMEOUT_MS 5000
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct engine;
struct metrics_server;

/* Appends the whole exposition for ENGINE to OUT. */
void metrics_render(const struct engine *engine, struct strbuf *out);

/* Opens the listener of ENGINE's config (metrics.listen). 0 with *OUT NULL
 * when none is configured; -1 (logged) when it cannot listen. */
int metrics_server_open(struct engine *engine, struct metrics_server **out);
void metrics_server_close(struct metrics_server *server);
/* As control.h: the fd to poll (-1 for a NULL server), how long the poll
 * may sleep, and the work when it wakes. Never blocks. */
int metrics_server_fd(const struct metrics_server *server);
int metrics_server_timeout_ms(const struct metrics_server *server);
void metrics_server_dispatch(struct metrics_server *server);

#endif
