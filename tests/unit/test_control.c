/* Unit tests for control: request parsing (every command, garbage), and
 * the protocol end to end against the real server code: over socketpair()
 * (with made-up peer credentials, for the permission checks) and over the
 * real listening socket (framing, limits, busy, timeouts, stale files).
 *
 * The engine is faked (tests/lib/fake_engine.c): no queues, no kernel
 * rules. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "control.h"
#include "control_slots.h"
#include "fake_engine.h"
#include "protocol.h"
#include "state.h"

/* ---- fixtures ---- */

struct fixture {
	char dir[128];
	char config_path[160], socket_path[160], state_path[160];
	struct engine engine;
	struct control *ctl;
};

static void write_config(struct fixture *f, const char *extra_site)
{
	FILE *out = fopen(f->config_path, "w");

	assert_non_null(out);
	fprintf(out,
		"control:\n  socket: %s\n"
		"state_file: %s\n"
		"sites:\n"
		"  - name: shop\n    addresses: [198.51.100.10, \"2001:db8:2::10\"]\n"
		"    ports: [443, 8443]\n    state: online\n"
		"  - name: blog\n    addresses: [198.51.100.11]\n    ports: [443]\n"
		"    state: offline\n    action: reject\n"
		"%s",
		f->socket_path, f->state_path, extra_site ? extra_site : "");
	assert_int_equal(fclose(out), 0);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct config_errors errors = {0};
	const char *tmp = getenv("TMPDIR");

	snprintf(f->dir, sizeof(f->dir), "%s/gk-test-control.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->config_path, sizeof(f->config_path), "%s/gk.yaml", f->dir);
	snprintf(f->socket_path, sizeof(f->socket_path), "%s/run/control.sock", f->dir);
	snprintf(f->state_path, sizeof(f->state_path), "%s/lib/state", f->dir);
	write_config(f, NULL);
	if (fake_engine_init(&f->engine, f->config_path, &errors) < 0) {
		for (size_t i = 0; i < errors.count; i++)
			print_error("%s\n", errors.messages[i]);
		return -1;
	}
	/* figures for the stats and metrics tests to find */
	f->engine.stats.figure[WORKERS_PACKETS] = 42;
	f->engine.reloads_ok = 3;
	f->engine.reloads_failed = 1;
	f->ctl = control_open(&f->engine, f->config_path, NULL);
	if (!f->ctl)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];

	control_close(f->ctl);
	fake_engine_finish(&f->engine);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	free(f);
	return system(cmd) == 0 ? 0 : -1;
}

/* ---- talking to it ---- */

static const struct control_peer root_peer = {.uid = 0, .gid = 0, .pid = 1, .privileged = true};
static const struct control_peer user_peer = {.uid = 1234, .gid = 1234, .pid = 2, .privileged = false};

/* One end served by the control module as PEER; returns the other end. */
static int attach(struct fixture *f, const struct control_peer *peer)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(control_adopt(f->ctl, sv[0], peer), 0);
	assert_int_equal(fcntl(sv[1], F_SETFL, O_NONBLOCK), 0);
	return sv[1];
}

