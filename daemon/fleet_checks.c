/* fleet_checks: `fleet.checks: all`: an auto site goes offline only when
 * every live box that checks it sees it down. Each box publishes its own
 * verdicts as P check/BOX/NAME on its lease (so a dead box's verdicts go
 * with it), keeps the others' from the watch, and health.c asks
 * fleet_checks_combine() before it applies a verdict. While the fleet is
 * stale, each box goes by its own check: the others' may be old. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK_RETRY_MS 1000

#include "clock.h"
#include "engine.h"
#include "etcd_client.h"
#include "fleet_internal.h"
#include "health.h"
#include "log.h"

/* ---- the entries by (box, site): a combine per site and a publish per
 * wake-up cost no scan of every box's every check ---- */

#define SLOT_REMOVED SIZE_MAX

static size_t check_hash(const char *box, const char *site)
{
	uint64_t hash = 14695981039346656037u; /* FNV-1a of "BOX\0SITE" */

	for (const char *p = box;; p++) {
		hash = (hash ^ (unsigned char)*p) * 1099511628211u;
		if (!*p)
			break;
	}
	for (const char *p = site; *p; p++)
		hash = (hash ^ (unsigned char)*p) * 1099511628211u;
	return (size_t)hash;
}

/* The slot that holds (BOX, SITE), or NULL. */
static size_t *slot_find(const struct fleet *f, const char *box, const char *site)
{
	if (!f->check_slots)
		return NULL;
	for (size_t at = check_hash(box, site) & f->check_mask; f->check_slots[at];
	     at = (at + 1) & f->check_mask) {
		size_t v = f->check_slots[at];

		if (v != SLOT_REMOVED && strcmp(f->checks[v - 1].box, box) == 0 &&
		    strcmp(f->checks[v - 1].site, site) == 0)
			return &f->check_slots[at];
	}
	return NULL;
}

static void slot_put(struct fleet *f, size_t entry)
{
	size_t at = check_hash(f->checks[entry].box, f->checks[entry].site) & f->check_mask;

	while (f->check_slots[at] && f->check_slots[at] != SLOT_REMOVED)
		at = (at + 1) & f->check_mask;
	if (!f->check_slots[at])
		f->check_slots_used++;
	f->check_slots[at] = entry + 1;
}

/* Room for one more entry, removed slots dropped; -1 out of memory. */
static int slots_reserve(struct fleet *f)
{
	size_t cap = 16, *slots;

	if (f->check_slots && 2 * (f->check_slots_used + 1) <= f->check_mask + 1)
		return 0;
	while (cap < 4 * (f->n_checks + 1))
		cap *= 2;
	if (!(slots = calloc(cap, sizeof(*slots))))
		return -1;
	free(f->check_slots);
	f->check_slots = slots;
	f->check_mask = cap - 1;
	f->check_slots_used = 0;
	for (size_t i = 0; i < f->n_checks; i++)
		slot_put(f, i);
	return 0;
}

static struct fleet_check *check_find(const struct fleet *f, const char *box, const char *site)
{
	size_t *slot = slot_find(f, box, site);

	return slot ? &f->checks[*slot - 1] : NULL;
}

const struct fleet_check *fleet_checks_find(const struct fleet *f, const char *box,
					    const char *site)
{
	return check_find(f, box, site);
}

static struct fleet_check *check_get(struct fleet *f, const char *box, const char *site)
{
	struct fleet_check *c = check_find(f, box, site);

	if (c)
		return c;
	if (f->n_checks == f->checks_cap) {
		size_t cap = f->checks_cap ? f->checks_cap * 2 : 16;
		void *grown = realloc(f->checks, cap * sizeof(*f->checks));

		if (!grown)
			return NULL;
		f->checks = grown;
		f->checks_cap = cap;
	}
	if (slots_reserve(f) < 0)
		return NULL;
	c = &f->checks[f->n_checks];
	memset(c, 0, sizeof(*c));
	snprintf(c->box, sizeof(c->box), "%s", box);
	snprintf(c->site, sizeof(c->site), "%s", site);
	slot_put(f, f->n_checks++);
	return c;
}

/* C leaves; the last entry takes its place (and its slot says so). */
static void check_remove(struct fleet *f, struct fleet_check *c)
{
	size_t i = (size_t)(c - f->checks), last = f->n_checks - 1;

	*slot_find(f, c->box, c->site) = SLOT_REMOVED;
	if (i != last) {
		*slot_find(f, f->checks[last].box, f->checks[last].site) = i + 1;
		f->checks[i] = f->checks[last];
	}
	f->n_checks--;
}

enum health_state fleet_checks_combine(void *arg, const char *site, enum health_state own)
{
	const struct fleet *f = arg;

	if (own != HEALTH_DOWN || f->phase != FLEET_UP || f->stale_since)
		return own;
	for (size_t i = 0; i < f->n_boxes; i++) {
		const struct fleet_check *c = check_find(f, f->boxes[i].name, site);

		if (c && c->up && strcmp(c->box, f->box) != 0)
			return HEALTH_UP; /* another live box still reaches it */
	}
	return own;
}

