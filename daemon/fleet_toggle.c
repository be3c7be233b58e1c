/* fleet_toggle: an operator's toggle for the whole fleet, and `fleet init`:
 * written to etcd first, answered once etcd committed it and this box's
 * watch applied it (with --wait: once every live box says it has). */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "clock.h"
#include "engine.h"
#include "etcd_client.h"
#include "fleet_internal.h"
#include "log.h"
#include "protocol.h"
#include "sites.h"
#include "state.h"

static int64_t now_s(void)
{
	return clock_wall_ms() / 1000;
}

static void answer(struct fleet *f, struct fleet_pending *p, const char *code,
		   const struct strbuf *body)
{
	uint64_t ticket = p->ticket;

	if (p->request)
		etcd_client_cancel(f->client, p->request);
	memset(p, 0, sizeof(*p));
	f->reply(f->reply_arg, ticket, code, body);
}

__attribute__((format(printf, 4, 5))) static void answer_text(struct fleet *f,
							       struct fleet_pending *p,
							       const char *code, const char *fmt, ...)
{
	struct strbuf b;
	va_list ap;
	char text[1024];

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	strbuf_init(&b, 0);
	strbuf_puts(&b, text);
	answer(f, p, code, &b);
	strbuf_free(&b);
}

static struct fleet_pending *pending_new(struct fleet *f, uint64_t ticket, struct strbuf *b,
					 const char **code)
{
	for (size_t i = 0; i < FLEET_MAX_PENDING; i++) {
		if (f->pending[i].used)
			continue;
		memset(&f->pending[i], 0, sizeof(f->pending[i]));
		f->pending[i].used = true;
		f->pending[i].fleet = f;
		f->pending[i].ticket = ticket;
		return &f->pending[i];
	}
	strbuf_printf(b, "fleet: %d toggles are already waiting on etcd; try again\n",
		      FLEET_MAX_PENDING);
	*code = PROTOCOL_ERR_BUSY;
	return NULL;
}

/* Refused now when this box cannot write to the fleet: the operator gets
 * why, and the lever (a local pin). */
static int refuse_unless_up(struct fleet *f, struct strbuf *b, const char **code)
{
	char when[32];

	if (f->closing) {
		strbuf_puts(b, "gatekeeperd is stopping: nothing changed\n");
		*code = PROTOCOL_ERR_FLEET;
		return -1;
	}
	if (f->phase == FLEET_UP && f->initialised)
		return 0;
	f->toggles_refused++;
	*code = PROTOCOL_ERR_FLEET;
	if (f->phase != FLEET_UP)
		strbuf_printf(b, "fleet %s: etcd is unreachable since %s (%s): nothing changed.\n"
			      "--local pins the change on this box only (kept across restarts, shown "
			      "as diverging from the fleet, ended with `reset SITE --local`)\n",
			      f->name, state_time_text(f->stale_since, when, sizeof(when)),
			      f->last_error);
	else
		strbuf_printf(b, "fleet %s: not initialised on etcd (no %sschema key): nothing "
			      "changed; `gatekeeperctl fleet init` creates it\n", f->name, f->p);
	return -1;
}

static void on_written(void *arg, const struct etcd_result *r);

int fleet_toggle(struct fleet *f, const struct fleet_toggle *t, uint64_t ticket,
		 struct strbuf *b, const char **code)
{
	struct fleet_value v = {.state = t->state, .action = t->action};
	struct fleet_pending *p;
	char key[384], *value = NULL;
	uint64_t wait_ms;

	if (refuse_unless_up(f, b, code) < 0 || !(p = pending_new(f, ticket, b, code)))
		return -1;
	snprintf(key, sizeof(key), "%ssite/%s", f->p, t->site);
	snprintf(p->site, sizeof(p->site), "%s", t->site);
	p->wait = t->wait;
	wait_ms = f->cfg.request_timeout_ms + (t->wait ? FLEET_WAIT_MS : f->cfg.request_timeout_ms);
	p->deadline_ms = clock_now_ms() + wait_ms;
	if (t->reset) {
		p->reset = true;
		snprintf(p->what, sizeof(p->what), "reset (back to each box's config or check)");
		p->request = etcd_client_delete(f->client, key, strlen(key), false, on_written, p);
	} else {
		v.allow = t->opts->allow;
		v.until = t->opts->until;
		v.cut = t->opts->cut && t->state == SITE_OFFLINE;
		snprintf(v.by, sizeof(v.by), "%s", t->by);
		snprintf(v.box, sizeof(v.box), "%s", f->box);
		v.at = now_s();
		snprintf(p->what, sizeof(p->what), "%s (%s)%s", config_state_name(t->state),
			 config_action_name(t->action), v.cut ? " with cut" : "");
		value = fleet_value_encode(&v);
		if (value)
			p->request = etcd_client_put(f->client, key, strlen(key), value, strlen(value), 0,
						     on_written, p);
		free(value);
	}
	if (!p->request) {
		memset(p, 0, sizeof(*p));
		strbuf_puts(b, "fleet: out of memory; nothing changed\n");
		*code = PROTOCOL_ERR_FAILED;
		return -1;
	}
	log_info("site %s: %s sent to the fleet by %s", t->site, p->what, t->by);
	return 0;
}

