/* config: the YAML file -> an immutable struct config (see config.h).
 *
 * Two passes over the text: a libyaml event scan that refuses what the
 * document API would silently expand (anchors, aliases, several documents,
 * absurd nesting), then yaml_parser_load and a walk of the tree against the
 * schema. Every check keeps going after a failure so that all problems are
 * reported together; the struct is thrown away if any was found.
 *
 * This file has the parser's helpers, the walk and the document; the keys'
 * own parsers are in config_sections.c, config_sites.c and
 * config_site_check.c, the public value helpers of config.h in
 * config_values.c. */
#include "config.h"
#include "config_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* The schema nests four levels deep; far deeper input is hostile and is
 * refused before libyaml builds a tree of it. */
#define MAX_DEPTH 16

/* ---- error collection ---- */

static void errors_push(struct config_errors *errors, char *msg)
{
	char **grown = realloc(errors->messages, (errors->count + 1) * sizeof(*grown));

	if (!grown) {
		free(msg);
		return;
	}
	grown[errors->count++] = msg;
	errors->messages = grown;
}

bool config_parser_full(const struct config_parser *p)
{
	return p->reported >= CONFIG_MAX_ERRORS;
}

/* MARK NULL: a message about the whole file. The last slot under the cap is
 * kept for "too many errors" so the operator knows the list is cut. */
__attribute__((format(printf, 3, 0))) static void
vreport(struct config_parser *p, const yaml_mark_t *mark, const char *fmt, va_list ap)
{
	char *text = NULL, *msg = NULL;
	int n;

	p->failed = true;
	if (config_parser_full(p))
		return;
	p->reported++;
	if (p->reported == CONFIG_MAX_ERRORS) {
		if (asprintf(&msg, "%s: too many errors, stopped after %d", p->name,
			     CONFIG_MAX_ERRORS - 1) >= 0)
			errors_push(p->errors, msg);
		return;
	}
	if (vasprintf(&text, fmt, ap) < 0)
		return;
	if (mark)
		n = asprintf(&msg, "%s:%zu:%zu: %s", p->name, mark->line + 1, mark->column + 1,
			     text);
	else
		n = asprintf(&msg, "%s: %s", p->name, text);
	free(text);
	if (n >= 0)
		errors_push(p->errors, msg);
}

__attribute__((format(printf, 3, 4))) void
config_report_at(struct config_parser *p, const yaml_mark_t *mark, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(p, mark, fmt, ap);
	va_end(ap);
}

__attribute__((format(printf, 3, 4))) void
config_report(struct config_parser *p, const yaml_node_t *node, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vreport(p, &node->start_mark, fmt, ap);
	va_end(ap);
}

void config_report_oom(struct config_parser *p)
{
	config_report_at(p, NULL, "out of memory");
}

/* ---- node helpers ---- */

yaml_node_t *config_node_at(const struct config_parser *p, int id)
{
	return yaml_document_get_node(p->doc, id);
}

const char *config_scalar(const yaml_node_t *node)
{
	return (const char *)node->data.scalar.value;
}

bool config_scalar_has_nul(const yaml_node_t *node)
{
	return strlen(config_scalar(node)) != node->data.scalar.length;
}

