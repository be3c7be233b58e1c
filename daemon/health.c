/* health: see health.h. The daemon's side: targets, the schedule, rise /
 * fall, the verdicts. Each check in flight is a slot here and a job in the
 * checker (same slot number); the result comes back as a RESULT record. */
#include "health.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "checker_link.h"
#include "clock.h"
#include "log.h"

#define MAX_SLEEP_MS 60000

struct target {
	struct health_target_info info;
	const struct config_site *site;
	int ca_fd;        /* check.ca_file, open read-only; owned by the site's first target */
	uint32_t ca_key;  /* the checker's cache key for it (0: no ca_file) */
	uint64_t next_due_ms;
	int probe; /* slot in flight, or -1 */
	size_t first, count; /* the targets of the same site: contiguous */
};

struct slot {
	bool busy;
	uint32_t generation;
	size_t target;
	uint64_t start_us, deadline_ms;
};

struct health {
	int epoll_fd;
	struct checker_link *link;
	struct target *targets;
	size_t n_targets;
	/* each site's first target by name (index + 1; 0: empty), at most
	 * half full: the fleet asks a site's verdict per site and a reload
	 * matches every target, neither with a scan of all the targets */
	size_t *by_name;
	size_t by_name_mask;
	struct slot slots[HEALTH_MAX_IN_FLIGHT];
	size_t in_flight;
	uint32_t next_generation;
	size_t next_start; /* round-robin start of the due scan */
	/* results the checker may still send for checks cancelled here (one
	 * each at most); any other unasked-for result is a lie */
	size_t stale_allowed;
	bool mark_warned;
	health_combine_fn *combine; /* NULL: this box's verdict decides */
	void *combine_arg;
};

/* a new key for every ca_file opened: a reload re-reads the file */
static uint32_t next_ca_key;

const char *health_state_name(enum health_state state)
{
	switch (state) {
	case HEALTH_UP: return "up";
	case HEALTH_DOWN: return "down";
	case HEALTH_UNKNOWN: break;
	}
	return "unknown";
}

/* ---- targets ---- */

/* check.ca_file, opened for the checker: regular files only, and without
 * blocking on a FIFO. -1 (logged) if it cannot be. */
static int open_ca(const struct config_site *site)
{
	const char *path = site->check->ca_file;
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);

	if (fd < 0) {
		log_error_errno("check %s: cannot open the CAs of %s; its checks will fail",
				site->name, path);
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_error("check %s: %s is not a regular file; its checks will fail", site->name,
			  path);
		close(fd);
		return -1;
	}
	return fd;
}

static size_t count_targets(const struct config *cfg)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct config_site *s = &cfg->sites[i];
		if (s->check)
			n += s->check->addresses ? s->check->n_addresses : s->n_addresses;
	}
	return n;
}

/* The targets of CFG, all due now, nothing in flight. */
static struct target *build_targets(const struct config *cfg, size_t *count)
{
	size_t n = count_targets(cfg), k = 0;
	struct target *targets = calloc(n ? n : 1, sizeof(*targets));
	uint64_t now = clock_now_ms();

	if (!targets)
		return NULL;
	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct config_site *s = &cfg->sites[i];
		const struct config_addr *addrs;
		size_t n_addrs;
		uint32_t ca_key = 0;
		int ca_fd = -1;

		if (!s->check)
			continue;
		if (s->check->ca_file) {
			ca_fd = open_ca(s);
			ca_key = ++next_ca_key ? next_ca_key : ++next_ca_key;
		}
		addrs = s->check->addresses ? s->check->addresses : s->addresses;
		n_addrs = s->check->addresses ? s->check->n_addresses : s->n_addresses;
		for (size_t a = 0; a < n_addrs; a++) {
			struct target *t = &targets[k++];

			t->first = k - 1 - a;
			t->count = n_addrs;
			t->site = s;
			t->info.site = s->name;
			t->info.check = s->check;
			t->info.addr = addrs[a];
			t->info.port = s->check->port;
			t->next_due_ms = now;
			t->probe = -1;
			t->ca_fd = ca_fd;
			t->ca_key = ca_key;
		}
		if (!n_addrs && ca_fd >= 0)
			close(ca_fd);
	}
	*count = k;
	return targets;
}

