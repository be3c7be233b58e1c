#include "maintenance.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine.h"
#include "fleet.h"
#include "log.h"
#include "state.h"

/* "203.0.113.0/24,2001:db8:ff::/48" or "none". */
static int parse_allow(const char *list, struct maintenance_opts *opts, char *err, size_t err_len)
{
	struct config_cidr nets[CONFIG_MAX_ALLOW];
	size_t n = 0;
	char word[CONFIG_CIDR_STRLEN];

	if (strcmp(list, "none") != 0) {
		for (const char *p = list;; p++) {
			size_t len = strcspn(p, ",");

			if (n == CONFIG_MAX_ALLOW) {
				snprintf(err, err_len, "allow: more than %d networks", CONFIG_MAX_ALLOW);
				return -1;
			}
			if (len == 0 || len >= sizeof(word)) {
				snprintf(err, err_len, "allow: an empty or overlong network in '%.64s'", list);
				return -1;
			}
			memcpy(word, p, len);
			word[len] = '\0';
			if (config_parse_cidr(word, &nets[n++], err, err_len) < 0)
				return -1;
			p += len;
			if (!*p)
				break;
		}
	}
	free(opts->allow);
	opts->allow = site_allow_new(nets, n);
	if (!opts->allow) {
		snprintf(err, err_len, "out of memory");
		return -1;
	}
	return 0;
}

