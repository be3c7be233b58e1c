/* gatekeeperd: options, config, start the engine, serve signals, unwind. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "checker.h"
#include "clock.h"
#include "config.h"
#include "control.h"
#include "engine.h"
#include "fleet.h"
#include "guard.h"
#include "gk_version.h"
#include "health.h"
#include "log.h"
#include "loop.h"
#include "maintenance.h"
#include "metrics_server.h"
#include "notify.h"
#include "privileges.h"
#include "rules.h"
#include "rules_watch.h"
#include "sandbox.h"

struct options {
	const char *config_path;
	const char *user; /* -u: overrides the config's user */
	bool check;
	bool quiet;
	bool verbose;
	bool print_rules;
	enum sandbox_mode sandbox;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: gatekeeperd [-c FILE] [-u USER] [--check [--quiet]] [-v]\n"
		"Decides every TCP SYN to a managed site through NFQUEUE: accept (online),\n"
		"drop or reject (offline). Runs in the foreground.\n\n"
		"  -c, --config FILE  configuration (default %s)\n"
		"      --check        validate the config, probe the kernel, say which\n"
		"                     backend would be used; change nothing\n"
		"      --print-rules  with --check: also print the rules it would load\n"
		"  -q, --quiet        with --check: print only problems\n"
		"      --sandbox=log  a system call outside the seccomp allow-list is\n"
		"                     logged by the kernel instead of killing the daemon\n"
		"  -u, --user USER    run as USER once set up (default: config 'user')\n"
		"  -v, --verbose      debug logging\n"
		"  -V, --version      print the version\n"
		"  -h, --help         this text\n",
		CONFIG_DEFAULT_PATH);
}

