/* syn_ledger: paced IPv4 SYNs to a set of sites, every answer accounted for.
 *
 *   syn_ledger --src ADDR [--src-count N] --seconds S [--rate PPS] [--wait-ms MS]
 *              [--control SOCKET [--toggle-ms MS] [--settle-ms MS]] [--progress S]
 *              NAME=ADDR:PORT:EXPECT ...
 *
 * Each SYN is sent through a raw socket from one of N consecutive source
 * addresses starting at ADDR, with its sequence number as its ledger
 * entry; the answer is read back from a raw TCP socket by its ack number:
 * a SYN-ACK (the server got it: accept), a RST (reject), or nothing within
 * --wait-ms (drop). EXPECT is accept, drop, reject or any (count only).
 *
 * With --control, one site after another (those not "any") is toggled
 * every --toggle-ms through gatekeeperd's control socket, cycling accept
 * -> drop -> reject -> accept ("online NAME", "offline NAME drop|reject").
 * No SYN goes to that site from --settle-ms before the command until its
 * OK reply, so every SYN's expected verdict is the state at that moment,
 * with no window of doubt: any other outcome is a mismatch.
 *
 * Only documentation addresses (RFC 5737), only IPv4. Stops by itself
 * after S seconds (at most 3600). --rate 0: as fast as it can.
 * Prints one line per site and a total; exit 0 if no mismatch and no
 * failed toggle, 1 otherwise, 2 on usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "syn_packet.h"

#define MAX_SITES 32
#define MAX_SRC 64
#define SHOW_MISMATCHES 10

enum outcome { NONE, ACCEPT, DROP, REJECT, ANY };
static const char *const outcome_names[] = {"none", "accept", "drop", "reject", "any"};

struct site {
	char name[65];
	uint32_t addr; /* host order */
	uint16_t port;
	enum outcome expect;
	bool paused;
	uint64_t sent, got[4], mismatch;
};

struct record {
	uint32_t seq;
	uint32_t src;
	uint16_t sport;
	uint8_t site, expect, outcome;
	bool live;
	double sent_at;
};

static struct site sites[MAX_SITES];
static int n_sites;
static struct record *ring;
static uint32_t ring_mask;
static double t0;
static uint64_t shown_mismatches;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

static void settle(struct record *r)
{
	struct site *s = &sites[r->site];
	enum outcome got = r->outcome == NONE ? DROP : (enum outcome)r->outcome;

	s->got[got]++;
	if (r->expect != ANY && got != r->expect) {
		s->mismatch++;
		if (shown_mismatches++ < SHOW_MISMATCHES)
			fprintf(stderr, "syn_ledger: mismatch at %.3f s: site %s seq %u expected %s, got %s\n",
				r->sent_at - t0, s->name, r->seq, outcome_names[r->expect],
				outcome_names[got]);
	}
	r->live = false;
}

static void on_packet(const uint8_t *p, size_t len)
{
	size_t ihl;
	const uint8_t *tcp;
	uint32_t ack, src;
	uint8_t flags;
	struct record *r;

	if (len < 20 || (p[0] >> 4) != 4 || p[9] != IPPROTO_TCP)
		return;
	ihl = (size_t)(p[0] & 0xf) * 4;
	if (len < ihl + 20)
		return;
	tcp = p + ihl;
	flags = tcp[13];
	if (!(flags & 0x10)) /* every answer we want acks our SYN */
		return;
	ack = get32(tcp + 8);
	r = &ring[(ack - 1) & ring_mask];
	src = get32(p + 12);
	if (!r->live || r->seq != ack - 1 || r->outcome != NONE || get32(p + 16) != r->src ||
	    get16(tcp + 2) != r->sport || src != sites[r->site].addr || get16(tcp) != sites[r->site].port)
		return;
	if (flags & 0x04)
		r->outcome = REJECT;
	else if (flags & 0x02)
		r->outcome = ACCEPT;
}

static void drain(int rx)
{
	uint8_t buf[2048];

	for (;;) {
		ssize_t n = recv(rx, buf, sizeof(buf), MSG_DONTWAIT);
		if (n <= 0)
			return;
		on_packet(buf, (size_t)n);
	}
}

