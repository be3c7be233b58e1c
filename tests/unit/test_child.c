/* Unit tests for child: a rule tool started by the daemon sees a minimal
 * environment (issue 13), not the daemon's. /usr/bin/env plays the tool. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "child.h"

/* Runs /usr/bin/env through child_start and returns what it printed. */
static char *child_env_output(void)
{
	char *const argv[] = {"env", NULL};
	static char out[4096];
	size_t len = 0;
	int pipefd[2];
	ssize_t n;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = child_start("/usr/bin/env", argv, -1, pipefd[1], false);
	close(pipefd[1]);
	assert_true(pid > 0);
	while ((n = read(pipefd[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)n;
	close(pipefd[0]);
	out[len] = '\0';
	assert_int_equal(child_wait(pid), 0);
	return out;
}

static void test_environment_is_minimal(void **unused)
{
	char *out;

	(void)unused;
	assert_int_equal(setenv("GK_SECRET_TOKEN", "hunter2", 1), 0);
	assert_int_equal(setenv("LD_LIBRARY_PATH", "/tmp/evil", 1), 0);
	assert_int_equal(setenv("PATH", "/tmp/evil:/usr/bin", 1), 0);
	out = child_env_output();
	assert_null(strstr(out, "GK_SECRET_TOKEN"));
	assert_null(strstr(out, "LD_LIBRARY_PATH"));
	assert_null(strstr(out, "/tmp/evil"));
	assert_string_equal(out, "PATH=/usr/sbin:/usr/bin:/sbin:/bin\nLANG=C\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_environment_is_minimal),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
