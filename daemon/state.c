#include "state.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "protocol.h"
#include "strbuf.h"

/* Longer lines cannot be valid: a name is at most PROTOCOL_SITE_NAME_MAX
 * bytes. */
#define STATE_MAX_LINE 256
/* ... except a "+allow" line: up to CONFIG_MAX_ALLOW networks */
#define STATE_MAX_ALLOW_LINE (PROTOCOL_SITE_NAME_MAX + 16 + CONFIG_MAX_ALLOW * CONFIG_CIDR_STRLEN)
#define STATE_ALLOW "+allow"
#define STATE_UNTIL "+until"
#define STATE_CUT "+cut"

void state_set_free(struct state_set *set)
{
	for (size_t i = 0; i < set->count; i++)
		free(set->entries[i].allow);
	free(set->entries);
	free(set->index);
	memset(set, 0, sizeof(*set));
}

/* FNV-1a, as sites.c hashes the config's names */
static size_t name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
	return (size_t)(h ^ h >> 32);
}

static void index_insert(struct state_set *set, size_t entry)
{
	size_t at = name_hash(set->entries[entry].name) & set->index_mask;

	while (set->index[at])
		at = (at + 1) & set->index_mask;
	set->index[at] = entry + 1;
}

/* Sized for CAP entries at a load factor of at most one half, so an empty
 * slot ends every probe. */
static int index_rebuild(struct state_set *set, size_t cap)
{
	size_t slots = 16;
	size_t *index;

	while (slots < 2 * cap)
		slots *= 2;
	index = calloc(slots, sizeof(*index));
	if (!index)
		return -1;
	free(set->index);
	set->index = index;
	set->index_mask = slots - 1;
	for (size_t i = 0; i < set->count; i++)
		index_insert(set, i);
	return 0;
}

const struct state_entry *state_set_find(const struct state_set *set, const char *name)
{
	if (!set->index)
		return NULL;
	for (size_t at = name_hash(name) & set->index_mask; set->index[at];
	     at = (at + 1) & set->index_mask) {
		const struct state_entry *e = &set->entries[set->index[at] - 1];
		if (strcmp(e->name, name) == 0)
			return e;
	}
	return NULL;
}

int state_set_put(struct state_set *set, const char *name, enum site_state state,
		  enum site_action action)
{
	struct state_entry *e;
	size_t len = strlen(name);

	if (!protocol_site_name_valid(name))
		return -1;
	e = (struct state_entry *)state_set_find(set, name);
	if (!e) {
		if (set->count == set->cap) {
			size_t cap = set->cap ? set->cap * 2 : 16;
			struct state_entry *grown = realloc(set->entries, cap * sizeof(*grown));
			if (!grown)
				return -1;
			set->entries = grown;
			set->cap = cap;
			if (index_rebuild(set, cap) < 0)
				return -1;
		}
		e = &set->entries[set->count++];
		memset(e, 0, sizeof(*e));
		memcpy(e->name, name, len + 1);
		index_insert(set, set->count - 1);
	}
	e->state = state;
	e->action = action;
	return 0;
}

/* O(N) for the index: removals come one per control command, never in a
 * loop over a file. */
void state_set_remove(struct state_set *set, const char *name)
{
	const struct state_entry *e = state_set_find(set, name);

	if (!e)
		return;
	free(e->allow);
	/* order does not matter: the last entry fills the hole */
	set->entries[e - set->entries] = set->entries[set->count - 1];
	set->count--;
	memset(set->index, 0, (set->index_mask + 1) * sizeof(*set->index));
	for (size_t i = 0; i < set->count; i++)
		index_insert(set, i);
}

int state_set_extend(struct state_set *set, const char *name, const struct site_allow *allow,
		     int64_t until)
{
	struct state_entry *e = (struct state_entry *)state_set_find(set, name);
	struct site_allow *copy = NULL;

	if (!e || (allow && !(copy = site_allow_new(allow->nets, allow->count))))
		return -1;
	free(e->allow);
	e->allow = copy;
	e->until = until;
	return 0;
}

int state_set_cut(struct state_set *set, const char *name, bool cut)
{
	struct state_entry *e = (struct state_entry *)state_set_find(set, name);

	if (!e)
		return -1;
	e->cut = cut;
	return 0;
}

int state_collect(const struct sites *sites, struct state_set *out)
{
	state_set_free(out);
	for (size_t i = 0; i < sites_count(sites); i++) {
		const struct site *site = sites_at(sites, i);

		if (site_source(site) != SITE_SOURCE_RUNTIME)
			continue;
		if (state_set_put(out, site_name(site), site_state(site), site_action(site)) < 0 ||
		    state_set_extend(out, site_name(site),
				     site_allow_is_runtime(site) ? site_allow_list(site) : NULL,
				     site_until(site)) < 0 ||
		    state_set_cut(out, site_name(site), site_cut(site)) < 0) {
			state_set_free(out);
			return -1;
		}
	}
	return 0;
}

