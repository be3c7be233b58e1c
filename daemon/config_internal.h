/* config_internal: what config.c (the document and the parser's helpers)
 * shares with config_sections.c (the top-level keys but "sites"),
 * config_sites.c (the sites list), config_site_check.c (a site's check)
 * and config_values.c (the words of the enumerations).
 * Private to the config module; nothing outside daemon/config*.c includes
 * it. */
#ifndef GK_CONFIG_INTERNAL_H
#define GK_CONFIG_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config.h"

#define CONFIG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
/* Values echoed in messages are cut here: a message is for a terminal. */
#define CONFIG_SHOWN_MAX 48

/* Positions kept only while parsing, for messages about relations between
 * sites that are found after the walk. */
struct config_site_marks {
	yaml_mark_t name;
	yaml_mark_t *addresses; /* parallel to config_site.addresses */
	yaml_mark_t *server_names; /* parallel to config_site.server_names */
};

struct config_parser {
	const char *name;
	struct config_errors *errors;
	size_t reported; /* messages this parse added, for the cap */
	bool failed;	 /* also set when a message could not be stored */
	yaml_document_t *doc;
	struct config *cfg;		 /* being built; freed by the caller on failure */
	struct config_site_marks *marks; /* parallel to the sites list in the file */
	size_t n_marks;
};

struct config_key_rule {
	const char *key;
	void (*parse)(struct config_parser *p, yaml_node_t *value, void *target);
};

/* A scalar as it may be echoed: cut, control bytes masked. Returned by
 * value: C11 keeps the temporary alive to the end of the caller's full
 * expression, so show(node).text can be a printf argument. */
struct config_shown {
	char text[CONFIG_SHOWN_MAX + 4];
};

/* Messages; MARK NULL means one about the whole file. */
__attribute__((format(printf, 3, 4))) void
config_report_at(struct config_parser *p, const yaml_mark_t *mark, const char *fmt, ...);
__attribute__((format(printf, 3, 4))) void
config_report(struct config_parser *p, const yaml_node_t *node, const char *fmt, ...);
void config_report_oom(struct config_parser *p);
/* True once the error cap is reached: later checks may stop early. */
bool config_parser_full(const struct config_parser *p);

yaml_node_t *config_node_at(const struct config_parser *p, int id);
const char *config_scalar(const yaml_node_t *node);
bool config_scalar_has_nul(const yaml_node_t *node);
size_t config_seq_len(const yaml_node_t *node);
struct config_shown config_show(const yaml_node_t *node);

/* Each reports its own error and returns false; WHAT prefixes messages. */
bool config_expect_kind(struct config_parser *p, const yaml_node_t *node, yaml_node_type_t type,
			const char *what);
bool config_parse_word(struct config_parser *p, const yaml_node_t *node, const char *what,
		       const char *const *words, size_t n, int *out);
bool config_parse_uint(struct config_parser *p, const yaml_node_t *node, const char *what,
		       const char *noun, unsigned long min, unsigned long max, unsigned long *out);
bool config_parse_string(struct config_parser *p, const yaml_node_t *node, const char *what,
			 char **out);
bool config_parse_bool(struct config_parser *p, const yaml_node_t *node, const char *what,
		       bool *out);
/* A duration ("500ms", "2s") between MIN and MAX milliseconds. */
bool config_parse_duration_node(struct config_parser *p, const yaml_node_t *node, const char *what,
				uint32_t min, uint32_t max, uint32_t *out);
/* A plain empty value, "~" or "null" leave *OUT unset (not an error). */
void config_parse_optional_name(struct config_parser *p, const yaml_node_t *node,
				const char *what, char **out);
/* An absolute path of at most MAX_LEN bytes. */
void config_parse_path(struct config_parser *p, const yaml_node_t *node, const char *what,
		       size_t max_len, char **out);
void config_walk_mapping(struct config_parser *p, const yaml_node_t *map, const char *prefix,
			 const struct config_key_rule *rules, size_t n_rules, void *target,
			 yaml_node_t **seen);

/* The words of the config's enumerations, indexed by the enum value
 * (config_values.c): what the parsers accept and the names print. */
struct config_words {
	const char *const *names;
	size_t count;
};
extern const struct config_words config_hook_words, config_backend_words, config_action_words,
	config_check_type_words, config_unknown_name_words;

/* A site's "check:" block (config_site_check.c) into SITE->check, and what
 * can only be checked once every key of the site is known. */
void config_parse_check(struct config_parser *p, yaml_node_t *node, struct config_site *site);
void config_check_finish(struct config_parser *p, const yaml_node_t *site_node,
			 const yaml_node_t *check_node, const yaml_node_t *state_node,
			 struct config_site *site);

/* The rule for the top-level "sites" key; TARGET is the struct config. */
void config_parse_sites(struct config_parser *p, yaml_node_t *node, void *target);

/* The rules for the other top-level keys (config_sections.c); TARGET is
 * the struct config. */
void config_parse_hook(struct config_parser *p, yaml_node_t *node, void *target);
void config_parse_backend(struct config_parser *p, yaml_node_t *node, void *target);
void config_parse_queue(struct config_parser *p, yaml_node_t *node, void *target);
void config_parse_control(struct config_parser *p, yaml_node_t *node, void *target);
void config_parse_state_file(struct config_parser *p, yaml_node_t *node, void *target);
void config_parse_user(struct config_parser *p, yaml_node_t *node, void *target);
void config_parse_metrics(struct config_parser *p, yaml_node_t *node, void *target);
void config_parse_sni(struct config_parser *p, yaml_node_t *node, void *target);
/* config_fleet.c */
void config_parse_fleet(struct config_parser *p, yaml_node_t *node, void *target);
void config_fleet_free(struct config_fleet *fleet);
extern const struct config_words config_fleet_checks_words;
/* Defaults of those keys: the scalars before the walk, the strings after
 * it (0, or -1 out of memory). */
void config_set_section_defaults(struct config *cfg);
int config_set_string_defaults(struct config *cfg);

#endif