/* One request on a fresh connection; true on an OK reply. */
static bool control_request(const char *path, const char *request)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char reply[4096];
	size_t got = 0;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = false;

	if (fd < 0)
		return false;
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0 &&
	    write(fd, request, strlen(request)) == (ssize_t)strlen(request)) {
		while (got < sizeof(reply) - 1 && !memchr(reply, '\n', got)) {
			struct pollfd pfd = {.fd = fd, .events = POLLIN};
			ssize_t n;
			if (poll(&pfd, 1, 5000) <= 0)
				break;
			n = read(fd, reply + got, sizeof(reply) - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		reply[got] = '\0';
		ok = strncmp(reply, "OK ", 3) == 0;
		if (!ok)
			fprintf(stderr, "syn_ledger: '%.*s' -> '%s'\n", (int)strlen(request) - 1, request,
				reply);
	}
	close(fd);
	return ok;
}

static bool toggle(const char *path, struct site *s)
{
	static const enum outcome next[] = {[ACCEPT] = DROP, [DROP] = REJECT, [REJECT] = ACCEPT};
	enum outcome to = next[s->expect];
	char request[128];

	if (to == ACCEPT)
		snprintf(request, sizeof(request), "online %s\n", s->name);
	else
		snprintf(request, sizeof(request), "offline %s %s\n", s->name,
			 to == DROP ? "drop" : "reject");
	if (!control_request(path, request))
		return false;
	s->expect = to;
	return true;
}

static int parse_site(const char *arg, struct site *s)
{
	char addr[64], expect[16];
	const char *eq = strchr(arg, '=');
	unsigned port;
	struct in_addr a;

	if (!eq || (size_t)(eq - arg) >= sizeof(s->name) || eq == arg)
		return -1;
	memcpy(s->name, arg, (size_t)(eq - arg));
	s->name[eq - arg] = '\0';
	if (sscanf(eq + 1, "%63[0-9.]:%u:%15s", addr, &port, expect) != 3 || port == 0 ||
	    port > 65535 || inet_pton(AF_INET, addr, &a) != 1)
		return -1;
	s->addr = ntohl(a.s_addr);
	s->port = (uint16_t)port;
	for (int i = ACCEPT; i <= ANY; i++)
		if (strcmp(expect, outcome_names[i]) == 0)
			s->expect = (enum outcome)i;
	return s->expect == NONE || !syn_packet_documentation_v4(s->addr) ? -1 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: syn_ledger --src ADDR [--src-count N] --seconds S [--rate PPS] "
			"[--wait-ms MS] [--control SOCKET [--toggle-ms MS] [--settle-ms MS]] "
			"[--progress S] NAME=ADDR:PORT:accept|drop|reject|any ...\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *control = NULL;
	double rate = 1000, seconds = 0, wait_s = 1.0, toggle_s = 1.0, settle_s = 0.05, progress = 0;
	uint32_t src = 0, n_src = 1, seq = 0, aged = 0, ring_size;
	uint64_t sent = 0, next_site = 0, toggles = 0, toggle_failures = 0, mismatches = 0, total[4] = {0};
	double end, next_toggle, next_progress, pause_at = 0;
	int tx, rx, one = 1, rcvbuf = 32 << 20, paused_site = -1, rr = 0, toggled = 0;
	struct in_addr a;

	for (int i = 1; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		if (opt[0] != '-') {
			if (n_sites == MAX_SITES || parse_site(opt, &sites[n_sites]) < 0)
				usage();
			n_sites++;
			continue;
		}
		if (!val)
			usage();
		i++;
		if (strcmp(opt, "--src") == 0 && inet_pton(AF_INET, val, &a) == 1)
			src = ntohl(a.s_addr);
		else if (strcmp(opt, "--src-count") == 0)
			n_src = (uint32_t)atoi(val);
		else if (strcmp(opt, "--seconds") == 0)
			seconds = atof(val);
		else if (strcmp(opt, "--rate") == 0)
			rate = atof(val);
		else if (strcmp(opt, "--wait-ms") == 0)
			wait_s = atof(val) / 1000;
		else if (strcmp(opt, "--control") == 0)
			control = val;
		else if (strcmp(opt, "--toggle-ms") == 0)
			toggle_s = atof(val) / 1000;
		else if (strcmp(opt, "--settle-ms") == 0)
			settle_s = atof(val) / 1000;
		else if (strcmp(opt, "--progress") == 0)
			progress = atof(val);
		else
			usage();
	}
	if (!n_sites || seconds <= 0 || seconds > 3600 || rate < 0 || n_src < 1 || n_src > MAX_SRC ||
	    !syn_packet_documentation_v4(src) || !syn_packet_documentation_v4(src + n_src - 1) ||
	    wait_s <= 0 || toggle_s <= settle_s)
		usage();
	for (toggled = 0, rr = 0; rr < n_sites; rr++)
		toggled += sites[rr].expect != ANY;
	rr = 0;

	/* room for every SYN still waiting for its answer, and then some */
	ring_size = 1u << 16;
	while (ring_size < (rate > 0 ? rate : 500000) * (wait_s + 3) && ring_size < (1u << 24))
		ring_size <<= 1;
	ring = calloc(ring_size, sizeof(*ring));
	ring_mask = ring_size - 1;
	tx = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	rx = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_TCP);
	if (!ring || tx < 0 || rx < 0) {
		perror("syn_ledger: raw sockets (root?)");
		return 1;
	}
	setsockopt(tx, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one));
	if (setsockopt(rx, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) < 0)
		setsockopt(rx, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));

	t0 = now();
	end = t0 + seconds;
	next_toggle = t0 + toggle_s;
	next_progress = progress > 0 ? t0 + progress : end + 1e9;
	for (;;) {
		double t = now();
		uint64_t due;
		int budget = 256;

		if (t >= end && paused_site < 0)
			break;
		/* toggles: pause the site, let its SYNs in flight be decided, switch it */
		if (control && toggled && paused_site < 0 && t >= next_toggle - settle_s) {
			while (sites[rr].expect == ANY)
				rr = (rr + 1) % n_sites;
			paused_site = rr;
			sites[rr].paused = true;
			pause_at = t;
			rr = (rr + 1) % n_sites;
		}
		if (paused_site >= 0 && t >= pause_at + settle_s) {
			drain(rx);
			if (toggle(control, &sites[paused_site]))
				toggles++;
			else
				toggle_failures++;
			sites[paused_site].paused = false;
			paused_site = -1;
			next_toggle += toggle_s;
			if (next_toggle < now())
				next_toggle = now() + toggle_s;
			continue;
		}
		due = rate > 0 ? (uint64_t)((t - t0) * rate) : sent + 64;
		while (sent < due && budget-- > 0 && t < end) {
			uint8_t pkt[SYN_PACKET_LEN];
			struct sockaddr_in to = {.sin_family = AF_INET};
			struct record *r;
			struct site *s = NULL;
			int k = 0;

			/* round robin over the sites, skipping one being toggled */
			for (int tries = 0; tries < n_sites && !s; tries++) {
				k = (int)(next_site++ % (uint64_t)n_sites);
				s = sites[k].paused ? NULL : &sites[k];
			}
			if (!s)
				break;
			r = &ring[seq & ring_mask];
			if (r->live)
				settle(r); /* the ring is sized so that this never happens */
			r->seq = seq;
			r->src = src + (uint32_t)(sent % n_src);
			r->sport = (uint16_t)(1024 + (sent / n_src) % 64000);
			r->site = (uint8_t)k;
			r->expect = (uint8_t)s->expect;
			r->outcome = NONE;
			r->live = true;
			r->sent_at = t;
			syn_packet_build(pkt, r->src, s->addr, r->sport, s->port, seq);
			to.sin_addr.s_addr = htonl(s->addr);
			if (sendto(tx, pkt, SYN_PACKET_LEN, 0, (struct sockaddr *)&to, sizeof(to)) !=
			    SYN_PACKET_LEN) {
				r->live = false;
				if (errno == ENOBUFS || errno == EAGAIN)
					break;
				perror("syn_ledger: sendto");
				return 1;
			}
			s->sent++;
			sent++;
			seq++;
		}
		drain(rx);
		t = now();
		while (aged != seq) {
			struct record *r = &ring[aged & ring_mask];
			if (r->live && r->sent_at + wait_s > t)
				break;
			if (r->live)
				settle(r);
			aged++;
		}
		if (t >= next_progress) {
			uint64_t mm = 0;
			for (int i = 0; i < n_sites; i++)
				mm += sites[i].mismatch;
			fprintf(stderr, "syn_ledger: %.0f s sent %llu toggles %llu mismatches %llu\n",
				t - t0, (unsigned long long)sent, (unsigned long long)toggles,
				(unsigned long long)mm);
			next_progress += progress;
		}
		if (rate > 0 && sent >= due) {
			struct pollfd pfd = {.fd = rx, .events = POLLIN};
			poll(&pfd, 1, 1);
		}
	}
	/* the last answers */
	for (double stop = now() + wait_s; now() < stop;) {
		struct pollfd pfd = {.fd = rx, .events = POLLIN};
		poll(&pfd, 1, 10);
		drain(rx);
	}
	for (uint32_t i = 0; i < ring_size; i++)
		if (ring[i].live)
			settle(&ring[i]);
	for (int i = 0; i < n_sites; i++) {
		struct site *s = &sites[i];
		printf("site %s sent %llu accept %llu drop %llu reject %llu mismatch %llu\n", s->name,
		       (unsigned long long)s->sent, (unsigned long long)s->got[ACCEPT],
		       (unsigned long long)s->got[DROP], (unsigned long long)s->got[REJECT],
		       (unsigned long long)s->mismatch);
		for (int o = ACCEPT; o <= REJECT; o++)
			total[o] += s->got[o];
		mismatches += s->mismatch;
	}
	printf("total sent %llu accept %llu drop %llu reject %llu mismatch %llu toggles %llu "
	       "toggle_failures %llu seconds %.1f rate %.0f\n",
	       (unsigned long long)sent, (unsigned long long)total[ACCEPT],
	       (unsigned long long)total[DROP], (unsigned long long)total[REJECT],
	       (unsigned long long)mismatches, (unsigned long long)toggles,
	       (unsigned long long)toggle_failures, seconds, (double)sent / seconds);
	free(ring);
	return mismatches || toggle_failures ? 1 : 0;
}
