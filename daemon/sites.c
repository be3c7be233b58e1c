#include "sites.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "server_names.h"

/* The effective state of a site is one atomic word, so a reader never sees
 * the state of one toggle paired with the action of another. */
#define MODE_OFFLINE 1u
#define MODE_REJECT 2u
#define MODE_RUNTIME 4u
/* with MODE_RUNTIME: the override is the fleet's (fleet.c), not a toggle
 * of this box */
#define MODE_FLEET 8u

/* A site's counters for one writer. Each worker counts into its own slot,
 * so the packet path never does a read-modify-write on a cache line that
 * another core writes too; readers add the slots up. */
struct site_count {
	_Atomic uint64_t accepted, dropped, rejected, allowed;
};

struct site {
	const struct config_site *conf;
	_Atomic uint32_t mode;
	bool shared;               /* one slot for all writers: atomic adds */
	struct site_count *counts; /* slot s at counts[s * stride] */
	size_t stride, n_slots;
	struct site_count carried; /* from the table a reload replaced */
	/* What the workers read: config_allow or runtime_allow. A replaced
	 * run-time list is freed by the engine after workers_quiesce(). */
	_Atomic(struct site_allow *) allow;
	struct site_allow *config_allow;  /* NULL: the config has none */
	struct site_allow *runtime_allow; /* NULL: none */
	int64_t until;                    /* main thread only */
	/* state: auto: its check's last verdict (main thread only), what an
	 * ended override goes back to; -1: none yet, the config's state */
	int8_t check_state;
	bool cut;                         /* main thread only */
	uint64_t cut_probes;              /* main thread only */
	size_t cut_flows;                 /* main thread only */
};

/* The sites on one (address, port) they share, told apart by server name
 * (config server_names). */
struct site_endpoint {
	struct config_addr addr; /* where: the slot's key */
	uint16_t port;
	struct site **sites;
	size_t count;
	struct site *default_site; /* the one that lists "*"; NULL: none */
	enum config_unknown_name unknown;
};

struct slot {
	struct site *site;             /* one site's endpoint */
	struct site_endpoint *shared;  /* or several sites'; both NULL: empty */
	uint16_t port;
	uint8_t family;
	uint8_t addr[16];
};

struct sites {
	struct site *sites;
	size_t n_sites;
	struct slot *slots;
	size_t mask; /* capacity - 1, capacity a power of two */
	struct site_count *counts; /* n_slots blocks of n_sites, one block per writer */
	uint32_t *names;           /* by-name index: site index + 1, 0 = empty */
	size_t names_mask;
	struct site_endpoint **endpoints; /* the shared ones, each its own allocation */
	size_t n_endpoints;
};

/* Per-writer counter slots cost n_slots * n_sites * 24 bytes; past this
 * budget (tens of thousands of sites on dozens of queues) the workers share
 * one slot with atomic adds instead. */
#define SITES_COUNTER_BUDGET (32u * 1024u * 1024u)

static uint32_t mode_of(enum site_state state, enum site_action action, bool runtime)
{
	return (state == SITE_OFFLINE ? MODE_OFFLINE : 0) |
	       (action == SITE_ACTION_REJECT ? MODE_REJECT : 0) | (runtime ? MODE_RUNTIME : 0);
}

static uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* A multiply-xorshift mix of the key; the keys come from our own config,
 * so a fast mix with good spread is all that is needed. */
static size_t slot_hash(int family, const uint8_t *addr, uint16_t port)
{
	uint64_t h = load64(addr) * 0x9e3779b97f4a7c15ull;
	if (family == AF_INET6)
		h ^= load64(addr + 8) * 0xc2b2ae3d27d4eb4full;
	h ^= ((uint64_t)port << 8 | (uint64_t)family) * 0x165667b19e3779f9ull;
	h ^= h >> 29;
	h *= 0xbf58476d1ce4e5b9ull;
	h ^= h >> 32;
	return (size_t)h;
}

static void key_addr(int family, const uint8_t *addr, uint8_t out[16])
{
	memset(out, 0, 16);
	memcpy(out, addr, family == AF_INET6 ? 16 : 4);
}

