/* config_sites: the "sites" list of the config.
 *
 * Besides each site's own keys it checks what only the whole list shows:
 * unique names and no (address, port) claimed by two sites. Both checks
 * sort instead of comparing pairs, so a large generated config stays fast. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "config_internal.h"
#include "server_names.h"

/* sites_create() expands every (address, port) pair into its lookup table;
 * this bounds that table, and the overlap check here, for any file that
 * passes the size limit. */
#define MAX_ADDR_PORT_PAIRS (1u << 20)
#define DEFAULT_PORT 443


struct site_target {
	struct config_site *site;
	struct config_site_marks *marks;
};

static int addr_cmp(const struct config_addr *a, const struct config_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}

static void parse_site_name(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct site_target *t = target;

	if (!config_parse_string(p, node, "name", &t->site->name))
		return;
	t->marks->name = node->start_mark;
	if (!protocol_site_name_valid(t->site->name)) {
		config_report(p, node,
			      "name: '%s' is not a valid site name (1-%d characters of A-Z a-z 0-9 "
			      ". _ -)",
			      config_show(node).text, PROTOCOL_SITE_NAME_MAX);
		free(t->site->name);
		t->site->name = NULL;
	}
}

static bool parse_site_addr(struct config_parser *p, const yaml_node_t *node,
			    struct config_addr *out)
{
	char v4[INET_ADDRSTRLEN];
	static const uint8_t mapped[12] = { [10] = 0xff, [11] = 0xff };

	if (!config_expect_kind(p, node, YAML_SCALAR_NODE, "addresses"))
		return false;
	if (strchr(config_scalar(node), '/')) {
		config_report(p, node, "addresses: '%s' has a prefix length; list single addresses",
			      config_show(node).text);
		return false;
	}
	if (config_scalar_has_nul(node) || config_parse_addr(config_scalar(node), out) < 0) {
		config_report(p, node, "addresses: '%s' is not an IPv4 or IPv6 address",
			      config_show(node).text);
		return false;
	}
	/* The kernel shows a v4 SYN as AF_INET, never as a mapped v6 address, so
	 * such an entry would never match anything. */
	if (out->family == AF_INET6 && memcmp(out->bytes, mapped, sizeof(mapped)) == 0) {
		inet_ntop(AF_INET, out->bytes + 12, v4, sizeof(v4));
		config_report(p, node,
			      "addresses: '%s' is an IPv4-mapped IPv6 address; write it as %s",
			      config_show(node).text, v4);
		return false;
	}
	return true;
}

struct addr_entry {
	struct config_addr addr;
	size_t index;
};

static int addr_entry_cmp(const void *a, const void *b)
{
	const struct addr_entry *x = a, *y = b;
	int c = addr_cmp(&x->addr, &y->addr);

	return c ? c : (x->index > y->index) - (x->index < y->index);
}

/* Sorting, not pairwise comparison: a site may list very many addresses.
 * Reports in file order, then keeps the first of each address. */
static void drop_duplicate_addresses(struct config_parser *p, struct config_site *site,
				     yaml_mark_t *marks)
{
	size_t n = site->n_addresses, kept = 0;
	struct addr_entry *sorted = calloc(n, sizeof(*sorted));
	size_t *first = calloc(n, sizeof(*first));
	char text[INET6_ADDRSTRLEN];

	if (!sorted || !first) {
		config_report_oom(p);
		goto out;
	}
	for (size_t i = 0; i < n; i++)
		sorted[i] = (struct addr_entry){ site->addresses[i], i };
	qsort(sorted, n, sizeof(*sorted), addr_entry_cmp);
	for (size_t i = 0, run = 0; i < n; i++) {
		if (i > 0 && addr_cmp(&sorted[i].addr, &sorted[i - 1].addr) != 0)
			run = i;
		first[sorted[i].index] = sorted[run].index;
	}
	for (size_t i = 0; i < n; i++) {
		if (first[i] != i) {
			config_report_at(p, &marks[i],
					 "addresses: %s is listed twice (first at %zu:%zu)",
					 config_addr_str(&site->addresses[i], text, sizeof(text)),
					 marks[first[i]].line + 1, marks[first[i]].column + 1);
			continue;
		}
		site->addresses[kept] = site->addresses[i];
		marks[kept++] = marks[i];
	}
	site->n_addresses = kept;
out:
	free(sorted);
	free(first);
}

