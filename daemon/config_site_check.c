/* config_site_check: a site's "check:" block, the health check that
 * health.c runs for it.
 *
 * Called from config_sites.c: config_parse_check() while the site's keys
 * are walked, config_check_finish() once all of them are known, for what
 * depends on other keys (addresses, ports, state: auto). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_internal.h"

#define DEFAULT_INTERVAL_MS 5000u
#define DEFAULT_TIMEOUT_MS 2000u
#define DEFAULT_RISE 2u
#define DEFAULT_FALL 2u
#define MIN_INTERVAL_MS 100u
#define MAX_DURATION_MS 3600000u
#define MIN_TIMEOUT_MS 10u
#define MAX_RISE_FALL 100u
#define MAX_EXPECT_STATUS 16u
#define MAX_PATH_LEN 1024u
#define MAX_HOST_LEN 255u
#define MAX_BODY_LEN 256u

enum {
	CHECK_TYPE,
	CHECK_INTERVAL,
	CHECK_TIMEOUT,
	CHECK_RISE,
	CHECK_FALL,
	CHECK_PORT,
	CHECK_ADDRESSES,
	CHECK_SNI,
	CHECK_CA_FILE,
	CHECK_VERIFY_NAME,
	CHECK_METHOD,
	CHECK_PATH,
	CHECK_HOST,
	CHECK_EXPECT_STATUS,
	CHECK_EXPECT_BODY,
	CHECK_KEYS
};

void config_check_free(struct config_check *check)
{
	if (!check)
		return;
	free(check->addresses);
	free(check->sni);
	free(check->ca_file);
	free(check->verify_name);
	free(check->method);
	free(check->path);
	free(check->host);
	free(check->expect_status);
	free(check->expect_body);
	free(check);
}

/* ---- the keys ---- */

static void parse_type(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_check *check = target;
	int v;

	if (config_parse_word(p, node, "check.type", config_check_type_words.names,
			      config_check_type_words.count, &v))
		check->type = (enum config_check_type)v;
}

static void parse_interval(struct config_parser *p, yaml_node_t *node, void *target)
{
	config_parse_duration_node(p, node, "check.interval", MIN_INTERVAL_MS, MAX_DURATION_MS,
			    &((struct config_check *)target)->interval_ms);
}

static void parse_timeout(struct config_parser *p, yaml_node_t *node, void *target)
{
	config_parse_duration_node(p, node, "check.timeout", MIN_TIMEOUT_MS, MAX_DURATION_MS,
			    &((struct config_check *)target)->timeout_ms);
}

static void parse_rise(struct config_parser *p, yaml_node_t *node, void *target)
{
	unsigned long v;

	if (config_parse_uint(p, node, "check.rise", "a count", 1, MAX_RISE_FALL, &v))
		((struct config_check *)target)->rise = (unsigned)v;
}

static void parse_fall(struct config_parser *p, yaml_node_t *node, void *target)
{
	unsigned long v;

	if (config_parse_uint(p, node, "check.fall", "a count", 1, MAX_RISE_FALL, &v))
		((struct config_check *)target)->fall = (unsigned)v;
}

static void parse_port(struct config_parser *p, yaml_node_t *node, void *target)
{
	unsigned long v;

	if (config_parse_uint(p, node, "check.port", "a port", 1, UINT16_MAX, &v))
		((struct config_check *)target)->port = (uint16_t)v;
}

