/* metrics_server: the optional HTTP listener (config metrics.listen) that
 * serves GET /metrics, the exposition metrics_render() writes.
 *
 * An optional listener never takes the gate down. If the address cannot
 * be bound (a local user holds the port, the address is gone) the daemon
 * logs it loudly, keeps deciding SYNs and keeps its rules, and tries
 * again from the main loop, every METRICS_RETRY_MIN_MS at first, backing
 * off to METRICS_RETRY_MAX_MS; `gatekeeperctl status` and `stats` say the
 * listener is down, since when and why. A reload that changes
 * metrics.listen moves the listener the same way.
 *
 * It runs on the main thread from one epoll fd that main() polls, like
 * the control socket, never blocking. A hostile scraper cannot keep the
 * others out:
 *   - at most METRICS_MAX_CLIENTS connections, at most
 *     METRICS_MAX_PER_PEER of them from one peer (an IPv4 address, an
 *     IPv6 /64); when every slot is taken a newcomer evicts the oldest
 *     connection of the peer that holds the most (peerlimit.h);
 *   - a connection sends its whole request (at most METRICS_MAX_REQUEST
 *     bytes) within METRICS_REQUEST_TIMEOUT_MS of its accept, and takes
 *     the whole reply within METRICS_WRITE_TIMEOUT_MS; one request per
 *     connection (HTTP/1.0 style). */
#ifndef GK_METRICS_SERVER_H
#define GK_METRICS_SERVER_H

#include "strbuf.h"

#define METRICS_MAX_CLIENTS 16
#define METRICS_MAX_PER_PEER 4
#define METRICS_MAX_REQUEST 2048
#define METRICS_REQUEST_TIMEOUT_MS 3000
#define METRICS_WRITE_TIMEOUT_MS 5000
#define METRICS_RETRY_MIN_MS 1000
#define METRICS_RETRY_MAX_MS 8000
#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

struct engine;
struct metrics_server;

/* The listener of ENGINE's config, open or waiting to retry; it follows
 * reloads of metrics.listen. -1 (logged) only when out of memory. */
int metrics_server_open(struct engine *engine, struct metrics_server **out);
void metrics_server_close(struct metrics_server *server);
/* As control.h: the fd to poll (-1 for a NULL server or one not
 * listening), how long the poll may sleep, and the work when it wakes
 * (also the retries and the reload's moves). Never blocks. */
int metrics_server_fd(const struct metrics_server *server);
int metrics_server_timeout_ms(const struct metrics_server *server);
void metrics_server_dispatch(struct metrics_server *server);

/* The listener's state for status and stats: "metrics    ..." lines, or
 * a ,"metrics":{...} member of a JSON object. Nothing for NULL. */
void metrics_server_status_text(const struct metrics_server *server, struct strbuf *out);
void metrics_server_status_json(const struct metrics_server *server, struct strbuf *out);
/* The listener's own figures for the exposition (gauge up, counters of
 * refused, evicted and expired connections). Nothing for NULL. */
void metrics_server_render(const struct metrics_server *server, struct strbuf *out);

#endif
