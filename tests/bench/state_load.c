/* state_load: times loading a state file (issue 13: loading was quadratic
 * in the number of names). Usage: state_load FILE [REPEAT]. Generate a
 * file with e.g. 40,000 names no config knows:
 *   { echo 'gatekeeper-state 1'; seq -f 'gone%g offline drop' 40000; } >FILE */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "state.h"

int main(int argc, char **argv)
{
	struct state_set set = {0};
	struct timespec t0, t1;
	char err[256];
	size_t bad = 0;
	int repeat = argc > 2 ? atoi(argv[2]) : 1;

	if (argc < 2) {
		fprintf(stderr, "usage: state_load FILE [REPEAT]\n");
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (int i = 0; i < repeat; i++)
		if (state_load(argv[1], &set, &bad, err, sizeof(err)) < 0) {
			fprintf(stderr, "state_load: %s\n", err);
			return 1;
		}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%zu entries, %zu bad lines, %.3f ms per load\n", set.count, bad,
	       ((double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6) /
		       (repeat > 0 ? repeat : 1));
	state_set_free(&set);
	return 0;
}
