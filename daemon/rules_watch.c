#include "rules_watch.h"

#include "clock.h"
#include "log.h"

static struct rules_watch_counts counts;
static struct guard_counters guard_seen;
static bool guard_seen_valid;
static uint64_t next_check_ms;

static void check_and_repair(enum rules_backend backend, const struct config *cfg,
			     const struct guard_set *guard)
{
	char why[256];
	struct guard_counters seen;
	int intact = rules_check(backend, cfg, guard, &seen, why, sizeof(why));

	if (intact < 0) {
		counts.check_failures++;
		return;
	}
	counts.checks++;
	guard_seen_valid = intact;
	if (intact) {
		guard_seen = seen;
		return;
	}
	counts.damaged++;
	log_error("rules removed behind our back (%s): reinstalling the %s rules; SYNs to "
		  "managed sites were not decided by gatekeeper until now", why,
		  rules_backend_name(backend));
	if (rules_install(backend, cfg, guard) < 0) {
		counts.check_failures++;
		log_error("reinstalling the %s rules failed: retrying in %d ms",
			  rules_backend_name(backend), RULES_WATCH_INTERVAL_MS);
		return;
	}
	counts.reinstalled++;
	log_warn("rules reinstalled (%llu time%s since the start)",
		  (unsigned long long)counts.reinstalled, counts.reinstalled == 1 ? "" : "s");
}

int rules_watch_tick(enum rules_backend backend, const struct config *cfg,
		     const struct guard_set *guard)
{
	uint64_t now = clock_now_ms();

	if (backend == RULES_BACKEND_EXTERNAL)
		return -1;
	if (next_check_ms == 0)
		next_check_ms = now + RULES_WATCH_INTERVAL_MS;
	if (now >= next_check_ms) {
		check_and_repair(backend, cfg, guard);
		now = clock_now_ms();
		next_check_ms = now + RULES_WATCH_INTERVAL_MS;
	}
	return (int)(next_check_ms - now);
}

void rules_watch_get_counts(struct rules_watch_counts *out)
{
	*out = counts;
}

bool rules_watch_guard_seen(struct guard_counters *out)
{
	if (guard_seen_valid)
		*out = guard_seen;
	return guard_seen_valid;
}

void rules_watch_forget_guard(void)
{
	guard_seen_valid = false;
}
