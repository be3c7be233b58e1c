/* control: the replies of status and stats, as text and as JSON — what an
 * operator reads; every text that comes from outside (a checked server's
 * certificate, a check's reason) goes through textsafe. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "control_internal.h"
#include "engine.h"
#include "gk_version.h"
#include "health.h"
#include "fleet.h"
#include "maintenance.h"
#include "metrics_server.h"
#include "queue.h"
#include "rules_watch.h"
#include "textsafe.h"

static const char *config_state_word(const struct config_site *cs)
{
	return cs->state_auto ? "auto" : config_state_name(cs->state);
}

/* The health targets of site NAME. They follow the config's site order,
 * as the table does, so one cursor walks them along with the sites. */
static size_t site_targets(const struct health *h, size_t *cursor, const char *name,
			   size_t *first)
{
	*first = *cursor;
	while (*cursor < health_count(h) && strcmp(health_at(h, *cursor)->site, name) == 0)
		(*cursor)++;
	return *cursor - *first;
}

static void check_text(const struct health *h, size_t first, size_t n, struct strbuf *b)
{
	const struct health_target_info *t0 = health_at(h, first);
	const struct config_check *check = t0->check;
	int64_t now = (int64_t)time(NULL);
	char addr[64];

	strbuf_printf(b, "  check      %s", config_check_type_name(check->type));
	if (check->type == CONFIG_CHECK_HTTPS)
		strbuf_printf(b, " %s %s", check->method, check->path);
	strbuf_printf(b, " every %ums, timeout %ums, rise %u, fall %u: %s\n", check->interval_ms,
		      check->timeout_ms, check->rise, check->fall,
		      health_state_name(health_site_state(h, t0->site)));
	for (size_t i = first; i < first + n; i++) {
		const struct health_target_info *t = health_at(h, i);

		strbuf_printf(b, "    %s port %u: %s", config_addr_str(&t->addr, addr, sizeof(addr)),
			      t->port, health_state_name(t->state));
		if (t->have_result) {
			/* the reason and the names may quote the checked server:
			 * no raw control character reaches the terminal */
			strbuf_printf(b, ", last %s: ", t->last_ok ? "passed" : "failed");
			textsafe_append(b, t->reason, TEXTSAFE_TERMINAL);
			strbuf_printf(b, ", %" PRIu64 " ms, %" PRId64 " s ago (%" PRIu64
				      " passed, %" PRIu64 " failed)",
				      t->latency_us / 1000u, now - t->last_time, t->successes,
				      t->failures);
		}
		strbuf_puts(b, "\n");
		if (t->cert.present) {
			strbuf_puts(b, "      certificate ");
			textsafe_append(b, t->cert.subject, TEXTSAFE_TERMINAL);
			strbuf_puts(b, ", issuer ");
			textsafe_append(b, t->cert.issuer, TEXTSAFE_TERMINAL);
			strbuf_printf(b, ", expires in %" PRId64 " days\n",
				      (t->cert.not_after - now) / 86400);
		}
	}
}

void control_status_text(const struct sites *sites, const struct health *health,
			 const struct metrics_server *metrics, const struct fleet *fleet,
			 struct strbuf *b)
{
	int64_t now_s = clock_wall_ms() / 1000;
	size_t cursor = 0;

