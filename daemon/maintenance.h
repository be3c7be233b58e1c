/* maintenance: what an operator plans into an offline override: an
 * allow-list (the source networks still let in, e.g. the ops network that
 * tests the site before it reopens) and a deadline (when the override ends
 * by itself and the site returns to its config, or to its check).
 *
 * The allow-list is decided per SYN by the workers (sites.h) and by the
 * kernel guard (guard.h); this module parses the request options, shows
 * both in status, and ends overrides whose deadline passed. */
#ifndef GK_MAINTENANCE_H
#define GK_MAINTENANCE_H

#include <stdbool.h>
#include <stdint.h>

#include "protocol.h"
#include "sites.h"
#include "strbuf.h"

struct engine;

/* Bounds of a deadline, from the moment it is given (shared with the CLI). */
#define MAINTENANCE_MIN_SECONDS PROTOCOL_DEADLINE_MIN_S
#define MAINTENANCE_MAX_SECONDS PROTOCOL_DEADLINE_MAX_S

/* The options of an `offline` request. */
struct maintenance_opts {
	struct site_allow *allow; /* owned; NULL: the config's list */
	int64_t until;            /* Unix time; 0: no deadline */
	bool cut;                 /* end the established connections too (cut.h) */
};

/* One request word: "allow=CIDR[,CIDR...]", "allow=none" (an empty list:
 * nobody, whatever the config says), "for=SECONDS", "until=UNIXTIME" or
 * "cut".
 * NOW_S is the wall clock. 1 if WORD is an option (parsed into OPTS), 0
 * if it is not one, -1 with a message in ERR for a bad one. */
int maintenance_parse_option(const char *word, struct maintenance_opts *opts, int64_t now_s,
			     char *err, size_t err_len);
void maintenance_opts_free(struct maintenance_opts *opts);

/* Puts an override in force on SITE: STATE and ACTION with OPTS (its
 * allow-list is taken), as a toggle of this box (SOURCE runtime) or of the
 * fleet, in the order the workers and the kernel guard need; then the
 * guard follows and a cut starts. -1 when the guard could not be updated
 * (the workers have the new state; the daemon keeps retrying). */
int maintenance_apply(struct engine *engine, struct site *site, enum site_state state,
		      enum site_action action, struct maintenance_opts *opts, enum site_source source);
/* Ends SITE's override: back to its config, or its check. Same return. */
int maintenance_clear(struct engine *engine, struct site *site);
/* The same without the guard's update, for a batch of sites: then one
 * maintenance_sync() (or engine_guard_sync() and engine_cut_round()). */
void maintenance_set(struct engine *engine, struct site *site, enum site_state state,
		     enum site_action action, struct maintenance_opts *opts, enum site_source source);
void maintenance_unset(struct engine *engine, struct site *site);
/* The guard follows SITE's state (and a cut starts). Same return. */
int maintenance_sync(struct engine *engine, struct site *site);

/* Milliseconds until the earliest deadline of SITES (at most a minute, so
 * a wall-clock step is noticed), -1 when there is none. */
int maintenance_timeout_ms(const struct sites *sites);
/* Ends every override of ENGINE's sites whose deadline passed, as
 * `gatekeeperctl reset` would, and logs it. STATE_FILE is rewritten. */
void maintenance_expire(struct engine *engine);

/* The status lines / JSON members of SITE's allow-list and deadline. */
void maintenance_status_text(const struct site *site, int64_t now_s, struct strbuf *b);
void maintenance_status_json(const struct site *site, int64_t now_s, struct strbuf *b);

#endif
