/* fleet_report: the fleet in `gatekeeperctl status` (text and JSON) and in
 * the metrics: connection, endpoint, revision, stale-since, the live boxes
 * and what each applied; per site, where its state comes from. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "etcd_client.h"
#include "fleet_internal.h"
#include "health.h"
#include "prom.h"
#include "state.h"

static const char *phase_name(enum fleet_phase phase)
{
	switch (phase) {
	case FLEET_DOWN: return "connecting";
	case FLEET_LEASE: return "connecting (lease)";
	case FLEET_SCHEMA: return "connecting (schema)";
	case FLEET_UP: return "connected";
	}
	return "?";
}

static bool is_up(const struct fleet *f)
{
	return f->phase == FLEET_UP && !f->stale_since;
}

void fleet_status_text(const struct fleet *f, struct strbuf *b)
{
	char when[32];

	strbuf_printf(b, "fleet %s: box %s, %s to %s, revision %" PRId64 " (applied %" PRId64 ")\n",
		      f->name, f->box, phase_name(f->phase), etcd_client_endpoint(f->client),
		      f->cursor, f->applied);
	if (!is_up(f))
		strbuf_printf(b, "  stale since %s: %s\n",
			      state_time_text(f->stale_since, when, sizeof(when)), f->last_error);
	if (f->phase == FLEET_UP && !f->initialised)
		strbuf_printf(b, "  not initialised: no %sschema key (gatekeeperctl fleet init)\n", f->p);
	strbuf_printf(b, "  boxes      %zu live:", f->n_boxes);
	for (size_t i = 0; i < f->n_boxes; i++) {
		strbuf_printf(b, " %s (applied %" PRId64, f->boxes[i].name, f->boxes[i].value.applied);
		if (f->boxes[i].value.pins)
			strbuf_printf(b, ", %u pinned", f->boxes[i].value.pins);
		strbuf_puts(b, ")");
	}
	strbuf_printf(b, "\n  pins       %u site%s pinned on this box\n", fleet_pins(f),
		      fleet_pins(f) == 1 ? "" : "s");
}

void fleet_status_json(const struct fleet *f, struct strbuf *b)
{
	strbuf_puts(b, ",\"fleet\":{\"name\":");
	strbuf_json_string(b, f->name);
	strbuf_puts(b, ",\"box\":");
	strbuf_json_string(b, f->box);
	strbuf_printf(b, ",\"connection\":\"%s\",\"endpoint\":", phase_name(f->phase));
	strbuf_json_string(b, etcd_client_endpoint(f->client));
	strbuf_printf(b, ",\"initialised\":%s,\"revision\":%" PRId64 ",\"applied\":%" PRId64
		      ",\"stale_since\":%" PRId64 ",\"last_error\":",
		      f->initialised ? "true" : "false", f->cursor, f->applied,
		      is_up(f) ? 0 : f->stale_since);
	strbuf_json_string(b, is_up(f) ? "" : f->last_error);
	strbuf_printf(b, ",\"pins\":%u,\"boxes\":[", fleet_pins(f));
	for (size_t i = 0; i < f->n_boxes; i++) {
		strbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		strbuf_json_string(b, f->boxes[i].name);
		strbuf_printf(b, ",\"applied\":%" PRId64 ",\"started\":%" PRId64 ",\"pins\":%u}",
			      f->boxes[i].value.applied, f->boxes[i].value.started,
			      f->boxes[i].value.pins);
	}
	strbuf_puts(b, "]}");
}

/* checks: all: each live box's verdict of auto site SITE ("up", "down",
 * NULL: none), this box's its own check's now. */
static const char *box_verdict(const struct fleet *f, const char *box, const struct site *site)
{
	const struct fleet_check *c;

	if (strcmp(box, f->box) == 0) {
		enum health_state own = health_site_state(engine_health(f->engine), site_name(site));

		return own == HEALTH_UNKNOWN ? NULL : health_state_name(own);
	}
	c = fleet_checks_find(f, box, site_name(site));
	return c ? (c->up ? "up" : "down") : NULL;
}

static bool shows_checks(const struct fleet *f, const struct site *site)
{
	return f->combine_checks && site_config(site)->state_auto;
}

