/* metrics: the Prometheus text. See metrics.h. */
#include "metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "engine.h"
#include "fleet.h"
#include "gk_version.h"
#include "health.h"
#include "metrics_server.h"
#include "prom.h"
#include "queue.h"
#include "rules_watch.h"
#include "textsafe.h"

/* ---- the exposition ---- */

/* A label value: valid UTF-8, escaped as the text format says, no
 * control characters (a certificate's subject is the server's to choose). */
static void label_value(struct strbuf *b, const char *text)
{
	textsafe_append(b, text, TEXTSAFE_PROMETHEUS);
}

static void site_label(struct strbuf *b, const char *name, const char *site)
{
	strbuf_printf(b, "%s{site=\"", name);
	label_value(b, site);
	strbuf_puts(b, "\"");
}

static void target_labels(struct strbuf *b, const char *name,
			  const struct health_target_info *t)
{
	char addr[64];

	site_label(b, name, t->site);
	strbuf_printf(b, ",address=\"%s\"", config_addr_str(&t->addr, addr, sizeof(addr)));
}

static uint64_t site_online(const struct site *site)
{
	return site_state(site) == SITE_ONLINE;
}

static uint64_t site_cut_on(const struct site *site)
{
	return site_cut(site);
}

static uint64_t site_cut_flows(const struct site *site)
{
	size_t flows;
	uint64_t probes;

	site_cut_counters(site, &flows, &probes);
	return flows;
}

static uint64_t site_cut_probes(const struct site *site)
{
	size_t flows;
	uint64_t probes;

	site_cut_counters(site, &flows, &probes);
	return probes;
}

/* The families with one sample per site, labelled by the site alone. */
static const struct {
	const char *name, *type, *help;
	uint64_t (*value)(const struct site *site);
} site_figures[] = {
	{"gatekeeper_site_online", "gauge", "1 if the site is online, 0 if offline.", site_online},
	{"gatekeeper_site_cut", "gauge",
	 "1 while the site is offline with --cut (its established connections are cut).", site_cut_on},
	{"gatekeeper_site_cut_connections", "gauge",
	 "Established connections of a cut site the last probe round found in conntrack.",
	 site_cut_flows},
	{"gatekeeper_site_cut_probes_total", "counter",
	 "Probe packets sent to the ends of a cut site's idle connections.", site_cut_probes},
};

static void render_sites(const struct sites *sites, struct strbuf *b)
{
	static const char *const sources[] = { "config", "runtime", "check", "fleet" };
	size_t n = sites_count(sites);

	prom_family(b, "gatekeeper_syn_verdicts_total", "counter",
		    "New connections (SYNs) decided, by site and verdict (allow: accepted while "
		    "offline from an allow-listed source).");
	for (size_t i = 0; i < n; i++) {
		const struct site *site = sites_at(sites, i);
		struct site_counters c;

		site_get_counters(site, &c);
		site_label(b, "gatekeeper_syn_verdicts_total", site_name(site));
		strbuf_printf(b, ",verdict=\"accept\"} %" PRIu64 "\n", c.accepted);
		site_label(b, "gatekeeper_syn_verdicts_total", site_name(site));
		strbuf_printf(b, ",verdict=\"drop\"} %" PRIu64 "\n", c.dropped);
		site_label(b, "gatekeeper_syn_verdicts_total", site_name(site));
		strbuf_printf(b, ",verdict=\"reject\"} %" PRIu64 "\n", c.rejected);
		/* accepted while offline, the source on the site's allow-list */
		site_label(b, "gatekeeper_syn_verdicts_total", site_name(site));
		strbuf_printf(b, ",verdict=\"allow\"} %" PRIu64 "\n", c.allowed);
	}
	for (size_t f = 0; f < sizeof(site_figures) / sizeof(site_figures[0]); f++) {
		prom_family(b, site_figures[f].name, site_figures[f].type, site_figures[f].help);
		for (size_t i = 0; i < n; i++) {
			site_label(b, site_figures[f].name, site_name(sites_at(sites, i)));
			strbuf_printf(b, "} %" PRIu64 "\n", site_figures[f].value(sites_at(sites, i)));
		}
	}
	prom_family(b, "gatekeeper_site_state_source", "gauge",
		    "1 for what decides the site's state now: config, runtime (gatekeeperctl on this box), check or fleet (etcd).");
	for (size_t i = 0; i < n; i++) {
		const struct site *site = sites_at(sites, i);

		for (size_t s = 0; s < sizeof(sources) / sizeof(sources[0]); s++) {
			site_label(b, "gatekeeper_site_state_source", site_name(site));
			strbuf_printf(b, ",source=\"%s\"} %d\n", sources[s],
				      strcmp(site_source_word(site), sources[s]) == 0);
		}
	}
}

