#include "engine.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "cut.h"
#include "guard.h"
#include "health.h"
#include "log.h"
#include "rules_cut.h"
#include "rules_sni.h"
#include "rules_watch.h"
#include "state.h"
#include "strbuf.h"

struct engine {
	struct config *cfg;
	struct sites *sites;
	struct workers *workers;
	enum rules_backend backend;
	bool rules_installed;
	bool sni_worker;                 /* started with a worker for the SNI queue */
	struct guard_set guard;          /* what the kernel guard holds */
	bool guard_stale;                /* an update failed: retried at a later sync */
	uint64_t guard_retry_ms;         /* not before this (CLOCK_MONOTONIC) */
	uint64_t guard_retry_delay_ms;   /* doubles while updates keep failing */
	struct guard_counters guard_base; /* counted by guards since replaced */
	struct health *health;
	struct cut *cut;                 /* NULL: backend external, or it failed to open */
	uint64_t reloads_ok, reloads_failed;
	const struct metrics_server *metrics; /* main()'s, for status; may be NULL */
	struct fleet *fleet; /* main()'s; NULL without a fleet section */
};

/* A guard left by an instance that died kept deciding while no daemon
 * did: say what it did, and keep counting from there. */
static void take_over_guard(struct engine *engine)
{
	struct guard_counters left;

	if (rules_guard_read(engine->backend, engine->cfg, &left) <= 0)
		return;
	engine->guard_base = left;
	if (left.syn_dropped || left.syn_rejected || left.fragments)
		log_warn("the kernel guard left by an earlier instance dropped %llu and rejected "
			 "%llu SYNs and dropped %llu first fragments to offline sites while no "
			 "gatekeeperd decided them",
			 (unsigned long long)left.syn_dropped, (unsigned long long)left.syn_rejected,
			 (unsigned long long)left.fragments);
}

struct engine *engine_open(struct config *cfg, enum rules_backend backend)
{
	struct engine *engine = calloc(1, sizeof(*engine));

	if (!engine) {
		config_free(cfg);
		return NULL;
	}
	engine->cfg = cfg;
	engine->backend = backend;
	engine->sites = sites_create(cfg);
	if (!engine->sites) {
		log_error("out of memory building the site table");
		goto fail;
	}
	/* overrides apply before the first SYN is decided, not just after */
	state_restore(cfg->state_file, engine->sites);
	engine->health = health_open(cfg);
	if (!engine->health)
		goto fail;
	if (guard_set_build(&engine->guard, engine->sites) < 0) {
		log_error("out of memory building the guard's set");
		goto fail;
	}
	engine->workers = workers_open(cfg, engine->sites, backend != RULES_BACKEND_EXTERNAL);
	if (!engine->workers)
		goto fail;
	engine->sni_worker = sites_shared_count(engine->sites) > 0;
	take_over_guard(engine);
	if (rules_install(backend, cfg, &engine->guard) < 0) {
		log_error("cannot install the %s rules", rules_backend_name(backend));
		goto fail;
	}
	engine->rules_installed = true;
	/* a cut needs the kernel's rules: none with backend external */
	if (backend != RULES_BACKEND_EXTERNAL && !(engine->cut = cut_open()))
		log_warn("cut: idle connections of sites offline with --cut will not be probed; "
			 "busy ones are still cut by the kernel rules");
	return engine;
fail:
	engine_close(engine);
	return NULL;
}

void engine_close(struct engine *engine)
{
	if (!engine)
		return;
	/* rules first: once they are gone no new SYN is queued to us */
	if (engine->rules_installed && rules_remove(engine->backend, engine->cfg) < 0)
		log_error("could not remove every %s rule", rules_backend_name(engine->backend));
	workers_close(engine->workers);
	cut_close(engine->cut);
	health_close(engine->health);
	guard_set_free(&engine->guard);
	sites_free(engine->sites);
	config_free(engine->cfg);
	free(engine);
}

/* Whether some (address, port) of CFG belongs to several sites. */
static bool shares_addresses(const struct config *cfg)
{
	struct rules_endpoint *e = NULL;
	size_t n = rules_sni_endpoints(cfg, AF_INET, &e);

	free(e);
	if (n)
		return true;
	n = rules_sni_endpoints(cfg, AF_INET6, &e);
	free(e);
	return n != 0;
}

static void add_error(struct config_errors *errors, char *msg)
{
	char **grown = realloc(errors->messages, (errors->count + 1) * sizeof(char *));

	if (grown) {
		errors->messages = grown;
		errors->messages[errors->count++] = msg;
	} else {
		free(msg);
	}
}

/* What the kernel rules or queue bindings depend on cannot change without
 * unbinding; say so rather than half-apply it. The SNI queue's worker, its
 * queue, raw sockets and hold table are set up at the start, before the
 * privileges are dropped and the sandbox is loaded: a daemon that started
 * with no shared address cannot take one on, and the hold table's size
 * (sni.max_pending) stays; sni.hold is handed to the worker. Shared endpoints may come and go otherwise (site table and rules
 * are rebuilt whole; sites.c keeps the SNI worker's counter slot always). */