/* Which of them are the site's own is checked in config_check_finish(). */
static void parse_addresses(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_check *check = target;
	size_t n;

	if (!config_expect_kind(p, node, YAML_SEQUENCE_NODE, "check.addresses"))
		return;
	n = config_seq_len(node);
	if (n == 0) {
		config_report(p, node, "check.addresses: the list is empty; leave the key out to "
			      "check all of the site's addresses");
		return;
	}
	check->addresses = calloc(n, sizeof(*check->addresses));
	if (!check->addresses) {
		config_report_oom(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_node_at(p, node->data.sequence.items.start[i]);
		struct config_addr addr;
		bool repeated = false;

		if (!config_expect_kind(p, item, YAML_SCALAR_NODE, "check.addresses"))
			continue;
		if (config_scalar_has_nul(item) || config_parse_addr(config_scalar(item), &addr) < 0) {
			config_report(p, item, "check.addresses: '%s' is not an IPv4 or IPv6 address",
				      config_show(item).text);
			continue;
		}
		for (size_t k = 0; k < check->n_addresses && !repeated; k++)
			repeated = check->addresses[k].family == addr.family &&
				   memcmp(check->addresses[k].bytes, addr.bytes, 16) == 0;
		if (repeated) {
			config_report(p, item, "check.addresses: '%s' is listed twice",
				      config_show(item).text);
			continue;
		}
		check->addresses[check->n_addresses++] = addr;
	}
}

/* Printable ASCII without spaces: these values go into a request line or
 * a TLS extension, where anything else would be a way to smuggle bytes. */
static bool parse_token(struct config_parser *p, const yaml_node_t *node, const char *what,
			const char *allowed, size_t max_len, char **out)
{
	char *value = NULL;
	size_t len;

	if (!config_parse_string(p, node, what, &value))
		return false;
	len = strlen(value);
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)value[i];
		if (c <= 0x20 || c >= 0x7f || (allowed && !strchr(allowed, c))) {
			config_report(p, node, "%s: '%s' has a character that is not allowed here "
				      "(position %zu)", what, config_show(node).text, i + 1);
			free(value);
			return false;
		}
	}
	if (len > max_len) {
		config_report(p, node, "%s: longer than %zu characters", what, max_len);
		free(value);
		return false;
	}
	free(*out);
	*out = value;
	return true;
}

#define DNS_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-"

static void parse_sni(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_check *check = target;
	struct config_addr addr;

	if (!parse_token(p, node, "check.sni", DNS_CHARS, 253, &check->sni))
		return;
	/* RFC 6066: literal addresses are not sent as a server name */
	if (config_parse_addr(check->sni, &addr) == 0) {
		config_report(p, node, "check.sni: '%s' is an address; SNI takes a host name",
			      config_show(node).text);
		free(check->sni);
		check->sni = NULL;
	}
}

static void parse_ca_file(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_check *check = target;

	if (!config_parse_string(p, node, "check.ca_file", &check->ca_file))
		return;
	if (check->ca_file[0] != '/')
		config_report(p, node, "check.ca_file: '%s' is not an absolute path",
			      config_show(node).text);
	else if (access(check->ca_file, R_OK) < 0)
		config_report(p, node, "check.ca_file: cannot read '%s'", config_show(node).text);
}

static void parse_verify_name(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_check *check = target;

	/* "*": any name, said on purpose (CONFIG_VERIFY_ANY_NAME) */
	if (node->type == YAML_SCALAR_NODE && strcmp(config_scalar(node), CONFIG_VERIFY_ANY_NAME) == 0) {
		free(check->verify_name);
		check->verify_name = strdup(CONFIG_VERIFY_ANY_NAME);
		if (!check->verify_name)
			config_report_oom(p);
		return;
	}
	parse_token(p, node, "check.verify_name", DNS_CHARS ":", 253, &check->verify_name);
}

/* The name the health check sends as SNI (health.c does the same): sni,
 * else an https check's host when it is a name without a port. */
static bool check_has_server_name(const struct config_check *check)
{
	struct config_addr addr;

	return check->sni || (check->host && !strpbrk(check->host, ":[") &&
			      config_parse_addr(check->host, &addr) < 0);
}

static void parse_method(struct config_parser *p, yaml_node_t *node, void *target)
{
	parse_token(p, node, "check.method", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", 16,
		    &((struct config_check *)target)->method);
}

static void parse_path(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_check *check = target;

	if (parse_token(p, node, "check.path", NULL, MAX_PATH_LEN, &check->path) &&
	    check->path[0] != '/') {
		config_report(p, node, "check.path: '%s' does not start with '/'",
			      config_show(node).text);
	}
}

static void parse_host(struct config_parser *p, yaml_node_t *node, void *target)
{
	parse_token(p, node, "check.host", DNS_CHARS ":[]", MAX_HOST_LEN,
		    &((struct config_check *)target)->host);
}

