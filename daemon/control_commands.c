/* control: the commands behind the socket: parsing a request, running it
 * against the engine, the reply's frame (the status and stats bodies are
 * control_report.c's). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clock.h"
#include "control.h"
#include "control_internal.h"
#include "engine.h"
#include "fleet.h"
#include "gk_version.h"
#include "health.h"
#include "log.h"
#include "maintenance.h"
#include "metrics.h"
#include "notify.h"
#include "protocol.h"
#include "state.h"

#define MAX_WORDS 8

/* What a command takes after its name. */
enum command_args {
	ARGS_NONE,        /* CMD */
	ARGS_JSON,        /* CMD [json] */
	ARGS_SITE,        /* CMD SITE [local] [wait] */
	ARGS_SITE_ACTION, /* CMD SITE [drop|reject] [OPTION ...] [local] [wait] */
};

/* A row of the command table (at the end of this file). */
struct command {
	const char *name;
	enum control_command command;
	enum command_args args;
	bool changes_state;
	const char *usage;
	/* Runs REQ for PEER, the reply's body to B; NULL or an ERR code. */
	const char *(*run)(struct control *ctl, const struct control_peer *peer,
			   const struct command *cmd, const struct control_request *req,
			   struct strbuf *b);
};

/* ---- replies ---- */

/* What a command returns for a reply that comes later (control_complete). */
const char control_pending[] = "(pending)";

void control_reply(struct strbuf *out, const char *code, const struct strbuf *body)
{
	if (strbuf_failed(body)) {
		static const char msg[] = "out of memory, or the reply is too large\n";
		strbuf_printf(out, "ERR %s %zu\n%s", PROTOCOL_ERR_FAILED, sizeof(msg) - 1, msg);
		return;
	}
	if (code)
		strbuf_printf(out, "ERR %s %zu\n", code, body->len);
	else
		strbuf_printf(out, "OK %zu\n", body->len);
	strbuf_append(out, body->data ? body->data : "", body->len);
}

void control_reply_error(struct strbuf *out, const char *code, const char *fmt, ...)
{
	char text[1024];
	struct strbuf body;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	strbuf_init(&body, 0);
	strbuf_printf(&body, "%s\n", text);
	control_reply(out, code, &body);
	strbuf_free(&body);
}

/* ---- changes ---- */

/* A toggle of the whole fleet: written to etcd first; the reply waits for
 * the commit and this box's watch (control_complete). */
static const char *fleet_change(struct control *ctl, const struct control_peer *peer,
				const struct control_request *req, enum site_state state,
				enum site_action action, const struct maintenance_opts *opts,
				struct strbuf *b)
{
	char by[64];
	const char *code = NULL;
	struct fleet_toggle t = {
		.site = req->site,
		.reset = req->command == CONTROL_CMD_RESET,
		.state = state,
		.action = action,
		.opts = opts,
		.by = by,
		.wait = req->wait,
	};

	snprintf(by, sizeof(by), "uid %u pid %d", (unsigned)peer->uid, (int)peer->pid);
	if (fleet_toggle(engine_fleet(ctl->engine), &t, ctl->executing, b, &code) < 0)
		return code;
	return control_pending;
}

/* Saves the override set as it will be after the change, and only then
 * applies the change: a failed save leaves the live state untouched. */
static const char *change_site(struct control *ctl, const struct control_peer *peer,
			       const struct command *cmd, const struct control_request *req,
			       struct strbuf *b)
{
	struct sites *sites = engine_sites(ctl->engine);
	const char *path = engine_config(ctl->engine)->state_file;
	struct site *site = sites_find(sites, req->site);
	struct fleet *fleet = engine_fleet(ctl->engine);
	enum site_state was_state, state = SITE_ONLINE;
	enum site_action was_action, action;
	enum site_source was_source;
	struct maintenance_opts opts = {0};
	struct state_set set = {0};
	const char *code = NULL;
	char err[512];