static struct slot *slot_find(const struct sites *sites, int family, const uint8_t key[16],
			      uint16_t port)
{
	size_t i = slot_hash(family, key, port) & sites->mask;

	/* Load factor stays at or below one half, so an empty slot ends every probe. */
	for (;;) {
		struct slot *s = &sites->slots[i];
		if ((!s->site && !s->shared) || (s->port == port && s->family == family &&
				 memcmp(s->addr, key, 16) == 0))
			return s;
		i = (i + 1) & sites->mask;
	}
}

/* FNV-1a: names come from our own config, short and few. */
static size_t name_hash(const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;

	for (; *name; name++)
		h = (h ^ (uint8_t)*name) * 0x100000001b3ull;
	return (size_t)(h ^ h >> 32);
}

static int names_build(struct sites *sites)
{
	size_t capacity = 16;

	while (capacity < sites->n_sites * 2)
		capacity *= 2;
	sites->names = calloc(capacity, sizeof(*sites->names));
	if (!sites->names)
		return -1;
	sites->names_mask = capacity - 1;
	for (size_t i = 0; i < sites->n_sites; i++) {
		size_t at = name_hash(sites->sites[i].conf->name) & sites->names_mask;

		while (sites->names[at]) {
			/* config rejects a name used twice; first one wins if not */
			if (strcmp(sites->sites[sites->names[at] - 1].conf->name,
				   sites->sites[i].conf->name) == 0)
				break;
			at = (at + 1) & sites->names_mask;
		}
		if (!sites->names[at])
			sites->names[at] = (uint32_t)(i + 1);
	}
	return 0;
}

static bool has_names(const struct site *site)
{
	return site->conf->n_server_names > 0 || site->conf->default_name;
}

static int endpoint_add(struct site_endpoint *e, struct site *site)
{
	struct site **grown = realloc(e->sites, (e->count + 1) * sizeof(*grown));

	if (!grown)
		return -1;
	e->sites = grown;
	e->sites[e->count++] = site;
	if (site->conf->default_name && !e->default_site)
		e->default_site = site;
	return 0;
}

/* SITE claims slot S too: with names on both sides the slot becomes (or
 * stays) a shared endpoint. 0, or -1 out of memory. */
static int share_slot(struct sites *sites, struct slot *s, struct site *site,
		      const struct config *cfg)
{
	struct site_endpoint **grown;

	if (!has_names(site) || (s->site && !has_names(s->site)))
		return 0;
	if (s->shared)
		return endpoint_add(s->shared, site);
	grown = realloc(sites->endpoints, (sites->n_endpoints + 1) * sizeof(*grown));
	if (!grown)
		return -1;
	sites->endpoints = grown;
	grown[sites->n_endpoints] = calloc(1, sizeof(**grown));
	if (!grown[sites->n_endpoints])
		return -1;
	s->shared = grown[sites->n_endpoints++];
	s->shared->unknown = cfg->sni.unknown_name;
	s->shared->addr.family = s->family;
	memcpy(s->shared->addr.bytes, s->addr, 16);
	s->shared->port = s->port;
	if (endpoint_add(s->shared, s->site) < 0 || endpoint_add(s->shared, site) < 0)
		return -1;
	s->site = NULL;
	return 0;
}

struct sites *sites_create(const struct config *cfg)
{
	struct sites *sites = calloc(1, sizeof(*sites));
	/* one counter slot per queue worker, and one for the SNI worker */
	size_t keys = 0, capacity = 16, n_slots = (cfg->queue.count ? cfg->queue.count : 1) + 1;
	bool shared = false;

	if (!sites)
		return NULL;
	sites->n_sites = cfg->n_sites;
	sites->sites = calloc(cfg->n_sites ? cfg->n_sites : 1, sizeof(*sites->sites));
	if (!sites->sites)
		goto fail;
	if (n_slots > 1 && n_slots * cfg->n_sites * sizeof(struct site_count) > SITES_COUNTER_BUDGET) {
		n_slots = 1;
		shared = true;
	}
	sites->counts = calloc(n_slots * (cfg->n_sites ? cfg->n_sites : 1), sizeof(*sites->counts));
	if (!sites->counts)
		goto fail;
	for (size_t i = 0; i < cfg->n_sites; i++)
		keys += cfg->sites[i].n_addresses * cfg->sites[i].n_ports;
	while (capacity < keys * 2)
		capacity *= 2;
	sites->slots = calloc(capacity, sizeof(*sites->slots));
	if (!sites->slots)
		goto fail;
	sites->mask = capacity - 1;

	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct config_site *cs = &cfg->sites[i];
		struct site *site = &sites->sites[i];