static int connect_socket(struct fixture *f)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(addr.sun_path, f->socket_path);
	assert_int_equal(connect(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
	assert_int_equal(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

/* Lets the server run once: what main()'s loop does. */
static void pump(struct fixture *f, int max_ms)
{
	struct pollfd pfd = {.fd = control_fd(f->ctl), .events = POLLIN};
	int timeout = control_timeout_ms(f->ctl);

	poll(&pfd, 1, timeout < 0 || timeout > max_ms ? max_ms : timeout);
	control_dispatch(f->ctl);
}

static void send_text(int fd, const char *text, size_t len)
{
	assert_int_equal(send(fd, text, len, MSG_NOSIGNAL), (ssize_t)len);
}

/* Reads N bytes into BUF, serving the control module while it waits. */
static bool read_exact(struct fixture *f, int fd, char *buf, size_t n)
{
	size_t got = 0;

	for (int idle = 0; got < n && idle < 400;) {
		ssize_t r = recv(fd, buf + got, n - got, 0);

		if (r == 0 || (r < 0 && errno != EAGAIN))
			return false;
		if (r > 0) {
			got += (size_t)r;
			continue;
		}
		pump(f, 5);
		idle++;
	}
	return got == n;
}

/* Reads one whole reply, serving the control module meanwhile. The body
 * is returned NUL-terminated; NULL when the server closed first. */
static char *reply(struct fixture *f, int fd, struct protocol_reply_header *hdr)
{
	char line[PROTOCOL_MAX_HEADER];
	size_t len = 0;
	char *body;

	/* byte by byte, so a pipelined reply after this one stays queued */
	for (;;) {
		if (!read_exact(f, fd, line + len, 1))
			return NULL;
		if (line[len] == '\n')
			break;
		assert_true(++len < sizeof(line));
	}
	line[len] = '\0';
	assert_int_equal(protocol_parse_reply_header(line, hdr), 0);
	body = malloc(hdr->len + 1);
	assert_true(read_exact(f, fd, body, hdr->len));
	body[hdr->len] = '\0';
	return body;
}

/* Sends REQUEST, expects an "OK" or "ERR CODE" reply whose body contains
 * WANT; returns the body. */
static char *ask(struct fixture *f, int fd, const char *request, const char *code, const char *want)
{
	struct protocol_reply_header hdr;
	char *body;

	send_text(fd, request, strlen(request));
	body = reply(f, fd, &hdr);
	assert_non_null(body);
	if (!code)
		assert_true(hdr.ok);
	else
		assert_string_equal(hdr.code, code);
	if (want && !strstr(body, want))
		fail_msg("reply to '%s' lacks '%s':\n%s", request, want, body);
	return body;
}

static void ask_free(struct fixture *f, int fd, const char *request, const char *code,
		     const char *want)
{
	free(ask(f, fd, request, code, want));
}

/* The server has closed FD (after any reply). */
static void assert_closed(struct fixture *f, int fd)
{
	char buf[256];

	for (int i = 0; i < 200; i++) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return;
		pump(f, 5);
	}
	fail_msg("connection still open");
}

static char *state_file_text(struct fixture *f)
{
	FILE *in = fopen(f->state_path, "r");
	char *buf = calloc(1, 4096);

	if (in) {
		size_t n = fread(buf, 1, 4095, in);
		buf[n] = '\0';
		fclose(in);
	}
	return buf;
}

/* ---- parsing ---- */

static void test_parse_every_command(void **unused)
{
	struct control_request req;
	char err[256], line[128];

	(void)unused;
#define PARSE(text) (strcpy(line, text), control_parse_request(line, &req, err, sizeof(err)))
	assert_int_equal(PARSE("hello"), 0);
	assert_int_equal(req.command, CONTROL_CMD_HELLO);
	assert_false(control_request_changes_state(&req));
	assert_int_equal(PARSE("status"), 0);
	assert_int_equal(req.command, CONTROL_CMD_STATUS);
	assert_false(req.json);
	assert_int_equal(PARSE("status json"), 0);
	assert_true(req.json);
	assert_int_equal(PARSE("  stats \t json  "), 0);
	assert_int_equal(req.command, CONTROL_CMD_STATS);
	assert_true(req.json);
	assert_int_equal(PARSE("offline blog"), 0);
	assert_int_equal(req.command, CONTROL_CMD_OFFLINE);
	assert_string_equal(req.site, "blog");
	assert_false(req.has_action);
	assert_true(control_request_changes_state(&req));
	assert_int_equal(PARSE("offline blog reject"), 0);
	assert_true(req.has_action);
	assert_int_equal(req.action, SITE_ACTION_REJECT);
	/* the options of offline: after the action, or without one */
	assert_int_equal(PARSE("offline blog reject allow=203.0.113.0/24,2001:db8:3::/64 for=60"), 0);
	assert_true(req.has_action);
	assert_int_equal(req.n_options, 2);
	assert_string_equal(req.options[0], "allow=203.0.113.0/24,2001:db8:3::/64");
	assert_string_equal(req.options[1], "for=60");
	assert_int_equal(PARSE("offline blog allow=none"), 0);
	assert_false(req.has_action);
	assert_int_equal(req.n_options, 1);
	snprintf(line, sizeof(line), "offline blog until=%lld", (long long)time(NULL) + 3600);
	assert_int_equal(control_parse_request(line, &req, err, sizeof(err)), 0);
	assert_int_equal(req.n_options, 1);
	assert_int_equal(PARSE("online shop"), 0);
	assert_int_equal(req.command, CONTROL_CMD_ONLINE);
	assert_int_equal(PARSE("reset shop"), 0);
	assert_int_equal(req.command, CONTROL_CMD_RESET);
	assert_int_equal(PARSE("reload"), 0);
	assert_int_equal(req.command, CONTROL_CMD_RELOAD);
	assert_true(control_request_changes_state(&req));
}

static void test_parse_refusals(void **unused)
{
	static const char *const bad[] = {
		"", "   ", "\t", "HELLO", "hello there", "status xml", "status json json",
		"stats --json", "offline", "offline blog sideways", "offline blog drop now",
		"online", "online a b", "reset", "reload now", "quit", "statusjson",
		"offline blog for=0", "offline blog for=-5", "offline blog for=99999999",
		"offline blog until=1000", "offline blog until=soon", "offline blog for=5 until=99999999999",
		"offline blog for=5 for=6", "offline blog allow=10.0.0.1/8", "offline blog allow=",
		"offline blog allow=10.0.0.0/8 allow=none", "offline blog allow=10.0.0.0/8,,",
		"online shop for=60", "offline blog for=5 drop",
	};
	struct control_request req;
	char err[256], line[128];

	(void)unused;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(line, bad[i]);
		if (control_parse_request(line, &req, err, sizeof(err)) != -1)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(strlen(err) > 0);
	}
	strcpy(line, "status xml");
	control_parse_request(line, &req, err, sizeof(err));
	assert_string_equal(err, "usage: status [json]");
}

/* With a fleet: local (this box only) and wait (every live box) after a
 * toggle's other words, fleet-init, and the most words a request has. */
static void test_parse_fleet_words(void **unused)
{
	static const char *const bad[] = {
		"offline shop local wait", "online shop wait local", "reset shop local local",
		"offline shop wait wait", "online shop local wait", "reset shop wait local",
		"online shop reject", "online shop local reject", "reset shop cut", "reset shop drop local",
		"offline shop local reject", "online shop LOCAL", "online shop waiting",
		"fleet-init now", "fleet-init local", "fleet_init", "fleet init",
	};
	struct control_request req;
	char err[256], line[512], until[32];

	(void)unused;
#define PARSE(text) (strcpy(line, text), control_parse_request(line, &req, err, sizeof(err)))
	assert_int_equal(PARSE("offline shop reject cut local"), 0);
	assert_int_equal(req.command, CONTROL_CMD_OFFLINE);
	assert_string_equal(req.site, "shop");
	assert_true(req.has_action);
	assert_int_equal(req.action, SITE_ACTION_REJECT);
	assert_int_equal(req.n_options, 1);
	assert_string_equal(req.options[0], "cut");
	assert_true(req.local);
	assert_false(req.wait);
	assert_int_equal(PARSE("offline shop wait"), 0);
	assert_false(req.has_action);
	assert_int_equal(req.n_options, 0);
	assert_true(req.wait);
	assert_false(req.local);
	/* local or wait may come before the options, not before the action */
	assert_int_equal(PARSE("offline shop drop local cut"), 0);
	assert_true(req.local);
	assert_int_equal(req.n_options, 1);
	assert_int_equal(PARSE("online shop wait"), 0);
	assert_int_equal(req.command, CONTROL_CMD_ONLINE);
	assert_string_equal(req.site, "shop");
	assert_true(req.wait);
	assert_false(req.local);
	assert_int_equal(PARSE("reset shop local"), 0);
	assert_int_equal(req.command, CONTROL_CMD_RESET);
	assert_true(req.local);
	assert_false(req.wait);
	/* without them: neither (memset per request) */
	assert_int_equal(PARSE("reset shop"), 0);
	assert_false(req.local);
	assert_false(req.wait);
	/* the word after the command is the site, whatever it reads */
	assert_int_equal(PARSE("online local wait"), 0);
	assert_string_equal(req.site, "local");
	assert_true(req.wait);
	assert_false(req.local);
	assert_int_equal(PARSE("fleet-init"), 0);
	assert_int_equal(req.command, CONTROL_CMD_FLEET_INIT);
	assert_null(req.site);
	assert_true(control_request_changes_state(&req));

	/* the most words a request has: 7 */
	snprintf(until, sizeof(until), "until=%lld", (long long)time(NULL) + 3600);
	snprintf(line, sizeof(line), "offline shop reject allow=203.0.113.0/24,2001:db8::/32 %s cut "
		 "local", until);
	assert_int_equal(control_parse_request(line, &req, err, sizeof(err)), 0);
	assert_int_equal(req.n_options, 3);
	assert_string_equal(req.options[1], until);
	assert_true(req.local);
	/* an eighth word, a ninth, and more than the parser splits: refused */
	snprintf(line, sizeof(line), "offline shop reject allow=none %s cut local wait", until);
	assert_int_equal(control_parse_request(line, &req, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "go neither twice nor together"));
	snprintf(line, sizeof(line), "offline shop reject allow=none %s cut local x", until);
	assert_int_equal(control_parse_request(line, &req, err, sizeof(err)), -1);
	snprintf(line, sizeof(line), "offline shop reject allow=none %s cut local x y", until);
	assert_int_equal(control_parse_request(line, &req, err, sizeof(err)), -1);
	assert_string_equal(err, "usage: offline SITE [drop|reject] [allow=CIDR[,CIDR...]|allow=none] "
				 "[for=SECONDS|until=UNIXTIME] [cut] [local|wait]");
	snprintf(line, sizeof(line), "offline shop reject allow=none %s cut local a b c d e f", until);
	assert_int_equal(control_parse_request(line, &req, err, sizeof(err)), -1);
	assert_int_equal(PARSE("online shop local wait wait"), -1);
	assert_string_equal(err, "usage: online SITE [local|wait]");

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(line, bad[i]);
		if (control_parse_request(line, &req, err, sizeof(err)) != -1)
			fail_msg("'%s' was accepted", bad[i]);
		assert_true(strlen(err) > 0);
	}
	assert_int_equal(PARSE("online shop local local"), -1);
	assert_string_equal(err, "local and wait go neither twice nor together; usage: online SITE "
				 "[local|wait]");
	assert_int_equal(PARSE("online shop reject"), -1);
	assert_string_equal(err, "usage: online SITE [local|wait]");
	assert_int_equal(PARSE("fleet-init now"), -1);
	assert_string_equal(err, "usage: fleet-init");
#undef PARSE
}