static int reload_compatible(const struct config *old, const struct config *cfg,
			     bool sni_worker, struct config_errors *errors)
{
	const char *what = NULL;
	char *msg = NULL;

	if (old->hook != cfg->hook)
		what = "hook";
	else if (old->backend != cfg->backend)
		what = "backend";
	else if (old->queue.num != cfg->queue.num || old->queue.count != cfg->queue.count ||
		 old->queue.fail_open != cfg->queue.fail_open || old->queue.maxlen != cfg->queue.maxlen)
		what = "queue";
	else if (strcmp(old->control.socket, cfg->control.socket) != 0)
		what = "control.socket";
	else if (old->sni.max_pending != cfg->sni.max_pending)
		what = "sni.max_pending";
	if (what) {
		if (asprintf(&msg, "%s: changing '%s' needs a restart; the running config is kept",
			     cfg->path, what) < 0)
			msg = NULL;
	} else if (!sni_worker && shares_addresses(cfg)) {
		if (asprintf(&msg, "%s: sites now share an address, but this daemon started with "
			     "none shared and so without the SNI queue's worker: a restart is needed; "
			     "the running config is kept", cfg->path) < 0)
			msg = NULL;
	} else {
		return 0;
	}
	if (msg)
		add_error(errors, msg);
	return -1;
}

int engine_reload(struct engine *engine, const char *path, struct config_errors *errors)
{
	struct config *cfg = config_load(path, errors);
	struct guard_set guard = {0};
	struct guard_counters before;
	struct sites *sites, *old;

	if (!cfg) {
		engine->reloads_failed++;
		return -1;
	}
	if (reload_compatible(engine->cfg, cfg, engine->sni_worker, errors) < 0)
		goto fail;
	sites = sites_create(cfg);
	if (!sites)
		goto fail;
	sites_carry_over_overrides(sites, engine->sites);
	/* auto sites start from what their checks say now, not from online */
	health_apply(engine->health, sites);
	if (guard_set_build(&guard, sites) < 0) {
		sites_free(sites);
		goto fail;
	}
	/* the nft table is replaced whole, its counters with it: what they
	 * said just before goes to the base once the new table is in */
	if (engine->backend != RULES_BACKEND_NFT ||
	    rules_guard_read(engine->backend, engine->cfg, &before) <= 0)
		memset(&before, 0, sizeof(before));
	/* The new table goes live before the rules change: a newly managed
	 * address is known to the workers by the time its first SYN is queued,
	 * and a removed one is left to the guard until its rule is gone. */
	old = workers_swap_sites(engine->workers, sites);
	if (rules_update(engine->backend, cfg, &guard) < 0) {
		workers_swap_sites(engine->workers, old);
		sites_free(sites);
		guard_set_free(&guard);
		log_error("reload: the kernel refused the new rules; the running config is kept");
		goto fail;
	}
	guard_set_move(&engine->guard, &guard);
	engine->guard_stale = false;
	guard_counters_add(&engine->guard_base, &before);
	if (engine->backend == RULES_BACKEND_NFT)
		rules_watch_forget_guard();
	workers_set_sni_hold(engine->workers, cfg->sni.hold_ms);
	/* no worker writes the old table any more: its counts are final */
	sites_carry_over_counters(sites, old);
	sites_free(old);
	/* before the old config goes: the checks in flight point into it */
	health_update(engine->health, cfg);
	config_free(engine->cfg);
	engine->cfg = cfg;
	engine->sites = sites;
	engine->reloads_ok++;
	return 0;
fail:
	config_free(cfg);
	engine->reloads_failed++;
	return -1;
}

int engine_guard_sync(struct engine *engine)
{
	struct guard_set now;

	if (engine->backend == RULES_BACKEND_EXTERNAL)
		return 0;
	if (guard_set_build(&now, engine->sites) < 0) {
		log_error("out of memory building the guard's set");
		return -1;
	}
	if (!engine->guard_stale && guard_set_equal(&now, &engine->guard)) {
		guard_set_free(&now);
		return 0;
	}
	/* a kernel that keeps refusing is asked again after 1 s, then 2, 4, 8,
	 * not on every turn of the main loop: an attempt may block this thread
	 * for up to the xtables lock wait (RULES_XT_LOCK_WAIT_S) */
	if (engine->guard_stale && clock_now_ms() < engine->guard_retry_ms) {
		guard_set_free(&now);
		return -1;
	}
	if (rules_guard_update(engine->backend, engine->cfg, &now) < 0) {
		/* counted from the failure: the attempt itself may have waited */
		engine->guard_retry_delay_ms = !engine->guard_stale ? 1000
					       : engine->guard_retry_delay_ms >= 4000 ? 8000
					       : engine->guard_retry_delay_ms * 2;
		engine->guard_retry_ms = clock_now_ms() + engine->guard_retry_delay_ms;
		if (!engine->guard_stale)
			log_error("the kernel refused the guard's update: while no daemon decides, "
				  "a changed site keeps its old state in the kernel; retrying");
		engine->guard_stale = true;
		guard_set_free(&now);
		return -1;
	}
	if (engine->guard_stale)
		log_info("the kernel guard is up to date again");
	engine->guard_stale = false;
	guard_set_move(&engine->guard, &now);
	return 0;
}