static void render_checks(const struct health *health, struct strbuf *b)
{
	size_t n = health_count(health);
	int64_t now = (int64_t)time(NULL);

	if (n == 0)
		return;
	prom_family(b, "gatekeeper_check_up", "gauge",
		    "The check's judgement of an address after rise/fall: 1 up, 0 down (absent: no result yet).");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (t->state == HEALTH_UNKNOWN)
			continue;
		target_labels(b, "gatekeeper_check_up", t);
		strbuf_printf(b, "} %d\n", t->state == HEALTH_UP);
	}
	prom_family(b, "gatekeeper_check_success", "gauge", "1 if the last check of the address passed.");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (!t->have_result)
			continue;
		target_labels(b, "gatekeeper_check_success", t);
		strbuf_printf(b, "} %d\n", t->last_ok);
	}
	prom_family(b, "gatekeeper_check_duration_seconds", "gauge",
		    "How long the last check of the address took.");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (!t->have_result)
			continue;
		target_labels(b, "gatekeeper_check_duration_seconds", t);
		strbuf_printf(b, "} %" PRIu64 ".%06" PRIu64 "\n", t->latency_us / 1000000u,
			      t->latency_us % 1000000u);
	}
	prom_family(b, "gatekeeper_checks_total", "counter", "Checks run, by address and result.");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		target_labels(b, "gatekeeper_checks_total", t);
		strbuf_printf(b, ",result=\"success\"} %" PRIu64 "\n", t->successes);
		target_labels(b, "gatekeeper_checks_total", t);
		strbuf_printf(b, ",result=\"failure\"} %" PRIu64 "\n", t->failures);
	}
	prom_family(b, "gatekeeper_cert_expiry_seconds", "gauge",
		    "Seconds until the certificate the address served at its last handshake expires "
		    "(negative: expired).");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (!t->cert.present)
			continue;
		target_labels(b, "gatekeeper_cert_expiry_seconds", t);
		strbuf_printf(b, "} %" PRId64 "\n", t->cert.not_after - now);
	}
	prom_family(b, "gatekeeper_cert_info", "gauge",
		    "The certificate the address served at its last handshake.");
	for (size_t i = 0; i < n; i++) {
		const struct health_target_info *t = health_at(health, i);

		if (!t->cert.present)
			continue;
		target_labels(b, "gatekeeper_cert_info", t);
		strbuf_puts(b, ",subject=\"");
		label_value(b, t->cert.subject);
		strbuf_puts(b, "\",issuer=\"");
		label_value(b, t->cert.issuer);
		strbuf_puts(b, "\"} 1\n");
	}
}

static void render_queues(const struct config *cfg, struct strbuf *b)
{
	static const struct {
		const char *name, *type, *help;
		size_t offset;
	} figures[] = {
		{ "gatekeeper_queue_length", "gauge", "Packets waiting in the queue now.",
		  offsetof(struct queue_kernel_stats, queue_total) },
		{ "gatekeeper_queue_kernel_dropped_total", "counter",
		  "Packets the kernel dropped because the queue was full (fail_open false only: with "
		  "fail_open true they pass, and the kernel does not count them).",
		  offsetof(struct queue_kernel_stats, queue_dropped) },
		{ "gatekeeper_queue_user_dropped_total", "counter",
		  "Packets lost because the daemon's netlink socket buffer was full.",
		  offsetof(struct queue_kernel_stats, user_dropped) },
	};
	unsigned first = cfg->queue.num, last = first + cfg->queue.count;
	struct queue_kernel_stats k[64];
	bool listed[64];

	for (unsigned q = first; q < last && q - first < 64; q++)
		listed[q - first] = queue_read_kernel_stats((uint16_t)q, &k[q - first]) == 0;
	for (size_t f = 0; f < sizeof(figures) / sizeof(figures[0]); f++) {
		prom_family(b, figures[f].name, figures[f].type, figures[f].help);
		for (unsigned q = first; q < last && q - first < 64; q++) {
			uint64_t v;

			if (!listed[q - first])
				continue;
			memcpy(&v, (const char *)&k[q - first] + figures[f].offset, sizeof(v));
			strbuf_printf(b, "%s{queue=\"%u\"} %" PRIu64 "\n", figures[f].name, q, v);
		}
	}
}