static void on_written(void *arg, const struct etcd_result *r)
{
	struct fleet_pending *p = arg;
	struct fleet *f = p->fleet;
	char why[320];

	p->request = 0;
	if (r->kind == ETCD_RESULT_OK && p->reset && r->reply->deleted == 0) {
		/* nothing to delete: no revision for any box to reach */
		answer_text(f, p, NULL, "%s: fleet %s holds no override for it: nothing changed\n",
			    p->site, f->name);
		return;
	}
	if (r->kind == ETCD_RESULT_OK) {
		p->revision = r->reply->header.revision;
		f->toggles_committed++;
		log_info("site %s: %s committed to the fleet at revision %" PRId64, p->site, p->what,
			 p->revision);
		fleet_check_pending(f);
		return;
	}
	f->toggles_failed++;
	if (r->kind == ETCD_RESULT_ETCD_ERROR)
		snprintf(why, sizeof(why), "etcd refused it: %s (code %d)", r->error.message,
			 r->error.grpc_code);
	else
		snprintf(why, sizeof(why), "%s%s%s", etcd_result_kind_name(r->kind),
			 r->detail[0] ? ": " : "", r->detail);
	if (r->kind == ETCD_RESULT_ETCD_ERROR)
		answer_text(f, p, PROTOCOL_ERR_FLEET, "fleet %s: %s %s not committed: %s\n", f->name,
			    p->site, p->what, why);
	else
		answer_text(f, p, PROTOCOL_ERR_FLEET,
			    "fleet %s: %s %s: no answer from etcd (%s): it may or may not have been "
			    "committed; `gatekeeperctl status` shows the fleet's state once this box "
			    "is connected again\n", f->name, p->site, p->what, why);
}

/* Live boxes that have applied REVISION, and their names; *N_LIVE all. */
static size_t boxes_applied(const struct fleet *f, int64_t revision, size_t *n_live,
			    struct strbuf *missing)
{
	size_t n = 0;

	*n_live = f->n_boxes;
	for (size_t i = 0; i < f->n_boxes; i++) {
		const struct fleet_box *box = &f->boxes[i];
		bool done = strcmp(box->name, f->box) == 0 ? f->cursor >= revision
							      : box->value.applied >= revision;

		if (done)
			n++;
		else if (missing)
			strbuf_printf(missing, " %s", box->name);
	}
	return n;
}

static void committed_reply(struct fleet *f, struct fleet_pending *p, bool late)
{
	struct site *site = sites_find(engine_sites(f->engine), p->site);
	struct strbuf b, missing;
	size_t n_live, n_done;
	bool here = f->cursor >= p->revision;
	const char *code = NULL;

	strbuf_init(&b, 0);
	strbuf_init(&missing, 0);
	strbuf_printf(&b, "%s: %s committed to fleet %s at revision %" PRId64 "\n", p->site, p->what,
		      f->name, p->revision);
	strbuf_printf(&b, here ? "applied here (box %s)\n"
			       : "not yet applied here (box %s): the watch is behind\n", f->box);
	if (p->wait) {
		n_done = boxes_applied(f, p->revision, &n_live, &missing);
		strbuf_printf(&b, "applied on %zu of %zu live boxes", n_done, n_live);
		if (n_done < n_live) {
			strbuf_printf(&b, " within %d ms; not yet:%s", FLEET_WAIT_MS,
				      missing.data ? missing.data : "");
			code = PROTOCOL_ERR_FLEET;
		}
		strbuf_puts(&b, "\n");
	}
	if (site && site_source(site) == SITE_SOURCE_RUNTIME)
		strbuf_printf(&b, "note: this box pins %s locally (%s): the fleet's state applies here "
			      "once `gatekeeperctl reset %s --local`\n", p->site,
			      config_state_name(site_state(site)), p->site);
	(void)late;
	answer(f, p, code, &b);
	strbuf_free(&missing);
	strbuf_free(&b);
}

