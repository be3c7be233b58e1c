/* fleet_internal: what fleet.c (the connection and applying), fleet_toggle.c
 * (toggles that wait on etcd) and fleet_report.c (status, metrics) share.
 * Private to the fleet module. */
#ifndef GK_FLEET_INTERNAL_H
#define GK_FLEET_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "fleet.h"
#include "fleet_value.h"
#include "health.h"

struct etcd_client;

enum fleet_phase {
	FLEET_DOWN,   /* waiting to dial the next endpoint */
	FLEET_LEASE,  /* granting the box's lease */
	FLEET_SCHEMA, /* reading P schema */
	FLEET_UP,     /* watching (maybe reading the prefix afresh), heartbeats */
};

struct fleet_box {
	char name[PROTOCOL_SITE_NAME_MAX + 1];
	struct fleet_box_value value;
};

/* A box's own check of an auto site (fleet.checks: all). */
struct fleet_check {
	char box[PROTOCOL_SITE_NAME_MAX + 1];
	char site[PROTOCOL_SITE_NAME_MAX + 1];
	bool up;
	bool published; /* ours: written on the current lease */
};

/* A control request waiting on etcd. */
struct fleet_pending {
	struct fleet *fleet; /* for the etcd callbacks, which get the slot */
	bool used;
	bool init;           /* fleet init, not a toggle */
	bool wait;           /* until every live box applied it */
	bool reset;          /* a delete of the site's key */
	uint64_t ticket;     /* the control request's */
	uint64_t request;    /* the etcd write, while in flight */
	int64_t revision;    /* committed at; 0 until then */
	uint64_t deadline_ms;
	char site[PROTOCOL_SITE_NAME_MAX + 1];
	char what[96];       /* "offline (reject)", "reset" */
};

struct fleet {
	struct engine *engine;
	fleet_reply_fn *reply;
	void *reply_arg;
	struct {
		uint32_t lease_ttl_ms, request_timeout_ms;
		size_t n_endpoints;
	} cfg;
	char name[PROTOCOL_SITE_NAME_MAX + 1];
	char box[PROTOCOL_SITE_NAME_MAX + 1];
	char p[FLEET_KEYS_MAX]; /* PREFIX/NAME/ */
	char cache_path[4096];
	char signature[8192]; /* the fleet section it was opened with */
	struct etcd_client *client;

	enum fleet_phase phase;
	unsigned attempts;
	uint64_t retry_at_ms, retry_ms;
	uint64_t request;     /* lease grant, schema or prefix read in flight */
	uint64_t watch;
	int64_t lease;
	uint64_t heartbeat, heartbeat_at_ms, last_heartbeat_ms;
	uint64_t up_since_ms;
	bool initialised, warned_uninitialised, reread;
	bool need_sync, need_cut; /* applied a state: the guard follows (fleet_sync) */

	int64_t cursor;       /* the highest revision seen (events, progress, reads) */
	int64_t applied;      /* the last site change applied: what box/BOX says */
	int64_t published, publishing_applied;
	unsigned published_pins, publishing_pins;
	bool warned_boxes;
	bool closing; /* fleet_close() runs: no new toggle */
	uint64_t publishing;
	int64_t started;      /* Unix time */

	int64_t stale_since;  /* Unix time; 0: up to date */
	uint64_t stale_since_ms;
	char last_error[320];
	uint64_t next_warn_ms;

	struct fleet_cache cache; /* the fleet's overrides, by site name */
	size_t cache_cap;
	struct fleet_box boxes[FLEET_MAX_BOXES];
	size_t n_boxes;
	struct fleet_pending pending[FLEET_MAX_PENDING];

	/* fleet.checks: all (fleet_checks.c) */
	bool combine_checks;
	struct fleet_check *checks;
	size_t n_checks, checks_cap;
	/* checks by (box, site): entry index + 1, 0 empty, SIZE_MAX removed;
	 * at most half of it in use, removed ones included */
	size_t *check_slots;
	size_t check_mask, check_slots_used;
	size_t check_cursor; /* where the next publish scan starts */
	bool check_withdraw_due; /* the sites changed (a reload): withdraw what we lost */
	bool checks_changed;
	uint64_t check_publishing;
	char check_site[PROTOCOL_SITE_NAME_MAX + 1];
	bool check_up, check_withdrawing;
	uint64_t check_retry_at_ms;

	/* for metrics */
	uint64_t connects, losses, full_reads, events, writes;
	uint64_t toggles_committed, toggles_failed, toggles_refused;
};

/* The fleet's override of NAME, or NULL. */
struct fleet_cache_entry *fleet_entry(const struct fleet *f, const char *name);
/* fleet_toggle.c: answers the waiting requests that are done, or past
 * their deadline; and every one of them (REASON) when the fleet stops. */
void fleet_check_pending(struct fleet *f);
void fleet_fail_pending(struct fleet *f, const char *reason);

/* fleet_checks.c */
struct etcd_kv;
/* health_combine_fn (health.h) for fleet.checks: all. */
enum health_state fleet_checks_combine(void *arg, const char *site, enum health_state own);
/* BOX's verdict of SITE as this box last read (or, for itself, published
 * it), or NULL: none. */
const struct fleet_check *fleet_checks_find(const struct fleet *f, const char *box,
					    const char *site);
/* A watched or read key under P check/: true if it was one. */
bool fleet_checks_key(struct fleet *f, const struct etcd_kv *kv, bool deleted);
/* Every other box's verdicts dropped (a full read refills them). */
void fleet_checks_forget(struct fleet *f);
/* This box's changed verdicts to etcd; all again on a new lease. */
void fleet_checks_publish(struct fleet *f);
void fleet_checks_relet(struct fleet *f);
/* After the others' verdicts changed: the auto sites are decided again. */
void fleet_checks_apply(struct fleet *f);

#endif
