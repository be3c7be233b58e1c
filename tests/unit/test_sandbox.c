/* Unit tests for sandbox: in a forked child, after sandbox_enter(), what
 * the daemon does still works (files written atomically, its socket
 * families, a rule tool spawned through child.c) and what it must never do
 * kills it with SIGSYS (namespaces, foreign socket families, mount,
 * chroot); a child may stack its own filter on top. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"
#include "log.h"
#include "sandbox.h"

/* Where daemon_work() writes; made and removed outside the sandbox (the
 * daemon has no business removing directories). */
static char dir[] = "/tmp/gk-sandbox-XXXXXX";

/* Runs BODY in a sandboxed child; its wait status. */
static int sandboxed(int (*body)(void))
{
	int status;
	pid_t pid = fork();

	assert_true(pid >= 0);
	if (pid == 0) {
		if (sandbox_enter(SANDBOX_KILL) < 0)
			_exit(100);
		_exit(body());
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void assert_exit_ok(int status)
{
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		fail_msg("wait status 0x%x: exit %d, signal %d", (unsigned)status,
			 WIFEXITED(status) ? WEXITSTATUS(status) : -1,
			 WIFSIGNALED(status) ? WTERMSIG(status) : -1);
}

static void assert_killed(int status)
{
	if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGSYS)
		fail_msg("wait status 0x%x: want killed by SIGSYS", (unsigned)status);
}

/* What the running daemon does: 0 when all of it worked. */
static int daemon_work(void)
{
	char tmp[64], final[64];
	char *const argv[] = {"true", NULL};
	int fd, sock;
	pid_t pid;

	if (prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) != 1)
		return 1;
	/* the state file: temp file, write, fsync, rename, fsync of the dir */
	snprintf(tmp, sizeof(tmp), "%s/state.tmp", dir);
	snprintf(final, sizeof(final), "%s/state", dir);
	fd = open(tmp, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "x\n", 2) != 2 || fsync(fd) < 0 || fchmod(fd, 0644) < 0 ||
	    close(fd) < 0 || rename(tmp, final) < 0)
		return 3;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0 || close(fd) < 0)
		return 4;
	/* the families the daemon uses */
	for (int family = 0; family < 4; family++) {
		static const int families[] = {AF_UNIX, AF_INET, AF_INET6, AF_NETLINK};
		sock = socket(families[family], families[family] == AF_NETLINK ? SOCK_RAW : SOCK_STREAM,
			      0);
		if (sock < 0)
			return 5;
		close(sock);
	}
	/* a rule tool, as rules.c runs them (posix_spawn, execve, wait) */
	pid = child_start("/bin/true", argv, -1, -1, true);
	if (pid < 0 || child_wait(pid) != 0)
		return 6;
	/* clone3 says ENOSYS, so that glibc uses clone, whose flags are seen */
	if (syscall(SYS_clone3, NULL, 0) != -1 || errno != ENOSYS)
		return 7;
	return 0;
}

static int make_user_namespace(void)
{
	return unshare(CLONE_NEWUSER) == 0 ? 0 : 1;
}

static int open_packet_socket(void)
{
	return socket(AF_PACKET, SOCK_RAW, 0) >= 0 ? 0 : 1;
}

static int do_mount(void)
{
	return mount("none", "/tmp", "tmpfs", 0, NULL) == 0 ? 0 : 1;
}

/* dumpable again: same-uid processes outside the sandbox could ptrace it */
static __attribute__((unused)) int make_dumpable(void)
{
	return prctl(PR_SET_DUMPABLE, 1, 0, 0, 0) == 0 ? 0 : 1;
}

static int clone_new_namespace(void)
{
	/* the raw system call: fork-like, in a new user namespace */
	long pid = syscall(SYS_clone, (unsigned long)(CLONE_NEWUSER | SIGCHLD), NULL, NULL, NULL, 0);

	if (pid == 0)
		_exit(0);
	return 1;
}

static int change_root(void)
{
	return chroot("/") == 0 ? 0 : 1;
}

/* What a child such as the health checker does after execve: stack its own
 * filter, drop capabilities. Allowed. */
static int stack_a_filter(void)
{
	if (sandbox_enter(SANDBOX_KILL) < 0 || prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 ||
	    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
		return 1;
	return 0;
}

static void test_child_may_stack_a_filter(void **unused)
{
	(void)unused;
	assert_exit_ok(sandboxed(stack_a_filter));
}

static void test_daemon_work_allowed(void **unused)
{
	char path[64];

	(void)unused;
	assert_non_null(mkdtemp(dir));
	assert_exit_ok(sandboxed(daemon_work));
	snprintf(path, sizeof(path), "%s/state", dir);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(rmdir(dir), 0);
}

static void test_forbidden_calls_kill(void **unused)
{
	(void)unused;
	assert_killed(sandboxed(make_user_namespace));
	assert_killed(sandboxed(open_packet_socket));
	assert_killed(sandboxed(do_mount));
	assert_killed(sandboxed(clone_new_namespace));
	assert_killed(sandboxed(change_root));
#ifndef __SANITIZE_ADDRESS__ /* the sanitizers' leak check needs all of prctl */
	assert_killed(sandboxed(make_dumpable));
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_daemon_work_allowed),
		cmocka_unit_test(test_forbidden_calls_kill),
		cmocka_unit_test(test_child_may_stack_a_filter),
	};

	log_init("test_sandbox", LOG_LEVEL_ERROR);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