void fleet_check_pending(struct fleet *f)
{
	uint64_t now = clock_now_ms();

	for (size_t i = 0; i < FLEET_MAX_PENDING; i++) {
		struct fleet_pending *p = &f->pending[i];
		size_t n_live;

		if (!p->used)
			continue;
		if (p->init) {
			if (now >= p->deadline_ms)
				answer_text(f, p, PROTOCOL_ERR_FLEET, "fleet %s: init: no answer from "
					    "etcd in time\n", f->name);
			continue;
		}
		if (p->revision && f->cursor >= p->revision &&
		    (!p->wait || boxes_applied(f, p->revision, &n_live, NULL) == n_live))
			committed_reply(f, p, false);
		else if (now < p->deadline_ms)
			continue;
		else if (p->revision)
			committed_reply(f, p, true);
		else
			answer_text(f, p, PROTOCOL_ERR_FLEET,
				    "fleet %s: %s %s: no answer from etcd within %u ms: it may or may "
				    "not have been committed; `gatekeeperctl status` shows the fleet's "
				    "state once this box is connected again\n", f->name, p->site,
				    p->what, f->cfg.request_timeout_ms);
	}
}

void fleet_fail_pending(struct fleet *f, const char *reason)
{
	for (size_t i = 0; i < FLEET_MAX_PENDING; i++)
		if (f->pending[i].used)
			answer_text(f, &f->pending[i], PROTOCOL_ERR_FLEET, "fleet %s: %s\n", f->name,
				    reason);
}

/* ---- fleet init ---- */

static void on_init(void *arg, const struct etcd_result *r)
{
	struct fleet_pending *p = arg;
	struct fleet *f = p->fleet;
	char why[320];

	p->request = 0;
	if (r->kind != ETCD_RESULT_OK) {
		if (r->kind == ETCD_RESULT_ETCD_ERROR)
			snprintf(why, sizeof(why), "%s (code %d)", r->error.message, r->error.grpc_code);
		else
			snprintf(why, sizeof(why), "%s %s", etcd_result_kind_name(r->kind), r->detail);
		answer_text(f, p, PROTOCOL_ERR_FLEET, "fleet %s: init failed: %s\n", f->name, why);
		return;
	}
	f->writes++;
	if (r->reply->succeeded)
		log_info("fleet %s: initialised (%sschema, %s)", f->name, f->p, p->what);
	answer_text(f, p, NULL, r->reply->succeeded ? "fleet %s: initialised (%sschema, id %s)\n"
						    : "fleet %s: already initialised (%sschema exists; "
						      "nothing changed)%.0s\n",
		    f->name, f->p, p->what);
}

int fleet_init(struct fleet *f, const char *by, uint64_t ticket, struct strbuf *b,
	       const char **code)
{
	struct fleet_schema schema = {.version = FLEET_SCHEMA_VERSION, .at = now_s()};
	unsigned char rnd[FLEET_SCHEMA_ID_LEN / 2];
	struct fleet_pending *p;
	char key[300], *value;

	if (f->phase != FLEET_UP) {
		strbuf_printf(b, "fleet %s: etcd is unreachable (%s): nothing changed\n", f->name,
			      f->last_error);
		*code = PROTOCOL_ERR_FLEET;
		return -1;
	}
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
		strbuf_puts(b, "fleet: no random bytes for the schema id\n");
		*code = PROTOCOL_ERR_FAILED;
		return -1;
	}
	for (size_t i = 0; i < sizeof(rnd); i++)
		snprintf(schema.id + 2 * i, 3, "%02x", rnd[i]);
	snprintf(schema.by, sizeof(schema.by), "%s on %s", by, f->box);
	if (!(p = pending_new(f, ticket, b, code)))
		return -1;
	p->init = true;
	p->deadline_ms = clock_now_ms() + 2 * f->cfg.request_timeout_ms;
	snprintf(p->what, sizeof(p->what), "%s", schema.id);
	snprintf(key, sizeof(key), "%sschema", f->p);
	value = fleet_schema_encode(&schema);
	p->request = value ? etcd_client_txn_create(f->client, key, strlen(key), value,
						    strlen(value), 0, on_init, p)
			   : 0;
	free(value);
	if (!p->request) {
		memset(p, 0, sizeof(*p));
		strbuf_puts(b, "fleet: out of memory\n");
		*code = PROTOCOL_ERR_FAILED;
		return -1;
	}
	return 0;
}