	for (size_t i = 0; i < sites_count(sites); i++) {
		const struct site *site = sites_at(sites, i);
		const struct config_site *cs = site_config(site);
		struct site_counters c;
		char addr[64];

		site_get_counters(site, &c);
		size_t first, n_targets;

		strbuf_printf(b, "%s: %s, from %s", site_name(site), config_state_name(site_state(site)),
			      site_source_word(site));
		if (site_source(site) != SITE_SOURCE_CONFIG)
			strbuf_printf(b, " (config: %s, %s)", config_state_word(cs),
				      config_action_name(cs->action));
		strbuf_printf(b, "\n  action     %s\n  addresses ", config_action_name(site_action(site)));
		for (size_t a = 0; a < cs->n_addresses; a++)
			strbuf_printf(b, " %s", config_addr_str(&cs->addresses[a], addr, sizeof(addr)));
		strbuf_puts(b, "\n  ports     ");
		for (size_t p = 0; p < cs->n_ports; p++)
			strbuf_printf(b, " %u", (unsigned)cs->ports[p]);
		if (cs->n_server_names || cs->default_name) {
			strbuf_puts(b, "\n  names     ");
			for (size_t n = 0; n < cs->n_server_names; n++)
				strbuf_printf(b, " %s", cs->server_names[n]);
			if (cs->default_name)
				strbuf_puts(b, " * (the default of its shared addresses)");
		}
		strbuf_printf(b, "\n  counters   accepted %" PRIu64 " dropped %" PRIu64 " rejected %" PRIu64
			      " allowed %" PRIu64 "\n", c.accepted, c.dropped, c.rejected, c.allowed);
		maintenance_status_text(site, now_s, b);
		if (fleet)
			fleet_site_text(fleet, site, b);
		n_targets = site_targets(health, &cursor, site_name(site), &first);
		if (n_targets)
			check_text(health, first, n_targets, b);
	}
	if (sites_count(sites) == 0)
		strbuf_puts(b, "no sites configured\n");
	metrics_server_status_text(metrics, b);
	if (fleet)
		fleet_status_text(fleet, b);
}

static void check_json(const struct health *h, size_t first, size_t n, struct strbuf *b)
{
	const struct health_target_info *t0 = health_at(h, first);
	char addr[64];

	strbuf_printf(b, ",\"check\":{\"type\":\"%s\",\"state\":\"%s\",\"interval_ms\":%u,"
		      "\"timeout_ms\":%u,\"rise\":%u,\"fall\":%u,\"addresses\":[",
		      config_check_type_name(t0->check->type),
		      health_state_name(health_site_state(h, t0->site)), t0->check->interval_ms,
		      t0->check->timeout_ms, t0->check->rise, t0->check->fall);
	for (size_t i = first; i < first + n; i++) {
		const struct health_target_info *t = health_at(h, i);

		strbuf_puts(b, i > first ? ",{\"address\":" : "{\"address\":");
		strbuf_json_string(b, config_addr_str(&t->addr, addr, sizeof(addr)));
		strbuf_printf(b, ",\"port\":%u,\"state\":\"%s\",\"successes\":%" PRIu64
			      ",\"failures\":%" PRIu64, t->port, health_state_name(t->state),
			      t->successes, t->failures);
		if (t->have_result) {
			strbuf_printf(b, ",\"last_result\":\"%s\",\"reason\":",
				      t->last_ok ? "success" : "failure");
			strbuf_json_string(b, t->reason);
			strbuf_printf(b, ",\"latency_ms\":%" PRIu64 ".%03" PRIu64
				      ",\"checked_at\":%" PRId64, t->latency_us / 1000u,
				      t->latency_us % 1000u, t->last_time);
		}
		if (t->cert.present) {
			strbuf_puts(b, ",\"certificate\":{\"subject\":");
			strbuf_json_string(b, t->cert.subject);
			strbuf_puts(b, ",\"issuer\":");
			strbuf_json_string(b, t->cert.issuer);
			strbuf_printf(b, ",\"not_after\":%" PRId64 ",\"days_left\":%" PRId64 "}",
				      t->cert.not_after,
				      (t->cert.not_after - (int64_t)time(NULL)) / 86400);
		}
		strbuf_puts(b, "}");
	}
	strbuf_puts(b, "]}");
}

void control_status_json(const struct sites *sites, const struct health *health,
			 const struct metrics_server *metrics, const struct fleet *fleet,
			 struct strbuf *b)
{
	int64_t now_s = clock_wall_ms() / 1000;
	size_t cursor = 0;