static void parse_expect_status(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_check *check = target;
	size_t n;

	if (!config_expect_kind(p, node, YAML_SEQUENCE_NODE, "check.expect_status"))
		return;
	n = config_seq_len(node);
	if (n == 0 || n > MAX_EXPECT_STATUS) {
		config_report(p, node, "check.expect_status: list 1 to %u status codes",
			      MAX_EXPECT_STATUS);
		return;
	}
	free(check->expect_status);
	check->n_expect_status = 0;
	check->expect_status = calloc(n, sizeof(*check->expect_status));
	if (!check->expect_status) {
		config_report_oom(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_node_at(p, node->data.sequence.items.start[i]);
		unsigned long v;

		if (config_parse_uint(p, item, "check.expect_status", "an HTTP status", 100, 599, &v))
			check->expect_status[check->n_expect_status++] = (uint16_t)v;
	}
}

static void parse_expect_body(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_check *check = target;

	if (!config_parse_string(p, node, "check.expect_body", &check->expect_body))
		return;
	if (strlen(check->expect_body) > MAX_BODY_LEN)
		config_report(p, node, "check.expect_body: longer than %u bytes", MAX_BODY_LEN);
}

static const struct config_key_rule check_rules[] = {
	[CHECK_TYPE] = { "type", parse_type },
	[CHECK_INTERVAL] = { "interval", parse_interval },
	[CHECK_TIMEOUT] = { "timeout", parse_timeout },
	[CHECK_RISE] = { "rise", parse_rise },
	[CHECK_FALL] = { "fall", parse_fall },
	[CHECK_PORT] = { "port", parse_port },
	[CHECK_ADDRESSES] = { "addresses", parse_addresses },
	[CHECK_SNI] = { "sni", parse_sni },
	[CHECK_CA_FILE] = { "ca_file", parse_ca_file },
	[CHECK_VERIFY_NAME] = { "verify_name", parse_verify_name },
	[CHECK_METHOD] = { "method", parse_method },
	[CHECK_PATH] = { "path", parse_path },
	[CHECK_HOST] = { "host", parse_host },
	[CHECK_EXPECT_STATUS] = { "expect_status", parse_expect_status },
	[CHECK_EXPECT_BODY] = { "expect_body", parse_expect_body },
};

static bool set_string_default(struct config_parser *p, char **field, const char *value)
{
	if (*field)
		return true;
	*field = strdup(value);
	if (!*field)
		config_report_oom(p);
	return *field != NULL;
}

void config_parse_check(struct config_parser *p, yaml_node_t *node, struct config_site *site)
{
	static const int https_only[] = { CHECK_METHOD, CHECK_PATH, CHECK_HOST,
					  CHECK_EXPECT_STATUS, CHECK_EXPECT_BODY };
	yaml_node_t *seen[CHECK_KEYS] = { 0 };
	struct config_check *check;

	if (!config_expect_kind(p, node, YAML_MAPPING_NODE, "check"))
		return;
	check = calloc(1, sizeof(*check));
	if (!check) {
		config_report_oom(p);
		return;
	}
	site->check = check;
	check->interval_ms = DEFAULT_INTERVAL_MS;
	check->timeout_ms = DEFAULT_TIMEOUT_MS;
	check->rise = DEFAULT_RISE;
	check->fall = DEFAULT_FALL;
	config_walk_mapping(p, node, "check: ", check_rules, CHECK_KEYS, check, seen);
	if (!seen[CHECK_TYPE])
		config_report(p, node, "check: missing required key 'type' (tls or https)");
	/* an unset timeout follows a short interval rather than clash with it */
	if (!seen[CHECK_TIMEOUT] && check->timeout_ms > check->interval_ms / 2)
		check->timeout_ms = check->interval_ms / 2;
	if (seen[CHECK_TIMEOUT] && check->timeout_ms >= check->interval_ms)
		config_report(p, seen[CHECK_TIMEOUT],
			      "check: the timeout (%ums) must be shorter than the interval (%ums)",
			      check->timeout_ms, check->interval_ms);
	if (check->type == CONFIG_CHECK_TLS && seen[CHECK_TYPE]) {
		for (size_t i = 0; i < CONFIG_ARRAY_SIZE(https_only); i++)
			if (seen[https_only[i]])
				config_report(p, seen[https_only[i]],
					      "check: '%s' is only for type https",
					      check_rules[https_only[i]].key);
	}
	if (seen[CHECK_VERIFY_NAME] && !seen[CHECK_CA_FILE])
		config_report(p, seen[CHECK_VERIFY_NAME],
			      "check.verify_name: needs check.ca_file (the CAs to verify with)");
	/* Without a name, every certificate the CA ever signed (for anyone)
	 * would pass: a CA file alone is almost never what was meant. */
	if (seen[CHECK_CA_FILE] && check->ca_file && !check->verify_name &&
	    !check_has_server_name(check))
		config_report(p, seen[CHECK_CA_FILE],
			      "check.ca_file: no name to verify the certificate against (any "
			      "certificate of this CA would pass): set check.sni or "
			      "check.verify_name, or verify_name: \"*\" to accept any name on purpose");
	if (check->type == CONFIG_CHECK_HTTPS) {
		if (!set_string_default(p, &check->method, "GET") ||
		    !set_string_default(p, &check->path, "/"))
			return;
		if (!check->expect_status) {
			check->expect_status = malloc(sizeof(*check->expect_status));
			if (!check->expect_status) {
				config_report_oom(p);
				return;
			}
			check->expect_status[0] = 200;
			check->n_expect_status = 1;
		}
	}
}

/* Only called for a message. */
static const yaml_node_t *find_key(const struct config_parser *p, const yaml_node_t *map,
				   const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *pair = map->data.mapping.pairs.start;
	     pair < map->data.mapping.pairs.top; pair++) {
		const yaml_node_t *k = config_node_at(p, pair->key);
		if (k->type == YAML_SCALAR_NODE && strcmp(config_scalar(k), key) == 0)
			return config_node_at(p, pair->value);
	}
	return NULL;
}