size_t config_seq_len(const yaml_node_t *node)
{
	return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

static const char *kind_name(const yaml_node_t *node)
{
	switch (node->type) {
	case YAML_SCALAR_NODE:
		return node->data.scalar.length ? "a scalar" : "an empty value";
	case YAML_SEQUENCE_NODE:
		return "a list";
	case YAML_MAPPING_NODE:
		return "a mapping";
	default:
		return "nothing";
	}
}

bool config_expect_kind(struct config_parser *p, const yaml_node_t *node, yaml_node_type_t type,
			const char *what)
{
	static const char *const wanted[] = {
		[YAML_SCALAR_NODE] = "a single value",
		[YAML_SEQUENCE_NODE] = "a list",
		[YAML_MAPPING_NODE] = "a mapping",
	};

	if (node->type == type)
		return true;
	config_report(p, node, "%s: expected %s, found %s", what, wanted[type], kind_name(node));
	return false;
}

/* Control bytes are masked: a double-quoted YAML string can carry terminal
 * escapes. */
struct config_shown config_show(const yaml_node_t *node)
{
	struct config_shown s;
	size_t len = node->data.scalar.length, n = len > CONFIG_SHOWN_MAX ? CONFIG_SHOWN_MAX : len;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = node->data.scalar.value[i];
		s.text[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
	}
	strcpy(s.text + n, len > n ? "..." : "");
	return s;
}

static void join_words(char *buf, size_t size, const char *const *words, size_t n)
{
	size_t used = 0;

	buf[0] = '\0';
	for (size_t i = 0; i < n && used < size; i++)
		used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", words[i]);
}

/* ---- scalar values ---- */

bool config_parse_word(struct config_parser *p, const yaml_node_t *node, const char *what,
		       const char *const *words, size_t n, int *out)
{
	char expected[128];

	if (!config_expect_kind(p, node, YAML_SCALAR_NODE, what))
		return false;
	for (size_t i = 0; i < n; i++) {
		if (strcmp(config_scalar(node), words[i]) == 0 && !config_scalar_has_nul(node)) {
			*out = (int)i;
			return true;
		}
	}
	join_words(expected, sizeof(expected), words, n);
	config_report(p, node, "%s: '%s' is not valid (expected one of: %s)", what,
		      config_show(node).text, expected);
	return false;
}

/* Decimal only: YAML 1.1 reads 0443 as octal and 0x1bb as hex, and we
 * would rather refuse than guess which one an operator meant. */
bool config_parse_uint(struct config_parser *p, const yaml_node_t *node, const char *what,
		       const char *noun, unsigned long min, unsigned long max, unsigned long *out)
{
	const char *text;
	size_t len;
	unsigned long value = 0;
	bool in_range;

	if (!config_expect_kind(p, node, YAML_SCALAR_NODE, what))
		return false;
	text = config_scalar(node);
	len = node->data.scalar.length;
	if (len == 0 || strspn(text, "0123456789") != len || (len > 1 && text[0] == '0')) {
		config_report(p, node, "%s: '%s' is not %s (%lu-%lu)", what, config_show(node).text,
			      noun, min, max);
		return false;
	}
	/* Ten digits cannot overflow an unsigned long; longer is out of range. */
	for (size_t i = 0; i < len && i < 10; i++)
		value = value * 10 + (unsigned long)(text[i] - '0');
	in_range = len <= 10 && value >= min && value <= max;
	if (!in_range) {
		config_report(p, node, "%s: %s is not %s (%lu-%lu)", what, config_show(node).text,
			      noun, min, max);
		return false;
	}
	*out = value;
	return true;
}

bool config_parse_bool(struct config_parser *p, const yaml_node_t *node, const char *what,
		       bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no",
										  "off" };

	if (!config_expect_kind(p, node, YAML_SCALAR_NODE, what))
		return false;
	for (size_t i = 0; i < CONFIG_ARRAY_SIZE(yes); i++) {
		if (strcasecmp(config_scalar(node), yes[i]) == 0 ||
		    strcasecmp(config_scalar(node), no[i]) == 0) {
			*out = strcasecmp(config_scalar(node), yes[i]) == 0;
			return true;
		}
	}
	config_report(p, node, "%s: '%s' is not a boolean (expected true/false, yes/no or on/off)",
		      what, config_show(node).text);
	return false;
}

bool config_parse_string(struct config_parser *p, const yaml_node_t *node, const char *what,
			 char **out)
{
	if (!config_expect_kind(p, node, YAML_SCALAR_NODE, what))
		return false;
	if (node->data.scalar.length == 0) {
		config_report(p, node, "%s: expected a value, found an empty one", what);
		return false;
	}
	if (config_scalar_has_nul(node)) {
		config_report(p, node, "%s: the value contains a NUL character", what);
		return false;
	}
	*out = strdup(config_scalar(node));
	if (!*out)
		config_report_oom(p);
	return *out != NULL;
}

/* "user:" left empty, "~" or "null" mean "not set" for optional names. */
static bool is_null(const yaml_node_t *node)
{
	const char *text = config_scalar(node);

	return node->type == YAML_SCALAR_NODE &&
	       node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	       (text[0] == '\0' || strcmp(text, "~") == 0 || strcasecmp(text, "null") == 0);
}

void config_parse_optional_name(struct config_parser *p, const yaml_node_t *node,
				const char *what, char **out)
{
	if (!is_null(node))
		config_parse_string(p, node, what, out);
}

