/* checker_link: see checker_link.h. */
#include "checker_link.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define BACKOFF_MIN_MS 250u
#define BACKOFF_MAX_MS 30000u
/* the checker's end of the socketpair, as `gatekeeperd --checker` expects */
#define CHECKER_FD 3
#define CHECKER_NICE 10

struct checker_link {
	int fd;
	pid_t pid;
	uint64_t next_start_ms;
	uint32_t backoff_ms;
	unsigned starts;
};

struct checker_link *checker_link_new(void)
{
	struct checker_link *l = calloc(1, sizeof(*l));

	if (l)
		l->fd = -1;
	return l;
}

int checker_link_fd(const struct checker_link *l)
{
	return l ? l->fd : -1;
}

pid_t checker_link_pid(const struct checker_link *l)
{
	return l ? l->pid : 0;
}

unsigned checker_link_starts(const struct checker_link *l)
{
	return l ? l->starts : 0;
}

uint64_t checker_link_next_start_ms(const struct checker_link *l)
{
	return l->next_start_ms;
}

/* In the child, between fork and exec: async-signal-safe calls only (the
 * daemon has threads). */
static void exec_checker(int sock, bool verbose)
{
	static char *const argv[] = {"gatekeeperd", "--checker", NULL};
	static char *const argv_verbose[] = {"gatekeeperd", "--checker", "-v", NULL};
	static char *const envp[] = {NULL};
	sigset_t none;

	if (sock == CHECKER_FD) {
		if (fcntl(sock, F_SETFD, 0) < 0)
			_exit(127);
	} else if (dup2(sock, CHECKER_FD) < 0) {
		_exit(127);
	}
	/* only stdin/out/err (the log) and the socket cross the exec */
	close_range(CHECKER_FD + 1, ~0u, 0);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
	/* the rule tools need CAP_NET_ADMIN ambient; the checker must not
	 * inherit it across the exec */
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	/* checks are background work: a costly handshake yields the CPU to
	 * the daemon's threads and everything else on the box */
	setpriority(PRIO_PROCESS, 0, CHECKER_NICE);
	execve("/proc/self/exe", verbose ? argv_verbose : argv, envp);
	_exit(127);
}

int checker_link_start(struct checker_link *l)
{
	bool verbose = log_enabled(LOG_LEVEL_DEBUG);
	int sv[2];
	pid_t pid;

	if (l->pid)
		return 0;
	l->next_start_ms = clock_now_ms() + (l->backoff_ms ? l->backoff_ms : BACKOFF_MIN_MS);
	l->backoff_ms = l->backoff_ms ? (l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
									     : l->backoff_ms * 2)
				      : BACKOFF_MIN_MS;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		log_error_errno("health checker: socketpair");
		return -1;
	}
	pid = fork();
	if (pid < 0) {
		log_error_errno("health checker: fork");
		close(sv[0]);
		close(sv[1]);
		return -1;
	}
	if (pid == 0)
		exec_checker(sv[1], verbose);
	close(sv[1]);
	l->fd = sv[0];
	l->pid = pid;
	l->starts++;
	if (l->starts == 1)
		log_info("health checker: started (pid %d)", (int)pid);
	else
		log_warn("health checker: restarted (pid %d, start %u)", (int)pid, l->starts);
	return 0;
}

static void describe(int status, char *buf, size_t len)
{
	if (WIFEXITED(status))
		snprintf(buf, len, "exit status %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS)
		snprintf(buf, len, "killed by SIGSYS: a system call outside its seccomp filter");
	else if (WIFSIGNALED(status))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(status),
			 strsignal(WTERMSIG(status)));
	else
		snprintf(buf, len, "status 0x%x", status);
}

void checker_link_fail(struct checker_link *l, const char *why)
{
	char how[128] = "not running";
	int status;

	if (l->fd >= 0)
		close(l->fd);
	l->fd = -1;
	if (l->pid) {
		/* if it is still alive it is hung or lying: it goes */
		kill(l->pid, SIGKILL);
		while (waitpid(l->pid, &status, 0) < 0 && errno == EINTR)
			;
		describe(status, how, sizeof(how));
	}
	if (why)
		log_warn("health checker (pid %d): %s (%s); its sites keep their last state, "
			 "restart in %u ms", (int)l->pid, why, how,
			 (unsigned)(l->next_start_ms > clock_now_ms() ? l->next_start_ms - clock_now_ms()
								       : 0));
	l->pid = 0;
}

void checker_link_healthy(struct checker_link *l)
{
	l->backoff_ms = 0;
}

void checker_link_free(struct checker_link *l)
{
	if (!l)
		return;
	checker_link_fail(l, NULL);
	free(l);
}

int checker_link_run(struct checker_link *l, const struct checker_job *job, int sock, int ca_fd)
{
	uint8_t buf[CHECKER_RUN_SIZE];
	int fds[2] = {sock, ca_fd};

	if (l->fd < 0 || checker_encode_run(job, buf) < 0)
		return -1;
	if (checker_send(l->fd, buf, sizeof(buf), fds, job->has_ca ? 2 : 1) < 0) {
		checker_link_fail(l, errno == EAGAIN ? "not reading its socket" : "cannot be written to");
		return -1;
	}
	return 0;
}

int checker_link_cancel(struct checker_link *l, uint32_t slot, uint32_t generation)
{
	uint8_t buf[CHECKER_CANCEL_SIZE];

	if (l->fd < 0 || checker_encode_cancel(slot, generation, buf) < 0)
		return -1;
	if (checker_send(l->fd, buf, sizeof(buf), NULL, 0) < 0) {
		checker_link_fail(l, errno == EAGAIN ? "not reading its socket" : "cannot be written to");
		return -1;
	}
	return 0;
}

int checker_link_recv(struct checker_link *l, struct checker_result *res)
{
	uint8_t buf[CHECKER_MSG_MAX];
	int fds[2], n_fds;
	long n;

	if (l->fd < 0)
		return 0;
	n = checker_recv(l->fd, buf, sizeof(buf), fds, &n_fds);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		return 0;
	/* a checker that dies with requests unread resets the pair: it
	 * exited all the same (the reason says how: signal or status) */
	if (n == 0 || (n < 0 && errno == ECONNRESET)) {
		checker_link_fail(l, "exited");
		return -1;
	}
	if (n < 0) {
		checker_link_fail(l, errno == EPROTO ? "sent a truncated message or file descriptors"
						     : "socket error");
		return -1;
	}
	if (n_fds) {
		for (int i = 0; i < n_fds; i++)
			close(fds[i]);
		checker_link_fail(l, "sent file descriptors");
		return -1;
	}
	if (checker_decode_result(buf, (size_t)n, res) < 0) {
		checker_link_fail(l, "sent a malformed result");
		return -1;
	}
	return 1;
}