static const yaml_node_t *find_address_item(const struct config_parser *p,
					    const yaml_node_t *seq, const struct config_addr *addr)
{
	if (!seq || seq->type != YAML_SEQUENCE_NODE)
		return seq;
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top; it++) {
		const yaml_node_t *item = config_node_at(p, *it);
		struct config_addr a;

		if (item->type == YAML_SCALAR_NODE && config_parse_addr(config_scalar(item), &a) == 0 &&
		    a.family == addr->family && memcmp(a.bytes, addr->bytes, 16) == 0)
			return item;
	}
	return seq;
}

void config_check_finish(struct config_parser *p, const yaml_node_t *site_node,
			 const yaml_node_t *check_node, const yaml_node_t *state_node,
			 struct config_site *site)
{
	struct config_check *check = site->check;
	char text[64];

	if (site->state_auto && !check && !check_node) {
		config_report(p, state_node ? state_node : site_node,
			      "state: auto needs a 'check:' block (the check decides the state)");
		return;
	}
	if (!check)
		return;
	if (!check->port && site->n_ports > 0)
		check->port = site->ports[0];
	/* on a shared address the server picks the site by name: a check
	 * that names none asks for the site's first exact one */
	for (size_t i = 0; !check->sni && i < site->n_server_names; i++)
		if (site->server_names[i][0] != '*' && !(check->sni = strdup(site->server_names[i])))
			config_report_oom(p);
	for (size_t i = 0; i < check->n_addresses && site->addresses; i++) {
		bool own = false;

		for (size_t k = 0; k < site->n_addresses && !own; k++)
			own = site->addresses[k].family == check->addresses[i].family &&
			      memcmp(site->addresses[k].bytes, check->addresses[i].bytes, 16) == 0;
		if (!own)
			config_report(p, find_address_item(p, find_key(p, check_node, "addresses"),
							    &check->addresses[i]),
				      "check.addresses: %s is not one of the site's addresses",
				      config_addr_str(&check->addresses[i], text, sizeof(text)));
	}
}
