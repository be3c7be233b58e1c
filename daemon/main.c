/* gatekeeperd: options, config, start the engine, serve signals, unwind. */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "engine.h"
#include "gk_build.h"
#include "log.h"
#include "rules.h"

struct options {
	const char *config_path;
	bool check;
	bool verbose;
	bool print_rules;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: gatekeeperd [-c FILE] [--check] [-v]\n"
		"Decides every TCP SYN to a managed site through NFQUEUE: accept (online),\n"
		"drop or reject (offline). Runs in the foreground.\n\n"
		"  -c, --config FILE  configuration (default %s)\n"
		"      --check        validate the config, probe the kernel, say which\n"
		"                     backend would be used; change nothing\n"
		"      --print-rules  with --check: also print the rules it would load\n"
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
		{"verbose", no_argument, NULL, 'v'},
		{"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	int c;

	opts->config_path = CONFIG_DEFAULT_PATH;
	while ((c = getopt_long(argc, argv, "c:vVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'c': opts->config_path = optarg; break;
		case 'C': opts->check = true; break;
		case 'P': opts->print_rules = true; break;
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
	config_errors_clear(errors);
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

static int run_check(const struct config *cfg, bool print_rules)
{
	enum rules_backend backend;
	int rc = choose_backend(cfg, &backend, true);

	printf("config %s: ok, %zu site%s, hook %s\n", cfg->path, cfg->n_sites,
	       cfg->n_sites == 1 ? "" : "s", config_hook_name(cfg->hook));
	if (rc < 0)
		return 1;
	printf("backend: %s (config: %s)\n", rules_backend_name(backend),
	       config_backend_name(cfg->backend));
	if (print_rules && backend == RULES_BACKEND_NFT) {
		char *text = rules_render_nft(cfg);
		if (text)
			fputs(text, stdout);
		free(text);
	} else if (print_rules && backend != RULES_BACKEND_EXTERNAL) {
		for (int family = 0; family < 2; family++) {
			char *text = rules_render_xt(cfg, family ? AF_INET6 : AF_INET, true);
			if (text)
				printf("# %s\n%s", family ? "ip6tables-restore" : "iptables-restore", text);
			free(text);
		}
	}
	return 0;
}

/* Serves signals and the control socket until SIGTERM or SIGINT. */
static int serve(struct engine *engine, struct control *control, int sigfd)
{
	for (;;) {
		struct signalfd_siginfo si;
		struct pollfd pfd[2] = {
			{.fd = sigfd, .events = POLLIN},
			{.fd = control_fd(control), .events = POLLIN},
		};

		if (poll(pfd, 2, control_timeout_ms(control)) < 0) {
			if (errno == EINTR)
				continue;
			log_error_errno("poll");
			return -1;
		}
		/* also on a timeout: it ends clients past their deadline */
		control_dispatch(control);
		if (!(pfd[0].revents & POLLIN) || read(sigfd, &si, sizeof(si)) != sizeof(si))
			continue;
		switch (si.ssi_signo) {
		case SIGTERM:
		case SIGINT:
			log_info("signal %s: stopping", strsignal((int)si.ssi_signo));
			return 0;
		case SIGHUP:
			control_reload(control, "SIGHUP");
			break;
		case SIGUSR1:
			engine_log_counters(engine);
			break;
		}
	}
}

int main(int argc, char **argv)
{
	struct options opts = {0};
	struct config_errors errors = {0};
	struct config *cfg;
	struct engine *engine = NULL;
	struct control *control = NULL;
	enum rules_backend backend;
	sigset_t mask;
	int sigfd = -1, rc = 1;

	if (parse_options(argc, argv, &opts) < 0)
		return 2;
	log_init("gatekeeperd", opts.verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);

	cfg = config_load(opts.config_path, &errors);
	if (!cfg) {
		print_errors(&errors);
		return 1;
	}
	if (opts.check) {
		rc = run_check(cfg, opts.print_rules);
		config_free(cfg);
		return rc;
	}
	if (choose_backend(cfg, &backend, false) < 0) {
		config_free(cfg);
		return 1;
	}
	log_info("backend %s (config: %s), hook %s", rules_backend_name(backend),
		 config_backend_name(cfg->backend), config_hook_name(cfg->hook));

	/* blocked before any thread starts, so only the signalfd sees them */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	sigfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sigfd < 0) {
		log_error_errno("signalfd");
		config_free(cfg);
		return 1;
	}

	engine = engine_start(cfg, backend);
	if (!engine)
		goto out;
	control = control_start(engine, opts.config_path);
	if (!control)
		goto out;
	log_info("ready: %zu sites, backend %s, hook %s, queue %u..%u",
		 sites_count(engine_sites(engine)), rules_backend_name(backend),
		 config_hook_name(engine_config(engine)->hook), engine_config(engine)->queue.num,
		 engine_config(engine)->queue.num + engine_config(engine)->queue.count - 1);

	if (serve(engine, control, sigfd) == 0)
		rc = 0;
	engine_log_counters(engine);
out:
	control_stop(control);
	engine_stop(engine);
	close(sigfd);
	return rc;
}