		site->conf = cs;
		atomic_init(&site->mode, mode_of(cs->state, cs->action, false));
		site->check_state = -1;
		site->shared = shared;
		site->counts = &sites->counts[i];
		site->stride = cfg->n_sites;
		site->n_slots = n_slots;
		if (cs->n_allow) {
			site->config_allow = site_allow_new(cs->allow, cs->n_allow);
			if (!site->config_allow)
				goto fail;
		}
		atomic_init(&site->allow, site->config_allow);
		for (size_t a = 0; a < cs->n_addresses; a++) {
			uint8_t key[16];
			key_addr(cs->addresses[a].family, cs->addresses[a].bytes, key);
			for (size_t p = 0; p < cs->n_ports; p++) {
				struct slot *s = slot_find(sites, cs->addresses[a].family, key,
							   cs->ports[p]);
				if (s->site || s->shared) {
					/* config refuses a pair claimed twice unless
					 * every claimant lists server_names; if not,
					 * the first claim wins */
					if (share_slot(sites, s, site, cfg) < 0)
						goto fail;
					continue;
				}
				s->site = site;
				s->family = (uint8_t)cs->addresses[a].family;
				s->port = cs->ports[p];
				memcpy(s->addr, key, 16);
			}
		}
	}
	if (names_build(sites) < 0)
		goto fail;
	return sites;
fail:
	sites_free(sites);
	return NULL;
}

void sites_free(struct sites *sites)
{
	if (!sites)
		return;
	for (size_t i = 0; sites->sites && i < sites->n_sites; i++) {
		free(sites->sites[i].config_allow);
		free(sites->sites[i].runtime_allow);
	}
	for (size_t i = 0; i < sites->n_endpoints; i++) {
		free(sites->endpoints[i]->sites);
		free(sites->endpoints[i]);
	}
	free(sites->endpoints);
	free(sites->names);
	free(sites->counts);
	free(sites->slots);
	free(sites->sites);
	free(sites);
}

size_t sites_count(const struct sites *sites)
{
	return sites->n_sites;
}

struct site *sites_at(const struct sites *sites, size_t index)
{
	return index < sites->n_sites ? &sites->sites[index] : NULL;
}

struct site *sites_find(const struct sites *sites, const char *name)
{
	size_t at = name_hash(name) & sites->names_mask;

	/* load factor at most one half: an empty entry ends every probe */
	for (; sites->names[at]; at = (at + 1) & sites->names_mask) {
		struct site *site = &sites->sites[sites->names[at] - 1];
		if (strcmp(site->conf->name, name) == 0)
			return site;
	}
	return NULL;
}

struct site *sites_lookup(const struct sites *sites, int family, const uint8_t *addr,
			  uint16_t port)
{
	uint8_t key[16];

	if (family != AF_INET && family != AF_INET6)
		return NULL;
	key_addr(family, addr, key);
	return slot_find(sites, family, key, port)->site;
}

void sites_carry_over_overrides(struct sites *to, const struct sites *from)
{
	for (size_t i = 0; i < from->n_sites; i++) {
		struct site *site = sites_find(to, from->sites[i].conf->name);
		uint32_t mode = atomic_load(&from->sites[i].mode);

		const struct site_allow *allow = from->sites[i].runtime_allow;

		if (!site)
			continue;
		/* until the health module has applied its verdicts to the new
		 * table (the caller's next step), an override ended meanwhile
		 * goes back to the last one known */
		if (site->conf->state_auto)
			site->check_state = from->sites[i].check_state;
		if (!(mode & MODE_RUNTIME))
			continue;
		atomic_store(&site->mode, mode);
		site->until = from->sites[i].until;
		site->cut = from->sites[i].cut;
		site->cut_probes = from->sites[i].cut_probes;
		/* the new table is not live yet: nobody reads its lists; out of
		 * memory, the config's list stands in (logged by the caller's
		 * status, never a crash) */
		if (allow)
			free(site_swap_allow(site, site_allow_new(allow->nets, allow->count)));
	}
}