static int parse_options(int argc, char **argv, struct options *opts)
{
	static const struct option longopts[] = {
		{"config", required_argument, NULL, 'c'},
		{"check", no_argument, NULL, 'C'},
		{"print-rules", no_argument, NULL, 'P'},
		{"quiet", no_argument, NULL, 'q'},
		{"sandbox", required_argument, NULL, 'S'},
		{"user", required_argument, NULL, 'u'},
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opts->config_path = CONFIG_DEFAULT_PATH;
	while ((c = getopt_long(argc, argv, "c:qu:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opts->config_path = optarg; break;
		case 'C': opts->check = true; break;
		case 'P': opts->print_rules = true; break;
		case 'q': opts->quiet = true; break;
		case 'S':
			if (strcmp(optarg, "kill") != 0 && strcmp(optarg, "log") != 0) {
				fprintf(stderr, "gatekeeperd: --sandbox: want kill or log\n");
				return -1;
			}
			opts->sandbox = optarg[0] == 'l' ? SANDBOX_LOG : SANDBOX_KILL;
			break;
		case 'u': opts->user = optarg; break;
		case 'v': opts->verbose = true; break;
		case 'V': printf("gatekeeperd %s\n", GK_VERSION); exit(0);
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "gatekeeperd: unexpected argument '%s'\n", argv[optind]);
		usage(stderr);
		return -1;
	}
	return 0;
}

static void print_errors(struct config_errors *errors)
{
	for (size_t i = 0; i < errors->count; i++)
		fprintf(stderr, "%s\n", errors->messages[i]);
	config_errors_free(errors);
}

static int choose_backend(const struct config *cfg, enum rules_backend *backend, bool print)
{
	struct rules_probe probe;
	char why[256];

	rules_probe(&probe);
	if (print)
		rules_probe_print(&probe, stdout);
	if (rules_choose(&probe, cfg->backend, backend, why, sizeof(why)) < 0) {
		log_error("no usable rules backend: %s", why);
		return -1;
	}
	return 0;
}

static int run_check(const struct config *cfg, const struct options *opts)
{
	enum rules_backend backend;
	int rc = choose_backend(cfg, &backend, !opts->quiet);
	bool print_rules = opts->print_rules;
	struct guard_set guard = {0};

	if (opts->quiet)
		return rc < 0 ? 1 : 0;
	printf("config %s: ok, %zu site%s, hook %s\n", cfg->path, cfg->n_sites,
	       cfg->n_sites == 1 ? "" : "s", config_hook_name(cfg->hook));
	if (rc < 0)
		return 1;
	printf("backend: %s (config: %s)\n", rules_backend_name(backend),
	       config_backend_name(cfg->backend));
	if (print_rules && backend != RULES_BACKEND_EXTERNAL) {
		/* the guard as the config says: the state file is not read here */
		struct sites *sites = sites_create(cfg);
		if (!sites || guard_set_build(&guard, sites) < 0)
			fputs("# out of memory: the guard's set is left empty\n", stdout);
		sites_free(sites);
	}
	if (print_rules && backend == RULES_BACKEND_NFT) {
		char *text = rules_render_nft(cfg, &guard);
		if (text)
			fputs(text, stdout);
		free(text);
	} else if (print_rules && backend != RULES_BACKEND_EXTERNAL) {
		for (int family = 0; family < 2; family++) {
			char *text = rules_render_xt_install(cfg, &guard, family ? AF_INET6 : AF_INET,
							     0, 0);
			if (text)
				printf("# %s\n%s", family ? "ip6tables-restore" : "iptables-restore", text);
			free(text);
		}
	}
	guard_set_free(&guard);
	return 0;
}

/* A healthy idle worker's heartbeat looks up to this old: it beats once a
 * second, in whole seconds of the coarse clock. */
#define HEARTBEAT_SLACK_USEC 2000000u

/* The systemd watchdog is fed only while every packet worker goes round
 * its loop (they beat at least once a second even when idle): a worker
 * stuck in the kernel or in a bug gets the daemon restarted. */
static void watchdog_tick(const struct engine *engine, uint64_t interval_usec)
{
	static uint64_t next_ping;
	uint64_t now = clock_now_us(), beat_usec, beat_age_usec;

	if (interval_usec == 0 || now < next_ping)
		return;
	next_ping = now + interval_usec / 4;
	beat_usec = workers_oldest_heartbeat(engine_workers(engine)) * 1000000u;
	beat_age_usec = now > beat_usec ? now - beat_usec : 0;
	if (beat_age_usec < interval_usec / 2 + HEARTBEAT_SLACK_USEC)
		notify_watchdog();
	else
		log_warn("a packet worker has not gone round its loop for %llu s: "
			 "withholding the watchdog ping", (unsigned long long)(beat_age_usec / 1000000u));
}

/* The main thread's sources of events, in the order they run after each
 * wake-up (daemon/loop.h). */
struct daemon_loop {
	struct loop loop;
	struct engine *engine;
	struct control *control;
	struct metrics_server *metrics;
	struct fleet *fleet; /* NULL without a fleet section */
	int sigfd;
	uint64_t watchdog_usec;
	int rules_watch_ms;
};

static int signals_fd(void *owner) { return ((struct daemon_loop *)owner)->sigfd; }

static void signals_dispatch(void *owner, bool ready)
{
	struct daemon_loop *d = owner;
	struct signalfd_siginfo si;

	if (!ready || read(d->sigfd, &si, sizeof(si)) != sizeof(si))
		return;
	switch (si.ssi_signo) {
	case SIGTERM:
	case SIGINT:
		log_info("signal %s: stopping", strsignal((int)si.ssi_signo));
		loop_stop(&d->loop, 0);
		break;
	case SIGHUP:
		control_reload(d->control, "SIGHUP");
		break;
	case SIGUSR1:
		engine_log_counters(d->engine);
		break;
	}
}

static int control_source_fd(void *owner) { return control_fd(((struct daemon_loop *)owner)->control); }
static int control_source_timeout(void *owner)
{
	return control_timeout_ms(((struct daemon_loop *)owner)->control);
}
/* also on a timeout: it ends clients past their deadline */
static void control_source_dispatch(void *owner, bool ready)
{
	control_dispatch(((struct daemon_loop *)owner)->control);
}

static int health_source_fd(void *owner)
{
	return health_fd(engine_health(((struct daemon_loop *)owner)->engine));
}
static int health_source_timeout(void *owner)
{
	return health_timeout_ms(engine_health(((struct daemon_loop *)owner)->engine));
}
static void health_source_dispatch(void *owner, bool ready)
{
	struct engine *engine = ((struct daemon_loop *)owner)->engine;
	health_dispatch(engine_health(engine), engine_sites(engine));
}

/* the earliest end of a timed offline */
static int maintenance_source_timeout(void *owner)
{
	return maintenance_timeout_ms(engine_sites(((struct daemon_loop *)owner)->engine));
}
static void maintenance_source_dispatch(void *owner, bool ready)
{
	maintenance_expire(((struct daemon_loop *)owner)->engine);
}

/* After every source that may change a site's state (a toggle, a check, a
 * deadline): the guard follows, the cut's next probe round runs when due. */
static int engine_source_timeout(void *owner)
{
	return engine_cut_timeout_ms(((struct daemon_loop *)owner)->engine);
}
static void engine_source_dispatch(void *owner, bool ready)
{
	struct engine *engine = ((struct daemon_loop *)owner)->engine;

	/* a check that changed a site's state, or a failed update to retry */
	engine_guard_sync(engine);
	engine_cut_tick(engine);
}

static int metrics_source_fd(void *owner)
{
	return metrics_server_fd(((struct daemon_loop *)owner)->metrics);
}
static int metrics_source_timeout(void *owner)
{
	return metrics_server_timeout_ms(((struct daemon_loop *)owner)->metrics);
}
static void metrics_source_dispatch(void *owner, bool ready)
{
	metrics_server_dispatch(((struct daemon_loop *)owner)->metrics);
}

/* The fleet's etcd client; before the engine's source, so a state the
 * fleet applied reaches the guard in the same round. */
static int fleet_source_fd(void *owner)
{
	struct fleet *fleet = ((struct daemon_loop *)owner)->fleet;
	return fleet ? fleet_fd(fleet) : -1;
}
static int fleet_source_timeout(void *owner)
{
	struct fleet *fleet = ((struct daemon_loop *)owner)->fleet;
	return fleet ? fleet_timeout_ms(fleet) : -1;
}
static void fleet_source_dispatch(void *owner, bool ready)
{
	struct fleet *fleet = ((struct daemon_loop *)owner)->fleet;
	if (fleet)
		fleet_dispatch(fleet);
}

/* The systemd watchdog's ping, the rules watchdog (an admin's flush or
 * firewall reload: put our rules back) and systemd's STATUS= line. */
static int housekeeping_timeout(void *owner)
{
	struct daemon_loop *d = owner;
	int wd = d->watchdog_usec ? (int)(d->watchdog_usec / 4000u) + 1 : -1;

	return loop_earliest(d->rules_watch_ms, wd);
}
static void housekeeping_dispatch(void *owner, bool ready)
{
	struct daemon_loop *d = owner;
	char status[256];

	watchdog_tick(d->engine, d->watchdog_usec);
	d->rules_watch_ms = rules_watch_tick(engine_backend(d->engine), engine_config(d->engine),
					     engine_guard(d->engine));
	engine_summary(d->engine, status, sizeof(status));
	notify_status(status);
}

/* Serves signals, the control socket, the health checks and the metrics
 * listener until SIGTERM or SIGINT. */
static int serve(struct engine *engine, struct control *control, struct metrics_server *metrics,
		 struct fleet *fleet, int sigfd)
{
	struct daemon_loop d = {
		.engine = engine, .control = control, .metrics = metrics, .fleet = fleet, .sigfd = sigfd,
		.watchdog_usec = notify_watchdog_usec(), .rules_watch_ms = RULES_WATCH_INTERVAL_MS,
	};
	const struct loop_source sources[] = {
		{"control", control_source_fd, control_source_timeout, control_source_dispatch, &d},
		{"health", health_source_fd, health_source_timeout, health_source_dispatch, &d},
		{"maintenance", NULL, maintenance_source_timeout, maintenance_source_dispatch, &d},
		{"fleet", fleet_source_fd, fleet_source_timeout, fleet_source_dispatch, &d},
		{"engine", NULL, engine_source_timeout, engine_source_dispatch, &d},
		{"metrics", metrics_source_fd, metrics_source_timeout, metrics_source_dispatch, &d},
		{"housekeeping", NULL, housekeeping_timeout, housekeeping_dispatch, &d},
		/* last: a SIGTERM stops the loop after the round's work */
		{"signals", signals_fd, NULL, signals_dispatch, &d},
	};

	for (size_t i = 0; i < sizeof(sources) / sizeof(sources[0]); i++)
		if (loop_add(&d.loop, &sources[i]) < 0)
			return -1;
	return loop_run(&d.loop);
}

static void reply_from_fleet(void *arg, uint64_t ticket, const char *code,
			     const struct strbuf *body)
{
	control_complete(arg, ticket, code, body);
}

/* Blocked before any thread starts, so only the signalfd sees them. */
static int signals_open(void)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	return signalfd(-1, &mask, SFD_CLOEXEC);
}

/* After leaving root: say now, not at the first toggle, if the state file
 * cannot be written. */
static void check_state_dir(const char *state_file)
{
	char dir[4096];
	char *slash;

	snprintf(dir, sizeof(dir), "%s", state_file);
	slash = strrchr(dir, '/');
	if (!slash)
		return;
	*(slash == dir ? slash + 1 : slash) = '\0';
	if (access(dir, W_OK) < 0)
		log_warn_errno("state_file: directory %s is not writable: run-time toggles will "
			       "fail (create it for this user, e.g. systemd-tmpfiles --create)", dir);
}

static int drop_privileges(const struct options *opts, const struct engine *engine)
{
	const struct config *cfg = engine_config(engine);
	const char *user = opts->user ? opts->user : cfg->user;

	if (!user)
		return 0;
	if (privileges_drop(user, engine_backend(engine) == RULES_BACKEND_XT_LEGACY) < 0)
		return -1;
	check_state_dir(cfg->state_file);
	return 0;
}

int main(int argc, char **argv)
{
	struct options opts = {0};
	struct config_errors errors = {0};
	struct config *cfg;
	struct engine *engine = NULL;
	struct control *control = NULL;
	struct metrics_server *metrics = NULL;
	struct fleet *fleet = NULL;
	enum rules_backend backend;
	char status[256];
	int sigfd = -1, rc = 1;

	/* the health-check process (daemon/checker.c), started by ourselves
	 * through checker_link.c with its socket on fd 3 */
	if (argc >= 2 && strcmp(argv[1], "--checker") == 0)
		checker_main(3, argc == 3 && strcmp(argv[2], "-v") == 0);
	if (parse_options(argc, argv, &opts) < 0)
		return 2;
	log_init("gatekeeperd", opts.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);

	cfg = config_load(opts.config_path, &errors);
	if (!cfg) {
		print_errors(&errors);
		return 1;
	}
	if (opts.check) {
		rc = run_check(cfg, &opts);
		config_free(cfg);
		return rc;
	}
	if (choose_backend(cfg, &backend, false) < 0) {
		config_free(cfg);
		return 1;
	}
	log_info("backend %s (config: %s), hook %s", rules_backend_name(backend),
		 config_backend_name(cfg->backend), config_hook_name(cfg->hook));
	sigfd = signals_open();
	if (sigfd < 0) {
		log_error_errno("signalfd");
		config_free(cfg);
		return 1;
	}

	/* The start-up order, each step needing the one before:
	 * 1. as root, what needs root: the queues, the raw sockets for the
	 *    RSTs, the rules (they point at queues already bound) and the
	 *    health checks; the state file's overrides are applied first */
	engine = engine_open(cfg, backend);
	if (!engine)
		goto out;
	/* 2. still as root, the sockets others reach us on: the control
	 *    socket (its directory in /run, its group) and the metrics port */
	control = control_open(engine, opts.config_path,
			       opts.user ? opts.user : engine_config(engine)->user);
	if (!control)
		goto out;
	/* optional: a port it cannot bind is retried from the loop */
	if (metrics_server_open(engine, &metrics) < 0)
		goto out;
	engine_set_metrics(engine, metrics);
	/* the fleet's cache is applied now, before any SYN is decided; etcd
	 * is dialled from the loop, start-up never waits for it */
	if (engine_config(engine)->fleet.enabled) {
		fleet = fleet_open(engine, reply_from_fleet, control);
		if (!fleet)
			goto out;
		engine_set_fleet(engine, fleet);
	}
	/* 3. leave root BEFORE any thread starts: capabilities are per thread
	 *    and a thread inherits its creator's (workers_run) */
	if (drop_privileges(&opts, engine) < 0)
		goto out;
	/* 4. still one thread (capabilities are per thread, a filter is
	 *    inherited): CAP_NET_RAW goes unless iptables-legacy's tools need
	 *    it, then no-new-privs and the seccomp allow-list, in every mode */
	if ((engine_backend(engine) != RULES_BACKEND_XT_LEGACY && privileges_drop_net_raw() < 0) ||
	    sandbox_enter(opts.sandbox) < 0)
		goto out;
	/* 5. only now the workers: queued SYNs waited in the kernel until here */
	if (engine_run(engine) < 0)
		goto out;
	engine_summary(engine, status, sizeof(status));
	log_info("ready: %s, hook %s, queue %u..%u", status,
		 config_hook_name(engine_config(engine)->hook), engine_config(engine)->queue.num,
		 engine_config(engine)->queue.num + engine_config(engine)->queue.count - 1);
	notify_ready(status);

	if (serve(engine, control, metrics, fleet, sigfd) == 0)
		rc = 0;
	notify_stopping();
	engine_log_counters(engine);
out:
	/* the fleet first, still known to the engine: the requests it answers
	 * may let a client's next request run, which must meet a fleet that
	 * refuses it, not be taken for a local pin */
	fleet_close(fleet);
	if (engine) {
		engine_set_metrics(engine, NULL);
		engine_set_fleet(engine, NULL);
	}
	metrics_server_close(metrics);
	control_close(control);
	engine_close(engine);
	close(sigfd);
	return rc;
}
