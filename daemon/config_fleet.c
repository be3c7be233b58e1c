/* config_fleet: the optional "fleet:" section: the etcd cluster several
 * boxes share their run-time state through (daemon/FLEET-DESIGN.md).
 * Without it nothing of the fleet runs. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_internal.h"
#include "protocol.h"

#define FLEET_DEFAULT_PREFIX "/gatekeeper"
#define FLEET_PREFIX_MAX 128
/* etcd grants at least 2 s (FLEET-NOTES.md); a box gone longer than a
 * minute should not be counted as live. */
#define FLEET_TTL_MIN_MS 2000
#define FLEET_TTL_MAX_MS 60000
#define FLEET_DEFAULT_TTL_MS 5000
#define FLEET_TIMEOUT_MIN_MS 100
#define FLEET_TIMEOUT_MAX_MS 30000
#define FLEET_DEFAULT_TIMEOUT_MS 1000
#define FLEET_ENDPOINT_MAX 256

static const char *const checks_names[] = {
	[CONFIG_FLEET_CHECKS_OWN] = "own",
	[CONFIG_FLEET_CHECKS_ALL] = "all",
};
const struct config_words config_fleet_checks_words = { checks_names,
							 CONFIG_ARRAY_SIZE(checks_names) };

static void parse_name(struct config_parser *p, yaml_node_t *node, const char *what, char **out)
{
	if (!config_parse_string(p, node, what, out))
		return;
	if (!protocol_site_name_valid(*out))
		config_report(p, node, "%s: '%s' is not a valid name (1-%d of A-Z a-z 0-9 . _ -)",
			      what, config_show(node).text, PROTOCOL_SITE_NAME_MAX);
}

static void parse_fleet_name(struct config_parser *p, yaml_node_t *node, void *target)
{
	parse_name(p, node, "fleet.name", &((struct config_fleet *)target)->name);
}

static void parse_fleet_box(struct config_parser *p, yaml_node_t *node, void *target)
{
	parse_name(p, node, "fleet.box", &((struct config_fleet *)target)->box);
}

/* "http(s)://HOST:PORT" with nothing after the port: the client adds the
 * API's paths itself. */
