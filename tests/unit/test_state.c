/* Unit tests for state: the override set, save (atomic replace, missing
 * directory, failure leaves the old file), and the tolerant load (missing,
 * empty, foreign, newer, truncated at every byte, bad lines, unknown
 * sites). Files live in a fresh directory under $TMPDIR, removed at the
 * end. Every parse reads a heap copy of exactly the tested length, so ASan
 * reports any read past the end. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"
#include "sites.h"
#include "state.h"

static char dir[256];

static const char config_text[] =
	"control:\n  socket: /run/gk-test/control.sock\n"
	"sites:\n"
	"  - name: shop\n    addresses: [198.51.100.10]\n    ports: [443]\n    state: online\n"
	"  - name: blog\n    addresses: [198.51.100.11]\n    ports: [443]\n    state: offline\n"
	"    action: drop\n";

static struct config *test_config(void)
{
	struct config_errors errors = {0};
	struct config *cfg = config_parse("test.yaml", config_text, strlen(config_text), &errors);

	for (size_t i = 0; i < errors.count; i++)
		print_error("%s\n", errors.messages[i]);
	assert_non_null(cfg);
	return cfg;
}

static char *path_in(const char *name)
{
	char *p;

	assert_true(asprintf(&p, "%s/%s", dir, name) > 0);
	return p;
}

static void write_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, 65535, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

/* No "*.tmp.*" left behind in DIR_PATH. */
static void assert_no_temp_files(const char *dir_path)
{
	DIR *d = opendir(dir_path);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)))
		if (strstr(e->d_name, ".tmp."))
			fail_msg("temp file left behind: %s", e->d_name);
	closedir(d);
}

/* Parses exactly LEN bytes of TEXT from a heap copy. */
static int parse(const char *text, size_t len, struct state_set *set, size_t *bad, char *err,
		 size_t err_len)
{
	char *copy = malloc(len ? len : 1);
	int rc;

	memcpy(copy, text, len);
	rc = state_parse(copy, len, set, bad, err, err_len);
	free(copy);
	return rc;
}

static void test_set_put_find_remove(void **unused)
{
	struct state_set set = {0};

	(void)unused;
	assert_int_equal(state_set_put(&set, "a", SITE_OFFLINE, SITE_ACTION_REJECT), 0);
	assert_int_equal(state_set_put(&set, "b", SITE_ONLINE, SITE_ACTION_DROP), 0);
	assert_int_equal(state_set_put(&set, "a", SITE_ONLINE, SITE_ACTION_DROP), 0);
	assert_int_equal(set.count, 2);
	assert_int_equal(state_set_find(&set, "a")->state, SITE_ONLINE);
	/* names that could not come from a config, or would break the format */
	assert_int_equal(state_set_put(&set, "", SITE_ONLINE, SITE_ACTION_DROP), -1);
	assert_int_equal(state_set_put(&set, "a b", SITE_ONLINE, SITE_ACTION_DROP), -1);
	assert_int_equal(state_set_put(&set, "a\nb", SITE_ONLINE, SITE_ACTION_DROP), -1);
	assert_int_equal(state_set_put(&set,
				       "x1234567890123456789012345678901234567890123456789012345678901234",
				       SITE_ONLINE, SITE_ACTION_DROP), -1);
	state_set_remove(&set, "a");
	state_set_remove(&set, "nothing");
	assert_int_equal(set.count, 1);
	assert_null(state_set_find(&set, "a"));
	assert_non_null(state_set_find(&set, "b"));
	state_set_free(&set);
	assert_int_equal(set.count, 0);
}

