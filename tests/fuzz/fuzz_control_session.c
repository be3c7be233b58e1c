/* Fuzz target: a whole control-socket session against the real server
 * code (control.c, control_commands.c, state.c), as any local user who can
 * open the socket could run it: arbitrary bytes, in chunks of varying size,
 * then end of input. Framing (partial lines, pipelining, over-long lines,
 * binary bytes), the commands and their replies are all exercised.
 *
 * Input: byte 0 chooses the peer (bit 0: privileged) and the chunk size
 * (the other bits); the rest is what the client sends.
 *
 * Checks: the server ends the session (no hang); the reply stream is a
 * sequence of well-formed "OK <len>" / "ERR <code> <len>" headers each
 * followed by exactly <len> bytes; a read-only peer changes nothing.
 *
 * The engine is faked (tests/lib/fake_engine.c), as in the control unit
 * test: no queues, no kernel rules. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "control.h"
#include "fake_engine.h"
#include "log.h"
#include "protocol.h"
#include "sites.h"
#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
/* Far more rounds than any input needs: the server serves 16 requests per
 * client per round and an input holds at most a few thousand. */
#define MAX_ROUNDS 20000
#define MAX_REPLY_BYTES (4u * 1024u * 1024u)

/* ---- the server, set up once ---- */

static struct engine engine;
static struct control *ctl;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* tmpfs when there is one: state changes fsync the state file */
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
	static char dir[128], config_path[192];
	struct config_errors errors = { 0 };
	FILE *f;

	(void)argc;
	(void)argv;
	log_init("fuzz_control_session", LOG_LEVEL_ERROR);
	snprintf(dir, sizeof(dir), "%s/gk-fuzz-control.XXXXXX", base);
	CHECK(mkdtemp(dir));
	snprintf(config_path, sizeof(config_path), "%s/gk.yaml", dir);
	f = fopen(config_path, "w");
	CHECK(f);
	fprintf(f,
		"control: {socket: %s/control.sock}\n"
		"state_file: %s/state\n"
		"sites:\n"
		"  - {name: shop, addresses: [198.51.100.10, \"2001:db8:2::10\"], ports: [443, 8443]}\n"
		"  - {name: blog, addresses: [198.51.100.11], state: offline, action: reject}\n"
		"  - {name: wiki, addresses: [198.51.100.12], state: offline}\n",
		dir, dir);
	CHECK(fclose(f) == 0);
	CHECK(fake_engine_init(&engine, config_path, &errors) == 0);
	ctl = control_open(&engine, config_path, NULL);
	CHECK(ctl);
	/* the directory is left behind on exit (a few hundred bytes): libFuzzer
	 * offers no hook at the end of a run */
	return 0;
}

/* ---- one session ---- */

struct snapshot {
	size_t n;
	enum site_state state[8];
	enum site_action action[8];
	enum site_source source[8];
};

static void take_snapshot(struct snapshot *s)
{
	s->n = sites_count(engine.sites);
	CHECK(s->n <= 8);
	for (size_t i = 0; i < s->n; i++) {
		const struct site *site = sites_at(engine.sites, i);

		s->state[i] = site_state(site);
		s->action[i] = site_action(site);
		s->source[i] = site_source(site);
	}
}

/* Reads what the server sent so far; false once it has closed. */
static bool drain(int fd, char **buf, size_t *len, size_t *cap)
{
	for (;;) {
		if (*cap - *len < 4096) {
			CHECK(*cap < MAX_REPLY_BYTES);
			*cap = *cap ? *cap * 2 : 65536;
			*buf = realloc(*buf, *cap);
			CHECK(*buf);
		}
		ssize_t n = recv(fd, *buf + *len, *cap - *len, MSG_DONTWAIT);
		if (n > 0) {
			*len += (size_t)n;
			continue;
		}
		/* ECONNRESET: the server closed with our bytes unread (after a
		 * malformed line); what it sent before was still delivered */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return false;
		CHECK(errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR);
		return true;
	}
}

/* The stream must split exactly into header + body replies. */
static void check_replies(const char *buf, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		const char *nl = memchr(buf + pos, '\n', len - pos);
		char header[PROTOCOL_MAX_HEADER];
		struct protocol_reply_header h;
		size_t hlen;

		CHECK(nl);
		hlen = (size_t)(nl - (buf + pos));
		CHECK(hlen < sizeof(header));
		memcpy(header, buf + pos, hlen);
		header[hlen] = '\0';
		CHECK(protocol_parse_reply_header(header, &h) == 0);
		pos += hlen + 1;
		CHECK(len - pos >= h.len);
		pos += h.len;
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct control_peer peer = { .uid = 1000, .gid = 1000, .pid = 1 };
	struct snapshot before, after;
	size_t chunk, sent = 0, len = 0, cap = 0;
	char *replies = NULL;
	bool open = true;
	int sv[2], rounds;

	if (size < 1)
		return 0;
	peer.privileged = data[0] & 1;
	if (peer.privileged)
		peer.uid = peer.gid = 0;
	chunk = 1 + (size_t)(data[0] >> 1) * 41; /* 1 .. 5208 bytes */
	data++;
	size--;

	take_snapshot(&before);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK(control_adopt(ctl, sv[0], &peer) == 0);
	CHECK(fcntl(sv[1], F_SETFL, O_NONBLOCK) == 0);

	for (rounds = 0; open && rounds < MAX_ROUNDS; rounds++) {
		if (sent < size) {
			size_t n = size - sent < chunk ? size - sent : chunk;
			ssize_t w = send(sv[1], data + sent, n, MSG_NOSIGNAL | MSG_DONTWAIT);

			/* EPIPE/ECONNRESET: the server hung up on us (malformed) */
			if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
				sent = size;
			else if (w > 0)
				sent += (size_t)w;
			if (sent == size)
				shutdown(sv[1], SHUT_WR);
		} else if (size == 0 && rounds == 0) {
			shutdown(sv[1], SHUT_WR);
		}
		control_dispatch(ctl);
		open = drain(sv[1], &replies, &len, &cap);
	}
	CHECK(!open); /* the server must end every session */
	close(sv[1]);

	check_replies(replies, len);
	take_snapshot(&after);
	if (!peer.privileged) {
		CHECK(before.n == after.n);
		for (size_t i = 0; i < before.n; i++)
			CHECK(before.state[i] == after.state[i] && before.action[i] == after.action[i] &&
			      before.source[i] == after.source[i]);
	}
	/* the next input starts from the config's states again */
	for (size_t i = 0; i < sites_count(engine.sites); i++)
		site_clear_override(sites_at(engine.sites, i));
	free(replies);
	return 0;
}
