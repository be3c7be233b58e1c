/* state: the run-time overrides (gatekeeperctl offline/online) kept across
 * restarts in config's state_file.
 *
 * Format, version 1 (see daemon/STATE-FORMAT.md):
 *
 *   gatekeeper-state 1
 *   # comments and blank lines are ignored
 *   NAME STATE ACTION        e.g. "blog online drop"
 *   +allow NAME [CIDR ...]   the run-time allow-list of NAME's override
 *   +until NAME UNIXTIME     when NAME's override ends
 *   +cut NAME                NAME's offline override cuts established connections
 *
 * Saving is atomic (temp file in the same directory, fsync, rename, fsync
 * of the directory), so a crash leaves the old file or the new one, never
 * a mix. Loading is tolerant: a damaged file costs a warning and the
 * config's states, never the daemon. */
#ifndef GK_STATE_H
#define GK_STATE_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "sites.h"

#define STATE_MAGIC "gatekeeper-state"
#define STATE_VERSION 1
/* One line per overridden site: even 100k sites stay far below this. */
#define STATE_MAX_FILE_SIZE (8u * 1024u * 1024u)

struct state_entry {
	char name[PROTOCOL_SITE_NAME_MAX + 1];
	enum site_state state;
	enum site_action action;
	struct site_allow *allow; /* owned; NULL: the config's list applies */
	int64_t until;            /* Unix time the override ends; 0: never */
	bool cut;                 /* offline with --cut */
};

/* A set of overrides, at most one per site name. INDEX hashes names to
 * entries (1-based, 0 = empty slot) so that loading a file of N lines costs
 * O(N), not O(N^2): a state file is outside input. */
struct state_set {
	struct state_entry *entries;
	size_t count, cap;
	size_t *index;
	size_t index_mask;
};

void state_set_free(struct state_set *set);
/* Adds NAME or replaces its entry. -1 if NAME is not a valid site name or
 * memory runs out. */
int state_set_put(struct state_set *set, const char *name, enum site_state state,
		  enum site_action action);
void state_set_remove(struct state_set *set, const char *name);
/* Gives NAME's entry (which must exist) a copy of ALLOW (NULL: none) and
 * UNTIL. -1 if there is no such entry or memory runs out. */
int state_set_extend(struct state_set *set, const char *name, const struct site_allow *allow,
		     int64_t until);
/* Marks NAME's entry (which must exist) as cutting established
 * connections, or not. -1 if there is no such entry. */
int state_set_cut(struct state_set *set, const char *name, bool cut);
const struct state_entry *state_set_find(const struct state_set *set, const char *name);

/* The run-time overrides now in force in SITES. 0 or -1 (memory). */
int state_collect(const struct sites *sites, struct state_set *out);

/* Writes SET to PATH atomically, creating PATH's directory (0755) if it is
 * missing. 0, or -1 with the reason in ERR. */
int state_save(const char *path, const struct state_set *set, char *err, size_t err_len);

/* Replaces PATH with DATA atomically, the same way (also the fleet's
 * cache, fleet.c). 0, or -1 with the reason in ERR. */
int state_write_file(const char *path, const char *data, size_t len, char *err, size_t err_len);

/* Reads PATH, a regular file of at most MAX bytes (no symlink, no FIFO):
 * malloc'd contents and *LEN, or NULL: ERR says why, or is "" when the
 * file does not exist. */
char *state_read_file(const char *path, size_t max, size_t *len, char *err, size_t err_len);

/* Parses a state file's contents into OUT. Lines that cannot be understood
 * are skipped: their number goes to *BAD_LINES and the first one is
 * described in ERR. -1 (OUT empty, reason in ERR) when the file as a whole
 * is unusable: no or a foreign header, a newer version, too large. */
int state_parse(const char *buf, size_t len, struct state_set *out, size_t *bad_lines,
		char *err, size_t err_len);
/* Reads and parses PATH; a missing file is an empty set (0). */
int state_load(const char *path, struct state_set *out, size_t *bad_lines, char *err,
	       size_t err_len);

/* Start-up: loads PATH and applies its overrides to SITES. Problems are
 * logged as warnings and leave the config's states; never fails. Entries
 * for sites no longer in the config are dropped, and the file rewritten
 * without them. */
void state_restore(const char *path, struct sites *sites);

/* "2026-12-24T06:00:00Z" (UTC) into BUF: how deadlines are shown. */
const char *state_time_text(int64_t t, char *buf, size_t len);

#endif
