/* fleet_checks: `fleet.checks: all`: an auto site goes offline only when
 * every live box that checks it sees it down. Each box publishes its own
 * verdicts as P check/BOX/NAME on its lease (so a dead box's verdicts go
 * with it), keeps the others' from the watch, and health.c asks
 * fleet_checks_combine() before it applies a verdict. While the fleet is
 * stale, each box goes by its own check: the others' may be old. */
#include <stdlib.h>
#include <string.h>

#define CHECK_RETRY_MS 1000

#include "clock.h"
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
	if (strcmp(box, f->box) == 0) {
		/* ours: what we publish, not news; deleted behind our back
		 * (a wiped prefix), it is written again */
		if (deleted && (c = check_find(f, box, site)))
			c->published = false;
		return true;
	}
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
			*c = f->checks[--f->n_checks];
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
	for (size_t i = 0; i < f->n_checks; i++) {
		if (strcmp(f->checks[i].box, f->box) == 0 && own_verdict(f, f->checks[i].site) < 0) {
			check_write(f, f->checks[i].site, -1);
			return;
		}
	}
	for (size_t i = 0; i < sites_count(sites); i++) {
		const char *name = site_name(sites_at(sites, i));
		int verdict = own_verdict(f, name);
		struct fleet_check *c;

		if (verdict < 0)
			continue;
		c = check_find(f, f->box, name);
		if (c && c->published && c->up == (verdict == 1))
			continue;
		check_write(f, name, verdict);
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