	if (!site) {
		strbuf_printf(b, "no site '%s' in the running config; `gatekeeperctl status` lists them\n",
			      req->site);
		return PROTOCOL_ERR_UNKNOWN_SITE;
	}
	was_state = site_state(site);
	was_action = site_action(site);
	was_source = site_source(site);
	action = site_config(site)->action; /* what offline means for this site unless told */
	if (req->command == CONTROL_CMD_OFFLINE) {
		state = SITE_OFFLINE;
		if (req->has_action)
			action = req->action;
	}
	for (size_t i = 0; i < req->n_options; i++) {
		/* checked at parsing; a deadline that passed since is refused here */
		if (maintenance_parse_option(req->options[i], &opts, clock_wall_ms() / 1000, err,
					     sizeof(err)) < 0) {
			strbuf_printf(b, "%s\n", err);
			code = PROTOCOL_ERR_USAGE;
			goto out;
		}
	}
	if (fleet && !req->local) {
		code = fleet_change(ctl, peer, req, state, action, &opts, b);
		goto out;
	}
	if (state_collect(sites, &set) < 0 ||
	    (req->command == CONTROL_CMD_RESET
		     ? (state_set_remove(&set, req->site), 0)
		     : state_set_put(&set, req->site, state, action) < 0 ||
			       state_set_extend(&set, req->site, opts.allow, opts.until) < 0 ||
			       state_set_cut(&set, req->site, state == SITE_OFFLINE && opts.cut) < 0)) {
		strbuf_puts(b, "out of memory; nothing changed\n");
		code = PROTOCOL_ERR_FAILED;
		goto out;
	}
	if (state_save(path, &set, err, sizeof(err)) < 0) {
		log_error("site %s: %s requested by uid %u pid %d not done: %s", req->site,
			  cmd->name, (unsigned)peer->uid, (int)peer->pid, err);
		strbuf_printf(b, "%s\nnothing changed: the change is refused when it could not be "
			      "kept across a restart; fix the state file's directory and try again\n", err);
		code = PROTOCOL_ERR_FAILED;
		goto out;
	}
	if ((req->command == CONTROL_CMD_RESET
		     ? maintenance_clear(ctl->engine, site)
		     : maintenance_apply(ctl->engine, site, state, action, &opts,
					 SITE_SOURCE_RUNTIME)) < 0)
		strbuf_puts(b, "warning: the kernel guard was not updated (the daemon's log says why); "
			       "the daemon's own verdicts have the new state, and it keeps retrying\n");
	log_info("site %s: %s (%s, from %s) by uid %u pid %d; was %s (%s, from %s)", req->site,
		 config_state_name(site_state(site)), config_action_name(site_action(site)),
		 site_source_name(site_source(site)), (unsigned)peer->uid, (int)peer->pid,
		 config_state_name(was_state), config_action_name(was_action),
		 site_source_name(was_source));
	if (site_cut(site))
		log_info("site %s: established connections cut (drain: without --cut)", req->site);
	if (site_until(site) || site_allow_is_runtime(site))
		log_info("site %s: %zu source networks let in while offline (from %s), until %s",
			 req->site, site_allow_list(site) ? site_allow_list(site)->count : 0,
			 site_allow_is_runtime(site) ? "runtime" : "config",
			 site_until(site) ? state_time_text(site_until(site), err, sizeof(err)) : "reset");
	/* a local pin that ended: the fleet's override, if any, is back */
	if (fleet && req->command == CONTROL_CMD_RESET)
		fleet_reapply(fleet, site);
	strbuf_printf(b, "%s: %s (%s), from %s\n", req->site, config_state_name(site_state(site)),
		      config_action_name(site_action(site)), site_source_name(site_source(site)));
	if (fleet && site_source(site) == SITE_SOURCE_RUNTIME)
		strbuf_puts(b, "pinned on this box only: it diverges from the fleet until `reset "
			       "SITE --local`\n");
	maintenance_status_text(site, clock_wall_ms() / 1000, b);
out:
	maintenance_opts_free(&opts);
	state_set_free(&set);
	return code;
}

static void fleet_section_warning(struct strbuf *b)
{
	log_warn("reload: the fleet section changed; it takes effect at the next start "
		 "(the fleet runs on as it started)");
	strbuf_puts(b, "warning: the fleet section changed: it takes effect at the next start of "
		       "gatekeeperd (the fleet runs on as it started)\n");
}

/* The reload of `gatekeeperctl reload` and SIGHUP. Writes what the caller
 * should see to B; returns NULL or the error code. */
