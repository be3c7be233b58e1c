#include "child.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* What every child gets, and nothing of ours: the daemon's environment
 * (a manual start's shell, a supervisor's variables, LD_* or XTABLES_*
 * settings) is not the rule tools' business. PATH is the tool
 * directories (rules.c runs them by absolute path; this is for what they
 * run themselves), LANG=C keeps their messages parseable. */
static char *const child_environment[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"LANG=C",
	NULL,
};

pid_t child_start(const char *path, char *const argv[], int stdin_fd, int stdout_fd, bool quiet)
{
	posix_spawn_file_actions_t actions;
	pid_t pid;
	int rc;

	if (posix_spawn_file_actions_init(&actions) != 0)
		return -1;
	/* the daemon's own descriptors are all O_CLOEXEC: only these pass */
	if (stdin_fd >= 0)
		rc = posix_spawn_file_actions_adddup2(&actions, stdin_fd, STDIN_FILENO);
	else
		rc = posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
	if (rc == 0 && stdout_fd >= 0)
		rc = posix_spawn_file_actions_adddup2(&actions, stdout_fd, STDOUT_FILENO);
	else if (rc == 0)
		rc = posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
	if (rc == 0 && quiet)
		rc = posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
	if (rc == 0)
		rc = posix_spawn(&pid, path, &actions, NULL, argv, child_environment);
	posix_spawn_file_actions_destroy(&actions);
	if (rc != 0) {
		errno = rc;
		return -1;
	}
	return pid;
}

int child_wait(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}