void sites_carry_over_counters(struct sites *to, const struct sites *from)
{
	for (size_t i = 0; i < from->n_sites; i++) {
		struct site *old = &from->sites[i];
		struct site *site = sites_find(to, old->conf->name);

		struct site_counters c;

		if (!site)
			continue;
		site_get_counters(old, &c);
		/* not a worker's slot: the new table is live, its workers write those */
		atomic_fetch_add(&site->carried.accepted, c.accepted);
		atomic_fetch_add(&site->carried.dropped, c.dropped);
		atomic_fetch_add(&site->carried.rejected, c.rejected);
		atomic_fetch_add(&site->carried.allowed, c.allowed);
	}
}

const struct config_site *site_config(const struct site *site)
{
	return site->conf;
}

const char *site_name(const struct site *site)
{
	return site->conf->name;
}

enum site_state site_state(const struct site *site)
{
	return (atomic_load(&site->mode) & MODE_OFFLINE) ? SITE_OFFLINE : SITE_ONLINE;
}

enum site_action site_action(const struct site *site)
{
	return (atomic_load(&site->mode) & MODE_REJECT) ? SITE_ACTION_REJECT : SITE_ACTION_DROP;
}

enum site_source site_source(const struct site *site)
{
	uint32_t mode = atomic_load(&site->mode);

	if (!(mode & MODE_RUNTIME))
		return SITE_SOURCE_CONFIG;
	return mode & MODE_FLEET ? SITE_SOURCE_FLEET : SITE_SOURCE_RUNTIME;
}

void site_set_override(struct site *site, enum site_state state, enum site_action action)
{
	atomic_store(&site->mode, mode_of(state, action, true));
}

void site_set_fleet_override(struct site *site, enum site_state state, enum site_action action)
{
	atomic_store(&site->mode, mode_of(state, action, true) | MODE_FLEET);
}

void site_clear_override(struct site *site)
{
	/* an auto site goes straight back to what its check says, in the same
	 * store: never through the config's state for a moment, and without
	 * asking the health module (a batch of ended overrides stays linear) */
	enum site_state state = site->conf->state_auto && site->check_state >= 0
					? (enum site_state)site->check_state
					: site->conf->state;

	atomic_store(&site->mode, mode_of(state, site->conf->action, false));
	/* a cut is part of the run-time override, never of the config */
	site->cut = false;
	site->cut_flows = 0;
}

struct site_allow *site_allow_new(const struct config_cidr *nets, size_t n)
{
	struct site_allow *allow = malloc(sizeof(*allow) + n * sizeof(allow->nets[0]));

	if (!allow)
		return NULL;
	allow->count = n;
	if (n)
		memcpy(allow->nets, nets, n * sizeof(allow->nets[0]));
	return allow;
}

const struct site_allow *site_allow_list(const struct site *site)
{
	return site->runtime_allow ? site->runtime_allow : site->config_allow;
}

bool site_allow_is_runtime(const struct site *site)
{
	return site->runtime_allow != NULL;
}

struct site_allow *site_swap_allow(struct site *site, struct site_allow *runtime)
{
	struct site_allow *old = site->runtime_allow;

	site->runtime_allow = runtime;
	/* sequentially consistent, as the workers' load and their generation
	 * handshake: once workers_quiesce() returns, no worker can have loaded
	 * OLD (a plain load on x86: free on the packet path) */
	atomic_store(&site->allow, runtime ? runtime : site->config_allow);
	return old;
}

int64_t site_until(const struct site *site)
{
	return site->until;
}

void site_set_until(struct site *site, int64_t until)
{
	site->until = until;
}

bool site_cut(const struct site *site)
{
	return site->cut;
}

void site_set_cut(struct site *site, bool cut)
{
	site->cut = cut;
	if (!cut)
		site->cut_flows = 0;
}

