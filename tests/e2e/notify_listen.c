/* notify_listen: plays systemd's side of sd_notify(3) for notify.sh.
 *
 *   notify_listen SOCKET [COMMAND]
 *
 * Binds an AF_UNIX datagram socket at SOCKET and prints every field of
 * every message on a line of its own, "SECONDS.MICROS PID FIELD=VALUE"
 * (CLOCK_MONOTONIC, the sender's pid from SCM_CREDENTIALS), flushed at
 * once. Prints "listening" when bound. On the first READY=1 it runs
 * COMMAND with sh -c before it reads the next message, and prints
 * "on-ready status N": what COMMAND sees is the state at that READY=1.
 * Ends on SIGTERM or SIGINT, removing SOCKET. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static int run_command(const char *command)
{
	int status = system(command);

	if (status < 0)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Prints each line of MSG; returns 1 if one of them is READY=1. */
static int print_fields(char *msg, const struct timespec *ts, pid_t pid)
{
	int ready = 0;

	for (char *save = NULL, *f = strtok_r(msg, "\n", &save); f; f = strtok_r(NULL, "\n", &save)) {
		printf("%lld.%06ld %d %s\n", (long long)ts->tv_sec, ts->tv_nsec / 1000, (int)pid, f);
		ready |= strcmp(f, "READY=1") == 0;
	}
	fflush(stdout);
	return ready;
}

int main(int argc, char **argv)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	struct sigaction sa = {.sa_handler = on_signal};
	const char *command = argc > 2 ? argv[2] : NULL;
	int fd, one = 1, seen_ready = 0;

	if (argc < 2 || argc > 3 || strlen(argv[1]) >= sizeof(addr.sun_path)) {
		fprintf(stderr, "usage: notify_listen SOCKET [COMMAND]\n");
		return 2;
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	memcpy(addr.sun_path, argv[1], strlen(argv[1]) + 1);
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_PASSCRED, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
		perror("notify_listen: socket");
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	while (!stop) {
		char buf[4096], cbuf[CMSG_SPACE(sizeof(struct ucred))];
		struct iovec iov = {.iov_base = buf, .iov_len = sizeof(buf) - 1};
		struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1,
				    .msg_control = cbuf, .msg_controllen = sizeof(cbuf)};
		struct timespec ts;
		pid_t pid = 0;
		ssize_t n = recvmsg(fd, &mh, 0);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			perror("notify_listen: recvmsg");
			break;
		}
		clock_gettime(CLOCK_MONOTONIC, &ts);
		buf[n] = '\0';
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
				struct ucred cred;
				memcpy(&cred, CMSG_DATA(c), sizeof(cred));
				pid = cred.pid;
			}
		}
		if (print_fields(buf, &ts, pid) && !seen_ready++ && command) {
			printf("on-ready status %d\n", run_command(command));
			fflush(stdout);
		}
	}
	close(fd);
	unlink(argv[1]);
	return 0;
}