void config_parse_path(struct config_parser *p, const yaml_node_t *node, const char *what,
		       size_t max_len, char **out)
{
	if (!config_parse_string(p, node, what, out))
		return;
	if ((*out)[0] != '/')
		config_report(p, node, "%s: '%s' is not an absolute path", what,
			      config_show(node).text);
	else if (strlen(*out) > max_len)
		config_report(p, node,
			      "%s: the path is %zu bytes, longer than the %zu a unix socket allows",
			      what, strlen(*out), max_len);
}

/* ---- mappings ---- */

struct position {
	char text[48];
};

/* "LINE:COL" of the key whose value is VALUE; looked up only for a message. */
static struct position key_position(const struct config_parser *p, const yaml_node_t *map,
				    const yaml_node_t *value)
{
	struct position pos = { "?" };

	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		const yaml_mark_t *mark = &config_node_at(p, pair->key)->start_mark;

		if (config_node_at(p, pair->value) == value) {
			snprintf(pos.text, sizeof(pos.text), "%zu:%zu", mark->line + 1,
				 mark->column + 1);
			break;
		}
	}
	return pos;
}

/* Runs each rule's parser on its key's value; SEEN[i] gets rule i's value
 * node so the caller can check required keys. PREFIX names the section in
 * messages ("queue: "). */
void config_walk_mapping(struct config_parser *p, const yaml_node_t *map, const char *prefix,
			 const struct config_key_rule *rules, size_t n_rules, void *target,
			 yaml_node_t **seen)
{
	const char *keys[16];
	char expected[256];
	size_t i, k;

	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		yaml_node_t *key = config_node_at(p, pair->key),
			    *value = config_node_at(p, pair->value);

		if (key->type != YAML_SCALAR_NODE) {
			config_report(p, key, "%skeys must be plain words, found %s", prefix,
				      kind_name(key));
			continue;
		}
		for (i = 0; i < n_rules; i++)
			if (strcmp(config_scalar(key), rules[i].key) == 0 &&
			    !config_scalar_has_nul(key))
				break;
		if (i == n_rules) {
			for (k = 0; k < n_rules && k < CONFIG_ARRAY_SIZE(keys); k++)
				keys[k] = rules[k].key;
			join_words(expected, sizeof(expected), keys, k);
			config_report(p, key, "%sunknown key '%s' (expected one of: %s)", prefix,
				      config_show(key).text, expected);
			continue;
		}
		if (seen[i]) {
			config_report(p, key, "%sduplicate key '%s' (first at %s)", prefix,
				      rules[i].key, key_position(p, map, seen[i]).text);
			continue;
		}
		seen[i] = value;
		rules[i].parse(p, value, target);
	}
}

/* ---- the document ---- */

enum {
	ROOT_HOOK,
	ROOT_BACKEND,
	ROOT_QUEUE,
	ROOT_CONTROL,
	ROOT_STATE_FILE,
	ROOT_USER,
	ROOT_SITES,
	ROOT_METRICS,
	ROOT_SNI,
	ROOT_FLEET,
	ROOT_KEYS
};

static const struct config_key_rule root_rules[] = {
	[ROOT_HOOK] = { "hook", config_parse_hook },
	[ROOT_BACKEND] = { "backend", config_parse_backend },
	[ROOT_QUEUE] = { "queue", config_parse_queue },
	[ROOT_CONTROL] = { "control", config_parse_control },
	[ROOT_STATE_FILE] = { "state_file", config_parse_state_file },
	[ROOT_USER] = { "user", config_parse_user },
	[ROOT_SITES] = { "sites", config_parse_sites },
	[ROOT_METRICS] = { "metrics", config_parse_metrics },
	[ROOT_SNI] = { "sni", config_parse_sni },
	[ROOT_FLEET] = { "fleet", config_parse_fleet },
};

static int set_defaults(struct config *cfg, const char *name)
{
	config_set_section_defaults(cfg);
	cfg->path = strdup(name);
	return cfg->path ? 0 : -1;
}

static struct config *build(struct config_parser *p)
{
	yaml_node_t *root = yaml_document_get_root_node(p->doc);
	yaml_node_t *seen[ROOT_KEYS] = { 0 };

