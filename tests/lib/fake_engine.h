/* fake_engine: the engine as the control server sees it (config, site
 * table, stats, reload) without queues, workers or kernel rules, for the
 * control unit test and the control-session fuzzer.
 *
 * fake_engine.c defines every engine_* function that control*.c and
 * metrics.c call, so the linker never pulls engine.o out of the core
 * library. A new engine_* call there needs a fake here too, or the link
 * fails with "multiple definition". Link fake_engine.c as a source of the
 * program (meson: fake_engine_dep), not from an archive: it must be
 * linked before the core library. */
#ifndef GK_TESTS_FAKE_ENGINE_H
#define GK_TESTS_FAKE_ENGINE_H

#include <stdint.h>

#include "config.h"
#include "engine.h"
#include "sites.h"
#include "workers.h"

/* Open to the tests: they look into the site table and choose the
 * figures that stats and metrics report. */
struct engine {
	struct config *cfg;
	struct sites *sites;
	struct workers_stats stats; /* what engine_get_stats() reports */
	uint64_t reloads_ok, reloads_failed; /* what engine_reload_counts() reports */
};

/* Loads CONFIG_PATH and builds its site table, stats all zero. 0, or -1
 * with the messages in ERRORS. */
int fake_engine_init(struct engine *engine, const char *config_path, struct config_errors *errors);
void fake_engine_finish(struct engine *engine);

#endif
