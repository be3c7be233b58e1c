/* fleet: see fleet.h and daemon/FLEET-DESIGN.md.
 *
 * The connection goes DOWN -> LEASE (grant) -> SCHEMA (read P schema) ->
 * [READ (the whole prefix)] -> UP (watching, heartbeats). Anything that
 * fails on the way, a heartbeat that fails or comes late, or a watch that
 * ends makes the fleet stale and moves to the next endpoint. */
#include "fleet.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "engine.h"
#include "etcd_client.h"
#include "fleet_internal.h"
#include "fleet_value.h"
#include "log.h"
#include "loop.h"
#include "protocol.h"
#include "state.h"

#define RETRY_MIN_MS 250
#define LOST_WARN_INTERVAL_MS 60000

static void lost(struct fleet *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void connect_start(struct fleet *f);
static void read_all(struct fleet *f);
static void publish(struct fleet *f);

static int64_t now_s(void)
{
	return clock_wall_ms() / 1000;
}

static bool key_is(const struct fleet *f, const struct etcd_kv *kv, enum fleet_key_kind kind,
		   char name[PROTOCOL_SITE_NAME_MAX + 1])
{
	return fleet_key_parse(f->p, kv->key, kv->key_len, name) == kind;
}

static void result_text(const struct etcd_result *r, char *buf, size_t len)
{
	if (r->kind == ETCD_RESULT_ETCD_ERROR)
		snprintf(buf, len, "etcd: %s (code %d)", r->error.message, r->error.grpc_code);
	else
		snprintf(buf, len, "%s%s%s", etcd_result_kind_name(r->kind), r->detail[0] ? ": " : "",
			 r->detail);
}

/* The common end of a request of the connection: true when the caller
 * stops here (its transfer was abandoned with the endpoint, or it failed:
 * then the fleet is lost, WHAT saying during what). */
static bool request_failed(struct fleet *f, const struct etcd_result *r, const char *what)
{
	char why[320];

	if (r->kind == ETCD_RESULT_ABANDONED)
		return true;
	if (r->kind == ETCD_RESULT_OK)
		return false;
	result_text(r, why, sizeof(why));
	lost(f, "%s: %s", what, why);
	return true;
}

/* ---- the cache of the fleet's overrides ---- */

struct fleet_cache_entry *fleet_entry(const struct fleet *f, const char *name)
{
	for (size_t i = 0; i < f->cache.count; i++)
		if (strcmp(f->cache.entries[i].name, name) == 0)
			return &f->cache.entries[i];
	return NULL;
}

static void entry_remove(struct fleet *f, const char *name)
{
	struct fleet_cache_entry *e = fleet_entry(f, name);

	if (!e)
		return;
	fleet_value_free(&e->value);
	*e = f->cache.entries[--f->cache.count];
}

/* Takes V. -1 out of memory (V freed). */
static int entry_put(struct fleet *f, const char *name, struct fleet_value *v, int64_t rev)
{
	struct fleet_cache_entry *e = fleet_entry(f, name);

	if (!e) {
		if (f->cache.count == f->cache_cap) {
			size_t cap = f->cache_cap ? f->cache_cap * 2 : 16;
			void *grown = realloc(f->cache.entries, cap * sizeof(*f->cache.entries));

			if (!grown) {
				fleet_value_free(v);
				return -1;
			}
			f->cache.entries = grown;
			f->cache_cap = cap;
		}
		e = &f->cache.entries[f->cache.count++];
		memset(e, 0, sizeof(*e));
		snprintf(e->name, sizeof(e->name), "%s", name);
	} else {
		fleet_value_free(&e->value);
	}
	e->value = *v;
	e->mod_revision = rev;
	v->allow = NULL;
	return 0;
}

static void cache_save(struct fleet *f)
{
	char *text, err[512];

	f->cache.revision = f->cursor;
	snprintf(f->cache.keys, sizeof(f->cache.keys), "%s", f->p);
	text = fleet_cache_encode(&f->cache);
	if (!text || state_write_file(f->cache_path, text, strlen(text), err, sizeof(err)) < 0)
		log_warn("fleet: cache %s not written: %s", f->cache_path, text ? err : "out of memory");
	free(text);
}

static void cache_load(struct fleet *f)
{
	size_t len = 0;
	char why[256], *text = state_read_file(f->cache_path, FLEET_CACHE_MAX, &len, why, sizeof(why));

	if (!text) {
		if (why[0])
			log_warn("fleet: cache %s ignored: %s", f->cache_path, why);
		return;
	}
	if (fleet_cache_decode(text, len, &f->cache, why, sizeof(why)) < 0) {
		log_warn("fleet: cache %s ignored: %s", f->cache_path, why);
	} else if (f->cache.keys[0] && strcmp(f->cache.keys, f->p) != 0) {
		/* the config names another fleet (or prefix) than the one the
		 * cache is of: its overrides are not this fleet's, not even
		 * while etcd is away */
		log_warn("fleet: cache %s ignored: it holds the fleet under %s, this box's is under %s",
			 f->cache_path, f->cache.keys, f->p);
		fleet_cache_free(&f->cache);
	} else {
		log_info("fleet: %zu override%s from the cache (revision %" PRId64 ")", f->cache.count,
			 f->cache.count == 1 ? "" : "s", f->cache.revision);
	}
	f->cache_cap = f->cache.count;
	f->cursor = f->cache.revision;
	f->applied = f->cache.revision;
	free(text);
}

/* ---- applying ---- */

static bool same_allow(const struct site_allow *a, const struct site_allow *b)
{
	if (!a || !b)
		return a == b;
	return a->count == b->count && memcmp(a->nets, b->nets, a->count * sizeof(a->nets[0])) == 0;
}

/* SITE takes the fleet's override, or loses it; the guard is updated by
 * the caller, once for a batch (fleet_sync). */
static void apply_site(struct fleet *f, struct site *site)
{
	const struct fleet_cache_entry *e = fleet_entry(f, site_name(site));
	enum site_source source = site_source(site);

	if (source == SITE_SOURCE_RUNTIME)
		return; /* pinned: diverges on purpose, shown as such */
	if (e && (!e->value.until || e->value.until > now_s())) {
		const struct fleet_value *v = &e->value;
		struct maintenance_opts opts = {.until = v->until, .cut = v->cut};

		if (source == SITE_SOURCE_FLEET && site_state(site) == v->state &&
		    site_action(site) == v->action && site_until(site) == v->until &&
		    site_cut(site) == (v->cut && v->state == SITE_OFFLINE) &&
		    (v->state != SITE_OFFLINE ||
		     same_allow(site_allow_is_runtime(site) ? site_allow_list(site) : NULL, v->allow)))
			return;
		if (v->allow && !(opts.allow = site_allow_new(v->allow->nets, v->allow->count))) {
			log_error("site %s: out of memory applying the fleet's override", site_name(site));
			return;
		}
		maintenance_set(f->engine, site, v->state, v->action, &opts, SITE_SOURCE_FLEET);
		maintenance_opts_free(&opts);
		f->need_sync = true;
		f->need_cut |= site_cut(site);
		log_info("site %s: %s (%s) from the fleet (revision %" PRId64 ", by %s on %s)",
			 site_name(site), config_state_name(v->state), config_action_name(v->action),
			 e->mod_revision, v->by[0] ? v->by : "?", v->box[0] ? v->box : "?");
	} else if (source == SITE_SOURCE_FLEET) {
		maintenance_unset(f->engine, site);
		f->need_sync = true;
		log_info("site %s: the fleet's override ended; back to %s (%s, from %s)",
			 site_name(site), config_state_name(site_state(site)),
			 config_action_name(site_action(site)), site_source_word(site));
	}
}

/* One guard update (and one cut round) for everything applied since. */
static void fleet_sync(struct fleet *f)
{
	if (!f->need_sync)
		return;
	f->need_sync = false;
	if (engine_guard_sync(f->engine) == 0 && f->need_cut)
		engine_cut_round(f->engine);
	f->need_cut = false;
}

void fleet_reapply(struct fleet *f, struct site *site)
{
	struct sites *sites = engine_sites(f->engine);

	if (site) {
		apply_site(f, site);
	} else {
		for (size_t i = 0; i < sites_count(sites); i++)
			apply_site(f, sites_at(sites, i));
		/* a new table (a reload): verdicts of sites gone, or no longer
		 * checked, are withdrawn (fleet_checks_publish) */
		f->check_withdraw_due = true;
	}
	fleet_sync(f);
}

static void reapply_name(struct fleet *f, const char *name)
{
	struct site *site = sites_find(engine_sites(f->engine), name);

	if (site)
		apply_site(f, site);
}

unsigned fleet_pins(const struct fleet *f)
{
	const struct sites *sites = engine_sites(f->engine);
	unsigned n = 0;

	for (size_t i = 0; i < sites_count(sites); i++)
		n += site_source(sites_at(sites, i)) == SITE_SOURCE_RUNTIME;
	return n;
}

/* ---- boxes ---- */

static struct fleet_box *box_find(struct fleet *f, const char *name)
{
	for (size_t i = 0; i < f->n_boxes; i++)
		if (strcmp(f->boxes[i].name, name) == 0)
			return &f->boxes[i];
	return NULL;
}

static void box_put(struct fleet *f, const char *name, const struct etcd_kv *kv)
{
	struct fleet_box *b = box_find(f, name);
	struct fleet_box_value v;

	if (fleet_box_decode(kv->value, kv->value_len, &v) < 0) {
		log_warn("fleet: box %s's presence is not valid JSON of ours: ignored", name);
		return;
	}
	if (!b) {
		if (f->n_boxes == FLEET_MAX_BOXES) {
			if (!f->warned_boxes)
				log_warn("fleet: more than %d boxes: box %s and later ones are not "
					 "counted (status, --wait)", FLEET_MAX_BOXES, name);
			f->warned_boxes = true;
			return;
		}
		b = &f->boxes[f->n_boxes++];
		snprintf(b->name, sizeof(b->name), "%s", name);
		if (strcmp(name, f->box) != 0)
			log_info("fleet: box %s is live", name);
	}
	b->value = v;
}

static void box_gone(struct fleet *f, const char *name)
{
	struct fleet_box *b = box_find(f, name);

	if (strcmp(name, f->box) == 0)
		f->published = -1; /* ours deleted behind our back: written again */
	if (!b)
		return;
	log_info("fleet: box %s is gone (its lease ended)", name);
	*b = f->boxes[--f->n_boxes];
	f->checks_changed = true; /* its verdicts no longer count */
}

/* ---- one key's change, from a read or the watch ---- */

/* 1 if the fleet's overrides changed, 0 if not. */
static int key_changed(struct fleet *f, const struct etcd_kv *kv, bool deleted)
{
	char name[PROTOCOL_SITE_NAME_MAX + 1], why[128];
	struct fleet_schema schema;
	struct fleet_value v;

	if (fleet_checks_key(f, kv, deleted))
		return 0;
	switch (fleet_key_parse(f->p, kv->key, kv->key_len, name)) {
	case FLEET_KEY_SITE:
		/* without the schema key this is not the fleet we know (a wiped
		 * or rebuilt etcd): the last known state stays; the schema's
		 * return reads everything afresh */
		if (!f->initialised)
			return 0;
		if (deleted) {
			entry_remove(f, name);
		} else if (fleet_value_decode(kv->value, kv->value_len, &v, why, sizeof(why)) < 0) {
			log_warn("fleet: site/%s at revision %" PRId64 " ignored: %s", name,
				 kv->mod_revision, why);
			return 0;
		} else if (entry_put(f, name, &v, kv->mod_revision) < 0) {
			log_error("fleet: out of memory keeping site/%s", name);
			return 0;
		}
		reapply_name(f, name);
		f->applied = kv->mod_revision;
		return 1;
	case FLEET_KEY_BOX:
		if (deleted)
			box_gone(f, name);
		else
			box_put(f, name, kv);
		return 0;
	case FLEET_KEY_SCHEMA:
		if (deleted) {
			log_warn("fleet: the schema key was deleted: keeping the last known state; "
				 "toggles are refused until `gatekeeperctl fleet init`");
			f->initialised = false;
		} else if (fleet_schema_decode(kv->value, kv->value_len, &schema) < 0) {
			log_warn("fleet: the schema key is not ours: keeping the last known state");
			f->initialised = false;
		} else if (strcmp(schema.id, f->cache.schema_id) != 0 || !f->initialised) {
			log_info("fleet: schema %s (was %s%s): reading the fleet's state afresh",
				 schema.id, f->cache.schema_id[0] ? f->cache.schema_id : "none",
				 f->initialised ? "" : ", not initialised");
			snprintf(f->cache.schema_id, sizeof(f->cache.schema_id), "%s", schema.id);
			f->initialised = true;
			f->reread = true;
		} else {
			f->initialised = true;
		}
		return 0;
	case FLEET_KEY_OTHER:
		break;
	}
	return 0;
}

/* ---- the watch ---- */

static void on_watch_msg(void *arg, const struct etcd_watch_msg *msg)
{
	struct fleet *f = arg;
	int changed = 0;

	switch (msg->kind) {
	case ETCD_WATCH_CREATED:
		if (f->phase != FLEET_UP) {
			f->phase = FLEET_UP;
			f->up_since_ms = clock_now_ms();
			f->retry_ms = 0;
			f->attempts = 0;
			f->heartbeat_at_ms = clock_now_ms();
			log_info("fleet: up on %s at revision %" PRId64 "%s",
				 etcd_client_endpoint(f->client), f->cursor,
				 f->stale_since ? " (no longer stale)" : "");
			f->stale_since = 0;
			f->connects++;
			f->checks_changed = true; /* the others' verdicts count again */
			publish(f);
		}
		break;
	case ETCD_WATCH_EVENTS: {
		/* one revision may hold several keys (a prefix deleted at
		 * once): the bound of what was applied is fixed first */
		int64_t seen = f->cursor;
		char name[PROTOCOL_SITE_NAME_MAX + 1];

		/* the schema deleted with the sites in one revision (the prefix
		 * wiped): no site is reset, whatever the order of the events */
		for (size_t i = 0; i < msg->n_events; i++)
			if (msg->events[i].type == ETCD_EVENT_DELETE &&
			    msg->events[i].kv.mod_revision > seen &&
			    key_is(f, &msg->events[i].kv, FLEET_KEY_SCHEMA, name))
				f->initialised = false; /* logged with the event below */
		for (size_t i = 0; i < msg->n_events; i++) {
			const struct etcd_event *ev = &msg->events[i];

			if (ev->kv.mod_revision <= seen)
				continue;
			changed |= key_changed(f, &ev->kv, ev->type == ETCD_EVENT_DELETE);
			if (ev->kv.mod_revision > f->cursor)
				f->cursor = ev->kv.mod_revision;
			f->events++;
		}
		break;
	}
	case ETCD_WATCH_PROGRESS:
		if (msg->header.revision > f->cursor)
			f->cursor = msg->header.revision;
		break;
	case ETCD_WATCH_CANCELED:
		if (msg->compact_revision > 0) {
			log_info("fleet: revision %" PRId64 " was compacted (now %" PRId64
				 "): reading the fleet's state afresh", f->cursor + 1,
				 msg->compact_revision);
			f->reread = true;
		}
		break;
	case ETCD_WATCH_ERROR:
		break; /* the stream's end says why */
	}
	fleet_sync(f);
	if (changed)
		cache_save(f);
	if (f->reread && f->phase == FLEET_UP)
		read_all(f);
	fleet_checks_apply(f);
	fleet_check_pending(f);
	publish(f);
}

static void on_watch_end(void *arg, const struct etcd_result *r)
{
	struct fleet *f = arg;
	char why[320];

	f->watch = 0;
	if (r->kind == ETCD_RESULT_ABANDONED)
		return;
	if (r->kind == ETCD_RESULT_WATCH_CANCELED && f->reread && f->request)
		return; /* the read in flight starts a new watch after it */
	result_text(r, why, sizeof(why));
	lost(f, "the watch ended: %s", why);
}

static void watch_from(struct fleet *f, int64_t revision)
{
	if (f->watch)
		etcd_client_cancel(f->client, f->watch);
	f->watch = etcd_client_watch(f->client, f->p, strlen(f->p), true, revision, on_watch_msg,
				     on_watch_end, f);
	if (!f->watch)
		lost(f, "cannot start the watch");
}

/* ---- reading the whole prefix ---- */

/* The read's schema key: 1 ours (its id in ID), 0 none or not ours. */
static int read_schema(const struct fleet *f, const struct etcd_reply *reply,
		       char id[FLEET_SCHEMA_ID_LEN + 1])
{
	char name[PROTOCOL_SITE_NAME_MAX + 1];
	struct fleet_schema schema;

	for (size_t i = 0; i < reply->n_kvs; i++)
		if (key_is(f, &reply->kvs[i], FLEET_KEY_SCHEMA, name) &&
		    fleet_schema_decode(reply->kvs[i].value, reply->kvs[i].value_len, &schema) == 0) {
			memcpy(id, schema.id, FLEET_SCHEMA_ID_LEN + 1);
			return 1;
		}
	return 0;
}

static void on_read(void *arg, const struct etcd_result *r)
{
	struct fleet *f = arg;
	const struct etcd_reply *reply;
	struct fleet_cache old;
	char name[PROTOCOL_SITE_NAME_MAX + 1], id[FLEET_SCHEMA_ID_LEN + 1];

	f->request = 0;
	if (request_failed(f, r, "reading the fleet's state"))
		return;
	reply = r->reply;
	f->n_boxes = 0;
	fleet_checks_forget(f);
	f->cursor = reply->header.revision;
	f->reread = false;
	f->full_reads++;
	f->initialised = read_schema(f, reply, id) == 1;
	/* the boxes and their checks, whatever the schema says */
	for (size_t i = 0; i < reply->n_kvs; i++)
		if (!key_is(f, &reply->kvs[i], FLEET_KEY_SITE, name) &&
		    !key_is(f, &reply->kvs[i], FLEET_KEY_SCHEMA, name))
			key_changed(f, &reply->kvs[i], false);
	if (!f->initialised) {
		/* an empty or rebuilt etcd: never "every site reset" */
		if (!f->warned_uninitialised)
			log_warn("fleet: %sschema is not initialised on etcd: keeping the last known "
				 "state; toggles are refused until `gatekeeperctl fleet init`", f->p);
		f->warned_uninitialised = true;
		watch_from(f, f->cursor + 1);
		return;
	}
	f->warned_uninitialised = false;
	/* the new set replaces the old one; deleted overrides end below */
	old = f->cache;
	memset(&f->cache, 0, sizeof(f->cache));
	f->cache_cap = 0;
	memcpy(f->cache.schema_id, id, sizeof(id));
	for (size_t i = 0; i < reply->n_kvs; i++)
		if (key_is(f, &reply->kvs[i], FLEET_KEY_SITE, name))
			key_changed(f, &reply->kvs[i], false);
	for (size_t i = 0; i < old.count; i++)
		if (!fleet_entry(f, old.entries[i].name))
			reapply_name(f, old.entries[i].name);
	fleet_cache_free(&old);
	fleet_sync(f);
	f->applied = reply->header.revision;
	log_info("fleet: read %zu override%s at revision %" PRId64, f->cache.count,
		 f->cache.count == 1 ? "" : "s", f->cursor);
	cache_save(f);
	watch_from(f, f->cursor + 1);
}

/* Reads the whole prefix; its reply replaces the view, and the watch
 * starts again after it (none runs meanwhile: an event applied during the
 * read would be rolled back by it). */
static void read_all(struct fleet *f)
{
	f->reread = true;
	if (f->request)
		return; /* a read is in flight already */
	if (f->watch) {
		etcd_client_cancel(f->client, f->watch);
		f->watch = 0;
	}
	f->request = etcd_client_range(f->client, f->p, strlen(f->p), true, on_read, f);
	if (!f->request)
		lost(f, "cannot start reading the fleet's state");
}

/* ---- connecting ---- */

static void on_schema(void *arg, const struct etcd_result *r)
{
	struct fleet *f = arg;
	struct fleet_schema schema;

	f->request = 0;
	if (request_failed(f, r, "reading the schema key"))
		return;
	if (r->reply->n_kvs == 0 ||
	    fleet_schema_decode(r->reply->kvs[0].value, r->reply->kvs[0].value_len, &schema) < 0) {
		/* the read keeps the overrides and refreshes the boxes */
		read_all(f);
		return;
	}
	f->initialised = true;
	/* the history we know, and a live view of the boxes from this run:
	 * resume after what we applied (else read it all: at start the boxes
	 * and their checks are not in the cache) */
	if (strcmp(schema.id, f->cache.schema_id) == 0 && f->cursor > 0 &&
	    f->cursor <= r->reply->header.revision && f->n_boxes > 0) {
		watch_from(f, f->cursor + 1);
		return;
	}
	read_all(f);
}

static void on_lease(void *arg, const struct etcd_result *r)
{
	struct fleet *f = arg;
	char key[400], why[320];

	f->request = 0;
	if (r->kind == ETCD_RESULT_ABANDONED)
		return;
	if (r->kind != ETCD_RESULT_OK || r->reply->id == 0) {
		result_text(r, why, sizeof(why));
		lost(f, "granting the box's lease: %s", why);
		return;
	}
	f->lease = r->reply->id;
	f->published = -1; /* a new lease: the presence key must be written on it */
	fleet_checks_relet(f);
	f->phase = FLEET_SCHEMA;
	snprintf(key, sizeof(key), "%sschema", f->p);
	f->request = etcd_client_range(f->client, key, strlen(key), false, on_schema, f);
	if (!f->request)
		lost(f, "cannot read the schema key");
}

static void connect_start(struct fleet *f)
{
	int64_t ttl_s = (f->cfg.lease_ttl_ms + 999) / 1000;

	f->phase = FLEET_LEASE;
	f->attempts++;
	f->request = etcd_client_lease_grant(f->client, ttl_s, on_lease, f);
	if (!f->request)
		lost(f, "cannot ask for a lease");
}

/* Every failure comes here: stale from now, the next endpoint, a retry. */
static void lost(struct fleet *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->last_error, sizeof(f->last_error), fmt, ap);
	va_end(ap);
	if (f->phase == FLEET_UP || !f->stale_since) {
		if (f->phase == FLEET_UP)
			f->losses++;
		f->stale_since = now_s();
		f->stale_since_ms = clock_now_ms();
	}
	if (f->phase == FLEET_DOWN)
		return; /* already handled: a callback of the abandon below */
	/* while no endpoint answers, once a minute is enough in the log */
	if (f->phase == FLEET_UP || clock_now_ms() >= f->next_warn_ms) {
		log_warn("fleet: %s (endpoint %s); stale since %s, trying the next endpoint",
			 f->last_error, etcd_client_endpoint(f->client),
			 state_time_text(f->stale_since, (char[32]){0}, 32));
		f->next_warn_ms = clock_now_ms() + LOST_WARN_INTERVAL_MS;
	} else {
		log_debug("fleet: %s (endpoint %s)", f->last_error, etcd_client_endpoint(f->client));
	}
	f->phase = FLEET_DOWN;
	f->watch = 0;
	f->request = 0;
	f->heartbeat = 0;
	f->publishing = 0;
	f->check_publishing = 0;
	f->checks_changed = true; /* stale: each box goes by its own check */
	f->lease = 0;
	/* every transfer ends with ABANDONED: toggles in flight are answered */
	etcd_client_next_endpoint(f->client);
	f->retry_ms = f->retry_ms ? f->retry_ms * 2 : 0;
	if (f->attempts % f->cfg.n_endpoints == 0)
		f->retry_ms = f->retry_ms ? f->retry_ms : RETRY_MIN_MS;
	if (f->retry_ms > FLEET_RETRY_MAX_MS)
		f->retry_ms = FLEET_RETRY_MAX_MS;
	f->retry_at_ms = clock_now_ms() + f->retry_ms;
}

