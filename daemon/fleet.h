/* fleet: several gatekeeper boxes share the run-time site state through
 * etcd (daemon/FLEET-DESIGN.md, README "Fleet mode").
 *
 * An operator's toggle on any box is written to etcd first; every box
 * applies the fleet's overrides from one watch, with the same per-site
 * switch a local toggle uses (maintenance_apply), in etcd's revision
 * order: the last writer by revision wins, never by wall clock. A box
 * starts from its local cache (state_file + ".fleet") without waiting for
 * etcd, and keeps deciding SYNs from the last known state while etcd is
 * away ("stale since T"); toggles are then refused, and a local pin
 * (`--local`) is the operator's lever.
 *
 * Everything runs on the main thread through the etcd client's fd
 * (daemon/loop.h); the packet workers never wait on it. */
#ifndef GK_FLEET_H
#define GK_FLEET_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "maintenance.h"
#include "sites.h"
#include "strbuf.h"

/* A heartbeat at least this often (a third of the lease otherwise). */
#define FLEET_HEARTBEAT_MAX_MS 1000
/* Reconnecting: the first retry at once on the next endpoint, then
 * backing off to this while no endpoint answers. */
#define FLEET_RETRY_MAX_MS 500
/* Establishing a connection to an endpoint, at most (request_timeout if
 * shorter). */
#define FLEET_CONNECT_TIMEOUT_MS 500
/* --wait: how long every live box has to apply a toggle. */
#define FLEET_WAIT_MS 5000
/* Toggles in flight at once (more are refused as busy). */
#define FLEET_MAX_PENDING 32
#define FLEET_MAX_BOXES 64
/* At stop, how long the box waits to revoke its lease (best effort). */
#define FLEET_REVOKE_MS 300

struct fleet;
struct engine;

/* The reply to the control request TICKET that waited on the fleet: CODE
 * NULL for OK, else a PROTOCOL_ERR_* code. */
typedef void fleet_reply_fn(void *arg, uint64_t ticket, const char *code,
			    const struct strbuf *body);

/* Starts the fleet of ENGINE's config (its fleet section, copied): loads
 * and applies the cache, then connects in the background. NULL (logged)
 * on failure. */
struct fleet *fleet_open(struct engine *engine, fleet_reply_fn *reply, void *reply_arg);
/* Revokes the box's lease (best effort, no wait) and frees everything. */
void fleet_close(struct fleet *f);

int fleet_fd(const struct fleet *f);
int fleet_timeout_ms(const struct fleet *f);
void fleet_dispatch(struct fleet *f);

/* An operator's toggle for the whole fleet. */
struct fleet_toggle {
	const char *site;
	bool reset;              /* delete the fleet's override */
	enum site_state state;
	enum site_action action;
	const struct maintenance_opts *opts;
	const char *by;          /* "uid 0 pid 4242" */
	bool wait;               /* answer once every live box applied it */
};

/* 0: sent; the reply comes through the reply function with TICKET. -1:
 * refused now (etcd away, not initialised, too many in flight): the
 * reason in B, *CODE the error code. */
int fleet_toggle(struct fleet *f, const struct fleet_toggle *t, uint64_t ticket,
		 struct strbuf *b, const char **code);
/* `gatekeeperctl fleet init`: writes the schema key if there is none.
 * Same returns. */
int fleet_init(struct fleet *f, const char *by, uint64_t ticket, struct strbuf *b,
	       const char **code);

/* The fleet's override, if any, is put (back) on SITE unless a local pin
 * holds it: after a pin ends, after a reload (NULL: every site). */
void fleet_reapply(struct fleet *f, struct site *site);
/* Whether the fleet section C (of a reloaded config) differs from the one
 * the fleet runs with: it takes effect at the next start. */
bool fleet_config_changed(const struct fleet *f, const struct config_fleet *c);
/* Local pins: sites whose local override hides the fleet's. */
unsigned fleet_pins(const struct fleet *f);

/* Status (text and JSON members), per site and as a whole, and metrics. */
void fleet_status_text(const struct fleet *f, struct strbuf *b);
void fleet_status_json(const struct fleet *f, struct strbuf *b);
void fleet_site_text(const struct fleet *f, const struct site *site, struct strbuf *b);
void fleet_site_json(const struct fleet *f, const struct site *site, struct strbuf *b);
void fleet_metrics(const struct fleet *f, struct strbuf *b);

#endif