static void test_peer_in_group(void **unused)
{
	const gid_t groups[] = {10, 20, 30};

	(void)unused;
	assert_true(control_peer_in_group(5, 5, NULL, 0));
	assert_true(control_peer_in_group(30, 5, groups, 3));
	assert_false(control_peer_in_group(40, 5, groups, 3));
	assert_false(control_peer_in_group(40, 5, NULL, 0));
}

/* Through a buffer, as a reader parses it (and so that the compiler does
 * not second-guess the inlined parser on string literals). */
static int parse_header(const char *text, struct protocol_reply_header *h)
{
	char line[PROTOCOL_MAX_HEADER];

	snprintf(line, sizeof(line), "%s", text);
	return protocol_parse_reply_header(line, h);
}

static void test_reply_header(void **unused)
{
	struct protocol_reply_header h;

	(void)unused;
	assert_int_equal(parse_header("OK 0", &h), 0);
	assert_true(h.ok);
	assert_int_equal(parse_header("ERR unknown-site 17", &h), 0);
	assert_false(h.ok);
	assert_string_equal(h.code, "unknown-site");
	assert_int_equal(h.len, 17);
	assert_int_equal(parse_header("OK", &h), -1);
	assert_int_equal(parse_header("OK -1", &h), -1);
	assert_int_equal(parse_header("OK 12x", &h), -1);
	assert_int_equal(parse_header("OK 99999999999999999999", &h), -1);
	assert_int_equal(parse_header("OK 67108865", &h), -1);
	assert_int_equal(parse_header("ERR  5", &h), -1);
	assert_int_equal(parse_header("ERR x", &h), -1);
	assert_int_equal(parse_header("ERR abcdefghijklmnopqrstuvwxyz 5", &h), -1);
}