/* ---- heartbeat and presence ---- */

static int heartbeat_interval_ms(const struct fleet *f)
{
	uint32_t third = f->cfg.lease_ttl_ms / 3;

	return (int)(third < FLEET_HEARTBEAT_MAX_MS ? third : FLEET_HEARTBEAT_MAX_MS);
}

static void on_heartbeat(void *arg, const struct etcd_result *r)
{
	struct fleet *f = arg;

	f->heartbeat = 0;
	if (request_failed(f, r, "heartbeat"))
		return;
	if (r->reply->ttl == 0) {
		lost(f, "heartbeat: the box's lease is gone (no heartbeat for %u ms)",
		     f->cfg.lease_ttl_ms);
		return;
	}
	f->last_heartbeat_ms = clock_now_ms();
	f->heartbeat_at_ms = f->last_heartbeat_ms + (uint64_t)heartbeat_interval_ms(f);
}

static void on_published(void *arg, const struct etcd_result *r)
{
	struct fleet *f = arg;

	f->publishing = 0;
	if (request_failed(f, r, "publishing the box's presence"))
		return;
	f->published = f->publishing_applied;
	f->published_pins = f->publishing_pins;
	f->writes++;
	publish(f); /* what was applied meanwhile */
}

/* P box/BOX on the lease: this box is live, and has applied what. At most
 * one write in flight; only a site change moves "applied", so boxes never
 * answer each other's presence with more presence. */
