/* sites: the lookup table (family, address, port) -> site, and each site's
 * run-time state and counters.
 *
 * A `struct sites` is built once from a config and never changes shape, so
 * the packet workers read it without locks; a reload builds a new one and
 * swaps the pointer. What does change at run time (a manual override, the
 * counters) lives in atomics inside each site, so a toggle from the control
 * socket is seen by the very next SYN on every queue. The counters are
 * kept per worker (one slot per queue) and summed when read. */
#ifndef GK_SITES_H
#define GK_SITES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

/* Where a site's state comes from: its config (or its check), a run-time
 * toggle on this box (with a fleet: a local pin), or the fleet (etcd). */
enum site_source { SITE_SOURCE_CONFIG, SITE_SOURCE_RUNTIME, SITE_SOURCE_FLEET };
enum site_verdict { SITE_VERDICT_ACCEPT, SITE_VERDICT_DROP, SITE_VERDICT_REJECT };

struct sites;
struct site;

struct site_counters {
	uint64_t accepted, dropped, rejected;
	uint64_t allowed; /* accepted while offline: the source is on the allow-list */
};

/* An allow-list: the source networks let through while the site is
 * offline. One allocation; free() frees it. */
struct site_allow {
	size_t count;
	struct config_cidr nets[];
};

/* A copy of NETS[0..N) (N may be 0: an empty list); NULL out of memory. */
struct site_allow *site_allow_new(const struct config_cidr *nets, size_t n);

/* Borrows CFG: it must outlive the table. NULL on allocation failure. */
struct sites *sites_create(const struct config *cfg);
void sites_free(struct sites *sites);

size_t sites_count(const struct sites *sites);
struct site *sites_at(const struct sites *sites, size_t index);
struct site *sites_find(const struct sites *sites, const char *name);
/* ADDR in network order (4 or 16 bytes), PORT in host order. O(1). */
struct site *sites_lookup(const struct sites *sites, int family, const uint8_t *addr,
			  uint16_t port);
/* A reload loses neither an operator's toggle nor the figures: overrides
 * are copied, by site name, before the new table goes live; counters are
 * added once the old table is no longer written. */
void sites_carry_over_overrides(struct sites *to, const struct sites *from);

/* ---- shared endpoints (sites told apart by TLS server name) ----
 * An (address, port) that several sites claim, each with server_names:
 * sites_lookup() finds no site there, sites_lookup_shared() the endpoint.
 * A SYN there is decided at once only when every outcome of its
 * ClientHello would get the same verdict (site_endpoint_agree); else the
 * hello decides (site_endpoint_for_name). */
struct site_endpoint;

const struct site_endpoint *sites_lookup_shared(const struct sites *sites, int family,
						const uint8_t *addr, uint16_t port);
size_t sites_shared_count(const struct sites *sites);
const struct site_endpoint *sites_shared_at(const struct sites *sites, size_t index);
const struct config_addr *site_endpoint_addr(const struct site_endpoint *e);
uint16_t site_endpoint_port(const struct site_endpoint *e);
size_t site_endpoint_count(const struct site_endpoint *e);
struct site *site_endpoint_at(const struct site_endpoint *e, size_t index);
/* The site whose pattern matches canonical NAME best (exact over wildcard,
 * longer wildcard over shorter), else the endpoint's "*" site; NULL: no
 * site takes it (also for NAME NULL, a hello without a name, when there is
 * no "*" site): site_endpoint_unknown_verdict() says what it gets. */
struct site *site_endpoint_for_name(const struct site_endpoint *e, const char *name);
enum site_verdict site_endpoint_unknown_verdict(const struct site_endpoint *e, int family,
						const uint8_t *saddr);
/* The verdict for a ClientHello to E from SADDR asking for canonical NAME
 * (NULL: it named none, or was no ClientHello at all: the "*" site or the
 * unknown-name verdict decides, never a silent accept), counted in SLOT of
 * the site that takes it (*SITE; NULL when none does). */
enum site_verdict site_endpoint_decide(const struct site_endpoint *e, const char *name,
					unsigned slot, int family, const uint8_t *saddr,
					struct site **site);
/* Whether a connection from SADDR gets one verdict whatever name it asks
 * for (its sites and the unknown-name outcome agree); then *OUT is it. */
bool site_endpoint_agree(const struct site_endpoint *e, int family, const uint8_t *saddr,
			 enum site_verdict *out);
void sites_carry_over_counters(struct sites *to, const struct sites *from);

const struct config_site *site_config(const struct site *site);
const char *site_name(const struct site *site);
enum site_state site_state(const struct site *site);
enum site_action site_action(const struct site *site);
enum site_source site_source(const struct site *site);
void site_set_override(struct site *site, enum site_state state, enum site_action action);
/* The fleet's override (fleet.c): like a toggle, shown as from the fleet,
 * and not a local pin (the state file does not keep it). */
void site_set_fleet_override(struct site *site, enum site_state state, enum site_action action);
void site_clear_override(struct site *site);

/* The allow-list in force: the run-time one if set, else the config's;
 * NULL when the site has none. Main thread. */
const struct site_allow *site_allow_list(const struct site *site);
bool site_allow_is_runtime(const struct site *site);
/* Puts RUNTIME (taken; NULL: back to the config's list) in force and
 * returns the run-time list it replaces. The workers may still be reading
 * that one: free it only once they are past it (workers_quiesce()). */
struct site_allow *site_swap_allow(struct site *site, struct site_allow *runtime);
/* The end of the run-time override, in Unix time (wall clock: a deadline
 * is a date an operator gave); 0: none. Main thread only. */
int64_t site_until(const struct site *site);
void site_set_until(struct site *site, int64_t until);
/* Whether the run-time offline override cuts the site's established
 * connections too (cut.h); ends with the override. Main thread only. */
bool site_cut(const struct site *site);
void site_set_cut(struct site *site, bool cut);
/* The cut's figures: FLOWS, the site's connections the last probe round
 * found in conntrack; PROBES, the probe packets sent so far (added). */
void site_cut_count(struct site *site, size_t flows, uint64_t probes);
void site_cut_counters(const struct site *site, size_t *flows, uint64_t *probes);

/* The verdict for a new connection to SITE; counts it in counter slot
 * SLOT. Each slot has one writer at a time: worker i uses slot i (the table
 * has one slot per configured queue). */
enum site_verdict site_decide_on(struct site *site, unsigned slot);
/* The same for a SYN from SADDR (FAMILY, network order): while the site is
 * offline, a source on its allow-list is accepted (and counted as allowed).
 * No lock, no allocation: a linear scan of at most CONFIG_MAX_ALLOW nets. */
enum site_verdict site_decide_from(struct site *site, unsigned slot, int family,
				   const uint8_t *saddr);
/* Whether SADDR (FAMILY, network order) is on SITE's allow-list in force. */
bool site_allows(const struct site *site, int family, const uint8_t *saddr);
/* site_decide_on(SITE, 0), for single-threaded callers. */
enum site_verdict site_decide(struct site *site);
void site_get_counters(const struct site *site, struct site_counters *out);

const char *site_source_name(enum site_source source);
/* Where SITE's state comes from, for people: "runtime", "fleet", "check"
 * (an auto site without an override) or "config". */
const char *site_source_word(const struct site *site);
const char *site_verdict_name(enum site_verdict verdict);

/* Sets the effective state of SITE from its health check (state: auto),
 * with the config's action, unless a run-time override is in force: then
 * nothing changes and it returns false. Either way the verdict is kept:
 * site_clear_override() goes back to it. */
bool site_set_check_state(struct site *site, enum site_state state);

#endif