/* ---- saving ---- */

/* Splits PATH into its directory ("." when there is no slash). */
static int dir_of(const char *path, char *dir, size_t len)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash)
		return snprintf(dir, len, ".") < (int)len ? 0 : -1;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= len)
		return -1;
	memcpy(dir, path, n);
	dir[n] = '\0';
	return 0;
}

static int write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

/* An entry's line, then its "+" lines: a reader of the first version of
 * the format skips those (not a site name) and keeps the override itself. */
static void entry_text(const struct state_entry *e, struct strbuf *text)
{
	char net[CONFIG_CIDR_STRLEN];

	strbuf_printf(text, "%s %s %s\n", e->name, config_state_name(e->state),
		      config_action_name(e->action));
	if (e->allow) {
		strbuf_printf(text, STATE_ALLOW " %s", e->name);
		for (size_t i = 0; i < e->allow->count; i++)
			strbuf_printf(text, " %s", config_cidr_str(&e->allow->nets[i], net, sizeof(net)));
		strbuf_puts(text, "\n");
	}
	if (e->until)
		strbuf_printf(text, STATE_UNTIL " %s %" PRId64 "\n", e->name, e->until);
	if (e->cut)
		strbuf_printf(text, STATE_CUT " %s\n", e->name);
}

int state_write_file(const char *path, const char *data, size_t len, char *err, size_t err_len)
{
	char dir[4096], *tmp = NULL;
	const char *step = "prepare";
	int fd = -1, dirfd = -1, rc = -1;

	if (dir_of(path, dir, sizeof(dir)) < 0 || asprintf(&tmp, "%s.tmp.XXXXXX", path) < 0) {
		tmp = NULL;
		errno = ENOMEM;
		goto fail;
	}
	step = "create the directory";
	if (mkdir(dir, 0755) < 0 && errno != EEXIST)
		goto fail;
	step = "create a temporary file in the directory";
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		goto fail;
	step = "write";
	if (fchmod(fd, 0644) < 0 || write_all(fd, data, len) < 0)
		goto fail;
	step = "fsync";
	if (fsync(fd) < 0)
		goto fail;
	step = "close";
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	step = "rename the temporary file over it";
	if (rename(tmp, path) < 0)
		goto fail;
	free(tmp);
	tmp = NULL;
	/* the rename itself is durable only once the directory is synced */
	step = "fsync the directory";
	dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0 || fsync(dirfd) < 0)
		goto fail;
	rc = 0;
fail:
	if (rc < 0)
		snprintf(err, err_len, "cannot %s for %s: %s", step, path, strerror(errno));
	if (fd >= 0)
		close(fd);
	if (dirfd >= 0)
		close(dirfd);
	if (tmp) {
		unlink(tmp);
		free(tmp);
	}
	return rc;
}

int state_save(const char *path, const struct state_set *set, char *err, size_t err_len)
{
	struct strbuf text;
	int rc;

	strbuf_init(&text, 0);
	strbuf_printf(&text, "%s %d\n", STATE_MAGIC, STATE_VERSION);
	strbuf_puts(&text, "# run-time overrides of gatekeeperd; written by the daemon, do not edit\n");
	for (size_t i = 0; i < set->count; i++)
		entry_text(&set->entries[i], &text);
	if (strbuf_failed(&text)) {
		snprintf(err, err_len, "out of memory writing %s", path);
		rc = -1;
	} else {
		rc = state_write_file(path, text.data, text.len, err, err_len);
	}
	strbuf_free(&text);
	return rc;
}

/* ---- loading ---- */

/* Splits LINE (NUL-terminated, writable) into at most MAX words. */
static size_t split_words(char *line, char **words, size_t max)
{
	size_t n = 0;
	char *save = NULL;

	for (char *w = strtok_r(line, " \t\r", &save); w; w = strtok_r(NULL, " \t\r", &save)) {
		if (n == max)
			return max + 1;
		words[n++] = w;
	}
	return n;
}

/* "+allow NAME [CIDR ...]", "+until NAME UNIXTIME" or "+cut NAME", after
 * NAME's line. */