static void free_targets(struct target *targets, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (targets[i].first == i && targets[i].ca_fd >= 0)
			close(targets[i].ca_fd);
	free(targets);
}

static size_t name_hash(const char *name)
{
	uint64_t hash = 14695981039346656037u; /* FNV-1a */

	for (; *name; name++)
		hash = (hash ^ (unsigned char)*name) * 1099511628211u;
	return (size_t)hash;
}

static size_t *index_by_name(const struct target *targets, size_t n, size_t *mask)
{
	size_t cap = 16, *slots;

	while (cap < 2 * n)
		cap *= 2;
	slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return NULL;
	for (size_t i = 0; i < n; i += targets[i].count ? targets[i].count : 1) {
		size_t at = name_hash(targets[i].info.site) & (cap - 1);

		while (slots[at])
			at = (at + 1) & (cap - 1);
		slots[at] = i + 1;
	}
	*mask = cap - 1;
	return slots;
}

/* The index of site NAME's first target, or SIZE_MAX: it has none. */
static size_t site_first(const struct health *h, const char *name)
{
	if (!h || !h->by_name)
		return SIZE_MAX;
	for (size_t at = name_hash(name) & h->by_name_mask; h->by_name[at];
	     at = (at + 1) & h->by_name_mask)
		if (strcmp(h->targets[h->by_name[at] - 1].info.site, name) == 0)
			return h->by_name[at] - 1;
	return SIZE_MAX;
}

/* UP if any target of the range is up, DOWN if all are down. */
static enum health_state range_state(const struct health *h, size_t first, size_t count)
{
	bool all_down = count > 0;

	for (size_t i = first; i < first + count; i++) {
		if (h->targets[i].info.state == HEALTH_UP)
			return HEALTH_UP;
		all_down &= h->targets[i].info.state == HEALTH_DOWN;
	}
	return all_down ? HEALTH_DOWN : HEALTH_UNKNOWN;
}

/* The verdict of target T's site, pushed to the live table when the site
 * is auto. */
static void apply_site(const struct health *h, struct sites *sites, const struct target *t,
		       bool log_change)
{
	const char *name = t->info.site;
	enum health_state verdict = range_state(h, t->first, t->count);
	struct site *site = sites ? sites_find(sites, name) : NULL;
	enum site_state want, was;

	if (!site || !site_config(site)->state_auto || verdict == HEALTH_UNKNOWN)
		return;
	if (h->combine)
		verdict = h->combine(h->combine_arg, name, verdict);
	want = verdict == HEALTH_UP ? SITE_ONLINE : SITE_OFFLINE;
	was = site_state(site);
	if (!site_set_check_state(site, want)) {
		if (log_change && was != want)
			log_info("site %s: the check says %s, but a run-time override keeps it %s "
				 "(gatekeeperctl reset %s hands it back to the check)", name,
				 config_state_name(want), config_state_name(was), name);
		return;
	}
	if (was != want)
		log_info("site %s: %s (%s), from its check", name, config_state_name(want),
			 config_action_name(site_action(site)));
}

/* ---- one check ---- */

static void slot_release(struct health *h, struct slot *s)
{
	h->targets[s->target].probe = -1;
	memset(s, 0, sizeof(*s));
	h->in_flight--;
}

