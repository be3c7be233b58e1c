/* synflood: a bounded, paced IPv4 TCP SYN generator for the benchmark.
 *
 * Writes SYNs through an AF_PACKET socket (SOCK_DGRAM: the kernel adds the
 * Ethernet header for DST_MAC) on DEV, from many source addresses of
 * SRC_NET/24 and many source ports, to DST:DPORT (or DST:DPORT..DPORT+N-1).
 * It stops by itself after COUNT packets or SECONDS, whichever comes first,
 * and refuses to send to or from anything but the documentation ranges.
 *
 *   synflood DEV DST_MAC SRC_NET DST DPORT [options]
 *     --ports N      spread over N destination ports from DPORT (default 1)
 *     --rate PPS     total packets per second, 0 = as fast as possible
 *     --count N      at most N packets in all (required, > 0)
 *     --seconds S    at most S seconds (required, > 0, <= 3600)
 *     --threads T    T sender threads, thread i pinned to CPU i (default 1)
 *
 * Prints one line: "sent N seconds S rate R". */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "syn_packet.h"

#define BATCH 32
#define MAX_THREADS 8

struct flood {
	int ifindex;
	uint8_t dst_mac[6];
	uint32_t src_net; /* host order, /24 */
	uint32_t dst;     /* host order */
	uint16_t dport, ports;
	double rate;      /* per thread */
	uint64_t count;   /* per thread */
	double seconds;
	int threads;
};

struct sender {
	const struct flood *f;
	int index;
	pthread_t thread;
	uint64_t sent;
	int error;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t xorshift(uint32_t *s)
{
	uint32_t x = *s;
	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	return *s = x;
}

static void *sender_main(void *arg)
{
	struct sender *s = arg;
	const struct flood *f = s->f;
	uint8_t pkts[BATCH][SYN_PACKET_LEN];
	struct iovec iov[BATCH];
	struct mmsghdr msgs[BATCH];
	struct sockaddr_ll to = {
		.sll_family = AF_PACKET,
		.sll_protocol = htons(ETH_P_IP),
		.sll_ifindex = f->ifindex,
		.sll_halen = 6,
	};
	uint32_t rnd = 0x9e3779b9u * (uint32_t)(s->index + 1) ^ (uint32_t)getpid();
	double start, deadline, interval;
	uint64_t next_batch = 0;
	cpu_set_t cpus;
	int fd;

	CPU_ZERO(&cpus);
	CPU_SET(s->index, &cpus);
	pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus);
	memcpy(to.sll_addr, f->dst_mac, 6);
	fd = socket(AF_PACKET, SOCK_DGRAM, htons(ETH_P_IP));
	if (fd < 0) {
		s->error = errno;
		return NULL;
	}
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = pkts[i];
		iov[i].iov_len = SYN_PACKET_LEN;
		memset(&msgs[i], 0, sizeof(msgs[i]));
		msgs[i].msg_hdr.msg_name = &to;
		msgs[i].msg_hdr.msg_namelen = sizeof(to);
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	/* small batches at high rates keep the offered load smooth */
	interval = f->rate > 0 ? BATCH / f->rate : 0;
	start = now();
	deadline = start + f->seconds;
	while (s->sent < f->count) {
		unsigned n = (unsigned)(f->count - s->sent < BATCH ? f->count - s->sent : BATCH);
		double t = now();
		int done;

		if (t >= deadline)
			break;
		if (interval > 0) {
			double due = start + (double)next_batch * interval;
			if (due > t) {
				struct timespec ts = {.tv_sec = (time_t)(due - t),
						      .tv_nsec = (long)((due - t - (double)(time_t)(due - t)) * 1e9)};
				nanosleep(&ts, NULL);
			}
			next_batch++;
		}
		for (unsigned i = 0; i < n; i++) {
			uint32_t r = xorshift(&rnd);
			/* .2 .. .253, never the router (.1) or the latency client (.100) */
			uint32_t host = 2 + (r & 0xff) % 252;
			if (host == 100)
				host = 101;
			syn_packet_build(pkts[i], f->src_net | host, f->dst,
					 (uint16_t)(1024 + (r >> 8) % 64000),
					 (uint16_t)(f->dport + (f->ports > 1 ? (r >> 20) % f->ports : 0)),
					 xorshift(&rnd));
		}
		done = sendmmsg(fd, msgs, n, 0);
		if (done < 0) {
			if (errno == ENOBUFS || errno == EAGAIN || errno == EINTR)
				continue;
			s->error = errno;
			break;
		}
		s->sent += (uint64_t)done;
	}
	close(fd);
	return NULL;
}

static int parse_mac(const char *text, uint8_t mac[6])
{
	unsigned m[6];

	if (sscanf(text, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)m[i];
	return 0;
}

static int parse_v4(const char *text, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1)
		return -1;
	*out = ntohl(a.s_addr);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: synflood DEV DST_MAC SRC_NET DST DPORT --count N --seconds S "
			"[--rate PPS] [--ports N] [--threads T]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct flood f = {.ports = 1, .threads = 1};
	struct sender senders[MAX_THREADS];
	double rate = 0, start, elapsed;
	uint64_t count = 0, sent = 0;

	if (argc < 6)
		usage();
	f.ifindex = (int)if_nametoindex(argv[1]);
	if (!f.ifindex || parse_mac(argv[2], f.dst_mac) < 0 || parse_v4(argv[3], &f.src_net) < 0 ||
	    parse_v4(argv[4], &f.dst) < 0)
		usage();
	f.src_net &= 0xffffff00u;
	f.dport = (uint16_t)atoi(argv[5]);
	for (int i = 6; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--rate") == 0)
			rate = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--count") == 0)
			count = strtoull(argv[i + 1], NULL, 10);
		else if (strcmp(argv[i], "--seconds") == 0)
			f.seconds = atof(argv[i + 1]);
		else if (strcmp(argv[i], "--ports") == 0)
			f.ports = (uint16_t)atoi(argv[i + 1]);
		else if (strcmp(argv[i], "--threads") == 0)
			f.threads = atoi(argv[i + 1]);
		else
			usage();
	}
	if (!syn_packet_documentation_v4(f.src_net) || !syn_packet_documentation_v4(f.dst)) {
		fprintf(stderr, "synflood: only documentation addresses (RFC 5737)\n");
		return 2;
	}
	if (count == 0 || f.seconds <= 0 || f.seconds > 3600 || f.threads < 1 ||
	    f.threads > MAX_THREADS || f.ports < 1 || f.dport == 0 ||
	    (unsigned)f.dport + f.ports - 1 > 65535)
		usage();
	f.rate = rate / f.threads;
	f.count = count / (uint64_t)f.threads;
	start = now();
	for (int i = 0; i < f.threads; i++) {
		senders[i] = (struct sender){.f = &f, .index = i};
		if (pthread_create(&senders[i].thread, NULL, sender_main, &senders[i]) != 0) {
			perror("synflood: pthread_create");
			return 1;
		}
	}
	for (int i = 0; i < f.threads; i++) {
		pthread_join(senders[i].thread, NULL);
		sent += senders[i].sent;
		if (senders[i].error)
			fprintf(stderr, "synflood: thread %d: %s\n", i, strerror(senders[i].error));
	}
	elapsed = now() - start;
	printf("sent %llu seconds %.3f rate %.0f\n", (unsigned long long)sent, elapsed,
	       (double)sent / elapsed);
	return 0;
}