static int parse_extension(char *line, struct state_set *out, char *why, size_t why_len)
{
	char *words[CONFIG_MAX_ALLOW + 2], *end;
	struct config_cidr nets[CONFIG_MAX_ALLOW];
	size_t n = split_words(line, words, CONFIG_MAX_ALLOW + 2);
	const struct state_entry *e = n >= 2 ? state_set_find(out, words[1]) : NULL;
	struct site_allow *allow;
	long long until;
	int rc;

	if (!e) {
		snprintf(why, why_len, "'%.16s' for no site listed above it", words[0]);
		return -1;
	}
	if (strcmp(words[0], STATE_CUT) == 0) {
		if (n != 2) {
			snprintf(why, why_len, "expected '" STATE_CUT " NAME'");
			return -1;
		}
		return state_set_cut(out, e->name, true);
	}
	if (strcmp(words[0], STATE_UNTIL) == 0) {
		errno = 0;
		until = n == 3 ? strtoll(words[2], &end, 10) : 0;
		if (n != 3 || errno || *end || until <= 0) {
			snprintf(why, why_len, "expected '" STATE_UNTIL " NAME UNIXTIME'");
			return -1;
		}
		return state_set_extend(out, e->name, e->allow, until);
	}
	if (n > CONFIG_MAX_ALLOW + 2) {
		snprintf(why, why_len, "more than %d networks", CONFIG_MAX_ALLOW);
		return -1;
	}
	for (size_t i = 2; i < n; i++)
		if (config_parse_cidr(words[i], &nets[i - 2], why, why_len) < 0)
			return -1;
	allow = site_allow_new(nets, n - 2);
	rc = allow ? state_set_extend(out, e->name, allow, e->until) : -1;
	free(allow);
	if (rc < 0)
		snprintf(why, why_len, "out of memory");
	return rc;
}

static int parse_entry(char *line, struct state_set *out, char *why, size_t why_len)
{
	char *words[3];
	enum site_state state;
	enum site_action action;
	size_t n;

	line += strspn(line, " \t");
	if (strncmp(line, STATE_ALLOW " ", sizeof(STATE_ALLOW)) == 0 ||
	    strncmp(line, STATE_UNTIL " ", sizeof(STATE_UNTIL)) == 0 ||
	    strncmp(line, STATE_CUT " ", sizeof(STATE_CUT)) == 0)
		return parse_extension(line, out, why, why_len);
	n = split_words(line, words, 3);

	if (n != 3) {
		snprintf(why, why_len, "expected 'NAME STATE ACTION', found %zu words", n);
		return -1;
	}
	if (!protocol_site_name_valid(words[0])) {
		snprintf(why, why_len, "'%.64s' is not a valid site name", words[0]);
		return -1;
	}
	if (config_parse_state(words[1], &state) < 0) {
		snprintf(why, why_len, "unknown state '%.16s'", words[1]);
		return -1;
	}
	if (config_parse_action(words[2], &action) < 0) {
		snprintf(why, why_len, "unknown action '%.16s'", words[2]);
		return -1;
	}
	if (state_set_put(out, words[0], state, action) < 0) {
		snprintf(why, why_len, "out of memory");
		return -1;
	}
	return 0;
}

int state_parse(const char *buf, size_t len, struct state_set *out, size_t *bad_lines,
		char *err, size_t err_len)
{
	char line[STATE_MAX_ALLOW_LINE + 1], header[64], why[128];
	size_t pos = 0, lineno = 0;

	state_set_free(out);
	*bad_lines = 0;
	err[0] = '\0';
	if (len > STATE_MAX_FILE_SIZE) {
		snprintf(err, err_len, "larger than %u bytes", STATE_MAX_FILE_SIZE);
		return -1;
	}
	snprintf(header, sizeof(header), "%s %d", STATE_MAGIC, STATE_VERSION);
	while (pos < len) {
		const char *end = memchr(buf + pos, '\n', len - pos);
		size_t n = (end ? (size_t)(end - buf) : len) - pos;
		bool too_long = n > (memcmp(buf + pos, STATE_ALLOW, n < 6 ? n : 6) == 0
					     ? STATE_MAX_ALLOW_LINE : STATE_MAX_LINE), has_nul;

		lineno++;
		if (!too_long) {
			memcpy(line, buf + pos, n);
			line[n] = '\0';
		}
		has_nul = !too_long && memchr(buf + pos, '\0', n) != NULL;
		pos += n + (end ? 1 : 0);
		if (n && !too_long && line[n - 1] == '\r')
			line[--n] = '\0';

		if (lineno == 1) {
			if (too_long || has_nul || strcmp(line, header) != 0) {
				/* a newer daemon's file is not ours to guess at */
				if (!too_long && !has_nul &&
				    strncmp(line, STATE_MAGIC " ", sizeof(STATE_MAGIC)) == 0)
					snprintf(err, err_len, "line 1: unsupported version '%.16s' (this daemon reads %d)",
						 line + sizeof(STATE_MAGIC), STATE_VERSION);
				else
					snprintf(err, err_len, "line 1: not a gatekeeper state file (want '%s')",
						 header);
				state_set_free(out);
				return -1;
			}
			continue;
		}
		if (too_long)
			snprintf(why, sizeof(why), "longer than %d bytes", STATE_MAX_LINE);
		else if (has_nul)
			snprintf(why, sizeof(why), "contains a NUL byte");
		else if (line[strspn(line, " \t")] == '\0' || line[strspn(line, " \t")] == '#')
			continue;
		else if (parse_entry(line, out, why, sizeof(why)) == 0)
			continue;
		if ((*bad_lines)++ == 0)
			snprintf(err, err_len, "line %zu: %s", lineno, why);
	}
	if (lineno == 0) {
		snprintf(err, err_len, "empty file (want '%s' on line 1)", header);
		return -1;
	}
	return 0;
}