/* RES (from the checker, validated, or made here) is target T's result. */
static void record(struct health *h, struct slot *s, struct sites *sites,
		   const struct checker_result *res)
{
	struct target *t = &h->targets[s->target];
	struct health_target_info *i = &t->info;
	const struct config_check *check = t->site->check;
	enum health_state was = i->state;
	char addr[INET6_ADDRSTRLEN];
	uint64_t now = clock_now_ms();
	bool ok = res->ok;

	i->have_result = true;
	i->last_ok = ok;
	snprintf(i->reason, sizeof(i->reason), "%s", res->reason);
	i->latency_us = res->latency_us;
	i->last_time = (int64_t)time(NULL);
	if (res->cert_present || res->subject[0]) {
		i->cert.present = res->cert_present;
		snprintf(i->cert.subject, sizeof(i->cert.subject), "%s", res->subject);
		snprintf(i->cert.issuer, sizeof(i->cert.issuer), "%s", res->issuer);
		i->cert.not_after = res->not_after;
	} else if (ok) {
		memset(&i->cert, 0, sizeof(i->cert));
	}
	if (ok) {
		i->successes++;
		i->ok_streak++;
		i->fail_streak = 0;
	} else {
		i->failures++;
		i->fail_streak++;
		i->ok_streak = 0;
	}
	if (i->state == HEALTH_UNKNOWN)
		i->state = ok ? HEALTH_UP : HEALTH_DOWN;
	else if (i->state == HEALTH_DOWN && ok && i->ok_streak >= check->rise)
		i->state = HEALTH_UP;
	else if (i->state == HEALTH_UP && !ok && i->fail_streak >= check->fall)
		i->state = HEALTH_DOWN;
	/* the next round is counted from this one's start, not its end */
	t->next_due_ms = s->start_us / 1000u + check->interval_ms;
	if (t->next_due_ms < now)
		t->next_due_ms = now;
	if (i->state != was)
		log_info("check %s %s port %u: %s (%s, %llu ms)", i->site,
			 config_addr_str(&i->addr, addr, sizeof(addr)), i->port,
			 health_state_name(i->state), i->reason,
			 (unsigned long long)(i->latency_us / 1000u));
	else
		log_debug("check %s %s port %u: %s (%s)", i->site,
			  config_addr_str(&i->addr, addr, sizeof(addr)), i->port,
			  ok ? "passed" : "failed", i->reason);
	slot_release(h, s);
	apply_site(h, sites, t, i->state != was);
}

/* A failure decided here, without the checker (no socket, no CA file). */
static void fail_here(struct health *h, struct slot *s, struct sites *sites, const char *reason)
{
	struct checker_result res = {0};

	res.slot = (uint32_t)(s - h->slots);
	res.generation = s->generation;
	checker_text_clean(res.reason, sizeof(res.reason), reason);
	res.latency_us = clock_now_us() - s->start_us;
	record(h, s, sites, &res);
}

/* The checker is gone: the checks in flight end without a result (the
 * targets keep their state) and are due again once it is back. */
static void drop_in_flight(struct health *h)
{
	uint64_t again = checker_link_next_start_ms(h->link);

	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT; i++) {
		struct slot *s = &h->slots[i];

		if (!s->busy)
			continue;
		if (h->targets[s->target].next_due_ms < again)
			h->targets[s->target].next_due_ms = again;
		slot_release(h, s);
	}
}

static void link_failed(struct health *h, const char *why)
{
	if (why)
		checker_link_fail(h->link, why);
	drop_in_flight(h);
	h->stale_allowed = 0; /* a new checker owes nothing */
}

/* A socket for a check: made here, where CAP_NET_ADMIN allows SO_MARK. */
static int check_socket(struct health *h, const struct target *t)
{
	struct linger linger = {.l_onoff = 1, .l_linger = 0};
	uint32_t mark = HEALTH_SOCKET_MARK;
	int fd = socket(t->info.addr.family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	if (setsockopt(fd, SOL_SOCKET, SO_MARK, &mark, sizeof(mark)) < 0 && !h->mark_warned) {
		log_warn_errno("health checks: cannot mark the check sockets (SO_MARK): with hook "
			       "input or prerouting, checks of a site on this box pass the queue");
		h->mark_warned = true;
	}
	/* an abortive close: a checker on a short interval leaves no TIME_WAIT */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
	return fd;
}

static void probe_start(struct health *h, size_t target, struct sites *sites)
{
	struct target *t = &h->targets[target];
	const struct config_check *check = t->site->check;
	struct checker_job job;
	struct slot *s = NULL;
	char reason[CHECKER_REASON_LEN];
	int fd;

	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT && !s; i++)
		if (!h->slots[i].busy)
			s = &h->slots[i];
	if (!s)
		return;
	s->busy = true;
	s->target = target;
	s->generation = ++h->next_generation;
	s->start_us = clock_now_us();
	s->deadline_ms = s->start_us / 1000u + check->timeout_ms;
	t->probe = (int)(s - h->slots);
	h->in_flight++;
	if (check->ca_file && t->ca_fd < 0) {
		fail_here(h, s, sites, "cannot open check.ca_file");
		return;
	}
	if (checker_job_from_check(&job, (uint32_t)(s - h->slots), s->generation, check,
				   &t->info.addr, t->ca_key) < 0) {
		fail_here(h, s, sites, "the check does not fit the checker's record");
		return;
	}
	fd = check_socket(h, t);
	if (fd < 0) {
		snprintf(reason, sizeof(reason), "socket: %s", strerror(errno));
		fail_here(h, s, sites, reason);
		return;
	}
	if (checker_link_run(h->link, &job, fd, t->ca_fd) < 0)
		link_failed(h, NULL);
	close(fd); /* the checker has its own copy now */
}

