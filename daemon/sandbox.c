#include "sandbox.h"

#include <errno.h>
#include <sched.h>
#include <seccomp.h>
#include <stddef.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "log.h"

/* Allowed with any arguments. Names, not numbers: libseccomp resolves them
 * for the native architecture and skips the ones it does not have (open,
 * stat, fork... exist on x86_64, not on aarch64). */
static const char *const allowed[] = {
	/* file descriptors: reading the config on reload, the state file's
	 * atomic write (temp file, fsync, rename, fsync of the directory),
	 * logging to stderr, /proc reads of the rules probe */
	"read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "_llseek",
	"close", "close_range", "open", "openat", "openat2", "creat",
	"fstat", "fstat64", "newfstatat", "fstatat64", "stat", "stat64", "lstat", "lstat64",
	"statx", "fstatfs", "fstatfs64", "statfs", "statfs64",
	"access", "faccessat", "faccessat2", "readlink", "readlinkat", "getcwd",
	"getdents", "getdents64", "fcntl", "fcntl64", "dup", "dup2", "dup3", "pipe", "pipe2",
	"rename", "renameat", "renameat2", "unlink", "unlinkat", "mkdir", "mkdirat",
	"fsync", "fdatasync", "fchmod", "umask", "flock", /* flock: the xtables lock */
	/* a reload that changes control.group or control.mode sets them on
	 * the socket again (as root; without CAP_CHOWN only to a group of
	 * the daemon's user, on its own files) */
	"chmod", "fchmodat", "fchmodat2", "chown", "fchown", "fchownat", "lchown", "chown32",
	"fchown32", "lchown32",
	/* memory (thread stacks, the queues' buffers, the children's loader) */
	"brk", "mmap", "mmap2", "munmap", "mremap", "mprotect", "madvise", "membarrier",
	/* threads, signals and children (posix_spawn, execve, wait) */
	"futex", "futex_time64", "futex_waitv", "set_robust_list", "get_robust_list", "rseq",
	"set_tid_address", "execve", "exit", "exit_group", "wait4", "waitid", "kill", "tgkill",
	"tkill", "pidfd_open", "pidfd_send_signal", "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid",
	"getuid32", "geteuid32", "getgid32", "getegid32", "getgroups", "getgroups32",
	"getresuid", "getresgid", "getresuid32", "getresgid32", "capget",
	/* for a child that leaves what it inherited after execve (the health
	 * checker): they only lower what the process holds (no CAP_SETUID or
	 * CAP_SETPCAP under the unit or after -u; as root it is root anyway),
	 * and seccomp() only adds a filter on top of this one */
	"capset", "setresuid", "setresgid", "setresuid32", "setresgid32", "setgroups",
	"setgroups32", "seccomp",
	/* the checker lowers its priority (nice 10) between fork and exec;
	 * raising it again needs CAP_SYS_NICE, which the daemon never has */
	"setpriority",
	"rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigreturn", "rt_sigpending",
	"rt_sigtimedwait", "rt_sigtimedwait_time64", "sigaltstack", "signalfd", "signalfd4",
	"restart_syscall", "arch_prctl", "set_thread_area", "uname", "getrandom", "sysinfo",
	"getrlimit", "ugetrlimit", "prlimit64", "getrusage", "times",
	"sched_yield", "sched_getaffinity", "sched_getparam", "sched_getscheduler",
	/* waiting: the main loop, the workers, the listeners, iptables' lock
	 * wait (alarm) */
	"poll", "ppoll", "ppoll_time64", "select", "_newselect", "pselect6", "pselect6_time64",
	"epoll_create", "epoll_create1", "epoll_ctl", "epoll_wait", "epoll_pwait",
	"epoll_pwait2", "timerfd_create", "timerfd_settime", "timerfd_settime64",
	"timerfd_gettime", "timerfd_gettime64", "eventfd", "eventfd2",
	"clock_gettime", "clock_gettime64", "clock_getres", "clock_getres_time64",
	"clock_nanosleep", "clock_nanosleep_time64", "nanosleep", "gettimeofday", "time",
	"alarm", "setitimer", "getitimer",
	/* sockets of the allowed families (socket() itself below): NFQUEUE
	 * and nftables netlink, the raw RST sockets, control, metrics,
	 * sd_notify, the health checks */
	"socketpair", "connect", "bind", "listen", "accept", "accept4", "getsockname",
	"getpeername", "setsockopt", "getsockopt", "sendto", "recvfrom", "sendmsg", "recvmsg",
	"sendmmsg", "recvmmsg", "recvmmsg_time64", "shutdown",
};

/* The families of the unit's RestrictAddressFamilies=. */
static const int socket_families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};