static void publish(struct fleet *f)
{
	struct fleet_box_value v = {.applied = f->applied, .started = f->started,
				    .pins = fleet_pins(f)};
	char key[400], *value;

	if (f->phase != FLEET_UP || f->publishing || !f->lease ||
	    (f->published == v.applied && f->published_pins == v.pins))
		return;
	snprintf(key, sizeof(key), "%sbox/%s", f->p, f->box);
	value = fleet_box_encode(&v);
	if (!value)
		return;
	f->publishing_applied = v.applied;
	f->publishing_pins = v.pins;
	f->publishing = etcd_client_put(f->client, key, strlen(key), value, strlen(value), f->lease,
					on_published, f);
	free(value);
}

/* ---- the loop ---- */

int fleet_fd(const struct fleet *f)
{
	return etcd_client_fd(f->client);
}

int fleet_timeout_ms(const struct fleet *f)
{
	uint64_t now = clock_now_ms(), next = 0;
	int t = etcd_client_timeout_ms(f->client);

	if (f->phase == FLEET_DOWN)
		next = f->retry_at_ms;
	else if (f->phase == FLEET_UP && !f->heartbeat)
		next = f->heartbeat_at_ms;
	for (size_t i = 0; i < FLEET_MAX_PENDING; i++)
		if (f->pending[i].used && (!next || f->pending[i].deadline_ms < next))
			next = f->pending[i].deadline_ms;
	if (next)
		t = loop_earliest(t, next > now ? (int)(next - now) : 0);
	return t;
}