	if (!root) {
		config_report_at(p, NULL,
				 "no configuration found (expected a mapping with a 'sites' list)");
		return NULL;
	}
	if (root->type != YAML_MAPPING_NODE) {
		config_report(p, root, "expected a mapping at the top level, found %s",
			      kind_name(root));
		return NULL;
	}
	p->cfg = calloc(1, sizeof(*p->cfg));
	if (!p->cfg || set_defaults(p->cfg, p->name) < 0) {
		config_report_oom(p);
		goto fail;
	}
	config_walk_mapping(p, root, "", root_rules, ROOT_KEYS, p->cfg, seen);
	if (!seen[ROOT_SITES])
		config_report(p, root, "missing required key 'sites'");
	if (config_set_string_defaults(p->cfg) < 0)
		config_report_oom(p);
	if (!p->failed)
		return p->cfg;
fail:
	config_free(p->cfg);
	p->cfg = NULL;
	return NULL;
}

/* libyaml's reader (the encoding layer) reports only a byte offset: this
 * turns it into the line and column every other message has, counting
 * columns in characters as libyaml does (continuation bytes do not count). */
static bool mark_of_offset(const char *buf, size_t len, size_t offset, yaml_mark_t *mark)
{
	if (!buf || offset > len)
		return false;
	*mark = (yaml_mark_t){.index = offset};
	for (size_t i = 0; i < offset; i++) {
		if (buf[i] == '\n') {
			mark->line++;
			mark->column = 0;
		} else if (((unsigned char)buf[i] & 0xC0) != 0x80) {
			mark->column++;
		}
	}
	return true;
}

static void report_yaml_error(struct config_parser *p, const yaml_parser_t *yp, const char *buf,
			      size_t len)
{
	const yaml_mark_t *at = &yp->problem_mark, *ctx = &yp->context_mark;
	const char *problem = yp->problem ? yp->problem : "invalid YAML";
	yaml_mark_t byte_at;

	if (yp->error == YAML_MEMORY_ERROR)
		config_report_oom(p);
	else if (yp->error == YAML_READER_ERROR && yp->problem_value != -1 &&
		 mark_of_offset(buf, len, yp->problem_offset, &byte_at))
		config_report_at(p, &byte_at, "not valid UTF-8: %s (byte 0x%02x)", problem,
				 (unsigned)yp->problem_value & 0xFFu);
	else if (yp->error == YAML_READER_ERROR && mark_of_offset(buf, len, yp->problem_offset,
								     &byte_at))
		config_report_at(p, &byte_at, "not valid UTF-8: %s", problem);
	else if (yp->error == YAML_READER_ERROR)
		config_report_at(p, NULL, "syntax error at byte %zu: %s", yp->problem_offset,
				 problem);
	else if (yp->context && (ctx->line != at->line || ctx->column != at->column))
		config_report_at(p, at, "syntax error: %s (%s at %zu:%zu)", problem, yp->context,
				 ctx->line + 1, ctx->column + 1);
	else
		config_report_at(p, at, "syntax error: %s", problem);
}

static const char *event_anchor(const yaml_event_t *event)
{
	switch (event->type) {
	case YAML_SCALAR_EVENT:
		return (const char *)event->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT:
		return (const char *)event->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT:
		return (const char *)event->data.mapping_start.anchor;
	default:
		return NULL;
	}
}

/* Returns false to stop the scan. Aliases are how a small file expands into
 * a huge tree ("billion laughs"); a hand-written config needs none. */
static bool scan_event(struct config_parser *p, const yaml_event_t *event, int *depth,
		       int *documents)
{
	const char *anchor = event_anchor(event);

	if (anchor)
		config_report_at(p, &event->start_mark,
				 "anchors (&%s) are not allowed in the config", anchor);
	switch (event->type) {
	case YAML_ALIAS_EVENT:
		config_report_at(p, &event->start_mark,
				 "aliases (*%s) are not allowed in the config",
				 (const char *)event->data.alias.anchor);
		return true;
	case YAML_DOCUMENT_START_EVENT:
		if (++*documents > 1) {
			config_report_at(p, &event->start_mark,
					 "only one YAML document is allowed");
			return false;
		}
		return true;
	case YAML_SEQUENCE_START_EVENT:
	case YAML_MAPPING_START_EVENT:
		if (++*depth > MAX_DEPTH) {
			config_report_at(p, &event->start_mark, "nested more than %d levels deep",
					 MAX_DEPTH);
			return false;
		}
		return true;
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		--*depth;
		return true;
	default:
		return event->type != YAML_STREAM_END_EVENT;
	}
}

