/* connlat: connect() latency to a TCP listener, for the benchmark.
 *
 *   connlat listen ADDR PORT SECONDS
 *       accepts and closes connections on ADDR:PORT for at most SECONDS;
 *       prints "listening" once ready
 *   connlat connect ADDR PORT COUNT [INTERVAL_US [TIMEOUT_MS]]
 *       COUNT sequential connects (SYN -> SYN/ACK), each closed with a RST
 *       (no TIME_WAIT left behind), INTERVAL_US apart (default 200);
 *       prints "n N ok N fail N slow N p50_us X p99_us Y max_us Z",
 *       slow = took over 500 ms (a lost SYN, retransmitted).
 *
 * IPv4 or IPv6 documentation addresses only. Bounded: COUNT <= 1e6,
 * TIMEOUT_MS <= 5000, SECONDS <= 3600. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static bool documentation_addr(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET) {
		uint32_t a = ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr);
		return (a >> 8) == 0xc00002 || (a >> 8) == 0xc63364 || (a >> 8) == 0xcb0071;
	}
	const uint8_t *b = ((const struct sockaddr_in6 *)ss)->sin6_addr.s6_addr;
	return b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8;
}

static int make_addr(const char *text, int port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *in = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, text, &in->sin_addr) == 1) {
		in->sin_family = AF_INET;
		in->sin_port = htons((uint16_t)port);
		*len = sizeof(*in);
	} else if (inet_pton(AF_INET6, text, &in6->sin6_addr) == 1) {
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons((uint16_t)port);
		*len = sizeof(*in6);
	} else {
		return -1;
	}
	return documentation_addr(ss) ? 0 : -1;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int run_listen(const struct sockaddr_storage *ss, socklen_t len, double seconds)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	double end = now_us() + seconds * 1e6;

	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (fd < 0 || bind(fd, (const struct sockaddr *)ss, len) < 0 || listen(fd, 4096) < 0) {
		perror("connlat listen");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	while (now_us() < end) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		if (poll(&pfd, 1, 200) > 0) {
			int c = accept(fd, NULL, NULL);
			if (c >= 0)
				close(c);
		}
	}
	return 0;
}

/* One connect; its duration in microseconds, or -1 on failure. */
static double one_connect(const struct sockaddr_storage *ss, socklen_t len, int timeout_ms)
{
	struct linger lg = {.l_onoff = 1, .l_linger = 0};
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	double t0, took = -1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	t0 = now_us();
	if (connect(fd, (const struct sockaddr *)ss, len) == 0) {
		took = now_us() - t0;
	} else if (errno == EINPROGRESS) {
		struct pollfd pfd = {.fd = fd, .events = POLLOUT};
		int err = 0;
		socklen_t elen = sizeof(err);
		if (poll(&pfd, 1, timeout_ms) == 1 &&
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0)
			took = now_us() - t0;
	}
	close(fd);
	return took;
}

static int run_connect(const struct sockaddr_storage *ss, socklen_t len, long count,
		       long interval_us, int timeout_ms)
{
	double *took = calloc((size_t)count, sizeof(double));
	long ok = 0, fail = 0, slow = 0;

	if (!took)
		return 1;
	for (long i = 0; i < count; i++) {
		double t = one_connect(ss, len, timeout_ms);
		if (t < 0) {
			fail++;
		} else {
			took[ok++] = t;
			slow += t > 500e3;
		}
		if (interval_us > 0)
			usleep((useconds_t)interval_us);
	}
	qsort(took, (size_t)ok, sizeof(double), cmp_double);
	printf("n %ld ok %ld fail %ld slow %ld p50_us %.1f p99_us %.1f max_us %.1f\n", count, ok,
	       fail, slow, ok ? took[(ok - 1) / 2] : -1.0, ok ? took[(ok * 99 - 1) / 100] : -1.0,
	       ok ? took[ok - 1] : -1.0);
	free(took);
	return 0;
}

int main(int argc, char **argv)
{
	struct sockaddr_storage ss;
	socklen_t len;

	if (argc < 5 || make_addr(argv[2], atoi(argv[3]), &ss, &len) < 0) {
		fprintf(stderr, "usage: connlat listen ADDR PORT SECONDS | "
				"connect ADDR PORT COUNT [INTERVAL_US [TIMEOUT_MS]]\n"
				"(documentation addresses only)\n");
		return 2;
	}
	if (strcmp(argv[1], "listen") == 0) {
		double seconds = atof(argv[4]);
		return seconds > 0 && seconds <= 3600 ? run_listen(&ss, len, seconds) : 2;
	}
	if (strcmp(argv[1], "connect") == 0) {
		long count = atol(argv[4]);
		long interval = argc > 5 ? atol(argv[5]) : 200;
		int timeout = argc > 6 ? atoi(argv[6]) : 3000;
		if (count < 1 || count > 1000000 || timeout < 1 || timeout > 5000 || interval < 0)
			return 2;
		return run_connect(&ss, len, count, interval, timeout);
	}
	return 2;
}
