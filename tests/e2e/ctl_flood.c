/* ctl_flood SOCKET CLIENTS SECONDS: load on gatekeeperd's control socket.
 *
 * Client 0 sends 1 MiB of garbage without a newline and must be answered
 * "ERR malformed" and dropped. Every other client asks "status" over and
 * over, reconnecting when it is refused as busy or dropped. Prints one
 * line of figures; exits 0 if the daemon answered requests throughout
 * and dropped the garbage client, 1 otherwise, 2 on usage. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GARBAGE_BYTES (1024 * 1024)
#define MAX_CLIENTS 1000

struct client {
	int fd;
	size_t sent; /* of the current request (or of the garbage) */
	char in[65536];
	size_t in_len;
};

static struct sockaddr_un addr = {.sun_family = AF_UNIX};
static unsigned long ok, busy, dropped, connect_failed;
static int garbage_outcome; /* 0 pending, 1 refused and dropped, -1 wrong */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void reconnect(struct client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->sent = c->in_len = 0;
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd >= 0 && connect(c->fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		connect_failed++;
		close(c->fd);
		c->fd = -1;
	}
}

/* One complete reply at the start of c->in? Consumes it; returns its
 * header's first word, or NULL. */
static const char *take_reply(struct client *c, char *code, size_t code_len)
{
	char *nl = memchr(c->in, '\n', c->in_len);
	size_t body, head;
	char word[16] = "";

	if (!nl)
		return NULL;
	*nl = '\0';
	if (sscanf(c->in, "OK %zu", &body) == 1)
		snprintf(code, code_len, "OK");
	else if (sscanf(c->in, "ERR %15s %zu", word, &body) == 2)
		snprintf(code, code_len, "%s", word);
	else
		return "bad";
	head = (size_t)(nl - c->in) + 1;
	if (c->in_len < head + body) {
		*nl = '\n';
		return NULL;
	}
	memmove(c->in, c->in + head + body, c->in_len - head - body);
	c->in_len -= head + body;
	return code;
}

static void serve_garbage(struct client *c, short revents)
{
	static char junk[65536];
	char code[32];

	memset(junk, 'A', sizeof(junk));
	if ((revents & POLLOUT) && c->sent < GARBAGE_BYTES) {
		size_t n = GARBAGE_BYTES - c->sent;
		ssize_t w = send(c->fd, junk, n < sizeof(junk) ? n : sizeof(junk), MSG_NOSIGNAL);
		if (w > 0)
			c->sent += (size_t)w;
		else if (w < 0 && errno != EAGAIN)
			c->sent = GARBAGE_BYTES; /* the daemon hung up: read what it said */
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		const char *what;

		if (r > 0)
			c->in_len += (size_t)r;
		what = take_reply(c, code, sizeof(code));
		if (what && garbage_outcome == 0)
			garbage_outcome = strcmp(what, "malformed") == 0 ? 1 : -1;
		if (r == 0 || (r < 0 && errno != EAGAIN)) {
			if (garbage_outcome == 0)
				garbage_outcome = -1; /* dropped without a word */
			close(c->fd);
			c->fd = -2; /* done for good */
		}
	}
}

static void serve_status(struct client *c, short revents)
{
	static const char request[] = "status\n";
	char code[32];
	const char *what;

	if ((revents & POLLOUT) && c->sent < sizeof(request) - 1) {
		ssize_t w = send(c->fd, request + c->sent, sizeof(request) - 1 - c->sent, MSG_NOSIGNAL);
		if (w > 0)
			c->sent += (size_t)w;
	}
	if (revents & (POLLIN | POLLHUP | POLLERR)) {
		ssize_t r = recv(c->fd, c->in + c->in_len, sizeof(c->in) - c->in_len, 0);
		if (r > 0)
			c->in_len += (size_t)r;
		while ((what = take_reply(c, code, sizeof(code)))) {
			if (strcmp(what, "OK") == 0) {
				ok++;
				c->sent = 0; /* ask again */
			} else {
				busy += strcmp(what, "busy") == 0;
				reconnect(c);
				return;
			}
		}
		if (r == 0 || (r < 0 && errno != EAGAIN)) {
			dropped++;
			reconnect(c);
		}
	}
}

int main(int argc, char **argv)
{
	static struct client clients[MAX_CLIENTS];
	static struct pollfd pfd[MAX_CLIENTS];
	int n;
	double end;

	if (argc != 4 || (n = atoi(argv[2])) < 2 || n > MAX_CLIENTS ||
	    strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: ctl_flood SOCKET CLIENTS(2..%d) SECONDS\n", MAX_CLIENTS);
		return 2;
	}
	memcpy(addr.sun_path, argv[1], strlen(argv[1]) + 1);
	end = now_s() + atof(argv[3]);
	for (int i = 0; i < n; i++) {
		clients[i].fd = -1;
		reconnect(&clients[i]);
	}
	while (now_s() < end) {
		for (int i = 0; i < n; i++) {
			struct client *c = &clients[i];
			if (c->fd == -1)
				reconnect(c);
			pfd[i].fd = c->fd;
			pfd[i].events = POLLIN;
			if (i == 0 ? c->sent < GARBAGE_BYTES : c->sent < 7)
				pfd[i].events |= POLLOUT;
		}
		if (poll(pfd, (nfds_t)n, 20) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			if (clients[i].fd < 0 || !pfd[i].revents)
				continue;
			if (i == 0)
				serve_garbage(&clients[i], pfd[i].revents);
			else
				serve_status(&clients[i], pfd[i].revents);
		}
	}
	printf("status replies %lu, busy refusals %lu, drops %lu, failed connects %lu, "
	       "garbage client %s\n", ok, busy, dropped, connect_failed,
	       garbage_outcome > 0 ? "refused as malformed and dropped"
	       : garbage_outcome < 0 ? "NOT refused as malformed" : "NOT dropped");
	return ok > 0 && garbage_outcome > 0 ? 0 : 1;
}