/* Returns true when the text may be loaded as a document. */
static bool scan(struct config_parser *p, const char *buf, size_t len)
{
	yaml_parser_t yp;
	yaml_event_t event;
	int depth = 0, documents = 0;
	bool more = true;

	if (!yaml_parser_initialize(&yp)) {
		config_report_oom(p);
		return false;
	}
	yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
	while (more) {
		if (!yaml_parser_parse(&yp, &event)) {
			report_yaml_error(p, &yp, buf, len);
			break;
		}
		more = scan_event(p, &event, &depth, &documents);
		yaml_event_delete(&event);
	}
	yaml_parser_delete(&yp);
	return !p->failed;
}

struct config *config_parse(const char *name, const char *buf, size_t len,
			    struct config_errors *errors)
{
	struct config_parser p = { .name = name, .errors = errors };
	yaml_parser_t yp;
	yaml_document_t doc;
	struct config *cfg = NULL;

	if (!scan(&p, buf, len))
		return NULL;
	if (!yaml_parser_initialize(&yp)) {
		config_report_oom(&p);
		return NULL;
	}
	yaml_parser_set_input_string(&yp, (const unsigned char *)buf, len);
	if (!yaml_parser_load(&yp, &doc)) {
		report_yaml_error(&p, &yp, buf, len);
		goto out;
	}
	p.doc = &doc;
	cfg = build(&p);
	for (size_t i = 0; i < p.n_marks; i++) {
		free(p.marks[i].addresses);
		free(p.marks[i].server_names);
	}
	free(p.marks);
	yaml_document_delete(&doc);
out:
	yaml_parser_delete(&yp);
	return cfg;
}

/* Reads the whole file: a config is small, and the size limit was checked
 * on the open descriptor so a swapped-in path cannot dodge it. */
static char *read_file(struct config_parser *p, const char *path, size_t *len)
{
	struct stat st;
	char *buf = NULL;
	size_t used = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

	if (fd < 0) {
		config_report_at(p, NULL, "cannot open: %s", strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0) {
		config_report_at(p, NULL, "cannot open: %s", strerror(errno));
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		config_report_at(p, NULL, "cannot open: %s",
				 S_ISDIR(st.st_mode) ? strerror(EISDIR) : "not a regular file");
		goto out;
	}
	if ((uintmax_t)st.st_size > CONFIG_MAX_FILE_SIZE) {
		config_report_at(p, NULL, "file is %jd bytes, larger than the %u MiB limit",
				 (intmax_t)st.st_size, CONFIG_MAX_FILE_SIZE / (1024u * 1024u));
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		config_report_oom(p);
		goto out;
	}
	/* A file that grows while we read is cut at the size fstat saw. */
	while (used < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + used, (size_t)st.st_size - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			config_report_at(p, NULL, "cannot read: %s", strerror(errno));
			free(buf);
			buf = NULL;
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	*len = used;
out:
	close(fd);
	return buf;
}

struct config *config_load(const char *path, struct config_errors *errors)
{
	struct config_parser p = { .name = path, .errors = errors };
	struct config *cfg;
	size_t len = 0;
	char *buf = read_file(&p, path, &len);

	if (!buf)
		return NULL;
	cfg = config_parse(path, buf, len, errors);
	free(buf);
	return cfg;
}

void config_free(struct config *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->n_sites; i++) {
		free(cfg->sites[i].name);
		free(cfg->sites[i].addresses);
		free(cfg->sites[i].ports);
		config_check_free(cfg->sites[i].check);
		free(cfg->sites[i].allow);
		for (size_t k = 0; k < cfg->sites[i].n_server_names; k++)
			free(cfg->sites[i].server_names[k]);
		free(cfg->sites[i].server_names);
	}
	free(cfg->sites);
	free(cfg->path);
	free(cfg->control.socket);
	free(cfg->control.group);
	free(cfg->state_file);
	free(cfg->user);
	config_fleet_free(&cfg->fleet);
	free(cfg);
}

void config_errors_free(struct config_errors *errors)
{
	for (size_t i = 0; i < errors->count; i++)
		free(errors->messages[i]);
	free(errors->messages);
	errors->messages = NULL;
	errors->count = 0;
}