	strbuf_printf(b, "{\"protocol\":%d,\"sites\":[", PROTOCOL_VERSION);
	for (size_t i = 0; i < sites_count(sites); i++) {
		const struct site *site = sites_at(sites, i);
		const struct config_site *cs = site_config(site);
		struct site_counters c;
		char addr[64];
		size_t first, n_targets;

		site_get_counters(site, &c);
		strbuf_puts(b, i ? ",{\"name\":" : "{\"name\":");
		strbuf_json_string(b, site_name(site));
		strbuf_printf(b, ",\"state\":\"%s\",\"action\":\"%s\",\"source\":\"%s\","
			      "\"config_state\":\"%s\",\"config_action\":\"%s\",\"addresses\":[",
			      config_state_name(site_state(site)), config_action_name(site_action(site)),
			      site_source_word(site), config_state_word(cs), config_action_name(cs->action));
		for (size_t a = 0; a < cs->n_addresses; a++) {
			strbuf_puts(b, a ? "," : "");
			strbuf_json_string(b, config_addr_str(&cs->addresses[a], addr, sizeof(addr)));
		}
		strbuf_puts(b, "],\"ports\":[");
		for (size_t p = 0; p < cs->n_ports; p++)
			strbuf_printf(b, "%s%u", p ? "," : "", (unsigned)cs->ports[p]);
		strbuf_puts(b, "],\"server_names\":[");
		for (size_t n = 0; n < cs->n_server_names; n++) {
			strbuf_puts(b, n ? "," : "");
			strbuf_json_string(b, cs->server_names[n]);
		}
		if (cs->default_name)
			strbuf_puts(b, cs->n_server_names ? ",\"*\"" : "\"*\"");
		strbuf_printf(b, "],\"counters\":{\"accepted\":%" PRIu64 ",\"dropped\":%" PRIu64
			      ",\"rejected\":%" PRIu64 ",\"allowed\":%" PRIu64 "}", c.accepted,
			      c.dropped, c.rejected, c.allowed);
		maintenance_status_json(site, now_s, b);
		if (fleet)
			fleet_site_json(fleet, site, b);
		n_targets = site_targets(health, &cursor, site_name(site), &first);
		if (n_targets)
			check_json(health, first, n_targets, b);
		strbuf_puts(b, "}");
	}
	strbuf_puts(b, "]");
	metrics_server_status_json(metrics, b);
	if (fleet)
		fleet_status_json(fleet, b);
	strbuf_puts(b, "}\n");
}

struct figures {
	uint64_t uptime_s;
	size_t n_sites, offline, runtime;
	struct site_counters total;
	struct workers_stats workers;
};

static void gather(const struct control *ctl, struct figures *f)
{
	const struct sites *sites = engine_sites(ctl->engine);

	memset(f, 0, sizeof(*f));
	f->uptime_s = (clock_now_ms() - ctl->started_ms) / 1000u;
	f->n_sites = sites_count(sites);
	for (size_t i = 0; i < f->n_sites; i++) {
		const struct site *site = sites_at(sites, i);
		struct site_counters c;

		site_get_counters(site, &c);
		f->total.accepted += c.accepted;
		f->total.dropped += c.dropped;
		f->total.rejected += c.rejected;
		f->offline += site_state(site) == SITE_OFFLINE;
		f->runtime += site_source(site) != SITE_SOURCE_CONFIG;
	}
	engine_get_stats(ctl->engine, &f->workers);
}

/* The workers' figures, a line per group of workers_figures[]: "packets
 * 19 (malformed 0, ...)" where the group has a total, "RSTs sent 3,
 * failed 0" where it has not. */
static void workers_text(const struct workers_stats *w, struct strbuf *b)
{
	bool total = false, first_word = true;

	for (size_t i = 0; i < WORKERS_N_FIGURES; i++) {
		const struct workers_figure *f = &workers_figures[i];
		bool ends_line = i + 1 == WORKERS_N_FIGURES || strcmp(f->line, f[1].line) != 0;

		if (i == 0 || strcmp(f->line, f[-1].line) != 0) {
			strbuf_printf(b, "%-15s", f->line);
			total = false;
			first_word = true;
		}
		if (f->word) {
			strbuf_printf(b, "%s%s %" PRIu64, first_word ? (total ? " (" : "") : ", ",
				      f->word, w->figure[i]);
			first_word = false;
		} else {
			strbuf_printf(b, "%" PRIu64, w->figure[i]);
			total = true;
		}
		if (ends_line)
			strbuf_puts(b, total && !first_word ? ")\n" : "\n");
	}
}