/* ---- the protocol ---- */

static void test_hello_status_stats(void **state)
{
	struct fixture *f = *state;
	int fd = attach(f, &user_peer);
	char *body;

	ask_free(f, fd, "hello\n", NULL, "protocol 1\n");
	body = ask(f, fd, "status\n", NULL, "shop: online, from config\n");
	assert_non_null(strstr(body, "blog: offline, from config\n  action     reject\n"));
	assert_non_null(strstr(body, "  addresses  198.51.100.10 2001:db8:2::10\n  ports      443 8443\n"));
	free(body);
	ask_free(f, fd, "status json\n", NULL,
		 "{\"name\":\"shop\",\"state\":\"online\",\"action\":\"drop\",\"source\":\"config\","
		 "\"config_state\":\"online\",\"config_action\":\"drop\","
		 "\"addresses\":[\"198.51.100.10\",\"2001:db8:2::10\"],\"ports\":[443,8443],"
		 "\"server_names\":[],\"counters\":{\"accepted\":0,\"dropped\":0,\"rejected\":0,\"allowed\":0},"
		 "\"allow\":[],\"allow_source\":\"config\",\"cut\":false,\"cut_flows\":0,\"cut_probes\":0}");
	ask_free(f, fd, "stats\n", NULL, "packets        42 ");
	body = ask(f, fd, "stats json\n", NULL, "\"workers\":{\"packets\":42,");
	assert_non_null(strstr(body, "\"sites\":{\"total\":2,\"offline\":1,\"runtime\":0,"));
	assert_non_null(strstr(body, "\"queues\":[{\"num\":0,"));
	free(body);
	/* a read: anyone may ask for the metrics */
	body = ask(f, fd, "metrics\n", NULL,
		   "# TYPE gatekeeper_syn_verdicts_total counter\n"
		   "gatekeeper_syn_verdicts_total{site=\"shop\",verdict=\"accept\"} 0\n");
	assert_non_null(strstr(body, "gatekeeper_site_online{site=\"blog\"} 0\n"));
	assert_non_null(strstr(body, "gatekeeper_site_state_source{site=\"shop\",source=\"config\"} 1\n"));
	assert_non_null(strstr(body, "gatekeeper_packets_total 42\n"));
	assert_non_null(strstr(body, "gatekeeper_reloads_total{result=\"failure\"} 1\n"));
	free(body);
	ask_free(f, fd, "metrics json\n", PROTOCOL_ERR_USAGE, "usage: metrics");
	close(fd);
}

/* Every worker figure, from the one table, in the text and JSON of stats
 * and in the metrics: names, order, labels. */
static void test_worker_figures(void **state)
{
	struct fixture *f = *state;
	int fd = attach(f, &user_peer);
	char *body;

	for (size_t i = 0; i < WORKERS_N_FIGURES; i++)
		f->engine.stats.figure[i] = 10 + i;
	body = ask(f, fd, "stats\n", NULL, "gatekeeperd ");
	assert_non_null(strstr(body, "\npackets        10 (malformed 11, not SYN 12, unmanaged 13, "
				     "shared 14, first fragments 15)\n"));
	assert_non_null(strstr(body, "\nRSTs           sent 16, failed 17\n"
				     "errors         recv 18, verdict 19\n"));
	free(body);
	body = ask(f, fd, "stats json\n", NULL, "{\"protocol\":1,");
	assert_non_null(strstr(body, ",\"workers\":{\"packets\":10,\"malformed\":11,\"not_syn\":12,"
				     "\"unmanaged\":13,\"shared\":14,\"fragments\":15,\"rst_sent\":16,"
				     "\"rst_failed\":17,\"recv_errors\":18,\"verdict_errors\":19,"));
	free(body);
	body = ask(f, fd, "metrics\n", NULL, "# HELP ");
	assert_non_null(strstr(body, "# TYPE gatekeeper_packets_total counter\n"
				     "gatekeeper_packets_total 10\n# HELP gatekeeper_packets_passed_total "));
	assert_non_null(strstr(body, "# TYPE gatekeeper_packets_passed_total counter\n"
				     "gatekeeper_packets_passed_total{reason=\"malformed\"} 11\n"
				     "gatekeeper_packets_passed_total{reason=\"not_syn\"} 12\n"
				     "gatekeeper_packets_passed_total{reason=\"unmanaged\"} 13\n"
				     "gatekeeper_packets_passed_total{reason=\"shared\"} 14\n#"));
	assert_non_null(strstr(body, "# TYPE gatekeeper_first_fragments_total counter\n"
				     "gatekeeper_first_fragments_total 15\n#"));
	assert_non_null(strstr(body, "# TYPE gatekeeper_rsts_total counter\n"
				     "gatekeeper_rsts_total{result=\"sent\"} 16\n"
				     "gatekeeper_rsts_total{result=\"failed\"} 17\n#"));
	assert_non_null(strstr(body, "# TYPE gatekeeper_worker_errors_total counter\n"
				     "gatekeeper_worker_errors_total{kind=\"recv\"} 18\n"
				     "gatekeeper_worker_errors_total{kind=\"verdict\"} 19\n"));
	free(body);
	close(fd);
}

