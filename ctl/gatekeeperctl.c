/* gatekeeperctl: the command line client of gatekeeperd's control socket.
 * Shares only proto/protocol.h with the daemon. */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "gk_version.h"
#include "protocol.h"

/* Stable exit codes, documented in --help. */
enum { EXIT_DONE = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_FLEET = 4 };

/* A reload runs iptables-restore or nft: give it time before giving up. */
#define REPLY_TIMEOUT_S 60
/* "ERR busy" (every slot taken, or ours given to root) is asked again
 * after 50, 100, 200 ... ms, at most 1 s apart, for at most 10 s. */
#define BUSY_FIRST_MS 50
#define BUSY_MAX_GAP_MS 1000
#define BUSY_RETRY_MS 10000

struct subcommand {
	const char *name;
	const char *args;
	const char *description;
	/* Writes the request line for ARGV (after the subcommand) into REQ;
	 * 0, or -1 after printing a usage message. */
	int (*build)(const struct subcommand *cmd, int argc, char **argv, char *req, size_t len);
};

static const char *socket_path = PROTOCOL_DEFAULT_SOCKET;

__attribute__((format(printf, 2, 3))) static int usage_error(const struct subcommand *cmd,
							      const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "gatekeeperctl: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: gatekeeperctl %s %s\n", cmd->name, cmd->args);
	return -1;
}

static int build_read(const struct subcommand *cmd, int argc, char **argv, char *req, size_t len)
{
	bool json = false;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return usage_error(cmd, "unexpected argument '%s'", argv[i]);
	}
	snprintf(req, len, "%s%s\n", cmd->name, json ? " " PROTOCOL_ARG_JSON : "");
	return 0;
}

/* "30m", "90s", "1h30m", "2d", "45" (seconds): 0 and *OUT seconds, or -1. */
static int parse_duration(const char *text, long long *out)
{
	long long total = 0;

	if (!*text)
		return -1;
	while (*text) {
		char *end;
		long long v;

		errno = 0;
		v = strtoll(text, &end, 10);
		if (end == text || errno || v < 0 || v > 1000000000LL)
			return -1;
		switch (*end) {
		case 'd': v *= 86400; end++; break;
		case 'h': v *= 3600; end++; break;
		case 'm': v *= 60; end++; break;
		case 's': end++; break;
		case '\0': break;
		default: return -1;
		}
		total += v;
		text = end;
	}
	*out = total;
	return 0;
}

/* ISO 8601 in UTC: "2026-12-24T06:00Z" or "2026-12-24T06:00:00Z". */
static int parse_utc(const char *text, long long *out)
{
	struct tm tm = {0};
	const char *end = strptime(text, "%Y-%m-%dT%H:%M", &tm);

	if (end && *end == ':')
		end = strptime(end, ":%S", &tm);
	if (!end || strcmp(end, "Z") != 0)
		return -1;
	*out = (long long)timegm(&tm);
	return 0;
}

/* --for / --until into the request's "for=" / "until=" word. */
static int deadline_word(const struct subcommand *cmd, const char *opt, const char *value,
			 char *word, size_t len)
{
	long long v, now = (long long)time(NULL);

	if (word[0])
		return usage_error(cmd, "give one of --for and --until, once");
	if (strcmp(opt, "--for") == 0) {
		if (parse_duration(value, &v) < 0)
			return usage_error(cmd, "--for '%s': a duration like 30m, 2h, 1h30m, 90s", value);
		if (v < PROTOCOL_DEADLINE_MIN_S || v > PROTOCOL_DEADLINE_MAX_S)
			return usage_error(cmd, "--for '%s': from 1s to %d days", value,
					   PROTOCOL_DEADLINE_MAX_S / 86400);
		snprintf(word, len, " for=%lld", v);
		return 0;
	}
	if (parse_utc(value, &v) < 0)
		return usage_error(cmd, "--until '%s': a UTC time like 2026-12-24T06:00Z", value);
	if (v - now < PROTOCOL_DEADLINE_MIN_S)
		return usage_error(cmd, "--until '%s' is not in the future", value);
	if (v - now > PROTOCOL_DEADLINE_MAX_S)
		return usage_error(cmd, "--until '%s' is more than %d days away", value,
				   PROTOCOL_DEADLINE_MAX_S / 86400);
	snprintf(word, len, " until=%lld", v);
	return 0;
}