/* What the kernel guard decided: the packets no daemon decided. */
static void guard_text(const struct control *ctl, struct strbuf *b)
{
	struct guard_counters g;
	int rc = engine_guard_counters(ctl->engine, &g);

	if (rc == 0) {
		strbuf_puts(b, "guard          none (backend external)\n");
		return;
	}
	strbuf_printf(b, "guard          %zu offline endpoints; undecided SYNs dropped %" PRIu64
		      ", rejected %" PRIu64 ", first fragments dropped %" PRIu64 "\n",
		      engine_guard(ctl->engine)->count, g.syn_dropped, g.syn_rejected, g.fragments);
	strbuf_printf(b, "cut            %" PRIu64 " RSTs sent by the rules of cut sites\n",
		      engine_cut_resets(ctl->engine));
	if (engine_guard_stale(ctl->engine))
		strbuf_puts(b, "guard          STALE: the kernel refused the last update (see the log)\n");
}

/* The health checker process: whether one runs and how often it had to be
 * started (more than once: it died, hung or was killed; see the log). */
static void checker_text(const struct health *h, struct strbuf *b)
{
	int pid = health_checker_pid(h);
	unsigned starts = health_checker_starts(h);

	if (pid > 0)
		strbuf_printf(b, "checker        running (pid %d), started %u time%s\n", pid, starts,
			      starts == 1 ? "" : "s");
	else if (starts > 0)
		strbuf_printf(b, "checker        not running (started %u time%s; restarts after a "
			      "backoff while checks are configured)\n", starts, starts == 1 ? "" : "s");
}

void control_stats_text(const struct control *ctl, struct strbuf *b)
{
	struct rules_watch_counts rw;
	const struct config *cfg = engine_config(ctl->engine);
	struct figures f;

	gather(ctl, &f);
	strbuf_printf(b, "gatekeeperd %s, protocol %d\n", GK_VERSION, PROTOCOL_VERSION);
	strbuf_printf(b, "uptime         %" PRIu64 " s\n", f.uptime_s);
	strbuf_printf(b, "backend        %s\n", rules_backend_name(engine_backend(ctl->engine)));
	strbuf_printf(b, "hook           %s\n", config_hook_name(cfg->hook));
	strbuf_printf(b, "config         %s\n", ctl->config_path);
	strbuf_printf(b, "state file     %s\n", cfg->state_file);
	strbuf_printf(b, "sites          %zu (%zu offline, %zu run-time overrides)\n", f.n_sites,
		      f.offline, f.runtime);
	strbuf_printf(b, "verdicts       accepted %" PRIu64 " dropped %" PRIu64 " rejected %" PRIu64 "\n",
		      f.total.accepted, f.total.dropped, f.total.rejected);
	workers_text(&f.workers, b);
	guard_text(ctl, b);
	checker_text(engine_health(ctl->engine), b);
	metrics_server_status_text(engine_metrics(ctl->engine), b);
	rules_watch_get_counts(&rw);
	strbuf_printf(b, "rules          checked %" PRIu64 " times, found removed %" PRIu64
		      ", reinstalled %" PRIu64 ", check failures %" PRIu64 "\n",
		      rw.checks, rw.damaged, rw.reinstalled, rw.check_failures);
	for (unsigned q = cfg->queue.num; q < (unsigned)cfg->queue.num + cfg->queue.count; q++) {
		struct queue_kernel_stats k;

		if (queue_read_kernel_stats((uint16_t)q, &k) < 0)
			strbuf_printf(b, "queue %-8u not listed by the kernel\n", q);
		else
			strbuf_printf(b, "queue %-8u waiting %" PRIu64 ", kernel dropped %" PRIu64
				      ", user dropped %" PRIu64 ", portid %" PRIu32 "\n", q,
				      k.queue_total, k.queue_dropped, k.user_dropped, k.peer_portid);
	}
}

