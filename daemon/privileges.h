/* privileges: leave root once the queues, raw sockets, rules and control
 * socket exist, keeping only what the daemon still needs:
 *
 *   CAP_NET_ADMIN  netfilter checks it on every verdict message, and the
 *                  rules are updated on reload and removed at exit
 *   CAP_NET_RAW    only with iptables-legacy, whose tools need it; in
 *                  every other case dropped once the raw sockets are open,
 *                  also under the unit and when running as root
 *
 * Both are kept ambient as well, so the iptables tools the xt backend runs
 * inherit them. Under systemd the unit's User= and AmbientCapabilities= do
 * this before we start, and privileges_drop() finds nothing to do. */
#ifndef GK_PRIVILEGES_H
#define GK_PRIVILEGES_H

#include <stdbool.h>

/* Switches to USER (name). 0, or -1 after logging why. A no-op returning
 * 0 when we already run as USER. */
int privileges_drop(const char *user, bool keep_net_raw);
/* Drops CAP_NET_RAW from every set of this thread (call it before any
 * other starts): once the raw RST sockets are open only iptables-legacy's
 * tools still need it. 0 (also when it was not held), or -1 after logging. */
int privileges_drop_net_raw(void);

#endif