/* "--opt VALUE" or "--opt=VALUE": the value, or NULL when ARGV[*I] is not OPT. */
static const char *option_value(const char *opt, int argc, char **argv, int *i)
{
	size_t n = strlen(opt);

	if (strncmp(argv[*i], opt, n) == 0 && argv[*i][n] == '=')
		return argv[*i] + n + 1;
	if (strcmp(argv[*i], opt) != 0)
		return NULL;
	return ++*i < argc ? argv[*i] : "";
}

static int build_site(const struct subcommand *cmd, int argc, char **argv, char *req, size_t len)
{
	const char *site = NULL, *action = NULL, *allow = NULL, *value;
	bool is_offline = strcmp(cmd->name, PROTOCOL_CMD_OFFLINE) == 0, cut = false;
	bool local = false, wait = false;
	char deadline[40] = "";

	for (int i = 0; i < argc; i++) {
		if (is_offline && strcmp(argv[i], "-a") == 0)
			argv[i] = "--action";
		if (is_offline && (value = option_value("--action", argc, argv, &i))) {
			action = value;
		} else if (is_offline && (value = option_value("--allow", argc, argv, &i))) {
			if (!*value || strpbrk(value, " \t"))
				return usage_error(cmd, "--allow needs CIDR[,CIDR...] (or none)");
			allow = value;
		} else if (is_offline && (value = option_value("--for", argc, argv, &i))) {
			if (deadline_word(cmd, "--for", value, deadline, sizeof(deadline)) < 0)
				return -1;
		} else if (is_offline && (value = option_value("--until", argc, argv, &i))) {
			if (deadline_word(cmd, "--until", value, deadline, sizeof(deadline)) < 0)
				return -1;
		} else if (is_offline && strcmp(argv[i], "--cut") == 0) {
			cut = true;
		} else if (strcmp(argv[i], "--local") == 0) {
			local = true;
		} else if (strcmp(argv[i], "--wait") == 0) {
			wait = true;
		} else if (argv[i][0] == '-' || site) {
			return usage_error(cmd, "unexpected argument '%s'", argv[i]);
		} else {
			site = argv[i];
		}
	}
	if (!site)
		return usage_error(cmd, "%s: which site?", cmd->name);
	/* checked here too: a name the daemon could never match, or one with a
	 * space in it, is a usage error before any connection */
	if (!protocol_site_name_valid(site))
		return usage_error(cmd, "'%s' is not a site name (A-Z a-z 0-9 . _ -, at most %d)", site,
				   PROTOCOL_SITE_NAME_MAX);
	if (local && wait)
		return usage_error(cmd, "--local and --wait do not go together: a local pin is this "
				   "box's alone");
	if (action && !protocol_action_valid(action))
		return usage_error(cmd, "unknown action '%s': " PROTOCOL_ACTION_DROP " or "
				   PROTOCOL_ACTION_REJECT, action);
	if ((size_t)snprintf(req, len, "%s %s%s%s%s%s%s%s%s%s\n", cmd->name, site, action ? " " : "",
			     action ? action : "", allow ? " allow=" : "", allow ? allow : "",
			     deadline, cut ? " " PROTOCOL_OPTION_CUT : "",
			     local ? " " PROTOCOL_OPTION_LOCAL : "",
			     wait ? " " PROTOCOL_OPTION_WAIT : "") >= len)
		return usage_error(cmd, "the request is too long");
	return 0;
}

static int build_plain(const struct subcommand *cmd, int argc, char **argv, char *req, size_t len)
{
	if (argc > 0)
		return usage_error(cmd, "unexpected argument '%s'", argv[0]);
	snprintf(req, len, "%s\n", cmd->name);
	return 0;
}

