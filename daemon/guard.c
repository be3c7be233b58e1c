#include "guard.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static int endpoint_cmp(const void *pa, const void *pb)
{
	const struct guard_endpoint *a = pa, *b = pb;
	int c;

	if (a->addr.family != b->addr.family)
		return a->addr.family < b->addr.family ? -1 : 1;
	c = memcmp(a->addr.bytes, b->addr.bytes, sizeof(a->addr.bytes));
	if (c)
		return c;
	if (a->port != b->port)
		return a->port < b->port ? -1 : 1;
	if (a->action != b->action)
		return (int)a->action - (int)b->action;
	return (int)a->cut - (int)b->cut;
}

static int addr_cmp(const struct config_addr *a, const struct config_addr *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->bytes, b->bytes, sizeof(a->bytes));
}

/* Field by field: the structs have padding. */
static int allow_cmp(const void *pa, const void *pb)
{
	const struct guard_allow *a = pa, *b = pb;
	int c = addr_cmp(&a->addr, &b->addr);

	if (!c && a->port != b->port)
		c = a->port < b->port ? -1 : 1;
	if (!c)
		c = addr_cmp(&a->source.addr, &b->source.addr);
	return c ? c : (int)a->source.prefix - (int)b->source.prefix;
}

/* Appends SITE's allowed sources for each of its endpoints (only those of
 * the endpoint's family: the kernel matches a v4 SYN on v4 sources). */
static int add_allows(struct guard_set *out, size_t *cap, const struct site *site)
{
	const struct site_allow *allow = site_allow_list(site);
	const struct config_site *cs = site_config(site);

	for (size_t a = 0; allow && a < cs->n_addresses; a++)
		for (size_t p = 0; p < cs->n_ports; p++)
			for (size_t i = 0; i < allow->count; i++) {
				struct guard_allow *e;

				if (allow->nets[i].addr.family != cs->addresses[a].family)
					continue;
				if (out->n_allows == *cap) {
					size_t grown_cap = *cap ? *cap * 2 : 16;
					struct guard_allow *grown =
						realloc(out->allows, grown_cap * sizeof(*grown));
					if (!grown)
						return -1;
					out->allows = grown;
					*cap = grown_cap;
				}
				e = &out->allows[out->n_allows++];
				e->addr = cs->addresses[a];
				e->port = cs->ports[p];
				e->source = allow->nets[i];
			}
	return 0;
}

static int closed_cmp(const void *a, const void *b)
{
	const struct guard_shared *x = a, *y = b;
	int c = memcmp(x->addr.bytes, y->addr.bytes, sizeof(x->addr.bytes));

	if (c)
		return c;
	return (x->port > y->port) - (x->port < y->port);
}

static int add_closed(struct guard_set *out, const struct site_endpoint *e)
{
	struct guard_shared *grown = realloc(out->closed, (out->n_closed + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	out->closed = grown;
	out->closed[out->n_closed++] =
		(struct guard_shared){.addr = *site_endpoint_addr(e), .port = site_endpoint_port(e)};
	return 0;
}

/* A shared endpoint on which every name gets VERDICT (drop or reject): in
 * the SYN guard like a lone offline site's. */
static int add_endpoint(struct guard_endpoint **v, size_t *n, size_t *cap,
			const struct site_endpoint *e, enum site_verdict verdict)
{
	if (*n == *cap) {
		size_t grown_cap = *cap ? *cap * 2 : 16;
		struct guard_endpoint *grown = realloc(*v, grown_cap * sizeof(**v));

		if (!grown)
			return -1;
		*v = grown;
		*cap = grown_cap;
	}
	(*v)[(*n)++] = (struct guard_endpoint){
		.addr = *site_endpoint_addr(e),
		.port = site_endpoint_port(e),
		.action = verdict == SITE_VERDICT_REJECT ? SITE_ACTION_REJECT : SITE_ACTION_DROP,
	};
	return 0;
}

int guard_set_build(struct guard_set *out, const struct sites *sites)
{
	size_t n = 0, cap = 0, allow_cap = 0;
	struct guard_endpoint *v = NULL;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < sites_count(sites); i++) {
		const struct site *site = sites_at(sites, i);
		const struct config_site *cs = site_config(site);

		if (site_state(site) != SITE_OFFLINE)
			continue;
		if (add_allows(out, &allow_cap, site) < 0) {
			free(v);
			guard_set_free(out);
			return -1;
		}
		for (size_t a = 0; a < cs->n_addresses; a++) {
			for (size_t p = 0; p < cs->n_ports; p++) {
				/* a shared address is in the guard through its
				 * endpoint (below), not through one of its sites */
				if (sites_lookup_shared(sites, cs->addresses[a].family,
							cs->addresses[a].bytes, cs->ports[p]))
					continue;
				if (n == cap) {
					size_t grown_cap = cap ? cap * 2 : 16;
					struct guard_endpoint *grown =
						realloc(v, grown_cap * sizeof(*v));
					if (!grown) {
						free(v);
						guard_set_free(out);
						return -1;
					}
					v = grown;
					cap = grown_cap;
				}
				v[n++] = (struct guard_endpoint){
					.addr = cs->addresses[a],
					.port = cs->ports[p],
					.action = site_action(site),
					.cut = site_cut(site),
				};
			}
		}
	}
	/* a shared endpoint: its SYN is refused in the kernel only when every
	 * name there would be (the sites agree); where they do not, its
	 * hellos' data is (closed), and where all would pass, nothing is */
	for (size_t i = 0; i < sites_shared_count(sites); i++) {
		const struct site_endpoint *e = sites_shared_at(sites, i);
		enum site_verdict verdict;
		bool agree = site_endpoint_agree(e, 0, NULL, &verdict);

		if (agree && verdict == SITE_VERDICT_ACCEPT)
			continue;
		if (agree ? add_endpoint(&v, &n, &cap, e, verdict) < 0 : add_closed(out, e) < 0) {
			free(v);
			guard_set_free(out);
			return -1;
		}
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), endpoint_cmp);
	if (out->n_closed > 1)
		qsort(out->closed, out->n_closed, sizeof(*out->closed), closed_cmp);
	if (out->n_allows > 1)
		qsort(out->allows, out->n_allows, sizeof(*out->allows), allow_cmp);
	out->endpoints = v;
	out->count = n;
	return 0;
}

bool guard_set_equal(const struct guard_set *a, const struct guard_set *b)
{
	if (a->count != b->count || a->n_allows != b->n_allows || a->n_closed != b->n_closed)
		return false;
	for (size_t i = 0; i < a->n_closed; i++)
		if (closed_cmp(&a->closed[i], &b->closed[i]) != 0)
			return false;
	for (size_t i = 0; i < a->n_allows; i++)
		if (allow_cmp(&a->allows[i], &b->allows[i]) != 0)
			return false;
	for (size_t i = 0; i < a->count; i++)
		if (endpoint_cmp(&a->endpoints[i], &b->endpoints[i]) != 0)
			return false;
	return true;
}

void guard_set_move(struct guard_set *to, struct guard_set *from)
{
	guard_set_free(to);
	*to = *from;
	memset(from, 0, sizeof(*from));
}

void guard_set_free(struct guard_set *set)
{
	free(set->endpoints);
	free(set->allows);
	free(set->closed);
	memset(set, 0, sizeof(*set));
}

void guard_counters_add(struct guard_counters *to, const struct guard_counters *from)
{
	to->syn_dropped += from->syn_dropped;
	to->syn_rejected += from->syn_rejected;
	to->fragments += from->fragments;
}
