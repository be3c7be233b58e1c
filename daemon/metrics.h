/* metrics: the daemon's figures in the Prometheus text exposition format
 * (version 0.0.4), for `gatekeeperctl metrics` and for the optional HTTP
 * listener (metrics_server.h). Label values that come from outside (a
 * certificate's subject) go through textsafe.h: the scrape stays valid
 * whatever a checked server sends. */
#ifndef GK_METRICS_H
#define GK_METRICS_H

#include "strbuf.h"

struct engine;

/* Appends the whole exposition for ENGINE to OUT. */
void metrics_render(const struct engine *engine, struct strbuf *out);

#endif