static bool endpoint_valid(const char *text)
{
	const char *host, *colon, *end;
	unsigned long port;

	if (strncmp(text, "https://", 8) == 0)
		host = text + 8;
	else if (strncmp(text, "http://", 7) == 0)
		host = text + 7;
	else
		return false;
	if (strlen(text) > FLEET_ENDPOINT_MAX)
		return false;
	if (host[0] == '[') {
		const char *close = strchr(host, ']');
		if (!close || close == host + 1 || strspn(host + 1, "0123456789abcdefABCDEF:.") !=
							   (size_t)(close - host - 1))
			return false;
		colon = close + 1;
		if (*colon != ':')
			return false;
	} else {
		size_t n = strspn(host, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-");
		if (n == 0)
			return false;
		colon = host + n;
		if (*colon != ':')
			return false;
	}
	if (colon[1] < '1' || colon[1] > '9')
		return false;
	port = strtoul(colon + 1, (char **)&end, 10);
	return *end == '\0' && port <= 65535;
}

static void parse_fleet_endpoints(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_fleet *fleet = target;
	size_t n;

	if (!config_expect_kind(p, node, YAML_SEQUENCE_NODE, "fleet.endpoints"))
		return;
	n = config_seq_len(node);
	if (n == 0 || n > CONFIG_FLEET_MAX_ENDPOINTS) {
		config_report(p, node, "fleet.endpoints: want 1 to %d etcd endpoints, found %zu",
			      CONFIG_FLEET_MAX_ENDPOINTS, n);
		return;
	}
	fleet->endpoints = calloc(n, sizeof(*fleet->endpoints));
	if (!fleet->endpoints) {
		config_report_oom(p);
		return;
	}
	for (yaml_node_item_t *item = node->data.sequence.items.start;
	     item < node->data.sequence.items.top; item++) {
		yaml_node_t *e = config_node_at(p, *item);
		char **slot = &fleet->endpoints[fleet->n_endpoints];

		if (!config_parse_string(p, e, "fleet.endpoints", slot))
			continue;
		fleet->n_endpoints++;
		if (!endpoint_valid(*slot))
			config_report(p, e, "fleet.endpoints: '%s' is not an etcd client URL "
				      "(https://ADDRESS:PORT, http://ADDRESS:PORT, [IPv6] in brackets, "
				      "no path)", config_show(e).text);
	}
}

static void parse_fleet_prefix(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_fleet *fleet = target;
	const char *s;

	if (!config_parse_string(p, node, "fleet.prefix", &fleet->prefix))
		return;
	s = fleet->prefix;
	if (s[0] != '/' || strlen(s) > FLEET_PREFIX_MAX || s[strlen(s) - 1] == '/' ||
	    strspn(s, PROTOCOL_SITE_NAME_CHARS "/") != strlen(s) || strstr(s, "//"))
		config_report(p, node, "fleet.prefix: '%s' is not a key prefix (like /gatekeeper: "
			      "starts with /, no trailing /, at most %d of A-Z a-z 0-9 . _ - /)",
			      config_show(node).text, FLEET_PREFIX_MAX);
}

static void parse_fleet_ca(struct config_parser *p, yaml_node_t *node, void *target)
{
	config_parse_path(p, node, "fleet.ca_file", SIZE_MAX, &((struct config_fleet *)target)->ca_file);
}

static void parse_fleet_cert(struct config_parser *p, yaml_node_t *node, void *target)
{
	config_parse_path(p, node, "fleet.cert_file", SIZE_MAX,
			  &((struct config_fleet *)target)->cert_file);
}

static void parse_fleet_key(struct config_parser *p, yaml_node_t *node, void *target)
{
	config_parse_path(p, node, "fleet.key_file", SIZE_MAX,
			  &((struct config_fleet *)target)->key_file);
}

static void parse_fleet_ttl(struct config_parser *p, yaml_node_t *node, void *target)
{
	config_parse_duration_node(p, node, "fleet.lease_ttl", FLEET_TTL_MIN_MS, FLEET_TTL_MAX_MS,
				   &((struct config_fleet *)target)->lease_ttl_ms);
}

static void parse_fleet_timeout(struct config_parser *p, yaml_node_t *node, void *target)
{
	config_parse_duration_node(p, node, "fleet.request_timeout", FLEET_TIMEOUT_MIN_MS,
				   FLEET_TIMEOUT_MAX_MS,
				   &((struct config_fleet *)target)->request_timeout_ms);
}

static void parse_fleet_checks(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_fleet *fleet = target;
	int v;

	if (config_parse_word(p, node, "fleet.checks", config_fleet_checks_words.names,
			      config_fleet_checks_words.count, &v))
		fleet->checks = (enum config_fleet_checks)v;
}

/* Filled after the walk, so a given value never frees a default: the
 * prefix, and the box's name from the host name when that is a valid name. */
static void set_defaults(struct config_parser *p, yaml_node_t *node, struct config_fleet *fleet)
{
	char host[256] = "";

	if (!fleet->prefix && !(fleet->prefix = strdup(FLEET_DEFAULT_PREFIX)))
		config_report_oom(p);
	if (fleet->box)
		return;
	if (gethostname(host, sizeof(host) - 1) < 0 || !protocol_site_name_valid(host))
		config_report(p, node, "fleet: 'box' is not given and the host name '%.64s' is not a "
			      "valid box name: give box: NAME", host);
	else if (!(fleet->box = strdup(host)))
		config_report_oom(p);
}

void config_parse_fleet(struct config_parser *p, yaml_node_t *node, void *target)
{
	enum { NAME, ENDPOINTS, KEYS = 10 };
	static const struct config_key_rule rules[KEYS] = {
		[NAME] = { "name", parse_fleet_name },
		[ENDPOINTS] = { "endpoints", parse_fleet_endpoints },
		{ "box", parse_fleet_box },
		{ "prefix", parse_fleet_prefix },
		{ "ca_file", parse_fleet_ca },
		{ "cert_file", parse_fleet_cert },
		{ "key_file", parse_fleet_key },
		{ "lease_ttl", parse_fleet_ttl },
		{ "request_timeout", parse_fleet_timeout },
		{ "checks", parse_fleet_checks },
	};
	struct config_fleet *fleet = &((struct config *)target)->fleet;
	yaml_node_t *seen[KEYS] = { 0 };
	bool https = false, http = false;

	if (!config_expect_kind(p, node, YAML_MAPPING_NODE, "fleet"))
		return;
	fleet->enabled = true;
	fleet->lease_ttl_ms = FLEET_DEFAULT_TTL_MS;
	fleet->request_timeout_ms = FLEET_DEFAULT_TIMEOUT_MS;
	config_walk_mapping(p, node, "fleet: ", rules, KEYS, fleet, seen);
	if (!seen[NAME])
		config_report(p, node, "fleet: missing required key 'name' (the fleet's name: its "
			      "keys live under PREFIX/NAME/)");
	if (!seen[ENDPOINTS])
		config_report(p, node, "fleet: missing required key 'endpoints' (the etcd client URLs)");
	for (size_t i = 0; i < fleet->n_endpoints; i++) {
		https |= strncmp(fleet->endpoints[i], "https://", 8) == 0;
		http |= strncmp(fleet->endpoints[i], "http://", 7) == 0;
	}
	if (https && http)
		config_report(p, seen[ENDPOINTS], "fleet.endpoints: all https or all http, not both");
	if (!fleet->cert_file != !fleet->key_file)
		config_report(p, node, "fleet: cert_file and key_file go together (the box's client "
			      "certificate and its key)");
	if (http && (fleet->ca_file || fleet->cert_file))
		config_report(p, node, "fleet: ca_file/cert_file/key_file need https:// endpoints");
	set_defaults(p, node, fleet);
	if (fleet->request_timeout_ms * 2 > fleet->lease_ttl_ms)
		config_report(p, node, "fleet: request_timeout (%u ms) must be at most half of "
			      "lease_ttl (%u ms): a box's heartbeat must fit in its lease",
			      fleet->request_timeout_ms, fleet->lease_ttl_ms);
}

void config_fleet_free(struct config_fleet *fleet)
{
	free(fleet->name);
	free(fleet->box);
	for (size_t i = 0; i < fleet->n_endpoints; i++)
		free(fleet->endpoints[i]);
	free(fleet->endpoints);
	free(fleet->prefix);
	free(fleet->ca_file);
	free(fleet->cert_file);
	free(fleet->key_file);
	memset(fleet, 0, sizeof(*fleet));
}