/* "fleet init": the only fleet subcommand so far. */
static int build_fleet(const struct subcommand *cmd, int argc, char **argv, char *req, size_t len)
{
	if (argc != 1 || strcmp(argv[0], "init") != 0)
		return usage_error(cmd, "usage: fleet init");
	snprintf(req, len, "%s\n", PROTOCOL_CMD_FLEET_INIT);
	return 0;
}

static const struct subcommand subcommands[] = {
	{"status", "[--json]", "every site: state, action, where the state comes from, addresses, ports, counters", build_read},
	{"stats", "[--json]", "daemon-wide figures: uptime, backend, packets, kernel queue drops", build_read},
	{"metrics", "", "every figure in the Prometheus text format (as metrics.listen serves it)", build_plain},
	{"offline", "SITE [--action drop|reject] [--allow NET[,NET...]|none] [--for DURATION|--until YYYY-MM-DDTHH:MMZ] [--cut] [--local|--wait]",
	 "take SITE offline (action default: the site's in the config); --allow: except for these sources; --for/--until: only until then; --cut: also end its established connections (default: drain them)", build_site},
	{"online", "SITE [--local|--wait]", "bring SITE online", build_site},
	{"reset", "SITE [--local|--wait]", "give SITE back the state of the config file (or its check)", build_site},
	{"reload", "", "re-read the config file; prints its errors if it is refused", build_plain},
	{"fleet", "init", "create the fleet's schema key in etcd (once per fleet)", build_fleet},
};
#define N_SUBCOMMANDS (sizeof(subcommands) / sizeof(subcommands[0]))

static void usage(FILE *out)
{
	fprintf(out, "Usage: gatekeeperctl [-s SOCKET] COMMAND [ARGS]\n"
		     "Asks the running gatekeeperd about its sites, or changes them.\n\nCommands:\n");
	for (size_t i = 0; i < N_SUBCOMMANDS; i++) {
		char left[160];
		snprintf(left, sizeof(left), "%s %s", subcommands[i].name, subcommands[i].args);
		/* a long synopsis gets a line of its own */
		fprintf(out, strlen(left) > 36 ? "  %s\n  %-36s %s\n" : "  %s%-36s %s\n",
			strlen(left) > 36 ? left : "", strlen(left) > 36 ? "" : left,
			subcommands[i].description);
	}
	fprintf(out, "\nOptions:\n"
		     "  -s, --socket SOCKET  the daemon's control socket (default %s)\n"
		     "  -h, --help           this text\n"
		     "  -V, --version        print the version\n\n"
		     "Changes (offline, online, reset, reload) need root or the group of the\n"
		     "config's control.group; status, stats and metrics only access to the socket.\n\n"
		     "With a fleet (config fleet:), offline/online/reset change every box through\n"
		     "etcd: --wait answers once every live box applied it; --local changes this\n"
		     "box only (a pin, shown as diverging; `reset SITE --local` ends it).\n\n"
		     "Exit status: 0 done, 1 refused or failed, 2 usage, 3 daemon not reachable,\n"
		     "4 the fleet could not take it (etcd unreachable, not initialised, --wait\n"
		     "not met in time).\n",
		PROTOCOL_DEFAULT_SOCKET);
}

/* ---- talking to the daemon ---- */

static int connect_daemon(void)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
	int fd;

	if (strlen(socket_path) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "gatekeeperctl: socket path %s is too long\n", socket_path);
		exit(EXIT_USAGE);
	}
	memcpy(addr.sun_path, socket_path, strlen(socket_path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		perror("gatekeeperctl: socket");
		exit(EXIT_REFUSED);
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0)
		return fd;
	if (errno == EACCES || errno == EPERM) {
		fprintf(stderr, "gatekeeperctl: %s: %s\nRun as root, or as a member of the "
			"group that owns the socket (config control.group).\n",
			socket_path, strerror(errno));
		exit(EXIT_REFUSED);
	}
	fprintf(stderr, "gatekeeperctl: cannot reach gatekeeperd at %s: %s\n"
		"Is it running (systemctl status gatekeeper)? -s SOCKET names another socket.\n",
		socket_path, strerror(errno));
	exit(EXIT_UNREACHABLE);
}

