/* checker: see checker.h. */
#include "checker.h"

#include <cap-ng.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "checker_proto.h"
#include "health_probe.h"
#include "log.h"

/* where a daemon left as root puts its checker: nobody/nogroup */
#define NOBODY 65534

static int control_fd = -1;

static _Noreturn void fatal(const char *what)
{
	log_error("health checker: %s: exiting", what);
	_exit(1);
}

/* No capability left in any set; nobody if we were root. */
static void drop_everything(void)
{
	if (geteuid() == 0 || getuid() == 0) {
		/* clears the bounding set as well (we still hold CAP_SETPCAP) */
		capng_clear(CAPNG_SELECT_ALL);
		if (capng_change_id(NOBODY, NOBODY, CAPNG_DROP_SUPP_GRP | CAPNG_CLEAR_BOUNDING) < 0)
			fatal("cannot switch to nobody");
	}
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);
	/* Started by a daemon that runs as its user, the exec left us no
	 * effective or permitted capability already (no ambient, no file
	 * capabilities); the inheritable set is still the daemon's. Lowering
	 * it needs capset(), which may be filtered (the unit's
	 * SystemCallFilter=~@privileged): there the inheritable set stays,
	 * harmless without a permitted set or file capabilities (and
	 * no-new-privs). So is the bounding set, whose change needs
	 * CAP_SETPCAP that such a daemon has not: unreachable under
	 * no-new-privs. What must hold is checked after. */
	capng_clear(CAPNG_SELECT_BOTH);
	if (capng_apply(CAPNG_SELECT_BOTH) < 0)
		(void)capng_apply(CAPNG_SELECT_CAPS);
	capng_get_caps_process();
	if (capng_have_capabilities(CAPNG_SELECT_CAPS) != CAPNG_NONE)
		fatal("capabilities left after dropping them");
	if (getuid() == 0 || geteuid() == 0 || getgid() == 0 || getegid() == 0)
		fatal("still root");
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		fatal("cannot set no-new-privs");
	/* a change of user clears the parent-death signal set before exec;
	 * the socket's EOF ends us as well, this is for a daemon that is
	 * stopped (SIGSTOP) and then killed */
	prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);
}

static int allow(scmp_filter_ctx ctx, int nr)
{
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
}

/* The allow-list. What the probes do after start-up, and nothing else. */
static void load_seccomp(void)
{
	static const int calls[] = {
		/* the socket to the daemon and the check sockets it gave us */
		SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
		SCMP_SYS(recvmsg), SCMP_SYS(sendmsg), SCMP_SYS(recvfrom), SCMP_SYS(sendto),
		SCMP_SYS(connect), SCMP_SYS(getsockopt), SCMP_SYS(getsockname),
		SCMP_SYS(getpeername), SCMP_SYS(close), SCMP_SYS(pread64), SCMP_SYS(fcntl),
		SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(lseek),
		/* waiting */
		SCMP_SYS(epoll_wait), SCMP_SYS(epoll_pwait), SCMP_SYS(epoll_ctl),
		SCMP_SYS(poll), SCMP_SYS(ppoll),
		/* the clock, randomness (TLS), memory */
		SCMP_SYS(clock_gettime), SCMP_SYS(gettimeofday), SCMP_SYS(time),
		SCMP_SYS(getrandom), SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap),
		SCMP_SYS(mremap), SCMP_SYS(madvise), SCMP_SYS(futex),
		/* signals and the end */
		SCMP_SYS(rt_sigreturn), SCMP_SYS(rt_sigprocmask), SCMP_SYS(restart_syscall),
		SCMP_SYS(getpid), SCMP_SYS(gettid), SCMP_SYS(exit), SCMP_SYS(exit_group),
		/* what the sanitizer runtimes call at run time (ASan: sigaltstack at exit) */
		SCMP_SYS(sigaltstack), SCMP_SYS(sched_yield),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int rc = ctx ? 0 : -1;

	for (size_t i = 0; rc == 0 && i < sizeof(calls) / sizeof(calls[0]); i++)
		rc = allow(ctx, calls[i]);
	/* malloc may change protections; never to executable */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				      SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0)
		fatal("cannot load the seccomp filter");
}