/* ---- the checker process ---- */

static void start_checker(struct health *h)
{
	struct epoll_event ev = {.events = EPOLLIN};

	if (checker_link_start(h->link) < 0)
		return;
	if (epoll_ctl(h->epoll_fd, EPOLL_CTL_ADD, checker_link_fd(h->link), &ev) < 0) {
		log_error_errno("health: epoll_ctl");
		checker_link_fail(h->link, "cannot be polled");
	}
}

static void read_results(struct health *h, struct sites *sites)
{
	struct checker_result res;
	/* a bound, so a checker spewing records cannot hold the main loop */
	int budget = 2 * HEALTH_MAX_IN_FLIGHT, rc = 0;

	while (budget-- > 0 && (rc = checker_link_recv(h->link, &res)) == 1) {
		struct slot *s = &h->slots[res.slot];

		if (s->busy && s->generation == res.generation) {
			checker_link_healthy(h->link);
			record(h, s, sites, &res);
		} else if (h->stale_allowed) {
			/* a check cancelled by a reload may still answer: not ours */
			h->stale_allowed--;
		} else {
			link_failed(h, "sent a result for no check in flight");
			return;
		}
	}
	if (rc < 0)
		link_failed(h, NULL);
}

/* ---- the module ---- */

struct health *health_open(const struct config *cfg)
{
	struct health *h = calloc(1, sizeof(*h));

	if (!h) {
		log_error("health: out of memory");
		return NULL;
	}
	h->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	h->link = checker_link_new();
	if (h->epoll_fd < 0 || !h->link) {
		log_error_errno("health: epoll_create1");
		health_close(h);
		return NULL;
	}
	h->targets = build_targets(cfg, &h->n_targets);
	if (h->targets)
		h->by_name = index_by_name(h->targets, h->n_targets, &h->by_name_mask);
	if (!h->targets || !h->by_name) {
		log_error("health: out of memory");
		health_close(h);
		return NULL;
	}
	if (h->n_targets)
		log_info("health checks: %zu address%s of %s", h->n_targets,
			 h->n_targets == 1 ? "" : "es", "the configured sites");
	return h;
}

static void cancel_all(struct health *h)
{
	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT; i++) {
		struct slot *s = &h->slots[i];

		if (!s->busy)
			continue;
		if (checker_link_fd(h->link) >= 0 &&
		    checker_link_cancel(h->link, (uint32_t)i, s->generation) < 0) {
			link_failed(h, NULL);
			return;
		}
		h->stale_allowed++;
		slot_release(h, s);
	}
}

void health_close(struct health *h)
{
	if (!h)
		return;
	checker_link_free(h->link);
	free_targets(h->targets, h->n_targets);
	free(h->by_name);
	if (h->epoll_fd >= 0)
		close(h->epoll_fd);
	free(h);
}

static bool same_target(const struct target *a, const struct target *b)
{
	return strcmp(a->info.site, b->info.site) == 0 && a->info.port == b->info.port &&
	       a->info.addr.family == b->info.addr.family &&
	       memcmp(a->info.addr.bytes, b->info.addr.bytes, 16) == 0;
}

int health_update(struct health *h, const struct config *cfg)
{
	size_t n, mask;
	struct target *targets;
	size_t *by_name = NULL;

	if (!h)
		return 0;
	targets = build_targets(cfg, &n);
	if (targets)
		by_name = index_by_name(targets, n, &mask);
	if (!by_name) {
		if (targets)
			free_targets(targets, n);
		log_error("health: out of memory; the checks keep the previous config");
		return -1;
	}
	/* in-flight checks point at the old config: end them, the new
	 * targets are due at once */
	cancel_all(h);
	for (size_t i = 0; i < n; i++) {
		size_t first = site_first(h, targets[i].info.site);

		for (size_t k = first; first != SIZE_MAX && k < first + h->targets[first].count; k++) {
			struct health_target_info keep;

			if (!same_target(&targets[i], &h->targets[k]))
				continue;
			keep = h->targets[k].info;
			keep.site = targets[i].info.site;
			keep.check = targets[i].info.check;
			targets[i].info = keep;
			break;
		}
	}
	free_targets(h->targets, h->n_targets);
	free(h->by_name);
	h->targets = targets;
	h->n_targets = n;
	h->by_name = by_name;
	h->by_name_mask = mask;
	h->next_start = 0;
	return 0;
}

