/* fleet_value: what the fleet keeps in etcd, and in its local cache, as
 * JSON (json-c): the keys under the fleet's prefix P and their values
 * (daemon/FLEET-DESIGN.md). Pure: no I/O, so every shape is unit-tested
 * and fuzzed; what comes from etcd is outside input. */
#ifndef GK_FLEET_VALUE_H
#define GK_FLEET_VALUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "protocol.h"
#include "sites.h"

#define FLEET_SCHEMA_VERSION 1
#define FLEET_SCHEMA_ID_LEN 32 /* hex digits of 128 random bits */
/* A value larger than this is not one of ours (an allow-list of 64 IPv6
 * networks is ~4 KiB). */
#define FLEET_VALUE_MAX (16u * 1024u)
#define FLEET_BY_MAX 160

/* P site/NAME: one site's override, set by an operator on some box. */
struct fleet_value {
	enum site_state state;
	enum site_action action;
	struct site_allow *allow; /* owned; NULL: the config's list */
	int64_t until;            /* Unix time it ends; 0: never */
	bool cut;
	char by[FLEET_BY_MAX];    /* "uid 0 pid 4242": who asked */
	char box[PROTOCOL_SITE_NAME_MAX + 1]; /* on which box */
	int64_t at;               /* Unix time it was written */
};

/* P box/BOX (on the box's lease): the box is live, and the revision of
 * the last site change it has applied. */
struct fleet_box_value {
	int64_t applied;
	int64_t started; /* Unix time the daemon started */
	unsigned pins;   /* its local pins: sites that diverge there */
};

/* P schema: written once by `gatekeeperctl fleet init`. Its id tells a
 * rebuilt etcd (or another fleet's data) from the one a cache came from. */
struct fleet_schema {
	int version;
	char id[FLEET_SCHEMA_ID_LEN + 1];
	char by[FLEET_BY_MAX];
	int64_t at;
};

enum fleet_key_kind { FLEET_KEY_OTHER, FLEET_KEY_SCHEMA, FLEET_KEY_SITE, FLEET_KEY_BOX };

/* Which of our keys KEY (KEY_LEN bytes, not NUL-terminated) is under P
 * (the fleet's prefix with its trailing slash); the site's or box's name
 * into NAME. Anything else, including an invalid name, is OTHER. */
enum fleet_key_kind fleet_key_parse(const char *p, const char *key, size_t key_len,
				    char name[PROTOCOL_SITE_NAME_MAX + 1]);

/* P check/BOX/NAME (on BOX's lease): BOX's own check of auto site NAME,
 * "up" or "down" (fleet.checks: all). True and the two names, or false. */
bool fleet_check_key_parse(const char *p, const char *key, size_t key_len,
			   char box[PROTOCOL_SITE_NAME_MAX + 1], char site[PROTOCOL_SITE_NAME_MAX + 1]);

/* JSON text (malloc'd), or NULL out of memory. */
char *fleet_value_encode(const struct fleet_value *v);
char *fleet_box_encode(const struct fleet_box_value *v);
char *fleet_schema_encode(const struct fleet_schema *v);
/* 0, or -1 with why in WHY (OUT then empty). */
int fleet_value_decode(const char *text, size_t len, struct fleet_value *out, char *why,
		       size_t why_len);
int fleet_box_decode(const char *text, size_t len, struct fleet_box_value *out);
int fleet_schema_decode(const char *text, size_t len, struct fleet_schema *out);
void fleet_value_free(struct fleet_value *v);
/* A deep copy; -1 out of memory. */
int fleet_value_copy(struct fleet_value *to, const struct fleet_value *from);

/* The local cache (state_file + ".fleet"): the schema id and revision the
 * fleet's overrides are from, so a box starts with them while etcd is
 * away. */
/* A cache of 100k sites at ~200 bytes each stays below it. */
#define FLEET_CACHE_MAX (64u * 1024u * 1024u)
struct fleet_cache_entry {
	char name[PROTOCOL_SITE_NAME_MAX + 1];
	struct fleet_value value;
	int64_t mod_revision;
};
/* PREFIX/NAME/: which fleet's keys a cache holds */
#define FLEET_KEYS_MAX 256
struct fleet_cache {
	/* "": not recorded (a cache of the first format); a box whose config
	 * names another fleet or prefix ignores the cache */
	char keys[FLEET_KEYS_MAX];
	char schema_id[FLEET_SCHEMA_ID_LEN + 1]; /* "": none seen yet */
	int64_t revision;
	struct fleet_cache_entry *entries;
	size_t count;
};
char *fleet_cache_encode(const struct fleet_cache *c);
int fleet_cache_decode(const char *text, size_t len, struct fleet_cache *out, char *why,
		       size_t why_len);
void fleet_cache_free(struct fleet_cache *c);

#endif