static const char *reload(struct control *ctl, const char *who, struct strbuf *b)
{
	struct config_errors errors = {0};
	struct state_set set = {0};
	const char *code = NULL;
	char err[512];

	log_info("reloading %s (%s)", ctl->config_path, who);
	notify_reloading();
	if (engine_reload(ctl->engine, ctl->config_path, &errors) < 0) {
		for (size_t i = 0; i < errors.count; i++) {
			log_error("%s", errors.messages[i]);
			strbuf_printf(b, "%s\n", errors.messages[i]);
		}
		if (errors.count == 0)
			strbuf_puts(b, "the kernel refused the new rules (the daemon's log says why)\n");
		log_error("reload failed: still running the previous config");
		strbuf_printf(b, "reload refused: gatekeeperd keeps running the previous config. Fix "
			      "the above (`gatekeeperd --check -c %s` shows the same) and reload again\n",
			      ctl->config_path);
		code = errors.count ? PROTOCOL_ERR_CONFIG : PROTOCOL_ERR_FAILED;
		goto out;
	}
	control_apply_group(ctl);
	if (engine_fleet(ctl->engine)) {
		/* sites new to this config get the fleet's overrides too */
		fleet_reapply(engine_fleet(ctl->engine), NULL);
		if (fleet_config_changed(engine_fleet(ctl->engine), &engine_config(ctl->engine)->fleet))
			fleet_section_warning(b);
	} else if (engine_config(ctl->engine)->fleet.enabled) {
		fleet_section_warning(b);
	}
	/* overrides of removed sites are gone from the table: drop them from
	 * the file too (a failure here loses nothing: the old file still
	 * describes every surviving override) */
	snprintf(err, sizeof(err), "out of memory");
	if (state_collect(engine_sites(ctl->engine), &set) < 0 ||
	    state_save(engine_config(ctl->engine)->state_file, &set, err, sizeof(err)) < 0) {
		log_warn("after reload: state file not rewritten: %s", err);
		strbuf_printf(b, "warning: the state file was not rewritten: %s\n", err);
	}
	log_info("reloaded: %zu sites", sites_count(engine_sites(ctl->engine)));
	strbuf_printf(b, "reloaded %s: %zu sites\n", ctl->config_path,
		      sites_count(engine_sites(ctl->engine)));
out:
	/* READY again whether or not it took: the daemon serves either way */
	notify_reloaded();
	config_errors_free(&errors);
	state_set_free(&set);
	return code;
}

int control_reload(struct control *ctl, const char *trigger)
{
	struct strbuf b;
	const char *code;

	strbuf_init(&b, 0);
	code = reload(ctl, trigger, &b);
	strbuf_free(&b);
	return code ? -1 : 0;
}

/* ---- the command table ---- */

static const char *run_hello(struct control *ctl, const struct control_peer *peer,
			     const struct command *cmd, const struct control_request *req,
			     struct strbuf *b)
{
	strbuf_printf(b, "protocol %d\ndaemon %s\n", PROTOCOL_VERSION, GK_VERSION);
	return NULL;
}

static const char *run_status(struct control *ctl, const struct control_peer *peer,
			      const struct command *cmd, const struct control_request *req,
			      struct strbuf *b)
{
	(req->json ? control_status_json : control_status_text)(engine_sites(ctl->engine), engine_health(ctl->engine),
						engine_metrics(ctl->engine), engine_fleet(ctl->engine), b);
	return NULL;
}

static const char *run_stats(struct control *ctl, const struct control_peer *peer,
			     const struct command *cmd, const struct control_request *req,
			     struct strbuf *b)
{
	(req->json ? control_stats_json : control_stats_text)(ctl, b);
	return NULL;
}

static const char *run_metrics(struct control *ctl, const struct control_peer *peer,
			       const struct command *cmd, const struct control_request *req,
			       struct strbuf *b)
{
	metrics_render(ctl->engine, b);
	return NULL;
}

static const char *run_reload(struct control *ctl, const struct control_peer *peer,
			      const struct command *cmd, const struct control_request *req,
			      struct strbuf *b)
{
	char who[64];

	snprintf(who, sizeof(who), "asked by uid %u pid %d", (unsigned)peer->uid, (int)peer->pid);
	return reload(ctl, who, b);
}