void health_set_combine(struct health *h, health_combine_fn *fn, void *arg)
{
	if (!h)
		return;
	h->combine = fn;
	h->combine_arg = arg;
}

void health_apply(const struct health *h, struct sites *sites)
{
	if (!h)
		return;
	for (size_t i = 0; i < h->n_targets; i += h->targets[i].count ? h->targets[i].count : 1)
		apply_site(h, sites, &h->targets[i], false);
}

int health_fd(const struct health *h)
{
	return h ? h->epoll_fd : -1;
}

int health_timeout_ms(const struct health *h)
{
	uint64_t now = clock_now_ms(), next = UINT64_MAX;
	bool up;

	if (!h || h->n_targets == 0)
		return -1;
	up = checker_link_fd(h->link) >= 0;
	if (!up)
		next = checker_link_next_start_ms(h->link);
	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT; i++)
		if (h->slots[i].busy && h->slots[i].deadline_ms + HEALTH_CHECKER_GRACE_MS < next)
			next = h->slots[i].deadline_ms + HEALTH_CHECKER_GRACE_MS;
	/* with every slot busy, a due check waits for a result */
	if (up && h->in_flight < HEALTH_MAX_IN_FLIGHT)
		for (size_t i = 0; i < h->n_targets; i++)
			if (h->targets[i].probe < 0 && h->targets[i].next_due_ms < next)
				next = h->targets[i].next_due_ms;
	if (next <= now)
		return 0;
	return next - now > MAX_SLEEP_MS ? MAX_SLEEP_MS : (int)(next - now);
}

void health_dispatch(struct health *h, struct sites *sites)
{
	struct epoll_event events[4];
	uint64_t now;

	if (!h)
		return;
	if (h->n_targets == 0) {
		/* a reload took every check away: the checker goes too (a fd
		 * left readable would wake the main loop for ever) */
		if (checker_link_pid(h->link)) {
			checker_link_fail(h->link, NULL);
			link_failed(h, NULL);
		}
		return;
	}
	/* level-triggered: the results are read below whatever it says */
	(void)epoll_wait(h->epoll_fd, events, 4, 0);
	read_results(h, sites);
	now = clock_now_ms();
	for (size_t i = 0; i < HEALTH_MAX_IN_FLIGHT; i++) {
		if (h->slots[i].busy && now >= h->slots[i].deadline_ms + HEALTH_CHECKER_GRACE_MS) {
			link_failed(h, "no result long past a check's deadline: hung");
			break;
		}
	}
	if (checker_link_fd(h->link) < 0 && now >= checker_link_next_start_ms(h->link))
		start_checker(h);
	if (checker_link_fd(h->link) < 0)
		return;
	for (size_t k = 0; k < h->n_targets && h->in_flight < HEALTH_MAX_IN_FLIGHT; k++) {
		size_t i = (h->next_start + k) % h->n_targets;

		if (h->targets[i].probe < 0 && h->targets[i].next_due_ms <= now) {
			probe_start(h, i, sites);
			h->next_start = (i + 1) % h->n_targets;
			if (checker_link_fd(h->link) < 0)
				return;
		}
	}
}

size_t health_count(const struct health *h)
{
	return h ? h->n_targets : 0;
}

const struct health_target_info *health_at(const struct health *h, size_t index)
{
	return h && index < h->n_targets ? &h->targets[index].info : NULL;
}

enum health_state health_site_state(const struct health *h, const char *name)
{
	size_t first = site_first(h, name);

	return first == SIZE_MAX ? HEALTH_UNKNOWN : range_state(h, first, h->targets[first].count);
}

int health_checker_pid(const struct health *h)
{
	return h ? (int)checker_link_pid(h->link) : 0;
}

unsigned health_checker_starts(const struct health *h)
{
	return h ? checker_link_starts(h->link) : 0;
}