static void render_workers(const struct workers_stats *w, struct strbuf *b)
{
	for (size_t i = 0; i < WORKERS_N_FIGURES; i++) {
		const struct workers_figure *f = &workers_figures[i];

		if (i == 0 || strcmp(f->metric, workers_figures[i - 1].metric) != 0)
			prom_family(b, f->metric, "counter", f->help);
		if (f->label)
			strbuf_printf(b, "%s{%s} %" PRIu64 "\n", f->metric, f->label, w->figure[i]);
		else
			strbuf_printf(b, "%s %" PRIu64 "\n", f->metric, w->figure[i]);
	}
}

/* The kernel guard's own counters: what no daemon decided. */
static void render_guard(const struct engine *engine, struct strbuf *b)
{
	struct guard_counters g;
	int rc = engine_guard_counters(engine, &g);

	prom_gauge(b, "gatekeeper_guard_installed",
		   "1 if the daemon keeps a kernel guard (every backend but external).", rc > 0);
	prom_gauge(b, "gatekeeper_guard_stale",
		   "1 if the kernel refused the guard's last update (it holds older states).",
		   engine_guard_stale(engine));
	prom_gauge(b, "gatekeeper_guard_offline_endpoints",
		   "Offline address:port pairs the kernel guard holds.",
		   (double)engine_guard(engine)->count);
	prom_family(b, "gatekeeper_guard_packets_total", "counter",
		    "Packets to offline sites that no daemon decided (queue bypassed or full, "
		    "fragments, unparseable), stopped by the kernel guard, by kind; as of the "
		    "rules watchdog's last check (every 2 s).");
	strbuf_printf(b, "gatekeeper_guard_packets_total{kind=\"syn_dropped\"} %" PRIu64 "\n"
		      "gatekeeper_guard_packets_total{kind=\"syn_rejected\"} %" PRIu64 "\n"
		      "gatekeeper_guard_packets_total{kind=\"fragment_dropped\"} %" PRIu64 "\n",
		      g.syn_dropped, g.syn_rejected, g.fragments);
	prom_counter(b, "gatekeeper_cut_resets_total",
		"RSTs the kernel rules of cut sites sent (both directions, both families).",
		engine_cut_resets(engine));
}

void metrics_render(const struct engine *engine, struct strbuf *b)
{
	struct workers_stats w;
	uint64_t reloads_ok, reloads_failed;
	struct rules_watch_counts rw;

	prom_family(b, "gatekeeper_build_info", "gauge", "The daemon's version, always 1.");
	strbuf_printf(b, "gatekeeper_build_info{version=\"%s\"} 1\n", GK_VERSION);
	render_sites(engine_sites(engine), b);
	render_checks(engine_health(engine), b);
	prom_gauge(b, "gatekeeper_checker_up",
		   "1 while the health checker process runs (it starts with the first check).",
		   health_checker_pid(engine_health(engine)) > 0);
	prom_counter(b, "gatekeeper_checker_starts_total",
		"Starts of the health checker process; more than one: it died, hung or was killed.",
		health_checker_starts(engine_health(engine)));
	render_queues(engine_config(engine), b);
	engine_get_stats(engine, &w);
	render_workers(&w, b);
	render_guard(engine, b);
	if (engine_fleet(engine))
		fleet_metrics(engine_fleet(engine), b);
	rules_watch_get_counts(&rw);
	prom_counter(b, "gatekeeper_rules_reinstalled_total",
		"Times the daemon found its rules removed or damaged behind its back and "
		"reinstalled them.", rw.reinstalled);
	prom_counter(b, "gatekeeper_rules_check_failures_total",
		"Rules checks that could not run, and reinstalls that failed.", rw.check_failures);
	engine_reload_counts(engine, &reloads_ok, &reloads_failed);
	prom_family(b, "gatekeeper_reloads_total", "counter",
		    "Config reloads (SIGHUP, gatekeeperctl reload), by result.");
	strbuf_printf(b, "gatekeeper_reloads_total{result=\"success\"} %" PRIu64 "\n"
		      "gatekeeper_reloads_total{result=\"failure\"} %" PRIu64 "\n",
		      reloads_ok, reloads_failed);
	metrics_server_render(engine_metrics(engine), b);
}