static const char *run_fleet_init(struct control *ctl, const struct control_peer *peer,
				  const struct command *cmd, const struct control_request *req,
				  struct strbuf *b)
{
	struct fleet *fleet = engine_fleet(ctl->engine);
	const char *code = NULL;
	char by[64];

	if (!fleet) {
		strbuf_puts(b, "no fleet: the config has no fleet section\n");
		return PROTOCOL_ERR_USAGE;
	}
	snprintf(by, sizeof(by), "uid %u pid %d", (unsigned)peer->uid, (int)peer->pid);
	return fleet_init(fleet, by, ctl->executing, b, &code) < 0 ? code : control_pending;
}

/* Every command the daemon knows, in the order the error messages list
 * them. A new command is a row here (and its word in protocol.h). */
static const struct command commands[] = {
	{PROTOCOL_CMD_HELLO, CONTROL_CMD_HELLO, ARGS_NONE, false, "hello", run_hello},
	{PROTOCOL_CMD_STATUS, CONTROL_CMD_STATUS, ARGS_JSON, false, "status [json]", run_status},
	{PROTOCOL_CMD_STATS, CONTROL_CMD_STATS, ARGS_JSON, false, "stats [json]", run_stats},
	{PROTOCOL_CMD_METRICS, CONTROL_CMD_METRICS, ARGS_NONE, false, "metrics", run_metrics},
	{PROTOCOL_CMD_OFFLINE, CONTROL_CMD_OFFLINE, ARGS_SITE_ACTION, true,
	 "offline SITE [" PROTOCOL_ACTION_DROP "|" PROTOCOL_ACTION_REJECT
	 "] [allow=CIDR[,CIDR...]|allow=none] [for=SECONDS|until=UNIXTIME] [" PROTOCOL_OPTION_CUT
	 "] [" PROTOCOL_OPTION_LOCAL "|" PROTOCOL_OPTION_WAIT "]",
	 change_site},
	{PROTOCOL_CMD_ONLINE, CONTROL_CMD_ONLINE, ARGS_SITE, true,
	 "online SITE [" PROTOCOL_OPTION_LOCAL "|" PROTOCOL_OPTION_WAIT "]", change_site},
	{PROTOCOL_CMD_RESET, CONTROL_CMD_RESET, ARGS_SITE, true,
	 "reset SITE [" PROTOCOL_OPTION_LOCAL "|" PROTOCOL_OPTION_WAIT "]", change_site},
	{PROTOCOL_CMD_RELOAD, CONTROL_CMD_RELOAD, ARGS_NONE, true, "reload", run_reload},
	{PROTOCOL_CMD_FLEET_INIT, CONTROL_CMD_FLEET_INIT, ARGS_NONE, true, "fleet-init",
	 run_fleet_init},
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *command_of(enum control_command command)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (commands[i].command == command)
			return &commands[i];
	return NULL;
}

/* "hello, status, ...": the names of the table. */
static void command_names(char *buf, size_t len)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < N_COMMANDS && used < len; i++)
		used += (size_t)snprintf(buf + used, len - used, "%s%s", i ? ", " : "",
					 commands[i].name);
}

bool control_request_changes_state(const struct control_request *req)
{
	const struct command *cmd = command_of(req->command);

	return !cmd || cmd->changes_state; /* an unknown one is treated as a change */
}

/* After SITE: an optional action, then the options, each kind once. */
static int parse_site_options(const struct command *cmd, char **words, size_t n,
			      struct control_request *req, char *err, size_t err_len)
{
	struct maintenance_opts opts = {0};
	int rc = 0;