static void test_changes_and_state_file(void **state)
{
	struct fixture *f = *state;
	struct site *shop = sites_find(f->engine.sites, "shop");
	int fd = attach(f, &root_peer);
	char *text;

	ask_free(f, fd, "offline shop\n", NULL, "shop: offline (drop), from runtime\n");
	assert_int_equal(site_state(shop), SITE_OFFLINE);
	assert_int_equal(site_action(shop), SITE_ACTION_DROP); /* the config's action */
	text = state_file_text(f);
	assert_non_null(strstr(text, "gatekeeper-state 1\n"));
	assert_non_null(strstr(text, "\nshop offline drop\n"));
	free(text);

	ask_free(f, fd, "offline shop reject\n", NULL, "shop: offline (reject)");
	assert_int_equal(site_action(shop), SITE_ACTION_REJECT);
	ask_free(f, fd, "online blog\n", NULL, "blog: online (reject), from runtime");
	ask_free(f, fd, "status\n", NULL, "blog: online, from runtime (config: offline, reject)");
	text = state_file_text(f);
	assert_non_null(strstr(text, "\nshop offline reject\n"));
	assert_non_null(strstr(text, "\nblog online reject\n"));
	free(text);

	ask_free(f, fd, "reset shop\n", NULL, "shop: online (drop), from config");
	assert_int_equal(site_source(shop), SITE_SOURCE_CONFIG);
	text = state_file_text(f);
	assert_null(strstr(text, "shop"));
	free(text);

	/* allow-list and deadline: in the reply, the status and the file */
	ask_free(f, fd, "offline shop allow=203.0.113.0/24 for=600\n", NULL,
		 "  allow      203.0.113.0/24 (from runtime)\n  until      ");
	assert_true(site_allow_is_runtime(shop));
	assert_true(site_until(shop) > time(NULL) + 590);
	text = state_file_text(f);
	assert_non_null(strstr(text, "\nshop offline drop\n+allow shop 203.0.113.0/24\n+until shop "));
	free(text);
	ask_free(f, fd, "status json\n", NULL, "\"allow\":[\"203.0.113.0/24\"],\"allow_source\":\"runtime\","
		 "\"until\":");
	/* a plain offline sets the whole override: no list, no deadline */
	ask_free(f, fd, "offline shop\n", NULL, "shop: offline (drop)");
	assert_false(site_allow_is_runtime(shop));
	assert_int_equal(site_until(shop), 0);
	ask_free(f, fd, "reset shop\n", NULL, "from config");

	ask_free(f, fd, "offline nosuch\n", PROTOCOL_ERR_UNKNOWN_SITE, "no site 'nosuch'");
	ask_free(f, fd, "offline shop sideways\n", PROTOCOL_ERR_USAGE, "unknown action");
	close(fd);
}

static void test_read_only_peer(void **state)
{
	struct fixture *f = *state;
	struct site *blog = sites_find(f->engine.sites, "blog");
	int fd = attach(f, &user_peer);

	ask_free(f, fd, "online blog\n", PROTOCOL_ERR_PERMISSION, "permission denied");
	ask_free(f, fd, "offline blog drop\n", PROTOCOL_ERR_PERMISSION, "uid 1234 may only read");
	ask_free(f, fd, "reset blog\n", PROTOCOL_ERR_PERMISSION, NULL);
	ask_free(f, fd, "reload\n", PROTOCOL_ERR_PERMISSION, NULL);
	assert_int_equal(site_state(blog), SITE_OFFLINE);
	assert_int_equal(site_source(blog), SITE_SOURCE_CONFIG);
	assert_int_equal(access(f->state_path, F_OK), -1);
	/* the connection is still good */
	ask_free(f, fd, "hello\n", NULL, "protocol 1");
	close(fd);
}

/* The change is refused, and nothing changes, when it cannot be saved. */
static void test_save_failure_changes_nothing(void **state)
{
	struct fixture *f = *state;
	struct site *shop = sites_find(f->engine.sites, "shop");
	char lib[200];
	int fd = attach(f, &root_peer);

	/* the state file's directory is a regular file */
	snprintf(lib, sizeof(lib), "%s/lib", f->dir);
	close(open(lib, O_CREAT | O_WRONLY, 0600));
	ask_free(f, fd, "offline shop\n", PROTOCOL_ERR_FAILED, "nothing changed");
	assert_int_equal(site_state(shop), SITE_ONLINE);
	assert_int_equal(site_source(shop), SITE_SOURCE_CONFIG);
	unlink(lib);
	close(fd);
}