void engine_cut_round(struct engine *engine)
{
	cut_round(engine->cut, engine->sites);
}

void engine_cut_tick(struct engine *engine)
{
	cut_tick(engine->cut, engine->sites);
}

int engine_cut_timeout_ms(const struct engine *engine)
{
	return cut_timeout_ms(engine->cut, engine->sites);
}

uint64_t engine_cut_resets(const struct engine *engine)
{
	switch (engine->backend) {
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		return rules_xt_cut_resets(engine->backend);
	case RULES_BACKEND_NFT:
		return rules_nft_cut_resets();
	case RULES_BACKEND_EXTERNAL:
		break;
	}
	return 0;
}

void engine_set_allow(struct engine *engine, struct site *site, struct site_allow *runtime)
{
	struct site_allow *old = site_swap_allow(site, runtime);

	if (!old)
		return;
	/* a worker may have loaded OLD just before the swap: wait it out */
	workers_quiesce(engine->workers);
	free(old);
}

const struct guard_set *engine_guard(const struct engine *engine)
{
	return &engine->guard;
}

int engine_guard_counters(const struct engine *engine, struct guard_counters *out)
{
	struct guard_counters now;

	*out = engine->guard_base;
	if (engine->backend == RULES_BACKEND_EXTERNAL)
		return 0;
	/* as of the rules watchdog's last check (at most its interval old):
	 * a stats request or a scrape costs no kernel listing of its own */
	if (rules_watch_guard_seen(&now))
		guard_counters_add(out, &now);
	return 1;
}

bool engine_guard_stale(const struct engine *engine)
{
	return engine->guard_stale;
}

struct health *engine_health(const struct engine *engine)
{
	return engine->health;
}

void engine_reload_counts(const struct engine *engine, uint64_t *ok, uint64_t *failed)
{
	*ok = engine->reloads_ok;
	*failed = engine->reloads_failed;
}

void engine_set_metrics(struct engine *engine, const struct metrics_server *metrics)
{
	engine->metrics = metrics;
}

void engine_set_fleet(struct engine *engine, struct fleet *fleet)
{
	engine->fleet = fleet;
}

struct fleet *engine_fleet(const struct engine *engine)
{
	return engine->fleet;
}

const struct metrics_server *engine_metrics(const struct engine *engine)
{
	return engine->metrics;
}

int engine_run(struct engine *engine)
{
	return workers_run(engine->workers);
}

const struct config *engine_config(const struct engine *engine)
{
	return engine->cfg;
}

struct sites *engine_sites(const struct engine *engine)
{
	return engine->sites;
}

enum rules_backend engine_backend(const struct engine *engine)
{
	return engine->backend;
}

void engine_get_stats(const struct engine *engine, struct workers_stats *out)
{
	workers_get_stats(engine->workers, out);
}

const struct workers *engine_workers(const struct engine *engine)
{
	return engine->workers;
}

void engine_summary(const struct engine *engine, char *buf, size_t len)
{
	size_t n = sites_count(engine->sites), online = 0;

	for (size_t i = 0; i < n; i++)
		online += site_state(sites_at(engine->sites, i)) == SITE_ONLINE;
	snprintf(buf, len, "%zu site%s (%zu online, %zu offline), backend %s", n,
		 n == 1 ? "" : "s", online, n - online, rules_backend_name(engine->backend));
}

void engine_log_counters(const struct engine *engine)
{
	struct workers_stats stats;
	struct strbuf line;

	for (size_t i = 0; i < sites_count(engine->sites); i++) {
		const struct site *site = sites_at(engine->sites, i);
		struct site_counters c;

		site_get_counters(site, &c);
		log_info("site %s: accepted %" PRIu64 " dropped %" PRIu64 " rejected %" PRIu64
			 " allowed %" PRIu64 " (%s, %s, from %s)",
			 site_name(site), c.accepted, c.dropped, c.rejected, c.allowed,
			 config_state_name(site_state(site)), config_action_name(site_action(site)),
			 site_source_name(site_source(site)));
	}
	engine_get_stats(engine, &stats);
	strbuf_init(&line, 0);
	strbuf_puts(&line, "workers:");
	for (size_t i = 0; i < WORKERS_N_FIGURES; i++)
		strbuf_printf(&line, " %s %" PRIu64, workers_figures[i].name, stats.figure[i]);
	log_info("%s", strbuf_failed(&line) ? "workers: out of memory for the figures" : line.data);
	strbuf_free(&line);
}