void fleet_dispatch(struct fleet *f)
{
	uint64_t now;

	etcd_client_dispatch(f->client);
	now = clock_now_ms();
	if (f->phase == FLEET_DOWN && now >= f->retry_at_ms)
		connect_start(f);
	if (f->phase == FLEET_UP && !f->heartbeat && now >= f->heartbeat_at_ms) {
		f->heartbeat = etcd_client_lease_keepalive(f->client, f->lease, on_heartbeat, f);
		if (!f->heartbeat)
			lost(f, "cannot send a heartbeat");
	}
	if (f->combine_checks) {
		fleet_checks_publish(f);
		fleet_checks_apply(f);
	}
	/* a local pin set, ended or expired since: box/BOX says how many */
	publish(f);
	fleet_check_pending(f);
}

/* ---- open, close ---- */

/* Every setting of the fleet section, as one string: a reload that changes
 * any of them is told that it takes effect at the next start. */
static void signature(const struct config_fleet *c, char *buf, size_t len)
{
	size_t used = (size_t)snprintf(buf, len, "%s|%s|%s|%s|%s|%s|%u|%u|%d", c->name, c->box,
				      c->prefix, c->ca_file ? c->ca_file : "",
				      c->cert_file ? c->cert_file : "", c->key_file ? c->key_file : "",
				      c->lease_ttl_ms, c->request_timeout_ms, (int)c->checks);

	for (size_t i = 0; i < c->n_endpoints && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "|%s", c->endpoints[i]);
}