bool fleet_checks_key(struct fleet *f, const struct etcd_kv *kv, bool deleted)
{
	char box[PROTOCOL_SITE_NAME_MAX + 1], site[PROTOCOL_SITE_NAME_MAX + 1];
	struct fleet_check *c;

	if (!fleet_check_key_parse(f->p, kv->key, kv->key_len, box, site))
		return false;
	if (strcmp(box, f->box) == 0) {
		/* ours: what we publish, not news; deleted behind our back
		 * (a wiped prefix), it is written again */
		if (deleted && (c = check_find(f, box, site)))
			c->published = false;
		return true;
	}
	if (deleted) {
		if ((c = check_find(f, box, site)))
			check_remove(f, c);
	} else if ((c = check_get(f, box, site))) {
		c->up = kv->value_len == 2 && memcmp(kv->value, "up", 2) == 0;
	}
	f->checks_changed = true;
	return true;
}

void fleet_checks_forget(struct fleet *f)
{
	for (size_t i = 0; i < f->n_checks;) {
		if (strcmp(f->checks[i].box, f->box) != 0)
			check_remove(f, &f->checks[i]);
		else
			i++;
	}
	f->checks_changed = true;
}

static void on_check_published(void *arg, const struct etcd_result *r)
{
	struct fleet *f = arg;
	struct fleet_check *c;

	f->check_publishing = 0;
	if (r->kind == ETCD_RESULT_ABANDONED)
		return; /* the new lease publishes everything again */
	if (r->kind != ETCD_RESULT_OK) {
		/* refused (permissions, a full database): not again at once */
		f->check_retry_at_ms = clock_now_ms() + CHECK_RETRY_MS;
		return;
	}
	f->writes++;
	if (f->check_withdrawing) {
		if ((c = check_find(f, f->box, f->check_site)))
			check_remove(f, c);
		return;
	}
	if ((c = check_get(f, f->box, f->check_site))) {
		c->up = f->check_up;
		c->published = true;
	}
}

/* This box's verdict of SITE as it should be in etcd: -1 none (not an
 * auto site here any more, or no verdict: the key is withdrawn), else UP. */
static int own_verdict(const struct fleet *f, const char *site)
{
	const struct site *s = sites_find(engine_sites(f->engine), site);
	enum health_state own;

	if (!s || !site_config(s)->state_auto)
		return -1;
	own = health_site_state(engine_health(f->engine), site);
	return own == HEALTH_UNKNOWN ? -1 : own == HEALTH_UP;
}

static void check_write(struct fleet *f, const char *site, int verdict)
{
	char key[400];

	snprintf(key, sizeof(key), "%scheck/%s/%s", f->p, f->box, site);
	snprintf(f->check_site, sizeof(f->check_site), "%s", site);
	f->check_withdrawing = verdict < 0;
	f->check_up = verdict > 0;
	f->check_publishing =
		verdict < 0 ? etcd_client_delete(f->client, key, strlen(key), false,
						 on_check_published, f)
			    : etcd_client_put(f->client, key, strlen(key), f->check_up ? "up" : "down",
					      f->check_up ? 2 : 4, f->lease, on_check_published, f);
}

/* This box's verdicts for its auto sites, one write in flight at a time,
 * each only when it changed (or the lease is new: fleet_checks_relet);
 * a verdict this box no longer has is withdrawn, so it cannot keep a site
 * online elsewhere. */
void fleet_checks_publish(struct fleet *f)
{
	const struct sites *sites = engine_sites(f->engine);

	if (f->phase != FLEET_UP || !f->lease || f->check_publishing ||
	    clock_now_ms() < f->check_retry_at_ms)
		return;
	/* only a reload takes a site or its verdict away: then every entry
	 * of ours is looked at, until none is left to withdraw */
	if (f->check_withdraw_due) {
		for (size_t i = 0; i < f->n_checks; i++) {
			if (strcmp(f->checks[i].box, f->box) == 0 &&
			    own_verdict(f, f->checks[i].site) < 0) {
				check_write(f, f->checks[i].site, -1);
				return;
			}
		}
		f->check_withdraw_due = false;
	}
	/* from where the last write was: a first publish of N sites is N
	 * writes, not N scans from the start */
	for (size_t k = 0, n = sites_count(sites); k < n; k++) {
		size_t i = (f->check_cursor + k) % n;
		const char *name = site_name(sites_at(sites, i));
		int verdict = own_verdict(f, name);
		struct fleet_check *c;

		if (verdict < 0)
			continue;
		c = check_find(f, f->box, name);
		if (c && c->published && c->up == (verdict == 1))
			continue;
		check_write(f, name, verdict);
		f->check_cursor = i + 1;
		return;
	}
}

void fleet_checks_relet(struct fleet *f)
{
	for (size_t i = 0; i < f->n_checks; i++)
		if (strcmp(f->checks[i].box, f->box) == 0)
			f->checks[i].published = false;
}

void fleet_checks_apply(struct fleet *f)
{
	if (!f->checks_changed || !f->combine_checks)
		return;
	f->checks_changed = false;
	health_apply(engine_health(f->engine), engine_sites(f->engine));
}