void site_cut_count(struct site *site, size_t flows, uint64_t probes)
{
	site->cut_flows = flows;
	site->cut_probes += probes;
}

void site_cut_counters(const struct site *site, size_t *flows, uint64_t *probes)
{
	*flows = site->cut_flows;
	*probes = site->cut_probes;
}

static bool allow_matches(const struct site_allow *allow, int family, const uint8_t *saddr)
{
	for (size_t i = 0; allow && saddr && i < allow->count; i++)
		if (config_cidr_contains(&allow->nets[i], family, saddr))
			return true;
	return false;
}

/* The single writer of a slot needs no read-modify-write: a relaxed load
 * and store publish the count without a locked instruction. */
static void count_one(_Atomic uint64_t *counter, bool shared)
{
	if (shared)
		atomic_fetch_add_explicit(counter, 1, memory_order_relaxed);
	else
		atomic_store_explicit(counter,
				      atomic_load_explicit(counter, memory_order_relaxed) + 1,
				      memory_order_relaxed);
}

enum site_verdict site_decide_on(struct site *site, unsigned slot)
{
	return site_decide_from(site, slot, 0, NULL);
}

bool site_allows(const struct site *site, int family, const uint8_t *saddr)
{
	return allow_matches(atomic_load(&site->allow), family, saddr);
}

enum site_verdict site_decide_from(struct site *site, unsigned slot, int family,
				   const uint8_t *saddr)
{
	uint32_t mode = atomic_load_explicit(&site->mode, memory_order_acquire);
	struct site_count *c = &site->counts[site->shared || slot >= site->n_slots
						     ? 0
						     : (size_t)slot * site->stride];

	if (!(mode & MODE_OFFLINE)) {
		count_one(&c->accepted, site->shared);
		return SITE_VERDICT_ACCEPT;
	}
	if (allow_matches(atomic_load(&site->allow), family, saddr)) {
		count_one(&c->allowed, site->shared);
		return SITE_VERDICT_ACCEPT;
	}
	if (mode & MODE_REJECT) {
		count_one(&c->rejected, site->shared);
		return SITE_VERDICT_REJECT;
	}
	count_one(&c->dropped, site->shared);
	return SITE_VERDICT_DROP;
}

enum site_verdict site_decide(struct site *site)
{
	return site_decide_on(site, 0);
}

void site_get_counters(const struct site *site, struct site_counters *out)
{
	out->accepted = atomic_load_explicit(&site->carried.accepted, memory_order_relaxed);
	out->dropped = atomic_load_explicit(&site->carried.dropped, memory_order_relaxed);
	out->rejected = atomic_load_explicit(&site->carried.rejected, memory_order_relaxed);
	out->allowed = atomic_load_explicit(&site->carried.allowed, memory_order_relaxed);
	for (size_t s = 0; s < site->n_slots; s++) {
		const struct site_count *c = &site->counts[s * site->stride];
		out->accepted += atomic_load_explicit(&c->accepted, memory_order_relaxed);
		out->dropped += atomic_load_explicit(&c->dropped, memory_order_relaxed);
		out->rejected += atomic_load_explicit(&c->rejected, memory_order_relaxed);
		out->allowed += atomic_load_explicit(&c->allowed, memory_order_relaxed);
	}
}

const char *site_source_name(enum site_source source)
{
	switch (source) {
	case SITE_SOURCE_CONFIG: return "config";
	case SITE_SOURCE_RUNTIME: return "runtime";
	case SITE_SOURCE_FLEET: return "fleet";
	}
	return "?";
}

const char *site_source_word(const struct site *site)
{
	enum site_source source = site_source(site);

	if (source == SITE_SOURCE_CONFIG && site->conf->state_auto)
		return "check";
	return site_source_name(source);
}

const char *site_verdict_name(enum site_verdict verdict)
{
	switch (verdict) {
	case SITE_VERDICT_ACCEPT: return "accept";
	case SITE_VERDICT_DROP: return "drop";
	case SITE_VERDICT_REJECT: return "reject";
	}
	return "?";
}