static void send_result(void *unused, const struct checker_result *res)
{
	uint8_t buf[CHECKER_RESULT_SIZE];

	(void)unused;
	if (checker_encode_result(res, buf) < 0)
		fatal("a result that does not encode");
	if (checker_send(control_fd, buf, sizeof(buf), NULL, 0) < 0)
		_exit(0); /* the daemon went away or stopped reading */
}

/* The socket a RUN brought: a TCP socket of the job's family, made
 * non-blocking. */
static int sound_socket(int fd, const struct checker_job *job)
{
	int type = 0, domain = 0, flags;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_STREAM)
		return -1;
	len = sizeof(domain);
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len) < 0 ||
	    domain != job->addr.family)
		return -1;
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
		return -1;
	return 0;
}

/* Every waiting record; 0 at EOF. */
static int read_records(struct probe_engine *engine)
{
	for (;;) {
		uint8_t buf[CHECKER_MSG_MAX];
		struct checker_job job;
		uint32_t slot, generation;
		int fds[2], n_fds;
		long n = checker_recv(control_fd, buf, sizeof(buf), fds, &n_fds);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return 1;
		if (n < 0)
			fatal(errno == EPROTO ? "a truncated record or bad control data"
					      : "cannot read from the daemon");
		if (n == 0)
			return 0;
		switch (checker_msg_type(buf, (size_t)n)) {
		case CHECKER_MSG_RUN:
			if (checker_decode_run(buf, (size_t)n, &job) < 0 ||
			    n_fds != (job.has_ca ? 2 : 1) || sound_socket(fds[0], &job) < 0)
				fatal("malformed RUN record");
			probe_engine_start(engine, &job, fds[0], job.has_ca ? fds[1] : -1);
			break;
		case CHECKER_MSG_CANCEL:
			if (n_fds || checker_decode_cancel(buf, (size_t)n, &slot, &generation) < 0)
				fatal("malformed CANCEL record");
			probe_engine_cancel(engine, slot, generation);
			break;
		default:
			fatal("unknown record");
		}
	}
}

_Noreturn void checker_main(int fd, int verbose)
{
	struct probe_engine *engine;
	int type = 0;
	socklen_t len = sizeof(type);

	log_init("gatekeeperd-checker", verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 || type != SOCK_SEQPACKET) {
		fprintf(stderr, "gatekeeperd --checker is started by gatekeeperd itself, with "
				"its socket on fd %d\n", fd);
		_exit(2);
	}
	control_fd = fd;
	signal(SIGPIPE, SIG_IGN);
	drop_everything();
	/* everything that reads files (openssl.cnf, providers) happens now,
	 * before the filter forbids open(). OpenSSL asks libc for local time
	 * (a server's session ticket), which would open /etc/localtime on
	 * every call with no TZ: the checker's time zone is UTC, spelled out. */
	setenv("TZ", "UTC", 1);
	tzset();
	if (OPENSSL_init_ssl(OPENSSL_INIT_LOAD_CONFIG, NULL) != 1)
		fatal("cannot initialise OpenSSL");
	engine = probe_engine_new(send_result, NULL);
	if (!engine)
		fatal("out of memory");
	log_debug("health checker: uid %u, no capabilities, loading the seccomp filter",
		  (unsigned)getuid());
	load_seccomp();
	for (;;) {
		struct pollfd pfd[2] = {
			{.fd = control_fd, .events = POLLIN},
			{.fd = probe_engine_fd(engine), .events = POLLIN},
		};

		if (poll(pfd, 2, probe_engine_timeout_ms(engine)) < 0 && errno != EINTR)
			fatal("poll");
		if (pfd[0].revents && read_records(engine) == 0)
			_exit(0); /* the daemon closed its end: no leak check, no atexit */
		probe_engine_dispatch(engine);
	}
}
