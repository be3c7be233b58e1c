/* Tests of etcd_client against real etcd processes (no mocks): each test
 * run starts its own etcd members on 127.0.0.1 with free ports and data in
 * a temporary directory, drives the client with the poll loop the daemon
 * uses (etcd_client_fd / _timeout_ms / _dispatch), and kills and removes
 * everything on every way out: normal end, failed assertion, signal, or the
 * alarm that bounds the whole run. Exit 77 (skipped) without `etcd`. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <curl/curl.h>

#include "clock.h"
#include "etcd_client.h"

#define RUN_LIMIT_S 60 /* the alarm: a hung test fails instead of hanging CI */
#define REQUEST_TIMEOUT_MS 600

/* ---- etcd processes */

struct member {
	pid_t pid;
	char dir[128];
	char url[64]; /* client URL */
	bool tls;
};

#define MAX_MEMBERS 3
static struct member members[MAX_MEMBERS];
static char top_dir[64]; /* every member's directory is inside */

/* Async-signal-safe: kill what runs, remove what was written. */
static void cleanup_all(void)
{
	for (size_t i = 0; i < MAX_MEMBERS; i++)
		if (members[i].pid > 0) {
			kill(members[i].pid, SIGKILL);
			kill(members[i].pid, SIGCONT);
			waitpid(members[i].pid, NULL, 0);
			members[i].pid = 0;
		}
	if (top_dir[0]) {
		pid_t pid = fork();

		if (pid == 0) {
			execl("/bin/rm", "rm", "-rf", top_dir, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, NULL, 0);
		top_dir[0] = '\0';
	}
}

static void on_signal(int sig)
{
	static const char msg[] = "test_etcd_client: killed by a signal or the time limit\n";

	cleanup_all();
	if (write(2, msg, sizeof(msg) - 1) < 0) {
		/* nothing left to tell */
	}
	_exit(sig == SIGALRM ? 1 : 128 + sig);
}

/* A port on 127.0.0.1 nobody listens on now. */
static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;

	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static bool port_open(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	close(fd);
	return ok;
}

/* Starts member I; with TLS, the certificates in top_dir/pki. */
static void member_start(size_t i, bool tls)
{
	struct member *m = &members[i];
	int cport = free_port(), pport = free_port(), mport = free_port();
	char listen[96], peer[96], cluster[128], metrics[96], data[160], logf[160];
	char pki[160], ca[192], cert[192], key[192];
	uint64_t until;

	snprintf(m->dir, sizeof(m->dir), "%s/m%zu", top_dir, i);
	assert_int_equal(mkdir(m->dir, 0700), 0);
	m->tls = tls;
	snprintf(m->url, sizeof(m->url), "%s://127.0.0.1:%d", tls ? "https" : "http", cport);
	snprintf(listen, sizeof(listen), "%s", m->url);
	snprintf(peer, sizeof(peer), "http://127.0.0.1:%d", pport);
	snprintf(cluster, sizeof(cluster), "m%zu=%s", i, peer);
	snprintf(metrics, sizeof(metrics), "http://127.0.0.1:%d", mport);
	snprintf(data, sizeof(data), "%s/data", m->dir);
	snprintf(logf, sizeof(logf), "%s/etcd.log", m->dir);
	snprintf(pki, sizeof(pki), "%s/pki", top_dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", pki);
	snprintf(cert, sizeof(cert), "%s/server.pem", pki);
	snprintf(key, sizeof(key), "%s/server.key", pki);
	m->pid = fork();
	assert_true(m->pid >= 0);
	if (m->pid == 0) {
		char name[8];
		int fd = open(logf, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

		/* never outlive the test, even if it is SIGKILLed */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		snprintf(name, sizeof(name), "m%zu", i);
		if (tls)
			execlp("etcd", "etcd", "--name", name, "--data-dir", data,
			       "--listen-client-urls", listen, "--advertise-client-urls", listen,
			       "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			       "--initial-cluster", cluster, "--listen-metrics-urls", metrics,
			       "--client-cert-auth", "--trusted-ca-file", ca, "--cert-file", cert,
			       "--key-file", key, (char *)NULL);
		else
			execlp("etcd", "etcd", "--name", name, "--data-dir", data,
			       "--listen-client-urls", listen, "--advertise-client-urls", listen,
			       "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
			       "--initial-cluster", cluster, "--listen-metrics-urls", metrics,
			       "--experimental-watch-progress-notify-interval=500ms", (char *)NULL);
		_exit(127);
	}
	until = clock_now_ms() + 15000;
	while (!port_open(cport)) {
		int status;

		if (waitpid(m->pid, &status, WNOHANG) == m->pid) {
			m->pid = 0;
			fail_msg("etcd exited at start; see %s", logf);
		}
		if (clock_now_ms() > until)
			fail_msg("etcd did not listen within 15 s; see %s", logf);
		usleep(20000);
	}
}

static void member_signal(size_t i, int sig)
{
	assert_true(members[i].pid > 0);
	assert_int_equal(kill(members[i].pid, sig), 0);
	if (sig == SIGKILL) {
		waitpid(members[i].pid, NULL, 0);
		members[i].pid = 0;
	}
}

/* ---- driving the client as main() will */

/* Polls and dispatches until *FLAG or MAX_MS passed; whether *FLAG. */
static bool run_until(struct etcd_client *c, const bool *flag, int max_ms)
{
	uint64_t until = clock_now_ms() + (uint64_t)max_ms;

	while (!*flag) {
		uint64_t now = clock_now_ms();
		struct pollfd p = { .fd = etcd_client_fd(c), .events = POLLIN };
		int t = etcd_client_timeout_ms(c);

		if (now >= until)
			return false;
		if (t < 0 || (uint64_t)t > until - now)
			t = (int)(until - now);
		poll(&p, 1, t);
		etcd_client_dispatch(c);
	}
	return true;
}

/* What a unary callback saw, copied out. */
struct outcome {
	bool done;
	int calls;
	enum etcd_result_kind kind;
	int http_status, grpc_code;
	char detail[256];
	int64_t revision, count, deleted, id, ttl;
	size_t n_kvs;
	bool succeeded;
	char value[64]; /* the first kv's value */
};

static void record(void *arg, const struct etcd_result *r)
{
	struct outcome *o = arg;

	o->done = true;
	o->calls++;
	o->kind = r->kind;
	o->http_status = r->http_status;
	o->grpc_code = r->error.grpc_code;
	snprintf(o->detail, sizeof(o->detail), "%s", r->detail);
	if (r->reply) {
		o->revision = r->reply->header.revision;
		o->count = r->reply->count;
		o->deleted = r->reply->deleted;
		o->id = r->reply->id;
		o->ttl = r->reply->ttl;
		o->n_kvs = r->reply->n_kvs;
		o->succeeded = r->reply->succeeded;
		if (r->reply->n_kvs)
			snprintf(o->value, sizeof(o->value), "%s", r->reply->kvs[0].value);
	}
}

/* Runs C until O is done (5 s at most), whatever the outcome. */
static void wait_done(struct etcd_client *c, struct outcome *o)
{
	if (!run_until(c, &o->done, 5000))
		fail_msg("no answer within 5 s");
}

/* Runs C until O is done (5 s at most) and expects KIND. */
static void wait_for(struct etcd_client *c, struct outcome *o, enum etcd_result_kind kind)
{
	if (!run_until(c, &o->done, 5000))
		fail_msg("no answer within 5 s");
	if (o->kind != kind)
		fail_msg("got %s (%s), wanted %s", etcd_result_kind_name(o->kind), o->detail,
			 etcd_result_kind_name(kind));
	assert_int_equal(o->calls, 1);
}

#define MAX_SEEN 64
struct watcher {
	int created, progress, canceled, errors;
	int64_t compact_revision, progress_revision;
	size_t n;
	struct {
		enum etcd_event_type type;
		char key[32];
		int64_t mod_revision;
	} seen[MAX_SEEN];
	bool ended;
	struct outcome end;
};

static void watch_msg(void *arg, const struct etcd_watch_msg *m)
{
	struct watcher *w = arg;

	switch (m->kind) {
	case ETCD_WATCH_CREATED:
		w->created++;
		break;
	case ETCD_WATCH_PROGRESS:
		w->progress++;
		w->progress_revision = m->header.revision;
		break;
	case ETCD_WATCH_CANCELED:
		w->canceled++;
		w->compact_revision = m->compact_revision;
		break;
	case ETCD_WATCH_ERROR:
		w->errors++;
		break;
	case ETCD_WATCH_EVENTS:
		for (size_t i = 0; i < m->n_events && w->n < MAX_SEEN; i++, w->n++) {
			w->seen[w->n].type = m->events[i].type;
			snprintf(w->seen[w->n].key, sizeof(w->seen[w->n].key), "%s",
				 m->events[i].kv.key);
			w->seen[w->n].mod_revision = m->events[i].kv.mod_revision;
		}
		break;
	}
}

static void watch_end(void *arg, const struct etcd_result *r)
{
	struct watcher *w = arg;

	w->ended = true;
	record(&w->end, r);
}

static struct etcd_client *client_for(const char *const *urls, size_t n)
{
	struct etcd_client_opts o = { .endpoints = urls, .n_endpoints = n,
				      .request_timeout_ms = REQUEST_TIMEOUT_MS };
	struct etcd_client *c = etcd_client_open(&o);

	assert_non_null(c);
	return c;
}

static struct etcd_client *client_on(size_t i)
{
	const char *url = members[i].url;

	return client_for(&url, 1);
}

#define S(text) text, strlen(text)

/* ---- the tests (in order: the last ones stop and kill members) */

static void test_kv(void **state)
{
	struct etcd_client *c = client_on(0);
	struct outcome put = { 0 }, get = { 0 }, pre = { 0 }, c1 = { 0 }, c2 = { 0 }, del = { 0 },
		       none = { 0 };

	(void)state;
	/* the member may still be electing itself: retry a few times */
	for (int i = 0; i < 50; i++) {
		memset(&put, 0, sizeof(put));
		assert_true(etcd_client_put(c, S("/t/a"), S("one"), 0, record, &put) > 0);
		wait_done(c, &put);
		if (put.kind == ETCD_RESULT_OK)
			break;
		usleep(100000);
	}
	assert_int_equal(put.kind, ETCD_RESULT_OK);
	assert_true(put.revision > 0);

	assert_true(etcd_client_range(c, S("/t/a"), false, record, &get) > 0);
	wait_for(c, &get, ETCD_RESULT_OK);
	assert_int_equal(get.n_kvs, 1);
	assert_string_equal(get.value, "one");
	assert_true(get.revision >= put.revision);

	assert_true(etcd_client_txn_create(c, S("/t/b"), S("two"), 0, record, &c1) > 0);
	wait_for(c, &c1, ETCD_RESULT_OK);
	assert_true(c1.succeeded);
	assert_true(etcd_client_txn_create(c, S("/t/b"), S("again"), 0, record, &c2) > 0);
	wait_for(c, &c2, ETCD_RESULT_OK);
	assert_false(c2.succeeded);

	assert_true(etcd_client_range(c, S("/t/"), true, record, &pre) > 0);
	wait_for(c, &pre, ETCD_RESULT_OK);
	assert_int_equal(pre.n_kvs, 2);
	assert_int_equal(pre.count, 2);

	assert_true(etcd_client_delete(c, S("/t/"), true, record, &del) > 0);
	wait_for(c, &del, ETCD_RESULT_OK);
	assert_int_equal(del.deleted, 2);
	assert_true(etcd_client_range(c, S("/t/"), true, record, &none) > 0);
	wait_for(c, &none, ETCD_RESULT_OK);
	assert_int_equal(none.n_kvs, 0);
	assert_int_equal(none.count, 0);
	etcd_client_close(c);
}

static void test_lease(void **state)
{
	struct etcd_client *c = client_on(0);
	struct outcome grant = { 0 }, put = { 0 }, ka = { 0 }, rev = { 0 }, get = { 0 }, dead = { 0 },
		       bad = { 0 };

	(void)state;
	assert_true(etcd_client_lease_grant(c, 5, record, &grant) > 0);
	wait_for(c, &grant, ETCD_RESULT_OK);
	assert_true(grant.id > 0);
	assert_int_equal(grant.ttl, 5);
	assert_true(etcd_client_put(c, S("/l/box"), S("here"), grant.id, record, &put) > 0);
	wait_for(c, &put, ETCD_RESULT_OK);
	assert_true(etcd_client_lease_keepalive(c, grant.id, record, &ka) > 0);
	wait_for(c, &ka, ETCD_RESULT_OK);
	assert_true(ka.id == grant.id);
	assert_true(ka.ttl > 0);

	assert_true(etcd_client_lease_revoke(c, grant.id, record, &rev) > 0);
	wait_for(c, &rev, ETCD_RESULT_OK);
	assert_true(etcd_client_range(c, S("/l/box"), false, record, &get) > 0);
	wait_for(c, &get, ETCD_RESULT_OK);
	assert_int_equal(get.n_kvs, 0);
	/* a keepalive for a dead lease: no TTL */
	assert_true(etcd_client_lease_keepalive(c, grant.id, record, &dead) > 0);
	wait_for(c, &dead, ETCD_RESULT_OK);
	assert_int_equal(dead.ttl, 0);
	/* a put on it: etcd's error, code 5 (not found) with HTTP 404 */
	assert_true(etcd_client_put(c, S("/l/box"), S("x"), grant.id, record, &bad) > 0);
	wait_for(c, &bad, ETCD_RESULT_ETCD_ERROR);
	assert_int_equal(bad.grpc_code, 5);
	assert_int_equal(bad.http_status, 404);
	etcd_client_close(c);
}

static void test_cancel(void **state)
{
	struct etcd_client *c = client_on(0);
	struct outcome a = { 0 }, b = { 0 };
	uint64_t id;

	(void)state;
	id = etcd_client_range(c, S("/"), true, record, &a);
	assert_true(id > 0);
	assert_true(etcd_client_range(c, S("/"), true, record, &b) > 0);
	etcd_client_cancel(c, id);
	etcd_client_cancel(c, id); /* twice: ignored */
	wait_for(c, &b, ETCD_RESULT_OK);
	run_until(c, &a.done, 200);
	assert_false(a.done);
	/* a request in flight at close: no callback after */
	assert_true(etcd_client_range(c, S("/"), true, record, &a) > 0);
	etcd_client_close(c);
	assert_false(a.done);
}

static void test_watch(void **state)
{
	struct etcd_client *c = client_on(0);
	struct watcher w = { 0 };
	struct outcome p1 = { 0 }, p2 = { 0 }, d1 = { 0 };
	bool flag = false;
	uint64_t id;

	(void)state;
	id = etcd_client_watch(c, S("/w/"), true, 0, watch_msg, watch_end, &w);
	assert_true(id > 0);
	assert_true(etcd_client_watching(c));
	while (!w.created && !w.ended)
		run_until(c, &flag, 50);
	assert_int_equal(w.created, 1);

	assert_true(etcd_client_put(c, S("/w/1"), S("a"), 0, record, &p1) > 0);
	wait_for(c, &p1, ETCD_RESULT_OK);
	assert_true(etcd_client_put(c, S("/w/2"), S("b"), 0, record, &p2) > 0);
	wait_for(c, &p2, ETCD_RESULT_OK);
	assert_true(etcd_client_delete(c, S("/w/1"), false, record, &d1) > 0);
	wait_for(c, &d1, ETCD_RESULT_OK);
	/* outside the prefix: never seen */
	memset(&p1, 0, sizeof(p1));
	assert_true(etcd_client_put(c, S("/x/1"), S("z"), 0, record, &p1) > 0);
	wait_for(c, &p1, ETCD_RESULT_OK);
	for (int i = 0; i < 40 && w.n < 3; i++)
		run_until(c, &flag, 50);
	assert_int_equal(w.n, 3);
	assert_int_equal(w.seen[0].type, ETCD_EVENT_PUT);
	assert_string_equal(w.seen[0].key, "/w/1");
	assert_int_equal(w.seen[1].type, ETCD_EVENT_PUT);
	assert_string_equal(w.seen[1].key, "/w/2");
	assert_int_equal(w.seen[2].type, ETCD_EVENT_DELETE);
	assert_string_equal(w.seen[2].key, "/w/1");
	assert_true(w.seen[0].mod_revision == p2.revision - 1);
	assert_true(w.seen[1].mod_revision == p2.revision);
	assert_true(w.seen[2].mod_revision == d1.revision);

	/* progress notifications every 500 ms, at the newest revision */
	for (int i = 0; i < 40 && w.progress == 0; i++)
		run_until(c, &flag, 50);
	assert_true(w.progress > 0);
	assert_true(w.progress_revision >= p1.revision);
	assert_false(w.ended);

	etcd_client_cancel(c, id);
	assert_false(etcd_client_watching(c));
	run_until(c, &flag, 100);
	assert_false(w.ended);
	etcd_client_close(c);
}

static size_t discard(char *data, size_t size, size_t n, void *arg)
{
	return size * n;
}

/* Compacts member 0 at REVISION, by hand (the client has no call for it). */
static void compact(int64_t revision)
{
	char url[128], body[64];
	CURL *e = curl_easy_init();
	long status = 0;

	snprintf(url, sizeof(url), "%s/v3/kv/compaction", members[0].url);
	snprintf(body, sizeof(body), "{\"revision\":\"%lld\",\"physical\":true}", (long long)revision);
	curl_easy_setopt(e, CURLOPT_URL, url);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_PROXY, "");
	assert_int_equal(curl_easy_perform(e), CURLE_OK);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	assert_int_equal(status, 200);
	curl_easy_cleanup(e);
}

static void test_watch_compacted(void **state)
{
	struct etcd_client *c = client_on(0);
	struct watcher w = { 0 };
	struct outcome put = { 0 };

	(void)state;
	assert_true(etcd_client_put(c, S("/c/x"), S("1"), 0, record, &put) > 0);
	wait_for(c, &put, ETCD_RESULT_OK);
	compact(put.revision);
	assert_true(etcd_client_watch(c, S("/c/"), true, 1, watch_msg, watch_end, &w) > 0);
	if (!run_until(c, &w.ended, 5000))
		fail_msg("the canceled watch was not closed");
	assert_int_equal(w.canceled, 1);
	assert_true(w.compact_revision == put.revision);
	assert_int_equal(w.end.kind, ETCD_RESULT_WATCH_CANCELED);
	assert_int_equal(w.end.calls, 1);
	assert_false(etcd_client_watching(c));
	etcd_client_close(c);
}

/* Something at the endpoint's address that is not the v3 gateway: a
 * path etcd does not serve answers 404. */
static void test_http_error(void **state)
{
	char url[160];
	const char *u = url;
	struct etcd_client *c;
	struct outcome o = { 0 };

	(void)state;
	snprintf(url, sizeof(url), "%s/no/such/prefix/", members[0].url);
	c = client_for(&u, 1);
	assert_true(etcd_client_range(c, S("/"), true, record, &o) > 0);
	wait_done(c, &o);
	assert_int_equal(o.http_status, 404);
	assert_true(o.kind == ETCD_RESULT_HTTP_ERROR || o.kind == ETCD_RESULT_ETCD_ERROR);
	print_message("a wrong path: %s (%s)\n", etcd_result_kind_name(o.kind), o.detail);
	etcd_client_close(c);
}

static void test_next_endpoint(void **state)
{
	const char *urls[] = { members[0].url, members[1].url };
	struct etcd_client *c = client_for(urls, 2);
	struct watcher w = { 0 };
	struct outcome put = { 0 }, get = { 0 }, slow = { 0 };
	bool flag = false;

	(void)state;
	assert_string_equal(etcd_client_endpoint(c), members[0].url);
	assert_true(etcd_client_put(c, S("/n/only-on-0"), S("x"), 0, record, &put) > 0);
	wait_for(c, &put, ETCD_RESULT_OK);
	assert_true(etcd_client_watch(c, S("/n/"), true, 0, watch_msg, watch_end, &w) > 0);
	while (!w.created && !w.ended)
		run_until(c, &flag, 50);
	assert_true(etcd_client_range(c, S("/"), true, record, &slow) > 0);

	etcd_client_next_endpoint(c);
	/* both abandoned at once, from the call itself */
	assert_true(w.ended);
	assert_int_equal(w.end.kind, ETCD_RESULT_ABANDONED);
	assert_true(slow.done);
	assert_int_equal(slow.kind, ETCD_RESULT_ABANDONED);
	assert_false(etcd_client_watching(c));
	assert_string_equal(etcd_client_endpoint(c), members[1].url);

	/* member 1 is another cluster: it has no such key */
	assert_true(etcd_client_range(c, S("/n/only-on-0"), false, record, &get) > 0);
	wait_for(c, &get, ETCD_RESULT_OK);
	assert_int_equal(get.n_kvs, 0);
	etcd_client_next_endpoint(c);
	assert_string_equal(etcd_client_endpoint(c), members[0].url);
	etcd_client_close(c);
}

/* etcd's SIGTERM ends the stream cleanly (FLEET-NOTES.md). */
static void test_terminated_member_ends_watch(void **state)
{
	struct etcd_client *c = client_on(1);
	struct watcher w = { 0 };
	bool flag = false;

	(void)state;
	assert_true(etcd_client_watch(c, S("/k/"), true, 0, watch_msg, watch_end, &w) > 0);
	while (!w.created && !w.ended)
		run_until(c, &flag, 50);
	assert_int_equal(w.created, 1);
	member_signal(1, SIGTERM);
	if (!run_until(c, &w.ended, 5000))
		fail_msg("the watch did not end within 5 s of SIGTERM");
	print_message("SIGTERM: %s (%s)\n", etcd_result_kind_name(w.end.kind), w.end.detail);
	assert_int_equal(w.end.kind, ETCD_RESULT_OK);
	assert_false(etcd_client_watching(c));
	etcd_client_close(c);
}

static void test_stopped_member_times_out(void **state)
{
	struct etcd_client *c = client_on(0);
	struct outcome warm = { 0 }, put = { 0 };
	uint64_t start, took;

	(void)state;
	assert_true(etcd_client_range(c, S("/"), true, record, &warm) > 0);
	wait_for(c, &warm, ETCD_RESULT_OK);
	member_signal(0, SIGSTOP);
	start = clock_now_ms();
	assert_true(etcd_client_put(c, S("/s/x"), S("1"), 0, record, &put) > 0);
	wait_for(c, &put, ETCD_RESULT_TIMEOUT);
	took = clock_now_ms() - start;
	member_signal(0, SIGCONT);
	if (took < REQUEST_TIMEOUT_MS - 50 || took > REQUEST_TIMEOUT_MS + 400)
		fail_msg("timed out after %llu ms, not %d", (unsigned long long)took,
			 REQUEST_TIMEOUT_MS);
	etcd_client_close(c);
}

static void test_killed_member_ends_watch(void **state)
{
	struct etcd_client *c = client_on(0);
	struct watcher w = { 0 };
	struct outcome refused = { 0 };
	bool flag = false;

	(void)state;
	assert_true(etcd_client_watch(c, S("/k/"), true, 0, watch_msg, watch_end, &w) > 0);
	while (!w.created && !w.ended)
		run_until(c, &flag, 50);
	assert_int_equal(w.created, 1);
	member_signal(0, SIGKILL);
	if (!run_until(c, &w.ended, 3000))
		fail_msg("the watch did not end within 3 s of SIGKILL");
	assert_int_equal(w.end.kind, ETCD_RESULT_TRANSPORT);
	assert_non_null(strstr(w.end.detail, "curl error"));
	/* and nothing answers any more */
	assert_true(etcd_client_range(c, S("/"), true, record, &refused) > 0);
	wait_for(c, &refused, ETCD_RESULT_TRANSPORT);
	etcd_client_close(c);
}

/* ---- TLS with client certificates */

static int sh(const char *cmd)
{
	int rc = system(cmd);

	return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void make_pki(void)
{
	char cmd[2048];

	/* serverAuth AND clientAuth on the server: etcd 3.4's gateway dials
	 * its own gRPC port with that certificate (FLEET-NOTES.md) */
	snprintf(cmd, sizeof(cmd),
		 "set -e; d=%s/pki; mkdir -p $d; cd $d; exec 2>openssl.log >&2;"
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
		 " -subj /CN=test-ca -keyout ca.key -out ca.pem;"
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=etcd"
		 " -keyout server.key -out server.csr;"
		 "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth,clientAuth\\n' >server.ext;"
		 "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
		 " -extfile server.ext -out server.pem;"
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=box1"
		 " -keyout client.key -out client.csr;"
		 "printf 'extendedKeyUsage=clientAuth\\n' >client.ext;"
		 "openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
		 " -extfile client.ext -out client.pem",
		 top_dir);
	if (sh(cmd) != 0)
		fail_msg("openssl failed: see %s/pki/openssl.log", top_dir);
}

static void test_tls(void **state)
{
	char ca[128], cert[128], key[128];
	const char *url;
	struct etcd_client_opts o = { .n_endpoints = 1, .request_timeout_ms = 3000 };
	struct etcd_client *with, *without;
	struct outcome ok = { 0 }, refused = { 0 };

	(void)state;
	make_pki();
	member_start(2, true);
	url = members[2].url;
	snprintf(ca, sizeof(ca), "%s/pki/ca.pem", top_dir);
	snprintf(cert, sizeof(cert), "%s/pki/client.pem", top_dir);
	snprintf(key, sizeof(key), "%s/pki/client.key", top_dir);
	o.endpoints = &url;
	o.ca_file = ca;
	o.cert_file = cert;
	o.key_file = key;
	with = etcd_client_open(&o);
	o.cert_file = o.key_file = NULL;
	without = etcd_client_open(&o);
	assert_non_null(with);
	assert_non_null(without);

	for (int i = 0; i < 50; i++) {
		memset(&ok, 0, sizeof(ok));
		assert_true(etcd_client_put(with, S("/tls/x"), S("1"), 0, record, &ok) > 0);
		wait_done(with, &ok);
		if (ok.kind == ETCD_RESULT_OK)
			break;
		usleep(100000);
	}
	if (ok.kind != ETCD_RESULT_OK)
		fail_msg("with a client certificate: %s", ok.detail);

	assert_true(etcd_client_range(without, S("/tls/x"), false, record, &refused) > 0);
	wait_for(without, &refused, ETCD_RESULT_TRANSPORT);
	print_message("without a client certificate: %s\n", refused.detail);
	etcd_client_close(with);
	etcd_client_close(without);
}

static int group_setup(void **state)
{
	(void)state;
	snprintf(top_dir, sizeof(top_dir), "/tmp/gk-etcd-test.XXXXXX");
	if (!mkdtemp(top_dir)) {
		top_dir[0] = '\0';
		return -1;
	}
	member_start(0, false);
	member_start(1, false);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	cleanup_all();
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_kv),
		cmocka_unit_test(test_lease),
		cmocka_unit_test(test_cancel),
		cmocka_unit_test(test_watch),
		cmocka_unit_test(test_watch_compacted),
		cmocka_unit_test(test_http_error),
		cmocka_unit_test(test_next_endpoint),
		cmocka_unit_test(test_tls),
		cmocka_unit_test(test_terminated_member_ends_watch),
		cmocka_unit_test(test_stopped_member_times_out),
		cmocka_unit_test(test_killed_member_ends_watch),
	};
	struct sigaction sa = { .sa_handler = on_signal };
	int rc;

	if (sh("command -v etcd >/dev/null") != 0) {
		fprintf(stderr, "etcd not installed: skipped\n");
		return 77;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	/* a member's death must not kill the test through a write */
	signal(SIGPIPE, SIG_IGN);
	alarm(RUN_LIMIT_S);
	rc = cmocka_run_group_tests(tests, group_setup, group_teardown);
	cleanup_all();
	return rc;
}