char *state_read_file(const char *path, size_t max, size_t *len_out, char *err, size_t err_len)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd;

	*len_out = 0;
	err[0] = '\0';
	/* O_NONBLOCK: a FIFO planted at the path must not hang start-up in
	 * open() (it is refused as not a regular file just below); O_NOFOLLOW:
	 * the daemon writes only regular files there, a symlink is not ours */
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0 && errno == ENOENT)
		return NULL;
	if (fd < 0 || fstat(fd, &st) < 0) {
		snprintf(err, err_len, "cannot read: %s", strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(err, err_len, "not a regular file");
		goto fail;
	}
	if ((uint64_t)st.st_size > max) {
		snprintf(err, err_len, "larger than %zu bytes", max);
		goto fail;
	}
	/* one byte more than the size: a file that grew meanwhile is noticed */
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		snprintf(err, err_len, "out of memory");
		goto fail;
	}
	while (len <= (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size + 1 - len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(err, err_len, "cannot read: %s", strerror(errno));
			goto fail;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	*len_out = len;
	return buf;
fail:
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

int state_load(const char *path, struct state_set *out, size_t *bad_lines, char *err,
	       size_t err_len)
{
	size_t len;
	char *buf;
	int rc;

	state_set_free(out);
	*bad_lines = 0;
	buf = state_read_file(path, STATE_MAX_FILE_SIZE, &len, err, err_len);
	if (!buf)
		return err[0] ? -1 : 0; /* a missing file is an empty set */
	rc = state_parse(buf, len, out, bad_lines, err, err_len);
	free(buf);
	return rc;
}

const char *state_time_text(int64_t t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!gmtime_r(&tt, &tm) || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%" PRId64, t);
	return buf;
}

/* Before the table goes live (engine_open): no worker reads it yet, so a
 * replaced allow-list may be freed at once. */
void state_restore(const char *path, struct sites *sites)
{
	struct state_set set = {0}, kept = {0};
	size_t bad = 0, dropped = 0, applied = 0;
	char err[256];

	if (state_load(path, &set, &bad, err, sizeof(err)) < 0) {
		log_warn("state file %s: %s; using the states of the config (the file is "
			 "replaced at the next gatekeeperctl offline/online/reset)", path, err);
		goto out;
	}
	if (bad)
		log_warn("state file %s: %zu line%s skipped, first: %s", path, bad,
			 bad == 1 ? "" : "s", err);
	for (size_t i = 0; i < set.count; i++) {
		const struct state_entry *e = &set.entries[i];
		struct site *site = sites_find(sites, e->name);

		if (!site) {
			log_warn("state file %s: site '%s' is not in the config any more; its "
				 "override (%s) is dropped", path, e->name, config_state_name(e->state));
			dropped++;
			continue;
		}
		if (e->until && e->until <= (int64_t)time(NULL)) {
			/* it ended while no daemon ran: the return is due now */
			log_info("site %s: its override (%s) ended at %s while gatekeeperd was not "
				 "running; back to its config", e->name, config_state_name(e->state),
				 state_time_text(e->until, err, sizeof(err)));
			dropped++;
			continue;
		}
		site_set_override(site, e->state, e->action);
		site_set_until(site, e->until);
		/* only an offline override cuts */
		site_set_cut(site, e->cut && e->state == SITE_OFFLINE);
		if (e->allow)
			free(site_swap_allow(site, site_allow_new(e->allow->nets, e->allow->count)));
		log_info("site %s: %s (%s) from the state file", e->name,
			 config_state_name(e->state), config_action_name(e->action));
		applied++;
	}
	/* a site that comes back later must not inherit a forgotten override */
	if (dropped && state_collect(sites, &kept) == 0 &&
	    state_save(path, &kept, err, sizeof(err)) < 0)
		log_warn("state file: %s", err);
	if (applied || dropped)
		log_info("state file %s: %zu override%s restored", path, applied,
			 applied == 1 ? "" : "s");
out:
	state_set_free(&set);
	state_set_free(&kept);
}