/* A decimal number of seconds (for=) or a Unix time (until=). */
static int parse_seconds(const char *text, int64_t *out)
{
	char *end;
	long long v;

	if (!*text || strspn(text, "0123456789") != strlen(text))
		return -1;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int maintenance_parse_option(const char *word, struct maintenance_opts *opts, int64_t now_s,
			     char *err, size_t err_len)
{
	int64_t v;

	if (strncmp(word, "allow=", 6) == 0)
		return parse_allow(word + 6, opts, err, err_len) < 0 ? -1 : 1;
	if (strcmp(word, PROTOCOL_OPTION_CUT) == 0) {
		if (opts->cut) {
			snprintf(err, err_len, "give " PROTOCOL_OPTION_CUT " once");
			return -1;
		}
		opts->cut = true;
		return 1;
	}
	if (strncmp(word, "for=", 4) != 0 && strncmp(word, "until=", 6) != 0)
		return 0;
	if (opts->until) {
		snprintf(err, err_len, "give one deadline: for= or until=, once");
		return -1;
	}
	if (parse_seconds(strchr(word, '=') + 1, &v) < 0) {
		snprintf(err, err_len, "'%.32s': a whole number of seconds is expected", word);
		return -1;
	}
	if (word[0] == 'f')
		v = v > MAINTENANCE_MAX_SECONDS ? MAINTENANCE_MAX_SECONDS + 1 : now_s + v;
	if (v - now_s < MAINTENANCE_MIN_SECONDS) {
		snprintf(err, err_len, "'%.32s': the deadline is not in the future", word);
		return -1;
	}
	if (v - now_s > MAINTENANCE_MAX_SECONDS) {
		snprintf(err, err_len, "'%.32s': the deadline is more than %d days away",
			 word, MAINTENANCE_MAX_SECONDS / 86400);
		return -1;
	}
	opts->until = v;
	return 1;
}

void maintenance_opts_free(struct maintenance_opts *opts)
{
	free(opts->allow);
	opts->allow = NULL;
	opts->until = 0;
	opts->cut = false;
}

void maintenance_set(struct engine *engine, struct site *site, enum site_state state,
		     enum site_action action, struct maintenance_opts *opts, enum site_source source)
{
	/* the allow-list before the state: an ops SYN arriving in between
	 * must not meet an offline site without its exceptions */
	site_set_until(site, opts->until);
	if (state == SITE_OFFLINE) {
		engine_set_allow(engine, site, opts->allow);
		opts->allow = NULL;
	}
	if (source == SITE_SOURCE_FLEET)
		site_set_fleet_override(site, state, action);
	else
		site_set_override(site, state, action);
	site_set_cut(site, state == SITE_OFFLINE && opts->cut);
	if (state != SITE_OFFLINE)
		engine_set_allow(engine, site, NULL);
}

void maintenance_unset(struct engine *engine, struct site *site)
{
	site_set_until(site, 0);
	site_clear_override(site); /* and its cut */
	engine_set_allow(engine, site, NULL);
}

int maintenance_apply(struct engine *engine, struct site *site, enum site_state state,
		      enum site_action action, struct maintenance_opts *opts, enum site_source source)
{
	maintenance_set(engine, site, state, action, opts, source);
	return maintenance_sync(engine, site);
}

int maintenance_clear(struct engine *engine, struct site *site)
{
	maintenance_unset(engine, site);
	return maintenance_sync(engine, site);
}

int maintenance_sync(struct engine *engine, struct site *site)
{
	/* once this returns, what no daemon decides gets the new state too
	 * (the workers had it at once) */
	if (engine_guard_sync(engine) < 0)
		return -1;
	if (site_cut(site))
		/* the first probe round at once, with the cut rules in place */
		engine_cut_round(engine);
	return 0;
}

/* A scan of every site per round of the main loop: a few ns a site, and
 * it spares every path that sets a deadline from keeping an index. */
int maintenance_timeout_ms(const struct sites *sites)
{
	int64_t next = 0, now_ms, wait;

	for (size_t i = 0; i < sites_count(sites); i++) {
		int64_t until = site_until(sites_at(sites, i));

		if (until && (!next || until < next))
			next = until;
	}
	if (!next)
		return -1;
	now_ms = clock_wall_ms();
	/* a deadline from etcd, the fleet's cache or the state file may be
	 * any int64: next * 1000 must not overflow (and wrap to "now", which
	 * would spin the loop) */
	if (next > INT64_MAX / 1000)
		return 60000;
	wait = next * 1000 - now_ms;
	return wait <= 0 ? 0 : wait > 60000 ? 60000 : (int)wait;
}

static void end_override(struct engine *engine, struct site *site)
{
	char when[32];
	enum site_state was = site_state(site);

	state_time_text(site_until(site), when, sizeof(when));
	maintenance_unset(engine, site);
	log_info("site %s: the %s override ended at its deadline %s; back to %s (%s, from %s)",
		 site_name(site), config_state_name(was), when, config_state_name(site_state(site)),
		 config_action_name(site_action(site)), site_source_word(site));
}

void maintenance_expire(struct engine *engine)
{
	struct sites *sites = engine_sites(engine);
	int64_t now_s = clock_wall_ms() / 1000;
	struct state_set set = {0};
	size_t ended = 0;
	char err[512];

	for (size_t i = 0; i < sites_count(sites); i++) {
		struct site *site = sites_at(sites, i);
		int64_t until = site_until(site);

		if (!until || until > now_s)
			continue;
		end_override(engine, site);
		/* a local pin that ended: the fleet's override, if any, is back */
		if (engine_fleet(engine))
			fleet_reapply(engine_fleet(engine), site);
		ended++;
	}
	if (!ended)
		return;
	engine_guard_sync(engine);
	/* unlike a toggle, the change is made even when the file cannot be
	 * written: the file's deadline has passed too, so a restart ends the
	 * override all the same */
	snprintf(err, sizeof(err), "out of memory");
	if (state_collect(sites, &set) < 0 ||
	    state_save(engine_config(engine)->state_file, &set, err, sizeof(err)) < 0)
		log_warn("state file not rewritten after a deadline: %s", err);
	state_set_free(&set);
}

static void allow_list_text(const struct site_allow *allow, struct strbuf *b)
{
	char net[CONFIG_CIDR_STRLEN];

	if (!allow || !allow->count)
		strbuf_puts(b, " none");
	for (size_t i = 0; allow && i < allow->count; i++)
		strbuf_printf(b, " %s", config_cidr_str(&allow->nets[i], net, sizeof(net)));
}

void maintenance_status_text(const struct site *site, int64_t now_s, struct strbuf *b)
{
	const struct site_allow *allow = site_allow_list(site);
	int64_t until = site_until(site), left = until - now_s;
	char when[32];

	if (allow || site_allow_is_runtime(site)) {
		strbuf_puts(b, "  allow     ");
		allow_list_text(allow, b);
		strbuf_printf(b, " (from %s)\n", site_allow_is_runtime(site) ? "runtime" : "config");
	}
	if (site_cut(site)) {
		size_t flows;
		uint64_t probes;

		site_cut_counters(site, &flows, &probes);
		strbuf_printf(b, "  cut        in force: %zu connection%s probed in the last round, %" PRIu64
			      " probes sent\n", flows, flows == 1 ? "" : "s", probes);
	}
	if (until)
		strbuf_printf(b, "  until      %s (in %" PRId64 "h%02" PRId64 "m%02" PRId64 "s)\n",
			      state_time_text(until, when, sizeof(when)), left < 0 ? 0 : left / 3600,
			      left < 0 ? 0 : left / 60 % 60, left < 0 ? 0 : left % 60);
}

void maintenance_status_json(const struct site *site, int64_t now_s, struct strbuf *b)
{
	const struct site_allow *allow = site_allow_list(site);
	int64_t until = site_until(site);
	char net[CONFIG_CIDR_STRLEN];
	size_t flows;
	uint64_t probes;

	strbuf_puts(b, ",\"allow\":[");
	for (size_t i = 0; allow && i < allow->count; i++) {
		strbuf_puts(b, i ? "," : "");
		strbuf_json_string(b, config_cidr_str(&allow->nets[i], net, sizeof(net)));
	}
	strbuf_printf(b, "],\"allow_source\":\"%s\"",
		      site_allow_is_runtime(site) ? "runtime" : "config");
	if (until)
		strbuf_printf(b, ",\"until\":%" PRId64 ",\"seconds_left\":%" PRId64, until,
			      until > now_s ? until - now_s : 0);
	site_cut_counters(site, &flows, &probes);
	strbuf_printf(b, ",\"cut\":%s,\"cut_flows\":%zu,\"cut_probes\":%" PRIu64,
		      site_cut(site) ? "true" : "false", flows, probes);
}
