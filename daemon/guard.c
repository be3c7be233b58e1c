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
	return (int)a->action - (int)b->action;
}

int guard_set_build(struct guard_set *out, const struct sites *sites)
{
	size_t n = 0, cap = 0;
	struct guard_endpoint *v = NULL;

	out->endpoints = NULL;
	out->count = 0;
	for (size_t i = 0; i < sites_count(sites); i++) {
		const struct site *site = sites_at(sites, i);
		const struct config_site *cs = site_config(site);

		if (site_state(site) != SITE_OFFLINE)
			continue;
		for (size_t a = 0; a < cs->n_addresses; a++) {
			for (size_t p = 0; p < cs->n_ports; p++) {
				if (n == cap) {
					size_t grown_cap = cap ? cap * 2 : 16;
					struct guard_endpoint *grown =
						realloc(v, grown_cap * sizeof(*v));
					if (!grown) {
						free(v);
						return -1;
					}
					v = grown;
					cap = grown_cap;
				}
				v[n++] = (struct guard_endpoint){
					.addr = cs->addresses[a],
					.port = cs->ports[p],
					.action = site_action(site),
				};
			}
		}
	}
	if (n > 1)
		qsort(v, n, sizeof(*v), endpoint_cmp);
	out->endpoints = v;
	out->count = n;
	return 0;
}

bool guard_set_equal(const struct guard_set *a, const struct guard_set *b)
{
	if (a->count != b->count)
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
	from->endpoints = NULL;
	from->count = 0;
}

void guard_set_free(struct guard_set *set)
{
	free(set->endpoints);
	set->endpoints = NULL;
	set->count = 0;
}

void guard_counters_add(struct guard_counters *to, const struct guard_counters *from)
{
	to->syn_dropped += from->syn_dropped;
	to->syn_rejected += from->syn_rejected;
	to->fragments += from->fragments;
}
