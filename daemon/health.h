/* health: the sites' health checks (config "check:"), with OpenSSL on
 * non-blocking sockets, driven from one epoll fd that main() polls.
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
 * Never blocks: at most HEALTH_MAX_IN_FLIGHT checks run at once, each
 * bounded by its deadline; a server that accepts and never answers costs
 * one socket until its timeout. The packet workers never wait on this
 * module. The checker's sockets carry HEALTH_SOCKET_MARK (SO_MARK), which
 * the daemon's queueing rules skip: a check from the box itself to a site
 * on the box (hook input, or prerouting over loopback) is never queued,
 * so an offline site can still be seen coming back. */
#ifndef GK_HEALTH_H
#define GK_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rules.h"
#include "sites.h"

#define HEALTH_MAX_IN_FLIGHT 64
#define HEALTH_SOCKET_MARK RULES_CHECK_MARK
/* The part of a response kept to judge it (status line, headers, body). */
#define HEALTH_RESPONSE_MAX 16384

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

/* ---- exposed for the unit tests ---- */

/* Judges the response bytes BUF[0..LEN) of an https check: 1 passed,
 * 0 failed, -1 undecided (read more; with EOF it never returns -1). The
 * reason ("HTTP 200", "HTTP 404", ...) goes to REASON. */
int health_judge_http(const struct config_check *check, const char *buf, size_t len, bool eof,
		      char *reason, size_t reason_len);

#endif