void fleet_site_text(const struct fleet *f, const struct site *site, struct strbuf *b)
{
	const struct fleet_cache_entry *e = fleet_entry(f, site_name(site));
	char when[32];

	if (shows_checks(f, site)) {
		/* why an auto site is online while this box's check says down */
		strbuf_puts(b, "  checks     ");
		for (size_t i = 0; i < f->n_boxes; i++) {
			const char *v = box_verdict(f, f->boxes[i].name, site);

			strbuf_printf(b, "%s%s%s %s", i ? ", " : "", f->boxes[i].name,
				      strcmp(f->boxes[i].name, f->box) == 0 ? " (this box)" : "",
				      v ? v : "no verdict");
		}
		strbuf_printf(b, "%s%s\n", f->n_boxes ? "; " : "no live box known; ",
			      is_up(f) ? "offline only when every live box says down"
				       : "the fleet is stale: this box's own check decides");
	}
	if (!e) {
		if (site_source(site) == SITE_SOURCE_RUNTIME)
			strbuf_puts(b, "  fleet      none; pinned on this box (diverges from the fleet)\n");
		return;
	}
	strbuf_printf(b, "  fleet      %s (%s), set by %s on %s at %s, revision %" PRId64 "%s\n",
		      config_state_name(e->value.state), config_action_name(e->value.action),
		      e->value.by[0] ? e->value.by : "?", e->value.box[0] ? e->value.box : "?",
		      state_time_text(e->value.at, when, sizeof(when)), e->mod_revision,
		      site_source(site) == SITE_SOURCE_RUNTIME
			      ? "; pinned on this box (diverges from the fleet)" : "");
}

void fleet_site_json(const struct fleet *f, const struct site *site, struct strbuf *b)
{
	const struct fleet_cache_entry *e = fleet_entry(f, site_name(site));

	strbuf_printf(b, ",\"pinned\":%s", site_source(site) == SITE_SOURCE_RUNTIME ? "true" : "false");
	if (shows_checks(f, site)) {
		bool first = true;

		strbuf_puts(b, ",\"checks\":{");
		for (size_t i = 0; i < f->n_boxes; i++) {
			const char *v = box_verdict(f, f->boxes[i].name, site);

			if (!v)
				continue;
			strbuf_puts(b, first ? "" : ",");
			strbuf_json_string(b, f->boxes[i].name);
			strbuf_printf(b, ":\"%s\"", v);
			first = false;
		}
		strbuf_puts(b, "}");
	}
	if (!e)
		return;
	strbuf_printf(b, ",\"fleet\":{\"state\":\"%s\",\"action\":\"%s\",\"by\":",
		      config_state_name(e->value.state), config_action_name(e->value.action));
	strbuf_json_string(b, e->value.by);
	strbuf_puts(b, ",\"box\":");
	strbuf_json_string(b, e->value.box);
	strbuf_printf(b, ",\"at\":%" PRId64 ",\"until\":%" PRId64 ",\"revision\":%" PRId64 "}",
		      e->value.at, e->value.until, e->mod_revision);
}

void fleet_metrics(const struct fleet *f, struct strbuf *b)
{
	uint64_t now = clock_now_ms();

	prom_gauge(b, "gatekeeper_fleet_connected",
		   "1 while the box watches etcd and its heartbeats succeed.", is_up(f));
	prom_gauge(b, "gatekeeper_fleet_stale_seconds",
		   "How long the box's view of the fleet has been stale (0: up to date).",
		   is_up(f) ? 0 : (double)(now - f->stale_since_ms) / 1000.0);
	prom_gauge(b, "gatekeeper_fleet_initialised", "1 when the fleet's schema key is in etcd.",
		   f->initialised);
	prom_gauge(b, "gatekeeper_fleet_revision", "The etcd revision the box's view is at.",
		   (double)f->cursor);
	prom_gauge(b, "gatekeeper_fleet_applied_revision",
		   "The revision of the last fleet site change this box applied.", (double)f->applied);
	prom_gauge(b, "gatekeeper_fleet_live_boxes",
		   "Boxes whose presence lease is alive, this one included.", (double)f->n_boxes);
	prom_gauge(b, "gatekeeper_fleet_pins", "Sites pinned on this box (diverging from the fleet).",
		   fleet_pins(f));
	prom_gauge(b, "gatekeeper_fleet_overrides", "Sites the fleet holds an override for.",
		   (double)f->cache.count);
	prom_counter(b, "gatekeeper_fleet_connects_total",
		     "Times the box came up on an etcd endpoint.", f->connects);
	prom_counter(b, "gatekeeper_fleet_losses_total",
		     "Times the box lost etcd (heartbeat, watch end, no leader) and moved on.",
		     f->losses);
	prom_counter(b, "gatekeeper_fleet_full_reads_total",
		     "Full reads of the fleet's keys (start, new schema, compacted history).",
		     f->full_reads);
	prom_counter(b, "gatekeeper_fleet_events_total", "Watch events applied.", f->events);
	prom_counter(b, "gatekeeper_fleet_writes_total",
		     "Writes of this box's presence and schema to etcd (toggles not included).",
		     f->writes);
	prom_family(b, "gatekeeper_fleet_toggles_total", "counter",
		    "Toggles sent to the fleet from this box, by result.");
	strbuf_printf(b, "gatekeeper_fleet_toggles_total{result=\"committed\"} %" PRIu64 "\n"
		      "gatekeeper_fleet_toggles_total{result=\"failed\"} %" PRIu64 "\n"
		      "gatekeeper_fleet_toggles_total{result=\"refused\"} %" PRIu64 "\n",
		      f->toggles_committed, f->toggles_failed, f->toggles_refused);
}