	for (size_t i = 0; i < n && rc == 0; i++) {
		bool had_allow = opts.allow != NULL;

		if (strcmp(words[i], PROTOCOL_OPTION_LOCAL) == 0 ||
		    strcmp(words[i], PROTOCOL_OPTION_WAIT) == 0) {
			bool *flag = words[i][0] == 'l' ? &req->local : &req->wait;

			if (*flag || (words[i][0] == 'l' ? req->wait : req->local)) {
				snprintf(err, err_len, "%s and %s go neither twice nor together; usage: %s",
					 PROTOCOL_OPTION_LOCAL, PROTOCOL_OPTION_WAIT, cmd->usage);
				rc = -1;
			}
			*flag = true;
			continue;
		}
		if (cmd->args == ARGS_SITE) {
			snprintf(err, err_len, "usage: %s", cmd->usage);
			rc = -1;
			continue;
		}
		if (i == 0 && config_parse_action(words[0], &req->action) == 0) {
			req->has_action = true;
			continue;
		}
		rc = maintenance_parse_option(words[i], &opts, clock_wall_ms() / 1000, err, err_len);
		if (rc == 0) {
			snprintf(err, err_len, "unknown action or option '%.32s'; usage: %s", words[i],
				 cmd->usage);
			rc = -1;
		} else if (rc > 0 && had_allow && strncmp(words[i], "allow=", 6) == 0) {
			snprintf(err, err_len, "allow= given twice; usage: %s", cmd->usage);
			rc = -1;
		} else if (rc > 0) {
			req->options[req->n_options++] = words[i];
			rc = 0;
		}
	}
	maintenance_opts_free(&opts);
	return rc;
}

int control_parse_request(char *line, struct control_request *req, char *err, size_t err_len)
{
	static const size_t min_args[] = {[ARGS_SITE] = 1, [ARGS_SITE_ACTION] = 1};
	static const size_t max_args[] = {[ARGS_JSON] = 1, [ARGS_SITE] = 3,
					  [ARGS_SITE_ACTION] = 4 + CONTROL_MAX_OPTIONS};
	char *words[MAX_WORDS + 1], *save = NULL, names[128];
	const struct command *cmd = NULL;
	size_t n = 0, args;

	memset(req, 0, sizeof(*req));
	for (char *w = strtok_r(line, " \t", &save); w && n <= MAX_WORDS;
	     w = strtok_r(NULL, " \t", &save))
		words[n++] = w;
	command_names(names, sizeof(names));
	if (n == 0) {
		snprintf(err, err_len, "empty request; commands: %s", names);
		return -1;
	}
	for (size_t i = 0; i < N_COMMANDS && !cmd; i++)
		if (strcmp(words[0], commands[i].name) == 0)
			cmd = &commands[i];
	if (!cmd) {
		snprintf(err, err_len, "unknown command '%.32s'; commands: %s", words[0], names);
		return -1;
	}
	args = n - 1;
	if (args < min_args[cmd->args] || args > max_args[cmd->args]) {
		snprintf(err, err_len, "usage: %s", cmd->usage);
		return -1;
	}
	req->command = cmd->command;
	switch (cmd->args) {
	case ARGS_JSON:
		if (args == 1 && strcmp(words[1], PROTOCOL_ARG_JSON) != 0) {
			snprintf(err, err_len, "usage: %s", cmd->usage);
			return -1;
		}
		req->json = args == 1;
		break;
	case ARGS_SITE_ACTION:
	case ARGS_SITE:
		if (parse_site_options(cmd, words + 2, args - 1, req, err, err_len) < 0)
			return -1;
		req->site = words[1];
		break;
	case ARGS_NONE:
		break;
	}
	return 0;
}

bool control_execute(struct control *ctl, const struct control_peer *peer, char *line,
		     struct strbuf *out, uint64_t ticket)
{
	const struct command *cmd;
	struct control_request req;
	struct strbuf body;
	const char *code;
	char err[256];

	if (control_parse_request(line, &req, err, sizeof(err)) < 0) {
		control_reply_error(out, PROTOCOL_ERR_USAGE, "%s", err);
		return false;
	}
	cmd = command_of(req.command);
	if (cmd->changes_state && !peer->privileged) {
		log_info("control: '%s' refused to uid %u pid %d (not root, not in control.group)",
			 cmd->name, (unsigned)peer->uid, (int)peer->pid);
		control_reply_error(out, PROTOCOL_ERR_PERMISSION,
				    "permission denied: '%s' changes state and needs root or a member "
				    "of the control group (config control.group); uid %u may only read",
				    cmd->name, (unsigned)peer->uid);
		return false;
	}
	strbuf_init(&body, PROTOCOL_MAX_BODY);
	ctl->executing = ticket;
	code = cmd->run(ctl, peer, cmd, &req, &body);
	if (code != control_pending)
		control_reply(out, code, &body);
	strbuf_free(&body);
	return code == control_pending;
}