static void parse_site_addresses(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct site_target *t = target;
	size_t n;

	if (!config_expect_kind(p, node, YAML_SEQUENCE_NODE, "addresses"))
		return;
	n = config_seq_len(node);
	if (n == 0) {
		config_report(p, node,
			      "addresses: the list is empty; at least one address is required");
		return;
	}
	t->site->addresses = calloc(n, sizeof(*t->site->addresses));
	t->marks->addresses = calloc(n, sizeof(*t->marks->addresses));
	if (!t->site->addresses || !t->marks->addresses) {
		config_report_oom(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_node_at(p, node->data.sequence.items.start[i]);
		struct config_addr *addr = &t->site->addresses[t->site->n_addresses];

		if (parse_site_addr(p, item, addr))
			t->marks->addresses[t->site->n_addresses++] = item->start_mark;
	}
	drop_duplicate_addresses(p, t->site, t->marks->addresses);
}

/* Only called for a message, which the error cap keeps rare. */
static yaml_mark_t first_port_mark(const struct config_parser *p, const yaml_node_t *seq,
				   unsigned long port)
{
	for (yaml_node_item_t *it = seq->data.sequence.items.start;
	     it < seq->data.sequence.items.top && !config_parser_full(p); it++) {
		const yaml_node_t *item = config_node_at(p, *it);

		if (item->type == YAML_SCALAR_NODE && config_scalar(item)[0] != '0' &&
		    strspn(config_scalar(item), "0123456789") == item->data.scalar.length &&
		    strtoul(config_scalar(item), NULL, 10) == port)
			return item->start_mark;
	}
	return seq->start_mark;
}

/* A bitmap finds repeats in one pass, however long the list. */
static void parse_site_ports(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_site *site = ((struct site_target *)target)->site;
	uint8_t seen[(UINT16_MAX + 1) / 8] = { 0 };
	size_t n;

	if (!config_expect_kind(p, node, YAML_SEQUENCE_NODE, "ports"))
		return;
	n = config_seq_len(node);
	if (n == 0) {
		config_report(p, node,
			      "ports: the list is empty; leave the key out for the default [443]");
		return;
	}
	site->ports = calloc(n, sizeof(*site->ports));
	if (!site->ports) {
		config_report_oom(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_node_at(p, node->data.sequence.items.start[i]);
		unsigned long port;

		if (!config_parse_uint(p, item, "ports", "a port", 1, UINT16_MAX, &port))
			continue;
		if (seen[port / 8] & (1u << (port % 8))) {
			yaml_mark_t first = first_port_mark(p, node, port);

			config_report(p, item, "ports: %lu is listed twice (first at %zu:%zu)",
				      port, first.line + 1, first.column + 1);
			continue;
		}
		seen[port / 8] |= (uint8_t)(1u << (port % 8));
		site->ports[site->n_ports++] = (uint16_t)port;
	}
}

/* "auto" is a config word only: the check decides, starting online. */
static void parse_site_state(struct config_parser *p, yaml_node_t *node, void *target)
{
	static const char *const words[] = { "online", "offline", "auto" };
	struct config_site *site = ((struct site_target *)target)->site;
	int v;

	if (!config_parse_word(p, node, "state", words, CONFIG_ARRAY_SIZE(words), &v))
		return;
	site->state_auto = v == 2;
	site->state = v == 1 ? SITE_OFFLINE : SITE_ONLINE;
}

static void parse_site_check(struct config_parser *p, yaml_node_t *node, void *target)
{
	config_parse_check(p, node, ((struct site_target *)target)->site);
}

static void parse_site_action(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_site *site = ((struct site_target *)target)->site;
	int v;

	if (config_parse_word(p, node, "action", config_action_words.names, config_action_words.count,
			      &v))
		site->action = (enum site_action)v;
}

/* allow: [CIDR, ...]: who still gets through while the site is offline. */
static void parse_site_allow(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config_site *site = ((struct site_target *)target)->site;
	size_t n;

	if (!config_expect_kind(p, node, YAML_SEQUENCE_NODE, "allow"))
		return;
	n = config_seq_len(node);
	if (n > CONFIG_MAX_ALLOW) {
		config_report(p, node, "allow: %zu networks; at most %d", n, CONFIG_MAX_ALLOW);
		return;
	}
	site->allow = calloc(n ? n : 1, sizeof(*site->allow));
	if (!site->allow) {
		config_report_oom(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_node_at(p, node->data.sequence.items.start[i]);
		char why[160];

		if (!config_expect_kind(p, item, YAML_SCALAR_NODE, "allow"))
			continue;
		if (config_scalar_has_nul(item) ||
		    config_parse_cidr(config_scalar(item), &site->allow[site->n_allow], why,
				      sizeof(why)) < 0) {
			if (config_scalar_has_nul(item))
				snprintf(why, sizeof(why), "not an IPv4 or IPv6 network");
			config_report(p, item, "allow: %s", why);
			continue;
		}
		site->n_allow++;
	}
}

/* server_names: [NAME, "*.SUFFIX", "*"]: what the site answers to on an
 * address it shares (server_names.h); "*" makes it the default there. */
static void parse_site_server_names(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct site_target *t = target;
	struct config_site *site = t->site;
	size_t n;

	if (!config_expect_kind(p, node, YAML_SEQUENCE_NODE, "server_names"))
		return;
	n = config_seq_len(node);
	if (n == 0 || n > CONFIG_MAX_SERVER_NAMES) {
		config_report(p, node, "server_names: %zu names; 1 to %d", n, CONFIG_MAX_SERVER_NAMES);
		return;
	}
	site->server_names = calloc(n, sizeof(*site->server_names));
	t->marks->server_names = calloc(n, sizeof(*t->marks->server_names));
	if (!site->server_names || !t->marks->server_names) {
		config_report_oom(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_node_at(p, node->data.sequence.items.start[i]);
		char canonical[SERVER_NAME_MAX + 1];
		const char *why = NULL;

		if (!config_expect_kind(p, item, YAML_SCALAR_NODE, "server_names"))
			continue;
		if (strcmp(config_scalar(item), "*") == 0) {
			if (site->default_name)
				config_report(p, item, "server_names: \"*\" is listed twice");
			site->default_name = true;
			continue;
		}
		if (config_scalar_has_nul(item) ||
		    server_name_parse(config_scalar(item), canonical, &why) < 0) {
			config_report(p, item, "server_names: '%s': %s", config_show(item).text,
				      why ? why : "not a host name");
			continue;
		}
		for (size_t k = 0; k < site->n_server_names; k++)
			if (strcmp(site->server_names[k], canonical) == 0) {
				config_report(p, item, "server_names: '%s' is listed twice",
					      canonical);
				goto next;
			}
		site->server_names[site->n_server_names] = strdup(canonical);
		if (!site->server_names[site->n_server_names]) {
			config_report_oom(p);
			return;
		}
		t->marks->server_names[site->n_server_names++] = item->start_mark;
next:;
	}
}

enum { SITE_NAME, SITE_ADDRESSES, SITE_PORTS, SITE_STATE, SITE_ACTION, SITE_CHECK, SITE_ALLOW,
       SITE_SERVER_NAMES, SITE_KEYS };

static void parse_site(struct config_parser *p, yaml_node_t *node, struct config_site *site,
		       struct config_site_marks *marks)
{
	static const struct config_key_rule rules[] = {
		[SITE_NAME] = { "name", parse_site_name },
		[SITE_ADDRESSES] = { "addresses", parse_site_addresses },
		[SITE_PORTS] = { "ports", parse_site_ports },
		[SITE_STATE] = { "state", parse_site_state },
		[SITE_ACTION] = { "action", parse_site_action },
		[SITE_CHECK] = { "check", parse_site_check },
		[SITE_ALLOW] = { "allow", parse_site_allow },
		[SITE_SERVER_NAMES] = { "server_names", parse_site_server_names },
	};
	struct site_target target = { site, marks };
	yaml_node_t *seen[SITE_KEYS] = { 0 };

	site->line = (unsigned)node->start_mark.line + 1;
	config_walk_mapping(p, node, "site: ", rules, SITE_KEYS, &target, seen);
	if (!seen[SITE_NAME])
		config_report(p, node, "site: missing required key 'name'");
	if (!seen[SITE_ADDRESSES])
		config_report(p, node, "site: missing required key 'addresses'");
	if (!seen[SITE_PORTS]) {
		site->ports = malloc(sizeof(*site->ports));
		if (!site->ports) {
			config_report_oom(p);
			return;
		}
		site->ports[0] = DEFAULT_PORT;
		site->n_ports = 1;
	}
	config_check_finish(p, node, seen[SITE_CHECK], seen[SITE_STATE], site);
}

static int name_entry_cmp(const void *a, const void *b)
{
	const struct config_site *x = *(const struct config_site *const *)a;
	const struct config_site *y = *(const struct config_site *const *)b;
	int c = strcmp(x->name, y->name);

	/* Sites sit in one array, so pointer order is file order. */
	return c ? c : (x > y) - (x < y);
}

static void check_duplicate_names(struct config_parser *p)
{
	struct config *cfg = p->cfg;
	const struct config_site **sorted = calloc(cfg->n_sites, sizeof(*sorted));
	size_t n = 0;

	if (!sorted) {
		config_report_oom(p);
		return;
	}
	for (size_t i = 0; i < cfg->n_sites; i++)
		if (cfg->sites[i].name)
			sorted[n++] = &cfg->sites[i];
	qsort(sorted, n, sizeof(*sorted), name_entry_cmp);
	for (size_t i = 1, first = 0; i < n; i++) {
		if (strcmp(sorted[i]->name, sorted[first]->name) != 0) {
			first = i;
			continue;
		}
		config_report_at(p, &p->marks[sorted[i] - cfg->sites].name,
				 "name: site '%s' is defined twice (first at line %u)",
				 sorted[i]->name, sorted[first]->line);
	}
	free(sorted);
}

struct claim {
	struct config_addr addr;
	uint16_t port;
	uint32_t site;
	uint32_t addr_index;
};

static int claim_cmp(const void *a, const void *b)
{
	const struct claim *x = a, *y = b;
	int c = addr_cmp(&x->addr, &y->addr);

	if (c)
		return c;
	if (x->port != y->port)
		return x->port < y->port ? -1 : 1;
	return (x->site > y->site) - (x->site < y->site);
}

static size_t count_claims(const struct config *cfg)
{
	size_t total = 0;

	for (size_t i = 0; i < cfg->n_sites && total <= MAX_ADDR_PORT_PAIRS; i++)
		total += cfg->sites[i].n_addresses * cfg->sites[i].n_ports;
	return total;
}

static const char *site_label(const struct config_site *site, char *buf, size_t len)
{
	snprintf(buf, len, site->name ? "'%s'" : "(unnamed)", site->name ? site->name : "");
	return buf;
}

static bool site_has_names(const struct config_site *site)
{
	return site->n_server_names > 0 || site->default_name;
}

/* Site pairs already reported for one shared endpoint, so that two sites
 * sharing several addresses or ports hear of a mistake once. */
struct reported_pairs {
	uint64_t *pairs;
	size_t count, capacity;
};

static bool first_report(struct reported_pairs *r, uint32_t a, uint32_t b, uint32_t kind)
{
	uint64_t key = (uint64_t)kind << 62 | (uint64_t)a << 31 | b;

	for (size_t i = 0; i < r->count; i++)
		if (r->pairs[i] == key)
			return false;
	if (r->count == r->capacity) {
		size_t cap = r->capacity ? r->capacity * 2 : 16;
		uint64_t *grown = realloc(r->pairs, cap * sizeof(*grown));

		if (!grown)
			return true; /* report again rather than lose the message */
		r->pairs = grown;
		r->capacity = cap;
	}
	r->pairs[r->count++] = key;
	return true;
}

enum { PAIR_UNNAMED, PAIR_OVERLAP, PAIR_TWO_DEFAULTS };

/* Sites C (a later claim) and F (an earlier one) share an endpoint: both
 * must list server_names, no pattern may be the best match of a name for
 * both, and only one may be the default ("*"). */
static void check_shared_pair(struct config_parser *p, const struct claim *f, const struct claim *c,
			      struct reported_pairs *reported)
{
	const struct config_site *fs = &p->cfg->sites[f->site], *cs = &p->cfg->sites[c->site];
	const struct config_site_marks *cm = &p->marks[c->site];
	char addr[INET6_ADDRSTRLEN], first_site[80], this_site[80];

	config_addr_str(&c->addr, addr, sizeof(addr));
	site_label(fs, first_site, sizeof(first_site));
	site_label(cs, this_site, sizeof(this_site));
	if (!site_has_names(fs) || !site_has_names(cs)) {
		if (first_report(reported, f->site, c->site, PAIR_UNNAMED))
			config_report_at(p, &cm->addresses[c->addr_index],
					 "addresses: %s port %u is claimed by both site %s (line %u) and "
					 "site %s; sites may share an address only when each lists "
					 "server_names",
					 addr, c->port, first_site, fs->line, this_site);
		return;
	}
	if (fs->default_name && cs->default_name &&
	    first_report(reported, f->site, c->site, PAIR_TWO_DEFAULTS))
		config_report_at(p, &cm->addresses[c->addr_index],
				 "server_names: site %s and site %s (line %u) both list \"*\" on %s "
				 "port %u; one default per shared address",
				 this_site, first_site, fs->line, addr, c->port);
	for (size_t i = 0; i < cs->n_server_names; i++)
		for (size_t k = 0; k < fs->n_server_names; k++)
			if (server_names_overlap(cs->server_names[i], fs->server_names[k]) &&
			    first_report(reported, f->site, c->site, PAIR_OVERLAP))
				config_report_at(p, &cm->server_names[i],
						 "server_names: '%s' is listed by site %s (line %u) "
						 "too, on the shared address %s port %u",
						 cs->server_names[i], first_site, fs->line, addr, c->port);
}

/* Every (address, port) belongs to one site, or to sites told apart by
 * their server_names (a SYN's verdict must never depend on table order).
 * Sorted claims put the sites of one endpoint side by side. */
static void check_overlaps(struct config_parser *p, const yaml_node_t *sites_node)
{
	struct config *cfg = p->cfg;
	size_t total = count_claims(cfg), n = 0;
	struct claim *claims;
	struct reported_pairs reported = { 0 };

	if (total > MAX_ADDR_PORT_PAIRS) {
		config_report(p, sites_node,
			      "sites: more than %u address:port pairs in all (addresses x ports)",
			      MAX_ADDR_PORT_PAIRS);
		return;
	}
	claims = calloc(total ? total : 1, sizeof(*claims));
	if (!claims) {
		config_report_oom(p);
		return;
	}
	for (size_t s = 0; s < cfg->n_sites; s++)
		for (size_t a = 0; a < cfg->sites[s].n_addresses; a++)
			for (size_t k = 0; k < cfg->sites[s].n_ports; k++)
				claims[n++] = (struct claim){ cfg->sites[s].addresses[a],
							      cfg->sites[s].ports[k], (uint32_t)s,
							      (uint32_t)a };
	qsort(claims, n, sizeof(*claims), claim_cmp);
	for (size_t i = 1, first = 0; i < n && !config_parser_full(p); i++) {
		if (addr_cmp(&claims[i].addr, &claims[first].addr) != 0 ||
		    claims[i].port != claims[first].port) {
			first = i;
			continue;
		}
		for (size_t f = first; f < i && !config_parser_full(p); f++)
			check_shared_pair(p, &claims[f], &claims[i], &reported);
	}
	free(reported.pairs);
	free(claims);
}

void config_parse_sites(struct config_parser *p, yaml_node_t *node, void *target)
{
	struct config *cfg = target;
	size_t n;

	if (!config_expect_kind(p, node, YAML_SEQUENCE_NODE, "sites"))
		return;
	n = config_seq_len(node);
	if (n == 0) {
		config_report(p, node, "sites: the list is empty; at least one site is required");
		return;
	}
	cfg->sites = calloc(n, sizeof(*cfg->sites));
	p->marks = calloc(n, sizeof(*p->marks));
	p->n_marks = p->marks ? n : 0;
	if (!cfg->sites || !p->marks) {
		config_report_oom(p);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		yaml_node_t *item = config_node_at(p, node->data.sequence.items.start[i]);

		if (!config_expect_kind(p, item, YAML_MAPPING_NODE, "sites"))
			continue;
		/* Counted first so config_free() sees a half-parsed site. */
		cfg->n_sites++;
		parse_site(p, item, &cfg->sites[cfg->n_sites - 1], &p->marks[cfg->n_sites - 1]);
	}
	check_duplicate_names(p);
	check_overlaps(p, node);
}
