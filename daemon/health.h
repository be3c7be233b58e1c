/* health: the sites' health checks (config "check:"): the daemon's side.
 * It schedules the checks, keeps each target's results and rise / fall
 * state, and applies the verdicts to the sites; the checks themselves
 * (TCP, TLS, HTTP: hostile bytes) run in a separate unprivileged process,
 * the checker (checker.c, health_probe.c), reached through checker_link.c.
 *
 * Each probed address of a site is one target: every check.interval it is
 * connected to (TCP, then a TLS handshake, then for type https one
 * HTTP/1.1 request), judged against check.timeout, and its state goes down
 * after check.fall failures in a row and up after check.rise successes
 * (the very first result decides at once). A site is down when every one
 * of its probed addresses is down. For a site with state: auto the result
 * is its effective state (site_set_check_state), unless a run-time
 * override from gatekeeperctl is in force.
 *
 * Never blocks, and never does the checks' work: at most
 * HEALTH_MAX_IN_FLIGHT checks run at once in the checker, each bounded by
 * its deadline there (and here by the deadline plus HEALTH_CHECKER_GRACE_MS,
 * after which the checker is taken for hung and restarted). A costly
 * server (a slow TLS handshake) slows the checker, not the main loop. A
 * dead checker is restarted with a backoff; meanwhile every target keeps
 * its last state and results. The packet workers never wait on this
 * module.
 *
 * The check sockets carry HEALTH_SOCKET_MARK (SO_MARK), which the daemon's
 * queueing rules skip: a check from the box itself to a site on the box
 * (hook input, or prerouting over loopback) is never queued, so an offline
 * site can still be seen coming back. SO_MARK needs CAP_NET_ADMIN, which
 * the checker must not have: the daemon creates and marks each socket and
 * hands it over with the job (SCM_RIGHTS); the checker cannot create
 * sockets at all. */
#ifndef GK_HEALTH_H
#define GK_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "health_probe.h"
#include "rules.h"
#include "sites.h"

#define HEALTH_MAX_IN_FLIGHT CHECKER_MAX_JOBS
#define HEALTH_SOCKET_MARK RULES_CHECK_MARK
/* How long past a check's deadline the checker may be late with its
 * result before it is taken for hung (a costly server can make it late). */
#define HEALTH_CHECKER_GRACE_MS 30000

struct health;

enum health_state { HEALTH_UNKNOWN, HEALTH_UP, HEALTH_DOWN };

struct health_cert {
	bool present;
	char subject[256], issuer[256]; /* RFC 2253 */
	int64_t not_after;              /* Unix time */
};

/* One probed address of one site, as status and metrics show it. */
struct health_target_info {
	const char *site; /* the running config's name */
	const struct config_check *check;
	struct config_addr addr;
	uint16_t port;
	enum health_state state;  /* after rise / fall */
	bool have_result, last_ok;
	char reason[192];         /* "HTTP 200", "HTTP 404", "timeout during ...", ... */
	uint64_t latency_us;      /* of the last check */
	int64_t last_time;        /* Unix time of the last result */
	uint64_t successes, failures;
	unsigned ok_streak, fail_streak;
	struct health_cert cert;  /* of the last completed handshake */
};

/* Builds the targets of CFG's checks (none: an idle module). NULL only on
 * a system error (logged). CFG must outlive it, or be replaced by
 * health_update() first. */
struct health *health_open(const struct config *cfg);
/* With a fleet whose auto sites combine the boxes' checks (fleet.checks:
 * all): FN turns this box's verdict OWN (UP or DOWN) of SITE into the one
 * that decides the site's state. */
typedef enum health_state health_combine_fn(void *arg, const char *site, enum health_state own);
void health_set_combine(struct health *h, health_combine_fn *fn, void *arg);
void health_close(struct health *health);
/* Reload: the targets of CFG, keeping the results of each (site, address,
 * port) that is still checked. Checks in flight are restarted. */
int health_update(struct health *health, const struct config *cfg);
/* Gives every auto site of SITES the state its check says (sites without a
 * result yet keep theirs; run-time overrides win). For a new table before
 * it goes live, and after an override is cleared. */
void health_apply(const struct health *health, struct sites *sites);

/* The fd to poll, and how long the poll may sleep (-1: forever). A NULL
 * HEALTH is an idle module: fd -1, timeout -1. */
int health_fd(const struct health *health);
int health_timeout_ms(const struct health *health);
/* Moves every check as far as it can go without blocking, ends those past
 * their deadline, starts those that are due; applies the verdicts to
 * SITES. */
void health_dispatch(struct health *health, struct sites *sites);

size_t health_count(const struct health *health);
const struct health_target_info *health_at(const struct health *health, size_t index);
/* The check's verdict for the site NAME: UP if any address is up, DOWN if
 * all are down, else UNKNOWN (no check, or no result yet). */
enum health_state health_site_state(const struct health *health, const char *name);
const char *health_state_name(enum health_state state);

/* The checker's process id (0: none running) and how many times it has
 * been started, for status. */
int health_checker_pid(const struct health *health);
unsigned health_checker_starts(const struct health *health);

#endif