bool fleet_config_changed(const struct fleet *f, const struct config_fleet *c)
{
	char now[sizeof(f->signature)];

	if (!c->enabled)
		return true;
	signature(c, now, sizeof(now));
	return strcmp(now, f->signature) != 0;
}

struct fleet *fleet_open(struct engine *engine, fleet_reply_fn *reply, void *reply_arg)
{
	const struct config *cfg = engine_config(engine);
	const struct config_fleet *c = &cfg->fleet;
	struct etcd_client_opts opts = {
		.endpoints = (const char *const *)c->endpoints,
		.n_endpoints = c->n_endpoints,
		.ca_file = c->ca_file,
		.cert_file = c->cert_file,
		.key_file = c->key_file,
		.request_timeout_ms = (int)c->request_timeout_ms,
		/* a connection on a LAN takes a millisecond: an endpoint that
		 * lost the SYN is left for the next one without waiting for the
		 * SYN's retransmission (1 s) */
		.connect_timeout_ms = (int)(c->request_timeout_ms < FLEET_CONNECT_TIMEOUT_MS
						    ? c->request_timeout_ms : FLEET_CONNECT_TIMEOUT_MS),
	};
	struct fleet *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->engine = engine;
	f->reply = reply;
	f->reply_arg = reply_arg;
	f->cfg.lease_ttl_ms = c->lease_ttl_ms;
	f->cfg.request_timeout_ms = c->request_timeout_ms;
	f->cfg.n_endpoints = c->n_endpoints;
	f->started = now_s();
	f->published = -1;
	snprintf(f->box, sizeof(f->box), "%s", c->box);
	snprintf(f->name, sizeof(f->name), "%s", c->name);
	snprintf(f->p, sizeof(f->p), "%s/%s/", c->prefix, c->name);
	if (snprintf(f->cache_path, sizeof(f->cache_path), "%s.fleet", cfg->state_file) >=
	    (int)sizeof(f->cache_path)) {
		log_error("fleet: state_file path too long for the cache");
		free(f);
		return NULL;
	}
	signature(c, f->signature, sizeof(f->signature));
	f->client = etcd_client_open(&opts);
	if (!f->client) {
		free(f);
		return NULL;
	}
	cache_load(f);
	fleet_reapply(f, NULL);
	f->combine_checks = c->checks == CONFIG_FLEET_CHECKS_ALL;
	if (f->combine_checks)
		health_set_combine(engine_health(engine), fleet_checks_combine, f);
	/* not up yet: stale from the start until the first watch is there */
	f->stale_since = f->started;
	f->stale_since_ms = clock_now_ms();
	snprintf(f->last_error, sizeof(f->last_error), "not connected yet");
	f->phase = FLEET_DOWN;
	f->retry_at_ms = clock_now_ms();
	log_info("fleet %s: box %s, %zu etcd endpoint%s, keys under %s", f->name, f->box,
		 c->n_endpoints, c->n_endpoints == 1 ? "" : "s", f->p);
	return f;
}