/* prctl() options glibc and the tools use, and those that only take
 * away (a child stacking its own filter, dropping capabilities); not
 * PR_SET_MM, PR_SET_DUMPABLE, PR_SET_PTRACER, PR_SET_SECUREBITS... */
static const int prctl_options[] = {PR_SET_NAME, PR_GET_NAME, PR_SET_PDEATHSIG,
				    PR_GET_DUMPABLE, PR_CAPBSET_READ, PR_GET_SECUREBITS,
				    PR_GET_NO_NEW_PRIVS, PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP,
				    PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_GET_KEEPCAPS,
				    /* libcap-ng's change of user in the health checker
				     * started by a daemon that runs as root */
				    PR_SET_KEEPCAPS};

/* Namespaces: a new one would give a compromised daemon a user namespace
 * with every capability in it. */
#define CLONE_NAMESPACES                                                                  \
	((scmp_datum_t)(CLONE_NEWNS | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET |     \
			CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWCGROUP))

/* The sanitizers' leak check stops the world with ptrace at exit (an ASan
 * build of the tests, never a release build). */
#if defined(__SANITIZE_ADDRESS__)
#define SANDBOX_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SANDBOX_SANITIZER 1
#endif
#endif
#ifndef SANDBOX_SANITIZER
#define SANDBOX_SANITIZER 0
#endif

static int allow_name(scmp_filter_ctx ctx, const char *name)
{
	int nr = seccomp_syscall_resolve_name(name);

	if (nr == __NR_SCMP_ERROR)
		return 0; /* not a system call of this architecture */
	return seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
}

static int add_rules(scmp_filter_ctx ctx)
{
	int rc = 0;

	for (size_t i = 0; rc == 0 && i < sizeof(allowed) / sizeof(allowed[0]); i++)
		rc = allow_name(ctx, allowed[i]);
	for (size_t i = 0; rc == 0 && i < sizeof(socket_families) / sizeof(socket_families[0]);
	     i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
				      SCMP_A0_32(SCMP_CMP_EQ, (scmp_datum_t)socket_families[i]));
	for (size_t i = 0; rc == 0 && i < sizeof(prctl_options) / sizeof(prctl_options[0]); i++)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 1,
				      SCMP_A0_32(SCMP_CMP_EQ, (scmp_datum_t)prctl_options[i]));
	/* ioctl, but not those that type into or reprogram the terminal
	 * stderr may be on (isatty's TCGETS, FIONREAD... pass) */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 0);
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				      SCMP_A1_32(SCMP_CMP_EQ, (scmp_datum_t)TIOCSTI));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(ioctl), 1,
				      SCMP_A1_32(SCMP_CMP_EQ, (scmp_datum_t)TIOCLINUX));
	/* threads and posix_spawn, without new namespaces; clone3 passes its
	 * flags in memory a filter cannot read, so it answers ENOSYS and glibc
	 * falls back to clone */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
				      SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_NAMESPACES, 0));
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0);
	/* non-dumpable only: a dumpable process can be ptraced by its uid */
	if (rc == 0)
		rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(prctl), 2,
				      SCMP_A0_32(SCMP_CMP_EQ, (scmp_datum_t)PR_SET_DUMPABLE),
				      SCMP_A1_64(SCMP_CMP_EQ, 0));
	if (rc == 0 && SANDBOX_SANITIZER) {
		rc = allow_name(ctx, "ptrace");
		if (rc == 0)
			rc = allow_name(ctx, "prctl");
	}
	return rc;
}

int sandbox_enter(enum sandbox_mode mode)
{
	uint32_t fail = mode == SANDBOX_LOG ? SCMP_ACT_LOG : SCMP_ACT_KILL_PROCESS;
	scmp_filter_ctx ctx;
	int rc;

	/* libseccomp sets it too (SCMP_FLTATR_CTL_NNP); said here so that it
	 * holds even where the filter could not be built */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		log_error_errno("cannot set no-new-privs");
		return -1;
	}
	ctx = seccomp_init(fail);
	if (!ctx) {
		log_error("seccomp: cannot create a filter");
		return -1;
	}
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc == 0)
		rc = add_rules(ctx);
	if (rc == 0)
		rc = seccomp_load(ctx);
	seccomp_release(ctx);
	if (rc < 0) {
		errno = -rc;
		log_error_errno("seccomp: cannot load the system call filter");
		return -1;
	}
	log_info("sandbox: no-new-privs, seccomp allow-list loaded (forbidden calls %s)",
		 mode == SANDBOX_LOG ? "are logged by the kernel" : "kill the daemon");
	return 0;
}