static void test_reload(void **state)
{
	struct fixture *f = *state;
	int fd = attach(f, &root_peer);
	char *body, *text;
	FILE *out;

	ask_free(f, fd, "offline shop\n", NULL, NULL);
	ask_free(f, fd, "offline blog\n", NULL, NULL);
	/* wiki appears, blog goes: shop's override stays, blog's leaves the file */
	write_config(f, "  - name: wiki\n    addresses: [198.51.100.12]\n    ports: [443]\n");
	out = fopen(f->config_path, "r+");
	assert_non_null(out);
	fclose(out);
	{
		/* drop blog by rewriting the file without it */
		char cmd[400];
		snprintf(cmd, sizeof(cmd), "sed -i '/name: blog/,/action: reject/d' '%s'", f->config_path);
		assert_int_equal(system(cmd), 0);
	}
	ask_free(f, fd, "reload\n", NULL, "2 sites");
	assert_non_null(sites_find(f->engine.sites, "wiki"));
	assert_null(sites_find(f->engine.sites, "blog"));
	assert_int_equal(site_state(sites_find(f->engine.sites, "shop")), SITE_OFFLINE);
	text = state_file_text(f);
	assert_non_null(strstr(text, "shop offline"));
	assert_null(strstr(text, "blog"));
	free(text);

	/* a broken config: FILE:LINE:COL back to the caller, old config kept */
	out = fopen(f->config_path, "a");
	fputs("  - name: bad\n    adresses: [198.51.100.13]\n", out);
	fclose(out);
	body = ask(f, fd, "reload\n", PROTOCOL_ERR_CONFIG, "reload refused");
	assert_non_null(strstr(body, f->config_path));
	assert_non_null(strstr(body, ":13:5: "));
	free(body);
	assert_non_null(sites_find(f->engine.sites, "wiki"));
	ask_free(f, fd, "status\n", NULL, "wiki: online");
	close(fd);
}

static void test_framing(void **state)
{
	struct fixture *f = *state;
	struct protocol_reply_header hdr;
	int fd = attach(f, &user_peer);
	char *body;

	/* a request in pieces, and CRLF */
	send_text(fd, "hel", 3);
	pump(f, 5);
	send_text(fd, "lo\r", 3);
	pump(f, 5);
	ask_free(f, fd, "\n", NULL, "protocol 1");
	/* several in one write: answered in order */
	send_text(fd, "hello\nstatus json\nnope\n", 23);
	body = reply(f, fd, &hdr);
	assert_true(hdr.ok);
	assert_non_null(strstr(body, "protocol 1"));
	free(body);
	body = reply(f, fd, &hdr);
	assert_true(hdr.ok);
	assert_int_equal(body[0], '{');
	free(body);
	body = reply(f, fd, &hdr);
	assert_string_equal(hdr.code, PROTOCOL_ERR_USAGE);
	free(body);
	/* an empty line is a usage error, not a reason to hang up */
	ask_free(f, fd, "\n", PROTOCOL_ERR_USAGE, "empty request");
	ask_free(f, fd, "hello\n", NULL, NULL);
	close(fd);
}

static void test_garbage_drops_only_that_client(void **state)
{
	struct fixture *f = *state;
	int good = attach(f, &user_peer), bin = attach(f, &user_peer), big = attach(f, &user_peer);
	char junk[PROTOCOL_MAX_LINE + 10];

	ask_free(f, bin, "hel\x01lo\n", PROTOCOL_ERR_MALFORMED, "byte 0x01 at offset 3");
	assert_closed(f, bin);
	memset(junk, 'a', sizeof(junk));
	send_text(big, junk, sizeof(junk));
	ask_free(f, big, "", PROTOCOL_ERR_MALFORMED, "longer than 4096 bytes");
	assert_closed(f, big);
	/* exactly the limit, newline included, is fine */
	memset(junk, ' ', PROTOCOL_MAX_LINE);
	memcpy(junk, "hello", 5);
	junk[PROTOCOL_MAX_LINE - 1] = '\n';
	junk[PROTOCOL_MAX_LINE] = '\0';
	ask_free(f, good, junk, NULL, "protocol 1");
	close(good);
	close(bin);
	close(big);
}

/* A client that sends requests but never reads gets no more replies
 * queued than one, and does not slow anyone else down. */
static void test_client_that_does_not_read(void **state)
{
	struct fixture *f = *state;
	int lazy = attach(f, &user_peer), other = attach(f, &user_peer);
	char requests[PROTOCOL_MAX_LINE];

	for (size_t i = 0; i + 12 <= sizeof(requests); i += 12)
		memcpy(requests + i, "status json\n", 12);
	/* more than the socket buffers hold, written as far as it goes */
	for (int i = 0; i < 200; i++) {
		(void)!send(lazy, requests, sizeof(requests) / 12 * 12, MSG_NOSIGNAL | MSG_DONTWAIT);
		pump(f, 0);
	}
	ask_free(f, other, "hello\n", NULL, "protocol 1");
	close(lazy);
	for (int i = 0; i < 10; i++)
		pump(f, 1);
	close(other);
}

static void test_idle_timeout(void **state)
{
	struct fixture *f = *state;
	struct protocol_reply_header hdr;
	int fd;
	char *body;

	control_set_idle_timeout(f->ctl, 50);
	fd = attach(f, &user_peer);
	send_text(fd, "hel", 3); /* a request that never ends */
	body = reply(f, fd, &hdr);
	assert_non_null(body);
	assert_string_equal(hdr.code, PROTOCOL_ERR_TIMEOUT);
	free(body);
	assert_closed(f, fd);
	close(fd);
}

/* As root (the usual test run) the 65th connection gets in and the
 * longest-idle one is closed "busy"; as anyone else, who is then the
 * daemon's own uid, the per-uid cap refuses the 17th. */