static void on_revoked(void *arg, const struct etcd_result *r)
{
	*(bool *)arg = true;
}

/* A stopping box leaves the fleet at once, not a lease_ttl later (other
 * boxes' --wait and checks: all count it until then): best effort, at most
 * FLEET_REVOKE_MS. */
static void revoke_lease(struct fleet *f)
{
	uint64_t deadline = clock_now_ms() + FLEET_REVOKE_MS;
	bool done = false;

	if (f->phase != FLEET_UP || !f->lease ||
	    !etcd_client_lease_revoke(f->client, f->lease, on_revoked, &done))
		return;
	f->lease = 0; /* nothing more is written on it meanwhile */
	while (!done && f->phase == FLEET_UP) {
		uint64_t now = clock_now_ms();
		int wait = etcd_client_timeout_ms(f->client);
		struct pollfd pfd = {.fd = etcd_client_fd(f->client), .events = POLLIN};

		if (now >= deadline)
			break;
		if (wait < 0 || (uint64_t)wait > deadline - now)
			wait = (int)(deadline - now);
		if (poll(&pfd, 1, wait) < 0 && errno != EINTR)
			break;
		etcd_client_dispatch(f->client);
	}
	if (done)
		log_info("fleet: box %s left the fleet (lease revoked)", f->box);
}

void fleet_close(struct fleet *f)
{
	if (!f)
		return;
	f->closing = true;
	fleet_fail_pending(f, "gatekeeperd is stopping");
	revoke_lease(f);
	if (f->combine_checks)
		health_set_combine(engine_health(f->engine), NULL, NULL);
	etcd_client_close(f->client);
	free(f->checks);
	free(f->check_slots);
	fleet_cache_free(&f->cache);
	free(f);
}
