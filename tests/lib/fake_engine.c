/* The fake engine: see fake_engine.h. */
#include <stdlib.h>
#include <string.h>

#include "fake_engine.h"

/* The config at PATH and its site table, or -1 with nothing to free. */
static int load(const char *path, struct config_errors *errors, struct config **cfg,
		struct sites **sites)
{
	*cfg = config_load(path, errors);
	if (!*cfg)
		return -1;
	*sites = sites_create(*cfg);
	if (!*sites) {
		config_free(*cfg);
		return -1;
	}
	return 0;
}

int fake_engine_init(struct engine *engine, const char *config_path, struct config_errors *errors)
{
	memset(engine, 0, sizeof(*engine));
	return load(config_path, errors, &engine->cfg, &engine->sites);
}

void fake_engine_finish(struct engine *engine)
{
	sites_free(engine->sites);
	config_free(engine->cfg);
	memset(engine, 0, sizeof(*engine));
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
	(void)engine;
	return RULES_BACKEND_EXTERNAL;
}

void engine_get_stats(const struct engine *engine, struct workers_stats *out)
{
	*out = engine->stats;
}

struct health *engine_health(const struct engine *engine)
{
	(void)engine;
	return NULL; /* no checks: the health module treats NULL as idle */
}

const struct metrics_server *engine_metrics(const struct engine *engine)
{
	return NULL;
}

void engine_reload_counts(const struct engine *engine, uint64_t *ok, uint64_t *failed)
{
	*ok = engine->reloads_ok;
	*failed = engine->reloads_failed;
}

/* As the real one: a refused config leaves the running one untouched, and
 * the overrides of sites that still exist are kept. */
int engine_reload(struct engine *engine, const char *path, struct config_errors *errors)
{
	struct config *cfg;
	struct sites *sites;

	if (load(path, errors, &cfg, &sites) < 0)
		return -1;
	sites_carry_over_overrides(sites, engine->sites);
	sites_free(engine->sites);
	config_free(engine->cfg);
	engine->cfg = cfg;
	engine->sites = sites;
	return 0;
}

/* Backend external: there is no kernel guard to keep in step. */
int engine_guard_sync(struct engine *engine)
{
	(void)engine;
	return 0;
}

const struct guard_set *engine_guard(const struct engine *engine)
{
	static const struct guard_set none;

	(void)engine;
	return &none;
}

bool engine_guard_stale(const struct engine *engine)
{
	(void)engine;
	return false;
}

int engine_guard_counters(const struct engine *engine, struct guard_counters *out)
{
	(void)engine;
	memset(out, 0, sizeof(*out));
	return 0;
}

/* no workers in the tests: nothing can still read the replaced list */
void engine_set_allow(struct engine *engine, struct site *site, struct site_allow *runtime)
{
	(void)engine;
	free(site_swap_allow(site, runtime));
}

/* no kernel rules, no probes */
void engine_cut_round(struct engine *engine)
{
	(void)engine;
}

uint64_t engine_cut_resets(const struct engine *engine)
{
	(void)engine;
	return 0;
}

struct fleet *engine_fleet(const struct engine *engine)
{
	return NULL;
}