static void test_real_socket_and_busy(void **state)
{
	struct fixture *f = *state;
	struct protocol_reply_header hdr;
	struct stat st;
	int fds[CONTROL_MAX_CLIENTS + 1];
	int n = getuid() == 0 ? CONTROL_MAX_CLIENTS : CONTROL_MAX_PER_UID, evicted = 0;
	char *body;

	assert_int_equal(stat(f->socket_path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, CONFIG_DEFAULT_SOCKET_MODE);
	for (int i = 0; i < n; i++) {
		fds[i] = connect_socket(f);
		/* we are who the kernel says: root may change state here */
		ask_free(f, fds[i], i == 0 ? "reset shop\n" : "hello\n",
			 i == 0 && getuid() != 0 ? PROTOCOL_ERR_PERMISSION : NULL, NULL);
	}
	for (int i = 0; i < 20; i++)
		pump(f, 1);
	fds[n] = connect_socket(f);
	if (getuid() != 0) {
		body = reply(f, fds[n], &hdr);
		assert_non_null(body);
		assert_string_equal(hdr.code, PROTOCOL_ERR_BUSY);
		free(body);
		assert_closed(f, fds[n]);
	} else {
		/* root gets in; the longest idle, the first one, makes room */
		ask_free(f, fds[n], "hello\n", NULL, "protocol 1");
		body = reply(f, fds[0], &hdr);
		assert_non_null(body);
		assert_string_equal(hdr.code, PROTOCOL_ERR_BUSY);
		assert_non_null(strstr(body, "privileged"));
		free(body);
		assert_closed(f, fds[0]);
		evicted = 1;
	}
	/* the others are still served */
	for (int i = evicted; i < n; i++)
		ask_free(f, fds[i], "hello\n", NULL, "protocol 1");
	for (int i = 0; i <= n; i++)
		close(fds[i]);
}

/* A connection that says nothing is closed after the first-request
 * deadline, long before the idle timeout; one that asked keeps its slot. */
static void test_first_request_deadline(void **state)
{
	struct fixture *f = *state;
	struct protocol_reply_header hdr;
	int silent, talker;
	char *body;

	control_set_idle_timeout(f->ctl, 10000);
	control_set_first_request_timeout(f->ctl, 100);
	silent = attach(f, &user_peer);
	talker = attach(f, &user_peer);
	ask_free(f, talker, "hello\n", NULL, "protocol 1");
	body = reply(f, silent, &hdr);
	assert_non_null(body);
	assert_string_equal(hdr.code, PROTOCOL_ERR_TIMEOUT);
	free(body);
	assert_closed(f, silent);
	for (int i = 0; i < 30; i++)
		pump(f, 10);
	ask_free(f, talker, "hello\n", NULL, "protocol 1");
	close(silent);
	close(talker);
}

/* ---- the slot policy (control_slots.h), no sockets ---- */

static struct control_slot slots[CONTROL_MAX_CLIENTS];

/* Fills slots [FROM, TO) with RANK, UIDS consecutive uids from BASE_UID
 * in turn, active at 1000 + slot. */
static void fill(size_t from, size_t to, enum control_rank rank, uid_t base_uid, unsigned uids)
{
	for (size_t i = from; i < to; i++)
		slots[i] = (struct control_slot){.used = true,
						 .uid = base_uid + (uid_t)(i % uids),
						 .rank = rank,
						 .active_ms = 1000 + i};
}

static enum control_admission admit(uid_t uid, enum control_rank rank, size_t *victim)
{
	*victim = SIZE_MAX;
	return control_slots_admit(slots, CONTROL_MAX_CLIENTS, CONTROL_RESERVED_PRIVILEGED, uid,
				   rank, victim);
}

static void test_slots_policy(void **state)
{
	size_t victim;

	(void)state;
	memset(slots, 0, sizeof(slots));
	assert_int_equal(admit(1000, CONTROL_RANK_READER, &victim), CONTROL_ADMIT);

	/* one uid, whatever its rank but root, holds CONTROL_MAX_PER_UID */
	fill(0, CONTROL_MAX_PER_UID, CONTROL_RANK_MEMBER, 2000, 1);
	assert_int_equal(admit(2000, CONTROL_RANK_MEMBER, &victim), CONTROL_REFUSE_UID_CAP);
	assert_int_equal(admit(2000, CONTROL_RANK_OWNER, &victim), CONTROL_REFUSE_UID_CAP);
	assert_int_equal(admit(2001, CONTROL_RANK_MEMBER, &victim), CONTROL_ADMIT);
	fill(0, CONTROL_MAX_PER_UID, CONTROL_RANK_ROOT, 0, 1);
	assert_int_equal(admit(0, CONTROL_RANK_ROOT, &victim), CONTROL_ADMIT);

	/* readers never take the reserved slots; members do */
	memset(slots, 0, sizeof(slots));
	fill(0, CONTROL_MAX_CLIENTS - CONTROL_RESERVED_PRIVILEGED, CONTROL_RANK_READER, 3000, 8);
	assert_int_equal(admit(3100, CONTROL_RANK_READER, &victim), CONTROL_REFUSE_FULL);
	assert_int_equal(admit(2000, CONTROL_RANK_MEMBER, &victim), CONTROL_ADMIT);

	/* full: readers (newer) and members (older); the daemon's uid evicts
	 * the longest-idle reader, not the older member; so does root */
	fill(CONTROL_MAX_CLIENTS - CONTROL_RESERVED_PRIVILEGED, CONTROL_MAX_CLIENTS,
	     CONTROL_RANK_MEMBER, 2000, 1);
	for (size_t i = CONTROL_MAX_CLIENTS - CONTROL_RESERVED_PRIVILEGED; i < CONTROL_MAX_CLIENTS; i++)
		slots[i].active_ms = 10;
	slots[20].active_ms = 500; /* the longest-idle reader */
	assert_int_equal(admit(2001, CONTROL_RANK_MEMBER, &victim), CONTROL_REFUSE_FULL);
	assert_int_equal(admit(4000, CONTROL_RANK_OWNER, &victim), CONTROL_ADMIT_EVICT);
	assert_int_equal(victim, 20);
	assert_int_equal(admit(0, CONTROL_RANK_ROOT, &victim), CONTROL_ADMIT_EVICT);
	assert_int_equal(victim, 20);

	/* group members in every slot, talking often: the daemon's uid
	 * waits, root evicts the longest-idle member */
	fill(0, CONTROL_MAX_CLIENTS, CONTROL_RANK_MEMBER, 2000, 4);
	slots[33].active_ms = 7;
	assert_int_equal(admit(4000, CONTROL_RANK_OWNER, &victim), CONTROL_REFUSE_FULL);
	assert_int_equal(admit(0, CONTROL_RANK_ROOT, &victim), CONTROL_ADMIT_EVICT);
	assert_int_equal(victim, 33);

	/* then the daemon's uid, then root's own connections */
	fill(0, CONTROL_MAX_CLIENTS, CONTROL_RANK_OWNER, 4000, 4);
	slots[5].active_ms = 3;
	assert_int_equal(admit(0, CONTROL_RANK_ROOT, &victim), CONTROL_ADMIT_EVICT);
	assert_int_equal(victim, 5);
	fill(0, CONTROL_MAX_CLIENTS, CONTROL_RANK_ROOT, 0, 1);
	slots[63].active_ms = 1;
	assert_int_equal(admit(0, CONTROL_RANK_ROOT, &victim), CONTROL_ADMIT_EVICT);
	assert_int_equal(victim, 63);
	slots[40].rank = CONTROL_RANK_MEMBER;
	slots[40].uid = 2000;
	assert_int_equal(admit(0, CONTROL_RANK_ROOT, &victim), CONTROL_ADMIT_EVICT);
	assert_int_equal(victim, 40);
}

/* A socket directory someone else could change under us is refused. */
static void test_socket_dir_refused(void **state)
{
	struct fixture *f = *state;
	char dir[200], real[210];
	struct stat st;

	control_close(f->ctl);
	f->ctl = NULL;
	snprintf(dir, sizeof(dir), "%s/run", f->dir);
	snprintf(real, sizeof(real), "%s/run.real", f->dir);
	assert_int_equal(chmod(dir, 0777), 0);
	assert_null(control_open(&f->engine, f->config_path, NULL));
	assert_int_equal(chmod(dir, 0775), 0); /* group-writable, and not root's group */
	if (getegid() != 0)
		assert_null(control_open(&f->engine, f->config_path, NULL));
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(rename(dir, real), 0);
	assert_int_equal(symlink(real, dir), 0);
	assert_null(control_open(&f->engine, f->config_path, NULL));
	assert_int_equal(unlink(dir), 0);
	assert_int_equal(rename(real, dir), 0);
	if (geteuid() == 0) {
		assert_int_equal(chown(dir, 4242, 4242), 0);
		assert_null(control_open(&f->engine, f->config_path, NULL));
		/* unless it is the user the daemon will run as */
		assert_int_equal(chown(dir, 0, 0), 0);
	}
	f->ctl = control_open(&f->engine, f->config_path, NULL);
	assert_non_null(f->ctl);
	/* born with its final mode: nothing chmod's it later */
	assert_int_equal(lstat(f->socket_path, &st), 0);
	assert_int_equal(st.st_mode & 07777, CONFIG_DEFAULT_SOCKET_MODE);
	assert_int_equal(st.st_uid, geteuid());
}

static void test_socket_path_checks(void **state)
{
	struct fixture *f = *state;
	struct control *second;
	int fd;

	/* a live daemon's socket is not taken over */
	assert_null(control_open(&f->engine, f->config_path, NULL));
	control_close(f->ctl);
	f->ctl = NULL;
	/* the file is removed at stop */
	assert_int_equal(access(f->socket_path, F_OK), -1);

	/* a stale socket (nobody listening) is replaced */
	{
		struct sockaddr_un addr = {.sun_family = AF_UNIX};
		strcpy(addr.sun_path, f->socket_path);
		fd = socket(AF_UNIX, SOCK_STREAM, 0);
		assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof(addr)), 0);
		close(fd);
	}
	second = control_open(&f->engine, f->config_path, NULL);
	assert_non_null(second);
	control_close(second);

	/* anything else is left alone, and start is refused */
	close(open(f->socket_path, O_CREAT | O_WRONLY, 0600));
	assert_null(control_open(&f->engine, f->config_path, NULL));
	assert_int_equal(access(f->socket_path, F_OK), 0);
	unlink(f->socket_path);
	f->ctl = control_open(&f->engine, f->config_path, NULL);
	assert_non_null(f->ctl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_every_command),
		cmocka_unit_test(test_parse_refusals),
		cmocka_unit_test(test_parse_fleet_words),
		cmocka_unit_test(test_peer_in_group),
		cmocka_unit_test(test_reply_header),
		cmocka_unit_test_setup_teardown(test_hello_status_stats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_worker_figures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_and_state_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_peer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_failure_changes_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_framing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_garbage_drops_only_that_client, setup, teardown),
		cmocka_unit_test_setup_teardown(test_client_that_does_not_read, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_real_socket_and_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_request_deadline, setup, teardown),
		cmocka_unit_test(test_slots_policy),
		cmocka_unit_test_setup_teardown(test_socket_dir_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_socket_path_checks, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
