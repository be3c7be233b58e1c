/* freeze_threads: stops single threads of a process, for notify.sh's
 * "stuck packet worker" case, without stopping the process.
 *
 *   freeze_threads SECONDS TID...
 *
 * SIGSTOP would stop every thread (a group stop); PTRACE_SEIZE followed by
 * PTRACE_INTERRUPT stops only the thread it names, wherever it is (a
 * blocking receive included). Prints "frozen" once all are stopped, holds
 * them for SECONDS, detaches (they carry on) and prints "thawed". */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int seconds, n, status = 0;
	pid_t tids[64];

	if (argc < 3 || argc - 2 > 64 || (seconds = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: freeze_threads SECONDS TID...\n");
		return 2;
	}
	n = argc - 2;
	for (int i = 0; i < n; i++) {
		int ws;

		tids[i] = (pid_t)atoi(argv[i + 2]);
		if (ptrace(PTRACE_SEIZE, tids[i], NULL, NULL) < 0 ||
		    ptrace(PTRACE_INTERRUPT, tids[i], NULL, NULL) < 0 ||
		    waitpid(tids[i], &ws, __WALL) < 0) {
			fprintf(stderr, "freeze_threads: thread %d: %s\n", (int)tids[i], strerror(errno));
			n = i;
			status = 1;
			break;
		}
	}
	if (status == 0) {
		struct timespec hold = {.tv_sec = seconds};

		printf("frozen\n");
		fflush(stdout);
		while (nanosleep(&hold, &hold) < 0 && errno == EINTR)
			;
	}
	for (int i = 0; i < n; i++)
		ptrace(PTRACE_DETACH, tids[i], NULL, NULL);
	printf("thawed\n");
	return status;
}