/* A health check's verdict for an auto site: applied only while no
 * run-time override is in force, in one compare-and-swap so a toggle from
 * the control socket landing at the same moment is never overwritten. */
bool site_set_check_state(struct site *site, enum site_state state)
{
	uint32_t mode = atomic_load(&site->mode);

	site->check_state = (int8_t)state; /* kept under an override too */
	for (;;) {
		uint32_t want = mode_of(state, site->conf->action, false);

		if (mode & MODE_RUNTIME)
			return false;
		if (mode == want ||
		    atomic_compare_exchange_weak(&site->mode, &mode, want))
			return true;
	}
}

/* ---- shared endpoints ---- */

const struct site_endpoint *sites_lookup_shared(const struct sites *sites, int family,
						const uint8_t *addr, uint16_t port)
{
	uint8_t key[16];

	if (family != AF_INET && family != AF_INET6)
		return NULL;
	key_addr(family, addr, key);
	return slot_find(sites, family, key, port)->shared;
}

size_t sites_shared_count(const struct sites *sites)
{
	return sites->n_endpoints;
}

const struct site_endpoint *sites_shared_at(const struct sites *sites, size_t index)
{
	return index < sites->n_endpoints ? sites->endpoints[index] : NULL;
}

const struct config_addr *site_endpoint_addr(const struct site_endpoint *e)
{
	return &e->addr;
}

uint16_t site_endpoint_port(const struct site_endpoint *e)
{
	return e->port;
}

size_t site_endpoint_count(const struct site_endpoint *e)
{
	return e->count;
}

struct site *site_endpoint_at(const struct site_endpoint *e, size_t index)
{
	return index < e->count ? e->sites[index] : NULL;
}

struct site *site_endpoint_for_name(const struct site_endpoint *e, const char *name)
{
	struct site *best = NULL;
	size_t best_score = 0;

	for (size_t i = 0; name && i < e->count; i++) {
		const struct config_site *cs = e->sites[i]->conf;

		for (size_t k = 0; k < cs->n_server_names; k++) {
			size_t score = server_name_match(cs->server_names[k], name);

			if (score > best_score) {
				best = e->sites[i];
				best_score = score;
			}
		}
	}
	return best ? best : e->default_site;
}

/* SITE's verdict for a connection from SADDR, without counting it. */
static enum site_verdict verdict_of(const struct site *site, int family, const uint8_t *saddr)
{
	uint32_t mode = atomic_load_explicit(&site->mode, memory_order_acquire);

	if (!(mode & MODE_OFFLINE) || allow_matches(atomic_load(&site->allow), family, saddr))
		return SITE_VERDICT_ACCEPT;
	return mode & MODE_REJECT ? SITE_VERDICT_REJECT : SITE_VERDICT_DROP;
}

static enum site_verdict unknown_verdict(const struct site_endpoint *e, int family,
					 const uint8_t *saddr)
{
	if (e->default_site)
		return verdict_of(e->default_site, family, saddr);
	switch (e->unknown) {
	case CONFIG_UNKNOWN_ACCEPT:
		return SITE_VERDICT_ACCEPT;
	case CONFIG_UNKNOWN_DROP:
		return SITE_VERDICT_DROP;
	case CONFIG_UNKNOWN_REJECT:
		break;
	}
	return SITE_VERDICT_REJECT;
}

enum site_verdict site_endpoint_decide(const struct site_endpoint *e, const char *name,
					unsigned slot, int family, const uint8_t *saddr,
					struct site **site)
{
	*site = site_endpoint_for_name(e, name);
	if (*site)
		return site_decide_from(*site, slot, family, saddr);
	return unknown_verdict(e, family, saddr);
}

bool site_endpoint_agree(const struct site_endpoint *e, int family, const uint8_t *saddr,
			 enum site_verdict *out)
{
	enum site_verdict v = unknown_verdict(e, family, saddr);

	for (size_t i = 0; i < e->count; i++)
		if (verdict_of(e->sites[i], family, saddr) != v)
			return false;
	*out = v;
	return true;
}

enum site_verdict site_endpoint_unknown_verdict(const struct site_endpoint *e, int family,
						const uint8_t *saddr)
{
	return unknown_verdict(e, family, saddr);
}