static void guard_json(const struct control *ctl, struct strbuf *b)
{
	struct guard_counters g;
	int rc = engine_guard_counters(ctl->engine, &g);

	strbuf_printf(b, ",\"guard\":{\"installed\":%s,\"stale\":%s,\"offline_endpoints\":%zu,"
		      "\"syn_dropped\":%" PRIu64 ",\"syn_rejected\":%" PRIu64
		      ",\"fragments_dropped\":%" PRIu64 ",\"cut_resets\":%" PRIu64 "}",
		      rc > 0 ? "true" : "false", engine_guard_stale(ctl->engine) ? "true" : "false",
		      engine_guard(ctl->engine)->count, g.syn_dropped, g.syn_rejected, g.fragments,
		      engine_cut_resets(ctl->engine));
}

void control_stats_json(const struct control *ctl, struct strbuf *b)
{
	struct rules_watch_counts rw;
	const struct config *cfg = engine_config(ctl->engine);
	struct figures f;

	gather(ctl, &f);
	strbuf_printf(b, "{\"protocol\":%d,\"version\":", PROTOCOL_VERSION);
	strbuf_json_string(b, GK_VERSION);
	strbuf_printf(b, ",\"uptime_seconds\":%" PRIu64 ",\"backend\":", f.uptime_s);
	strbuf_json_string(b, rules_backend_name(engine_backend(ctl->engine)));
	strbuf_puts(b, ",\"hook\":");
	strbuf_json_string(b, config_hook_name(cfg->hook));
	strbuf_puts(b, ",\"config\":");
	strbuf_json_string(b, ctl->config_path);
	strbuf_puts(b, ",\"state_file\":");
	strbuf_json_string(b, cfg->state_file);
	strbuf_printf(b, ",\"sites\":{\"total\":%zu,\"offline\":%zu,\"runtime\":%zu,"
		      "\"accepted\":%" PRIu64 ",\"dropped\":%" PRIu64 ",\"rejected\":%" PRIu64 "}",
		      f.n_sites, f.offline, f.runtime, f.total.accepted, f.total.dropped,
		      f.total.rejected);
	strbuf_puts(b, ",\"workers\":{");
	for (size_t i = 0; i < WORKERS_N_FIGURES; i++)
		strbuf_printf(b, "%s\"%s\":%" PRIu64, i ? "," : "", workers_figures[i].name,
			      f.workers.figure[i]);
	strbuf_puts(b, "}");
	guard_json(ctl, b);
	strbuf_printf(b, ",\"checker\":{\"pid\":%d,\"starts\":%u}",
		      health_checker_pid(engine_health(ctl->engine)),
		      health_checker_starts(engine_health(ctl->engine)));
	metrics_server_status_json(engine_metrics(ctl->engine), b);
	rules_watch_get_counts(&rw);
	strbuf_printf(b, ",\"rules\":{\"checks\":%" PRIu64 ",\"removed\":%" PRIu64
		      ",\"reinstalled\":%" PRIu64 ",\"check_failures\":%" PRIu64 "},\"queues\":[",
		      rw.checks, rw.damaged, rw.reinstalled, rw.check_failures);
	for (unsigned q = cfg->queue.num; q < (unsigned)cfg->queue.num + cfg->queue.count; q++) {
		struct queue_kernel_stats k;

		strbuf_printf(b, "%s{\"num\":%u,", q == cfg->queue.num ? "" : ",", q);
		if (queue_read_kernel_stats((uint16_t)q, &k) < 0)
			strbuf_puts(b, "\"listed\":false}");
		else
			strbuf_printf(b, "\"listed\":true,\"queue_total\":%" PRIu64
				      ",\"queue_dropped\":%" PRIu64 ",\"user_dropped\":%" PRIu64
				      ",\"peer_portid\":%" PRIu32 "}",
				      k.queue_total, k.queue_dropped, k.user_dropped, k.peer_portid);
	}
	strbuf_puts(b, "]}\n");
}