static void die_io(const char *what)
{
	if (errno == EAGAIN || errno == EWOULDBLOCK)
		fprintf(stderr, "gatekeeperctl: gatekeeperd did not answer within %d s (%s)\n",
			REPLY_TIMEOUT_S, what);
	else if (errno == 0)
		fprintf(stderr, "gatekeeperctl: gatekeeperd closed the connection (%s)\n", what);
	else
		fprintf(stderr, "gatekeeperctl: %s: %s\n", what, strerror(errno));
	exit(EXIT_UNREACHABLE);
}

/* Sends all of DATA. 0, or -1 when the daemon hung up (EPIPE, reset):
 * a daemon that refuses a connection says why and closes at once, so the
 * refusal is still there to read. Dies on anything else. */
static int send_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return -1;
		if (n <= 0)
			die_io("sending the request");
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* recv() that returns 0 for a hang-up, 1 for data, and dies otherwise. */
static int recv_some(int fd, char *buf, size_t len, size_t *got)
{
	for (;;) {
		ssize_t n = recv(fd, buf, len, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return 0;
		if (n < 0)
			die_io("reading the reply");
		*got = (size_t)n;
		return 1;
	}
}

/* Reads one reply; the body is malloc'ed and NUL-terminated. NULL when
 * the daemon hung up before the reply was whole. */
static char *read_reply(int fd, struct protocol_reply_header *hdr)
{
	char line[PROTOCOL_MAX_HEADER];
	size_t len = 0, got = 0, n;
	char *body;

	/* byte by byte: the header is short, and nothing after it is consumed */
	for (;;) {
		if (!recv_some(fd, line + len, 1, &n))
			return NULL;
		if (line[len] == '\n')
			break;
		if (++len == sizeof(line))
			break;
	}
	line[len < sizeof(line) ? len : sizeof(line) - 1] = '\0';
	if (len == sizeof(line) || protocol_parse_reply_header(line, hdr) < 0) {
		fprintf(stderr, "gatekeeperctl: not a gatekeeperd reply: '%.40s'\n", line);
		exit(EXIT_UNREACHABLE);
	}
	body = malloc(hdr->len + 1);
	if (!body) {
		fprintf(stderr, "gatekeeperctl: out of memory for a %zu byte reply\n", hdr->len);
		exit(EXIT_REFUSED);
	}
	while (got < hdr->len) {
		if (!recv_some(fd, body + got, hdr->len - got, &n)) {
			free(body);
			return NULL;
		}
		got += n;
	}
	body[got] = '\0';
	return body;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static bool is_busy(const struct protocol_reply_header *hdr)
{
	return !hdr->ok && strcmp(hdr->code, PROTOCOL_ERR_BUSY) == 0;
}

static void die_hung_up(const char *what)
{
	errno = 0;
	die_io(what);
}

/* One session: hello (the protocol version), then REQUEST. The reply, or
 * NULL when the daemon is busy: it refused the connection, hung up on
 * the hello, or answered REQUEST "busy" (its slot went to root before the
 * request was read: not executed), so asking again is safe. */
static char *try_once(const char *request, struct protocol_reply_header *hdr)
{
	int fd = connect_daemon(), version = 0;
	char *body;

	(void)send_all(fd, PROTOCOL_CMD_HELLO "\n", sizeof(PROTOCOL_CMD_HELLO));
	body = read_reply(fd, hdr);
	if (!body || is_busy(hdr))
		goto busy;
	if (!hdr->ok) {
		fprintf(stderr, "gatekeeperctl: gatekeeperd refused the connection: %s", body);
		exit(EXIT_REFUSED);
	}
	if (sscanf(body, "protocol %d", &version) != 1 || version != PROTOCOL_VERSION) {
		fprintf(stderr, "gatekeeperctl: gatekeeperd speaks protocol %d, this gatekeeperctl "
			"speaks %d: use the gatekeeperctl installed with the daemon\n",
			version, PROTOCOL_VERSION);
		exit(EXIT_REFUSED);
	}
	free(body);
	/* hung up: a "busy" notice may still be there to read */
	(void)send_all(fd, request, strlen(request));
	body = read_reply(fd, hdr);
	if (!body)
		die_hung_up("reading the reply");
	if (is_busy(hdr))
		goto busy;
	close(fd);
	return body;
busy:
	free(body);
	close(fd);
	return NULL;
}

/* REQUEST's reply, asking again with a growing pause while the daemon is
 * busy; after BUSY_RETRY_MS, says so and exits 3. */
static char *ask_daemon(const char *request, struct protocol_reply_header *hdr)
{
	long gap = BUSY_FIRST_MS, waited = 0;

	for (;;) {
		char *body = try_once(request, hdr);

		if (body)
			return body;
		if (waited >= BUSY_RETRY_MS) {
			fprintf(stderr, "gatekeeperctl: gatekeeperd is busy (every control connection "
				"taken) and stayed so for %d s\n", BUSY_RETRY_MS / 1000);
			exit(EXIT_UNREACHABLE);
		}
		/* some jitter, so refused clients do not come back in step */
		sleep_ms(gap + (long)(rand() % (int)(gap / 2 + 1)));
		waited += gap;
		gap = gap * 2 > BUSY_MAX_GAP_MS ? BUSY_MAX_GAP_MS : gap * 2;
	}
}

static int exit_code_of(const struct protocol_reply_header *hdr)
{
	if (hdr->ok)
		return EXIT_DONE;
	if (strcmp(hdr->code, PROTOCOL_ERR_USAGE) == 0)
		return EXIT_USAGE;
	if (strcmp(hdr->code, PROTOCOL_ERR_BUSY) == 0 || strcmp(hdr->code, PROTOCOL_ERR_TIMEOUT) == 0)
		return EXIT_UNREACHABLE;
	if (strcmp(hdr->code, PROTOCOL_ERR_FLEET) == 0)
		return EXIT_FLEET;
	return EXIT_REFUSED;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{"socket", required_argument, NULL, 's'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const struct subcommand *cmd = NULL;
	struct protocol_reply_header hdr;
	char request[PROTOCOL_MAX_LINE];
	char *body;
	int c, rc;

	/* '+': options end at the subcommand, whose own options it parses */
	while ((c = getopt_long(argc, argv, "+s:hV", longopts, NULL)) != -1) {
		switch (c) {
		case 's': socket_path = optarg; break;
		case 'h': usage(stdout); return EXIT_DONE;
		case 'V': printf("gatekeeperctl %s (protocol %d)\n", GK_VERSION, PROTOCOL_VERSION); return EXIT_DONE;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind == argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	if (strcmp(argv[optind], "help") == 0) {
		usage(stdout);
		return EXIT_DONE;
	}
	for (size_t i = 0; i < N_SUBCOMMANDS && !cmd; i++)
		if (strcmp(argv[optind], subcommands[i].name) == 0)
			cmd = &subcommands[i];
	if (!cmd) {
		fprintf(stderr, "gatekeeperctl: unknown command '%s'; gatekeeperctl --help lists them\n",
			argv[optind]);
		return EXIT_USAGE;
	}
	if (cmd->build(cmd, argc - optind - 1, argv + optind + 1, request, sizeof(request)) < 0)
		return EXIT_USAGE;

	srand((unsigned)getpid());
	body = ask_daemon(request, &hdr);
	rc = exit_code_of(&hdr);
	if (hdr.ok) {
		fputs(body, stdout);
	} else {
		fprintf(stderr, "gatekeeperctl: %s", body);
		if (hdr.len == 0 || body[hdr.len - 1] != '\n')
			fputc('\n', stderr);
	}
	free(body);
	if (fflush(stdout) != 0) {
		perror("gatekeeperctl: stdout");
		return EXIT_REFUSED;
	}
	return rc;
}
