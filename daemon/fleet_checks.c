/* fleet_checks: `fleet.checks: all`: an auto site goes offline only when
 * every live box that checks it sees it down. Each box publishes its own
 * verdicts as P check/BOX/NAME on its lease (so a dead box's verdicts go
 * with it), keeps the others' from the watch, and health.c asks
 * fleet_checks_combine() before it applies a verdict. While the fleet is
 * stale, each box goes by its own check: the others' may be old. */
#include <stdlib.h>
#include <string.h>

#include "engine.h"
#include "etcd_client.h"
#include "fleet_internal.h"
#include "health.h"
#include "log.h"

static struct fleet_check *check_find(struct fleet *f, const char *box, const char *site)
{
	for (size_t i = 0; i < f->n_checks; i++)
		if (strcmp(f->checks[i].box, box) == 0 && strcmp(f->checks[i].site, site) == 0)
			return &f->checks[i];
	return NULL;
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
	c = &f->checks[f->n_checks++];
	memset(c, 0, sizeof(*c));
	snprintf(c->box, sizeof(c->box), "%s", box);
	snprintf(c->site, sizeof(c->site), "%s", site);
	return c;
}

static bool box_live(const struct fleet *f, const char *name)
{
	for (size_t i = 0; i < f->n_boxes; i++)
		if (strcmp(f->boxes[i].name, name) == 0)
			return true;
	return false;
}

enum health_state fleet_checks_combine(void *arg, const char *site, enum health_state own)
{
	const struct fleet *f = arg;

	if (own != HEALTH_DOWN || f->phase != FLEET_UP || f->stale_since)
		return own;
	for (size_t i = 0; i < f->n_checks; i++) {
		const struct fleet_check *c = &f->checks[i];

		if (c->up && strcmp(c->box, f->box) != 0 && strcmp(c->site, site) == 0 &&
		    box_live(f, c->box))
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
	if (strcmp(box, f->box) == 0)
		return true; /* ours: what we publish, not news */
	if (deleted) {
		c = check_find(f, box, site);
		if (c)
			*c = f->checks[--f->n_checks];
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
			f->checks[i] = f->checks[--f->n_checks];
		else
			i++;
	}
	f->checks_changed = true;
}

static void on_check_published(void *arg, const struct etcd_result *r)
{
	struct fleet *f = arg;

	f->check_publishing = 0;
	if (r->kind == ETCD_RESULT_OK) {
		struct fleet_check *c = check_get(f, f->box, f->check_site);

		if (c) {
			c->up = f->check_up;
			c->published = true;
		}
		f->writes++;
	}
	/* a failure shows in the heartbeat soon enough; retried next round */
}

/* This box's verdicts for its auto sites, one write in flight at a time,
 * each only when it changed (or the lease is new: fleet_checks_relet). */
void fleet_checks_publish(struct fleet *f)
{
	const struct sites *sites = engine_sites(f->engine);
	const struct health *h = engine_health(f->engine);

	if (f->phase != FLEET_UP || !f->lease || f->check_publishing)
		return;
	for (size_t i = 0; i < sites_count(sites); i++) {
		const char *name = site_name(sites_at(sites, i));
		enum health_state own = health_site_state(h, name);
		struct fleet_check *c;
		char key[400];

		if (!site_config(sites_at(sites, i))->state_auto || own == HEALTH_UNKNOWN)
			continue;
		c = check_find(f, f->box, name);
		if (c && c->published && c->up == (own == HEALTH_UP))
			continue;
		snprintf(key, sizeof(key), "%scheck/%s/%s", f->p, f->box, name);
		snprintf(f->check_site, sizeof(f->check_site), "%s", name);
		f->check_up = own == HEALTH_UP;
		f->check_publishing = etcd_client_put(f->client, key, strlen(key),
						      f->check_up ? "up" : "down", f->check_up ? 2 : 4,
						      f->lease, on_check_published, f);
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
