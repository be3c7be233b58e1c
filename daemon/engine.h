/* engine: the running daemon's state: the config in force, its site
 * table, the queue workers and the kernel rules, started and stopped
 * together, and swapped together on reload.
 *
 * All engine calls come from the main thread; the workers only read the
 * site table they are handed. */
#ifndef GK_ENGINE_H
#define GK_ENGINE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"
#include "guard.h"
#include "rules.h"
#include "sites.h"
#include "workers.h"

struct engine;

/* Takes ownership of CFG. Applies the run-time overrides saved in the
 * state file, binds the queues, then installs the rules,
 * so a rule never points at a queue nobody serves. NULL on failure, with
 * nothing left installed. */
struct engine *engine_open(struct config *cfg, enum rules_backend backend);
/* Starts deciding: the worker threads. Until then queued SYNs wait in
 * the kernel. Call after the privilege drop (see workers_run). */
int engine_run(struct engine *engine);
/* Removes the rules, then stops the workers; frees everything. */
void engine_close(struct engine *engine);

/* Loads PATH; on any error the running config stays in force untouched and
 * the messages are in ERRORS. Run-time overrides of sites that still
 * exist are kept. 0 or -1. */
int engine_reload(struct engine *engine, const char *path, struct config_errors *errors);

const struct config *engine_config(const struct engine *engine);
struct sites *engine_sites(const struct engine *engine);
enum rules_backend engine_backend(const struct engine *engine);
void engine_get_stats(const struct engine *engine, struct workers_stats *out);
const struct workers *engine_workers(const struct engine *engine);

/* Brings the kernel guard in line with the sites' states; call after any
 * change of state (toggle, check, reset). Cheap when nothing changed. A
 * refused update is logged and retried by a later call, at most once a
 * second. 0 or -1. */
int engine_guard_sync(struct engine *engine);
/* The cut's probe rounds (cut.h): one now, one when due, and when. */
void engine_cut_round(struct engine *engine);
void engine_cut_tick(struct engine *engine);
int engine_cut_timeout_ms(const struct engine *engine);
/* The RSTs the cut's kernel rules sent (both families; since the rules were
 * installed). Runs the backend's listing tool: for status and metrics. */
uint64_t engine_cut_resets(const struct engine *engine);
/* Puts SITE's run-time allow-list RUNTIME in force (taken; NULL: the
 * config's), and frees the one it replaces once no worker can read it. */
void engine_set_allow(struct engine *engine, struct site *site, struct site_allow *runtime);
/* What the kernel guard holds now. */
const struct guard_set *engine_guard(const struct engine *engine);
/* Whether the last guard update failed (the kernel holds an older set). */
bool engine_guard_stale(const struct engine *engine);
/* What the guard decided since the daemon started (and what a dead
 * instance's guard decided before), as of the rules watchdog's last check:
 * 1, or 0 when there is no guard (backend external). */
int engine_guard_counters(const struct engine *engine, struct guard_counters *out);

/* The health checks of the running config (never NULL once started). */
struct health *engine_health(const struct engine *engine);
/* The metrics listener main() opened (status and stats show its state),
 * or NULL; the engine does not own it. */
struct metrics_server;
void engine_set_metrics(struct engine *engine, const struct metrics_server *metrics);
const struct metrics_server *engine_metrics(const struct engine *engine);
/* The fleet main() opened (fleet.h), or NULL: not owned either. */
struct fleet;
void engine_set_fleet(struct engine *engine, struct fleet *fleet);
struct fleet *engine_fleet(const struct engine *engine);
/* Reloads since the start that took, and that were refused. */
void engine_reload_counts(const struct engine *engine, uint64_t *ok, uint64_t *failed);

/* "3 sites (1 online, 2 offline), backend xt (iptables-nft)": for the
 * ready line and systemd's STATUS=. */
void engine_summary(const struct engine *engine, char *buf, size_t len);

/* One line per site with its state and counters, then the totals. */
void engine_log_counters(const struct engine *engine);

#endif