static void test_save_load_roundtrip(void **unused)
{
	char *path = path_in("state"), *text, err[256];
	struct state_set set = {0}, back = {0};
	size_t bad = 99;
	struct stat before, after;

	(void)unused;
	assert_int_equal(state_set_put(&set, "blog", SITE_ONLINE, SITE_ACTION_DROP), 0);
	assert_int_equal(state_set_put(&set, "shop", SITE_OFFLINE, SITE_ACTION_REJECT), 0);
	assert_int_equal(state_save(path, &set, err, sizeof(err)), 0);
	text = read_file(path);
	assert_string_equal(strstr(text, "gatekeeper-state 1\n"), text);
	assert_non_null(strstr(text, "\nshop offline reject\n"));
	assert_non_null(strstr(text, "\nblog online drop\n"));
	free(text);
	assert_int_equal(state_load(path, &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(back.count, 2);
	assert_int_equal(state_set_find(&back, "shop")->action, SITE_ACTION_REJECT);

	/* a second save replaces the file by rename: a new inode, no temp left */
	assert_int_equal(stat(path, &before), 0);
	state_set_remove(&set, "shop");
	assert_int_equal(state_save(path, &set, err, sizeof(err)), 0);
	assert_int_equal(stat(path, &after), 0);
	assert_true(before.st_ino != after.st_ino);
	assert_int_equal(state_load(path, &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(back.count, 1);
	assert_null(state_set_find(&back, "shop"));
	assert_no_temp_files(dir);
	state_set_free(&set);
	state_set_free(&back);
	free(path);
}

static void test_save_creates_dir_and_fails_cleanly(void **unused)
{
	char *sub = path_in("newdir"), *path = path_in("newdir/state");
	char *blocker = path_in("file"), *bad_path = path_in("file/state"), err[256];
	struct state_set set = {0};

	(void)unused;
	assert_int_equal(state_set_put(&set, "shop", SITE_OFFLINE, SITE_ACTION_DROP), 0);
	assert_int_equal(state_save(path, &set, err, sizeof(err)), 0);
	assert_int_equal(access(path, R_OK), 0);

	/* the directory is a regular file: an error that names the path */
	write_file(blocker, "x", 1);
	assert_int_equal(state_save(bad_path, &set, err, sizeof(err)), -1);
	assert_non_null(strstr(err, bad_path));
	unlink(path);
	rmdir(sub);
	unlink(blocker);
	state_set_free(&set);
	free(sub);
	free(path);
	free(blocker);
	free(bad_path);
}

static void test_load_missing_empty_foreign(void **unused)
{
	char *path = path_in("state"), err[256];
	struct state_set set = {0};
	size_t bad;

	(void)unused;
	unlink(path);
	assert_int_equal(state_load(path, &set, &bad, err, sizeof(err)), 0);
	assert_int_equal(set.count, 0);

	write_file(path, "", 0);
	assert_int_equal(state_load(path, &set, &bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "empty"));

	write_file(path, "shop offline drop\n", 18);
	assert_int_equal(state_load(path, &set, &bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "not a gatekeeper state file"));

	write_file(path, "gatekeeper-state 2\nshop offline drop\n", 37);
	assert_int_equal(state_load(path, &set, &bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "unsupported version"));
	assert_int_equal(set.count, 0);

	/* a directory where the file should be */
	unlink(path);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(state_load(path, &set, &bad, err, sizeof(err)), -1);
	rmdir(path);

	/* larger than the limit: refused before it is read */
	{
		int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0600);
		assert_true(fd >= 0);
		assert_int_equal(ftruncate(fd, STATE_MAX_FILE_SIZE + 1), 0);
		close(fd);
	}
	assert_int_equal(state_load(path, &set, &bad, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "larger"));
	unlink(path);
	free(path);
}

/* Issue 13: a FIFO planted at the path hung start-up in open() (a reader
 * waits for a writer); a symlink is not a file the daemon wrote. Both are
 * refused at once: alarm() kills the test if open() blocks. */
static void test_load_fifo_and_symlink_refused(void **unused)
{
	char *path = path_in("state"), *target = path_in("real"), err[256];
	struct state_set set = {0};
	size_t bad;

	(void)unused;
	unlink(path);
	assert_int_equal(mkfifo(path, 0600), 0);
	alarm(5);
	assert_int_equal(state_load(path, &set, &bad, err, sizeof(err)), -1);
	alarm(0);
	assert_non_null(strstr(err, "not a regular file"));
	unlink(path);

	write_file(target, "gatekeeper-state 1\nshop offline drop\n", 37);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(state_load(path, &set, &bad, err, sizeof(err)), -1);
	assert_int_equal(set.count, 0);
	unlink(path);
	unlink(target);
	free(path);
	free(target);
}

/* The hashed index stays right across growth, replacement and removal
 * (removal moves the last entry into the hole). */
static void test_set_many_names(void **unused)
{
	struct state_set set = {0};
	char name[32];
	const size_t n = 5000;

	(void)unused;
	for (size_t i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "site%zu", i);
		assert_int_equal(state_set_put(&set, name, SITE_OFFLINE, SITE_ACTION_DROP), 0);
	}
	for (size_t i = 0; i < n; i += 2) {
		snprintf(name, sizeof(name), "site%zu", i);
		assert_int_equal(state_set_put(&set, name, SITE_ONLINE, SITE_ACTION_REJECT), 0);
	}
	assert_int_equal(set.count, n);
	for (size_t i = 0; i < n; i += 3) {
		snprintf(name, sizeof(name), "site%zu", i);
		state_set_remove(&set, name);
	}
	for (size_t i = 0; i < n; i++) {
		const struct state_entry *e;

		snprintf(name, sizeof(name), "site%zu", i);
		e = state_set_find(&set, name);
		if (i % 3 == 0) {
			assert_null(e);
			continue;
		}
		assert_non_null(e);
		assert_string_equal(e->name, name);
		assert_int_equal(e->state, i % 2 == 0 ? SITE_ONLINE : SITE_OFFLINE);
	}
	assert_int_equal(set.count, n - (n + 2) / 3);
	state_set_free(&set);
}

static void test_parse_bad_lines_skipped(void **unused)
{
	static const char text[] =
		"gatekeeper-state 1\r\n"
		"# a comment\n"
		"\n"
		"   \t \n"
		"shop offline reject\r\n"
		"blog offline\n"               /* too few words */
		"blog offline drop extra\n"    /* too many */
		"bad!name offline drop\n"      /* not a site name */
		"wiki sideways drop\n"         /* unknown state */
		"wiki offline gently\n"        /* unknown action */
		"wiki\toffline\tdrop\n"        /* tabs are fine */
		"shop online drop\n"           /* a later line wins */
		"nul\0x offline drop\n"
		"last online drop";            /* no final newline: still whole */
	struct state_set set = {0};
	size_t bad;
	char err[256];

	(void)unused;
	assert_int_equal(parse(text, sizeof(text) - 1, &set, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 6);
	assert_string_equal(err, "line 6: expected 'NAME STATE ACTION', found 2 words");
	assert_int_equal(set.count, 3);
	assert_int_equal(state_set_find(&set, "shop")->state, SITE_ONLINE);
	assert_int_equal(state_set_find(&set, "wiki")->state, SITE_OFFLINE);
	assert_non_null(state_set_find(&set, "last"));
	state_set_free(&set);
}

static void test_parse_long_lines(void **unused)
{
	size_t len = 20 + 100000;
	char *text = malloc(len), err[256];
	struct state_set set = {0};
	size_t bad;

	(void)unused;
	memcpy(text, "gatekeeper-state 1\n", 19);
	memset(text + 19, 'a', len - 19);
	text[len - 1] = '\n';
	assert_int_equal(parse(text, len, &set, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 1);
	assert_non_null(strstr(err, "longer than"));
	/* and as the header line */
	memset(text, 'g', len);
	assert_int_equal(parse(text, len, &set, &bad, err, sizeof(err)), -1);
	free(text);
}

/* Every prefix of a good file: never a crash, never an invented entry. */
static void test_parse_truncated_everywhere(void **unused)
{
	static const char text[] = "gatekeeper-state 1\nshop offline reject\nblog online drop\n";
	struct state_set set = {0};
	size_t bad;
	char err[256];

	(void)unused;
	for (size_t len = 0; len <= sizeof(text) - 1; len++) {
		int rc = parse(text, len, &set, &bad, err, sizeof(err));

		if (len < sizeof("gatekeeper-state 1") - 1) {
			assert_int_equal(rc, -1);
			continue;
		}
		assert_int_equal(rc, 0);
		assert_true(set.count <= 2);
		for (size_t i = 0; i < set.count; i++) {
			const struct state_entry *e = &set.entries[i];
			/* a cut entry is either whole (by luck of the cut) or absent */
			if (strcmp(e->name, "shop") == 0)
				assert_int_equal(e->action, SITE_ACTION_REJECT);
			else
				assert_string_equal(e->name, "blog");
		}
	}
	state_set_free(&set);
}

static void test_collect_and_restore(void **unused)
{
	struct config *cfg = test_config();
	struct sites *sites = sites_create(cfg);
	char *path = path_in("state"), *text, err[256];
	struct state_set set = {0};

	(void)unused;
	assert_non_null(sites);
	assert_int_equal(state_collect(sites, &set), 0);
	assert_int_equal(set.count, 0);

	/* an override for a site that is gone is dropped, and the file rewritten */
	static const char saved[] = "gatekeeper-state 1\nshop offline reject\ngone offline drop\n"
				    "blog online drop\n";
	write_file(path, saved, sizeof(saved) - 1);
	state_restore(path, sites);
	assert_int_equal(site_state(sites_find(sites, "shop")), SITE_OFFLINE);
	assert_int_equal(site_action(sites_find(sites, "shop")), SITE_ACTION_REJECT);
	assert_int_equal(site_source(sites_find(sites, "shop")), SITE_SOURCE_RUNTIME);
	assert_int_equal(site_state(sites_find(sites, "blog")), SITE_ONLINE);
	text = read_file(path);
	assert_null(strstr(text, "gone"));
	assert_non_null(strstr(text, "shop offline reject"));
	free(text);
	assert_int_equal(state_collect(sites, &set), 0);
	assert_int_equal(set.count, 2);

	/* a corrupt file: config states, and the file is left for inspection */
	sites_free(sites);
	sites = sites_create(cfg);
	write_file(path, "\x7f" "ELF garbage\n", 12);
	state_restore(path, sites);
	assert_int_equal(site_source(sites_find(sites, "shop")), SITE_SOURCE_CONFIG);
	assert_int_equal(site_state(sites_find(sites, "blog")), SITE_OFFLINE);
	text = read_file(path);
	assert_memory_equal(text, "\x7f" "ELF", 4);
	free(text);

	/* missing: nothing happens */
	unlink(path);
	state_restore(path, sites);
	assert_int_equal(access(path, F_OK), -1);
	(void)err;
	state_set_free(&set);
	sites_free(sites);
	config_free(cfg);
	free(path);
}

/* Allow-lists and deadlines ride along in "+" lines; a file of the
 * format before them (no "+" lines) loads as it always did. */
static void test_allow_and_until_roundtrip(void **unused)
{
	char *path = path_in("state"), *text, err[256];
	struct state_set set = {0}, back = {0};
	struct config_cidr nets[2];
	struct site_allow *allow;
	const struct state_entry *e;
	size_t bad = 99;

	(void)unused;
	assert_int_equal(config_parse_cidr("203.0.113.0/24", &nets[0], err, sizeof(err)), 0);
	assert_int_equal(config_parse_cidr("2001:db8:3::/64", &nets[1], err, sizeof(err)), 0);
	allow = site_allow_new(nets, 2);
	assert_int_equal(state_set_put(&set, "shop", SITE_OFFLINE, SITE_ACTION_REJECT), 0);
	assert_int_equal(state_set_extend(&set, "shop", allow, 1798000000), 0);
	assert_int_equal(state_set_put(&set, "blog", SITE_OFFLINE, SITE_ACTION_DROP), 0);
	free(allow);
	allow = site_allow_new(NULL, 0); /* --allow none */
	assert_int_equal(state_set_extend(&set, "blog", allow, 0), 0);
	free(allow);
	assert_int_equal(state_set_extend(&set, "nosuch", NULL, 5), -1);
	assert_int_equal(state_save(path, &set, err, sizeof(err)), 0);
	text = read_file(path);
	assert_non_null(strstr(text, "\nshop offline reject\n+allow shop 203.0.113.0/24 2001:db8:3::/64\n"
				     "+until shop 1798000000\n"));
	assert_non_null(strstr(text, "\nblog offline drop\n+allow blog\n"));
	free(text);
	assert_int_equal(state_load(path, &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 0);
	e = state_set_find(&back, "shop");
	assert_non_null(e);
	assert_int_equal(e->until, 1798000000);
	assert_non_null(e->allow);
	assert_int_equal(e->allow->count, 2);
	assert_int_equal(e->allow->nets[1].prefix, 64);
	e = state_set_find(&back, "blog");
	assert_int_equal(e->until, 0);
	assert_non_null(e->allow);
	assert_int_equal(e->allow->count, 0);
	state_set_free(&back);

	/* today's format, exactly as the version before wrote it */
	static const char today[] = "gatekeeper-state 1\n"
				    "# run-time overrides of gatekeeperd; written by the daemon, do not edit\n"
				    "shop offline reject\nblog online drop\n";
	assert_int_equal(parse(today, sizeof(today) - 1, &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 0);
	assert_int_equal(back.count, 2);
	assert_null(state_set_find(&back, "shop")->allow);
	assert_int_equal(state_set_find(&back, "shop")->until, 0);
	state_set_free(&back);

	/* "+" lines that cannot be understood are skipped, the override kept */
	static const char odd[] = "gatekeeper-state 1\n+until shop 5\nshop offline drop\n"
				  "+until shop soon\n+allow shop 10.0.0.1/8\n+until shop 0\n";
	assert_int_equal(parse(odd, sizeof(odd) - 1, &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 4);
	assert_non_null(strstr(err, "line 2: "));
	assert_int_equal(state_set_find(&back, "shop")->state, SITE_OFFLINE);
	assert_null(state_set_find(&back, "shop")->allow);
	state_set_free(&back);
	state_set_free(&set);
	free(path);
}

/* "+cut NAME": written only for a cut, read back; a file without it (every
 * file the versions before wrote) has no cut; a bad one is skipped. */
static void test_cut_roundtrip(void **unused)
{
	char *path = path_in("state"), *text, err[256];
	struct state_set set = {0}, back = {0};
	size_t bad = 99;

	(void)unused;
	assert_int_equal(state_set_put(&set, "shop", SITE_OFFLINE, SITE_ACTION_REJECT), 0);
	assert_int_equal(state_set_extend(&set, "shop", NULL, 1798000000), 0);
	assert_int_equal(state_set_cut(&set, "shop", true), 0);
	assert_int_equal(state_set_put(&set, "blog", SITE_OFFLINE, SITE_ACTION_DROP), 0);
	assert_int_equal(state_set_cut(&set, "nosuch", true), -1);
	assert_int_equal(state_save(path, &set, err, sizeof(err)), 0);
	text = read_file(path);
	assert_non_null(strstr(text, "\nshop offline reject\n+until shop 1798000000\n+cut shop\n"));
	assert_null(strstr(text, "+cut blog"));
	free(text);
	assert_int_equal(state_load(path, &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 0);
	assert_true(state_set_find(&back, "shop")->cut);
	assert_int_equal(state_set_find(&back, "shop")->until, 1798000000);
	assert_false(state_set_find(&back, "blog")->cut);
	state_set_free(&back);

	/* today's format: no cut */
	static const char today[] = "gatekeeper-state 1\nshop offline reject\n+until shop 1798000000\n";
	assert_int_equal(parse(today, sizeof(today) - 1, &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 0);
	assert_false(state_set_find(&back, "shop")->cut);
	state_set_free(&back);

	/* a cut line for no site above it, or with extra words: skipped */
	static const char odd[] = "gatekeeper-state 1\n+cut shop\nshop offline drop\n+cut shop now\n"
				  "+cut\n";
	assert_int_equal(parse(odd, sizeof(odd) - 1, &back, &bad, err, sizeof(err)), 0);
	assert_int_equal(bad, 3);
	assert_false(state_set_find(&back, "shop")->cut);
	state_set_free(&back);
	state_set_free(&set);
	free(path);
}

/* A deadline that passed while no daemon ran: the site starts with its
 * config state, and the file is rewritten without the override. */
static void test_restore_deadline(void **unused)
{
	struct config *cfg = test_config();
	struct sites *sites = sites_create(cfg);
	char *path = path_in("state"), *text, saved[256];

	(void)unused;
	snprintf(saved, sizeof(saved),
		 "gatekeeper-state 1\nshop offline drop\n+until shop 1000\n"
		 "blog offline reject\n+allow blog 203.0.113.0/24\n+until blog %lld\n",
		 (long long)time(NULL) + 3600);
	write_file(path, saved, strlen(saved));
	state_restore(path, sites);
	assert_int_equal(site_source(sites_find(sites, "shop")), SITE_SOURCE_CONFIG);
	assert_int_equal(site_state(sites_find(sites, "shop")), SITE_ONLINE);
	assert_int_equal(site_source(sites_find(sites, "blog")), SITE_SOURCE_RUNTIME);
	assert_true(site_until(sites_find(sites, "blog")) > time(NULL));
	assert_true(site_allow_is_runtime(sites_find(sites, "blog")));
	text = read_file(path);
	assert_null(strstr(text, "shop"));
	assert_non_null(strstr(text, "+allow blog 203.0.113.0/24\n"));
	free(text);
	sites_free(sites);
	config_free(cfg);
	free(path);
}

static int make_dir(void **unused)
{
	const char *tmp = getenv("TMPDIR");

	(void)unused;
	snprintf(dir, sizeof(dir), "%s/gk-test-state.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int remove_dir(void **unused)
{
	char cmd[300];

	(void)unused;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_set_put_find_remove),
		cmocka_unit_test(test_save_load_roundtrip),
		cmocka_unit_test(test_save_creates_dir_and_fails_cleanly),
		cmocka_unit_test(test_load_missing_empty_foreign),
		cmocka_unit_test(test_load_fifo_and_symlink_refused),
		cmocka_unit_test(test_set_many_names),
		cmocka_unit_test(test_parse_bad_lines_skipped),
		cmocka_unit_test(test_parse_long_lines),
		cmocka_unit_test(test_parse_truncated_everywhere),
		cmocka_unit_test(test_collect_and_restore),
		cmocka_unit_test(test_allow_and_until_roundtrip),
		cmocka_unit_test(test_restore_deadline),
		cmocka_unit_test(test_cut_roundtrip),
	};

	return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
