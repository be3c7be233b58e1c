/* child: run a rule tool (iptables-*-restore, -save) as a child.
 *
 * posix_spawn, not fork: glibc starts the child with CLONE_VM|CLONE_VFORK,
 * so the daemon's page tables (8 MiB+ receive buffers, worker threads) are
 * not copied and the workers are not stalled on the memory map lock while
 * the rules watchdog runs its check every couple of seconds. */
#ifndef GK_CHILD_H
#define GK_CHILD_H

#include <stdbool.h>
#include <sys/types.h>

/* Starts PATH with ARGV and a minimal environment (PATH fixed, LANG=C,
 * nothing of the daemon's); its stdin is STDIN_FD and its stdout STDOUT_FD
 * (-1: /dev/null); stderr is ours unless QUIET. Returns the pid, or -1. */
pid_t child_start(const char *path, char *const argv[], int stdin_fd, int stdout_fd, bool quiet);
/* Waits for PID; its exit status, or -1 if it did not exit normally. */
int child_wait(pid_t pid);

#endif
