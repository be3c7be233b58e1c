#include "rules.h"
#include "rules_internal.h"
#include "rules_cut.h"

#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gk_build.h"
#include "log.h"
#include "child.h"
#include "rules_sni.h"

static const char nft_template[] = GK_NFT_TEMPLATE;

const char *rules_xt_table(enum config_hook hook)
{
	return hook == CONFIG_HOOK_PREROUTING ? "raw" : "mangle";
}

const char *rules_xt_guard_table(enum config_hook hook)
{
	return hook == CONFIG_HOOK_PREROUTING ? "mangle" : "filter";
}

const char *rules_xt_base_chain(enum config_hook hook)
{
	switch (hook) {
	case CONFIG_HOOK_PREROUTING: return "PREROUTING";
	case CONFIG_HOOK_INPUT: return "INPUT";
	case CONFIG_HOOK_FORWARD: return "FORWARD";
	}
	return "PREROUTING";
}

/* ---- nft ---------------------------------------------------------------- */

int rules_nft_run(const char *text, bool dry_run, bool quiet)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc;

	if (!ctx) {
		log_error("libnftables: cannot create a context");
		return -1;
	}
	nft_ctx_set_dry_run(ctx, dry_run);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	rc = nft_run_cmd_from_buffer(ctx, text);
	if (rc != 0 && !quiet)
		log_error("nft: %s", nft_ctx_get_error_buffer(ctx));
	nft_ctx_free(ctx);
	return rc == 0 ? 0 : -1;
}

static void nft_put_elements(FILE *out, const struct config *cfg, int family)
{
	const char *sep = "elements = { ";
	char addr[64];

	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct config_site *site = &cfg->sites[i];
		for (size_t a = 0; a < site->n_addresses; a++) {
			if (site->addresses[a].family != family)
				continue;
			config_addr_str(&site->addresses[a], addr, sizeof(addr));
			for (size_t p = 0; p < site->n_ports; p++) {
				fprintf(out, "%s%s . %u", sep, addr, site->ports[p]);
				sep = ", ";
			}
		}
	}
	if (sep[0] == ',')
		fputs(" }", out);
}

static void nft_put_queue(FILE *out, const struct config *cfg)
{
	const char *bypass = cfg->queue.fail_open ? "bypass" : "";

	if (cfg->queue.count <= 1)
		fprintf(out, "queue num %u %s", cfg->queue.num, bypass);
	else
		fprintf(out, "queue num %u-%u %s%sfanout", cfg->queue.num,
			cfg->queue.num + cfg->queue.count - 1, bypass, cfg->queue.fail_open ? "," : "");
}

static bool field_is(const char *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

static void nft_put_field(FILE *out, const struct config *cfg, const struct guard_set *guard,
			  const char *name, size_t len)
{
	bool prerouting = cfg->hook == CONFIG_HOOK_PREROUTING;

	if (field_is(name, len, "HOOK"))
		fputs(config_hook_name(cfg->hook), out);
	else if (field_is(name, len, "PRIORITY"))
		fputs(prerouting ? "-300" : "-150", out);
	else if (field_is(name, len, "GUARD_PRIORITY"))
		fputs(prerouting ? "-290" : "-140", out);
	else if (field_is(name, len, "ELEMENTS4"))
		nft_put_elements(out, cfg, AF_INET);
	else if (field_is(name, len, "ELEMENTS6"))
		nft_put_elements(out, cfg, AF_INET6);
	else if (field_is(name, len, "GUARD_DROP4"))
		rules_guard_put_nft_elements(out, guard, AF_INET, SITE_ACTION_DROP);
	else if (field_is(name, len, "GUARD_REJECT4"))
		rules_guard_put_nft_elements(out, guard, AF_INET, SITE_ACTION_REJECT);
	else if (field_is(name, len, "GUARD_DROP6"))
		rules_guard_put_nft_elements(out, guard, AF_INET6, SITE_ACTION_DROP);
	else if (field_is(name, len, "GUARD_REJECT6"))
		rules_guard_put_nft_elements(out, guard, AF_INET6, SITE_ACTION_REJECT);
	else if (field_is(name, len, "GUARD_ALLOW4"))
		rules_guard_put_nft_allows(out, guard, AF_INET);
	else if (field_is(name, len, "GUARD_ALLOW6"))
		rules_guard_put_nft_allows(out, guard, AF_INET6);
	else if (field_is(name, len, "CUT4"))
		rules_cut_put_nft_elements(out, "elements = { ", guard, AF_INET);
	else if (field_is(name, len, "CUT6"))
		rules_cut_put_nft_elements(out, "elements = { ", guard, AF_INET6);
	else if (field_is(name, len, "SNI_CLOSED4"))
		rules_sni_put_nft_closed(out, "elements = { ", guard, AF_INET);
	else if (field_is(name, len, "SNI_CLOSED6"))
		rules_sni_put_nft_closed(out, "elements = { ", guard, AF_INET6);
	else if (field_is(name, len, "QUEUE"))
		nft_put_queue(out, cfg);
	else if (field_is(name, len, "CHECK_MARK"))
		fputs(RULES_CHECK_MARK_TEXT, out);
	else if (field_is(name, len, "DECIDED_MARK"))
		fputs(RULES_DECIDED_MARK_TEXT, out);
	else if (field_is(name, len, "DECIDED_CLEAR"))
		fputs(RULES_DECIDED_CLEAR_TEXT, out);
}

/* Writes LEN bytes of LINE with every {{FIELD}} filled in. */
static void nft_put_line(FILE *out, const struct config *cfg, const struct guard_set *guard,
			 const char *line, size_t len)
{
	const char *end = line + len;

	while (line < end) {
		const char *open = memmem(line, (size_t)(end - line), "{{", 2);
		const char *close = open ? memmem(open, (size_t)(end - open), "}}", 2) : NULL;

		if (!open || !close) {
			fwrite(line, 1, (size_t)(end - line), out);
			return;
		}
		fwrite(line, 1, (size_t)(open - line), out);
		nft_put_field(out, cfg, guard, open + 2, (size_t)(close - open - 2));
		line = close + 2;
	}
}

/* TEXT (taken) with the shared endpoints' sets and chains added inside the
 * table, before its last closing brace (rules_sni.h); TEXT as is when no
 * address is shared. NULL out of memory. */
static char *nft_add_sni(const struct config *cfg, char *text)
{
	struct rules_endpoint *e4 = NULL, *e6 = NULL;
	size_t n4 = rules_sni_endpoints(cfg, AF_INET, &e4), n6 = rules_sni_endpoints(cfg, AF_INET6, &e6);
	char *sni, *end, *joined = NULL;

	free(e4);
	free(e6);
	if (n4 == 0 && n6 == 0)
		return text;
	sni = rules_render_nft_sni(cfg, rules_sni_queue(cfg));
	end = strrchr(text, '}');
	if (sni && end && asprintf(&joined, "%.*s%s}\n", (int)(end - text), text, sni) < 0)
		joined = NULL;
	free(sni);
	free(text);
	return joined;
}

char *rules_render_nft(const struct config *cfg, const struct guard_set *guard)
{
	const char *p = nft_template;
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	/* Declaring then deleting the table in the same transaction replaces a
	 * stale copy atomically and works whether or not one exists. */
	fputs("table inet " RULES_NFT_TABLE "\ndelete table inet " RULES_NFT_TABLE "\n", out);
	while (*p) {
		const char *eol = strchr(p, '\n');
		size_t len = eol ? (size_t)(eol - p + 1) : strlen(p);

		/* the template's comments document it; the kernel needn't see them */
		if (p[0] != '#')
			nft_put_line(out, cfg, guard, p, len);
		p += len;
	}
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return nft_add_sni(cfg, text);
}

/* ---- xt ----------------------------------------------------------------- */

static const char *const tool_dirs[] = {"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"};

bool rules_tool_find(const char *name, char *path, size_t len)
{
	for (size_t i = 0; i < sizeof(tool_dirs) / sizeof(tool_dirs[0]); i++) {
		snprintf(path, len, "%s/%s", tool_dirs[i], name);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

const char *rules_xt_flavour(enum rules_backend backend)
{
	return backend == RULES_BACKEND_XT_LEGACY ? "legacy" : "nft";
}

int rules_xt_exec(enum rules_backend backend, int family, bool restore, const char *input,
		  char *const extra[], bool quiet)
{
	char name[64], path[256];
	char *argv[24];
	int argc = 0, pipefd[2] = {-1, -1};
	pid_t pid;

	snprintf(name, sizeof(name), "%s-%s%s", family == AF_INET6 ? "ip6tables" : "iptables",
		 rules_xt_flavour(backend), restore ? "-restore" : "");
	if (!rules_tool_find(name, path, sizeof(path))) {
		log_error("%s not found: install the iptables package", name);
		return -1;
	}
	argv[argc++] = path;
	/* Bounded: the main thread waits here, and anyone who can open
	 * /run/xtables.lock can hold it. A held lock fails this update like any
	 * refused one (the guard goes stale and is retried). */
	argv[argc++] = "-w";
	argv[argc++] = RULES_XT_LOCK_WAIT_S;
	if (restore)
		argv[argc++] = "--noflush";
	for (size_t i = 0; extra && extra[i]; i++) {
		/* a cut command line would run another command than meant */
		if (argc == sizeof(argv) / sizeof(argv[0]) - 1) {
			log_error("%s: too many arguments", name);
			return -1;
		}
		argv[argc++] = extra[i];
	}
	argv[argc] = NULL;

	if (input && pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid = child_start(path, argv, pipefd[0], -1, quiet);
	if (input)
		close(pipefd[0]);
	if (pid < 0) {
		log_error_errno("cannot run %s", path);
		if (input)
			close(pipefd[1]);
		return -1;
	}
	if (input) {
		size_t left = strlen(input);
		const char *p = input;
		while (left > 0) {
			ssize_t n = write(pipefd[1], p, left);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0)
				break;
			p += n;
			left -= (size_t)n;
		}
		close(pipefd[1]);
	}
	return child_wait(pid);
}

int rules_xt_save(enum rules_backend backend, int family, const char *table, bool counters,
		  void (*line_cb)(void *arg, const char *text), void *arg)
{
	char name[64], path[256], *line = NULL;
	char *argv[] = {path, "-t", (char *)table, counters ? "-c" : NULL, NULL};
	int pipefd[2], status;
	size_t cap = 0;
	FILE *in;
	pid_t pid;

	snprintf(name, sizeof(name), "%s-%s-save", family == AF_INET6 ? "ip6tables" : "iptables",
		 rules_xt_flavour(backend));
	if (!rules_tool_find(name, path, sizeof(path))) {
		log_error("%s not found: install the iptables package", name);
		return -1;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -1;
	pid = child_start(path, argv, -1, pipefd[1], true);
	close(pipefd[1]);
	if (pid < 0) {
		log_error_errno("cannot run %s", path);
		close(pipefd[0]);
		return -1;
	}
	in = fdopen(pipefd[0], "r");
	if (!in) {
		close(pipefd[0]);
	} else {
		while (getline(&line, &cap, in) >= 0)
			line_cb(arg, line);
		free(line);
		fclose(in);
	}
	status = child_wait(pid);
	if (!in || status != 0) {
		log_warn("%s -t %s failed", name, table);
		return -1;
	}
	return 0;
}

static void xt_put_queue(FILE *out, const struct config *cfg)
{
	if (cfg->queue.count <= 1)
		fprintf(out, "--queue-num %u", cfg->queue.num);
	else
		fprintf(out, "--queue-balance %u:%u --queue-cpu-fanout", cfg->queue.num,
			cfg->queue.num + cfg->queue.count - 1);
	if (cfg->queue.fail_open)
		fputs(" --queue-bypass", out);
}

#define XT_JUMP_SPEC "-p tcp -m tcp --tcp-flags SYN,ACK SYN -j " RULES_XT_CHAIN

static void xt_put_queue_table(FILE *out, const struct config *cfg, int family, int old_jumps)
{
	char addr[64];

	/* With --noflush, declaring our chain empties it: the chain's old and
	 * new contents swap in one commit, with no window in between. */
	fprintf(out, "*%s\n:%s - [0:0]\n", rules_xt_table(cfg->hook), RULES_XT_CHAIN);
	for (size_t i = 0; i < cfg->n_sites; i++) {
		const struct config_site *site = &cfg->sites[i];
		for (size_t a = 0; a < site->n_addresses; a++) {
			if (site->addresses[a].family != family)
				continue;
			config_addr_str(&site->addresses[a], addr, sizeof(addr));
			for (size_t p = 0; p < site->n_ports; p++) {
				/* the daemon's own health checks are never queued */
				fprintf(out, "-A %s -d %s -p tcp -m tcp --dport %u -m mark ! --mark %s "
					"-j NFQUEUE ", RULES_XT_CHAIN, addr, site->ports[p],
					RULES_CHECK_MARK_TEXT);
				xt_put_queue(out, cfg);
				fputc('\n', out);
			}
		}
	}
	/* the stale jumps of a dead instance go in the same commit that puts
	 * ours in: exactly one jump, and never none */
	for (int i = 0; i < old_jumps; i++)
		fprintf(out, "-D %s " XT_JUMP_SPEC "\n", rules_xt_base_chain(cfg->hook));
	if (old_jumps >= 0)
		fprintf(out, "-I %s 1 " XT_JUMP_SPEC "\n", rules_xt_base_chain(cfg->hook));
	fputs("COMMIT\n", out);
}

char *rules_render_xt(const struct config *cfg, int family, int old_jumps)
{
	char *text = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	xt_put_queue_table(out, cfg, family, old_jumps);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* The guard's table first: when the queueing rules change over, the guard
 * behind them is already the new one. */
char *rules_render_xt_install(const struct config *cfg, const struct guard_set *guard, int family,
			      unsigned old_queue_jumps, unsigned old_guard_jumps)
{
	char *guard_text = rules_render_xt_guard(cfg, guard, family, true, old_guard_jumps);
	char *text = NULL;
	size_t size = 0;
	FILE *out;

	if (!guard_text)
		return NULL;
	out = open_memstream(&text, &size);
	if (!out) {
		free(guard_text);
		return NULL;
	}
	fputs(guard_text, out);
	free(guard_text);
	xt_put_queue_table(out, cfg, family, (int)old_queue_jumps);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Deletes every jump to CHAIN (with SPEC) from BASE; true if one was there. */
static bool xt_delete_jumps(enum rules_backend backend, int family, const char *table,
			    const char *base, const char *chain, bool queue_spec)
{
	char *queue_args[] = {"-t", (char *)table, "-D", (char *)base, "-p", "tcp", "-m", "tcp",
			      "--tcp-flags", "SYN,ACK", "SYN", "-j", (char *)chain, NULL};
	char *guard_args[] = {"-t", (char *)table, "-D", (char *)base, "-p", "tcp", "-j",
			      (char *)chain, NULL};
	bool found = false;

	/* bounded: a sane table has at most a few stale copies */
	for (int i = 0; i < 64 && rules_xt_exec(backend, family, false, NULL,
						queue_spec ? queue_args : guard_args, true) == 0;
	     i++)
		found = true;
	return found;
}

static void xt_delete_chain(enum rules_backend backend, int family, const char *table,
			    const char *chain)
{
	char *flush[] = {"-t", (char *)table, "-F", (char *)chain, NULL};
	char *del[] = {"-t", (char *)table, "-X", (char *)chain, NULL};

	rules_xt_exec(backend, family, false, NULL, flush, true);
	rules_xt_exec(backend, family, false, NULL, del, true);
}

static const char *const xt_guard_chains[] = {RULES_XT_GUARD_CHAIN, RULES_XT_OFFLINE_CHAIN,
					      RULES_XT_DROP_CHAIN, RULES_XT_REJECT_CHAIN,
					      RULES_XT_FRAGMENT_CHAIN};
#define XT_GUARD_CHAINS (sizeof(xt_guard_chains) / sizeof(xt_guard_chains[0]))

/* Removes our jumps and chains at HOOK (queue and guard). True if a jump
 * was there. */
static bool xt_remove_hook(enum rules_backend backend, int family, enum config_hook hook)
{
	const char *base = rules_xt_base_chain(hook);
	bool found;

	found = xt_delete_jumps(backend, family, rules_xt_table(hook), base, RULES_XT_CHAIN, true);
	found |= xt_delete_jumps(backend, family, rules_xt_guard_table(hook), base,
				 RULES_XT_GUARD_CHAIN, false);
	xt_delete_chain(backend, family, rules_xt_table(hook), RULES_XT_CHAIN);
	/* GUARD first: it jumps to the others, and a referenced chain stays */
	for (size_t i = 0; i < XT_GUARD_CHAINS; i++)
		xt_delete_chain(backend, family, rules_xt_guard_table(hook), xt_guard_chains[i]);
	return found;
}

/* Leftovers of an instance that ran with another hook. Our chains in a
 * table the current hook also uses are kept (their names differ by role:
 * GATEKEEPER only ever queues, the GATEKEEPER_* chains only guard). */
static bool xt_remove_other_hooks(enum rules_backend backend, int family, enum config_hook hook)
{
	static const enum config_hook hooks[] = {CONFIG_HOOK_PREROUTING, CONFIG_HOOK_INPUT,
						 CONFIG_HOOK_FORWARD};
	bool found = false;

	for (size_t i = 0; i < 3; i++) {
		const char *base = rules_xt_base_chain(hooks[i]);
		if (hooks[i] == hook)
			continue;
		found |= xt_delete_jumps(backend, family, rules_xt_table(hooks[i]), base,
					 RULES_XT_CHAIN, true);
		found |= xt_delete_jumps(backend, family, rules_xt_guard_table(hooks[i]), base,
					 RULES_XT_GUARD_CHAIN, false);
	}
	for (size_t i = 0; i < 3; i++) {
		if (hooks[i] == hook)
			continue;
		if (strcmp(rules_xt_table(hooks[i]), rules_xt_table(hook)) != 0)
			xt_delete_chain(backend, family, rules_xt_table(hooks[i]), RULES_XT_CHAIN);
		if (strcmp(rules_xt_guard_table(hooks[i]), rules_xt_guard_table(hook)) != 0)
			for (size_t c = 0; c < XT_GUARD_CHAINS; c++)
				xt_delete_chain(backend, family, rules_xt_guard_table(hooks[i]),
						xt_guard_chains[c]);
	}
	return found;
}

static void xt_scan_cb(void *arg, const char *line)
{
	rules_xt_scan_line(arg, line);
}

static void xt_guard_scan_cb(void *arg, const char *line)
{
	rules_xt_guard_scan_line(arg, line);
}

/* What is in the kernel now at CFG's hook for FAMILY. 0 or -1. */
static int xt_scan_hook(enum rules_backend backend, const struct config *cfg, int family,
			struct rules_xt_scan *queue, struct rules_xt_guard_scan *guard)
{
	*queue = (struct rules_xt_scan){.base_chain = rules_xt_base_chain(cfg->hook)};
	*guard = (struct rules_xt_guard_scan){.base_chain = rules_xt_base_chain(cfg->hook)};
	if (rules_xt_save(backend, family, rules_xt_table(cfg->hook), false, xt_scan_cb, queue) < 0)
		return -1;
	return rules_xt_save(backend, family, rules_xt_guard_table(cfg->hook), true,
			     xt_guard_scan_cb, guard);
}

static int xt_restore(enum rules_backend backend, int family, const char *text)
{
	int rc = rules_xt_exec(backend, family, true, text, NULL, false);

	if (rc != 0) {
		log_error("%stables-%s-restore failed (exit %d)", family == AF_INET6 ? "ip6" : "ip",
			  rules_xt_flavour(backend), rc);
		return -1;
	}
	return 0;
}

static const int xt_families[] = {AF_INET, AF_INET6};

static int xt_install(enum rules_backend backend, const struct config *cfg,
		      const struct guard_set *guard)
{
	bool stale = false;

	for (size_t i = 0; i < 2; i++) {
		struct rules_xt_scan queue;
		struct rules_xt_guard_scan g;
		char *text;
		int rc;

		if (xt_scan_hook(backend, cfg, xt_families[i], &queue, &g) < 0)
			return -1;
		stale |= queue.jumps || g.jumps;
		text = rules_render_xt_install(cfg, guard, xt_families[i], (unsigned)queue.jumps,
					       (unsigned)g.jumps);
		if (!text)
			return -1;
		rc = xt_restore(backend, xt_families[i], text);
		free(text);
		if (rc < 0)
			return -1;
	}
	for (size_t i = 0; i < 2; i++)
		stale |= xt_remove_other_hooks(backend, xt_families[i], cfg->hook);
	if (rules_xt_cut_apply(backend, guard, true) < 0)
		return -1;
	if (rules_xt_sni_apply(backend, cfg, guard, rules_sni_queue(cfg)) < 0)
		return -1;
	if (stale)
		log_warn("replaced the %s rules left by an earlier instance",
			 rules_backend_name(backend));
	return 0;
}

/* A reload: the queueing chain and the offline endpoints, refilled in one
 * restore per family; the jumps and the guard's counters stay. */
static int xt_update(enum rules_backend backend, const struct config *cfg,
		     const struct guard_set *guard)
{
	for (size_t i = 0; i < 2; i++) {
		char *queue_text = rules_render_xt(cfg, xt_families[i], -1);
		char *guard_text = rules_render_xt_guard(cfg, guard, xt_families[i], false, 0);
		char *text = NULL;
		int rc = -1;

		if (queue_text && guard_text && asprintf(&text, "%s%s", guard_text, queue_text) >= 0)
			rc = xt_restore(backend, xt_families[i], text);
		free(text);
		free(queue_text);
		free(guard_text);
		if (rc < 0)
			return -1;
	}
	if (rules_xt_sni_apply(backend, cfg, guard, rules_sni_queue(cfg)) < 0)
		return -1;
	return rules_xt_cut_apply(backend, guard, false);
}

/* One restore per family after a change of state: the guard's chain, the
 * shared addresses' closed chain and the cut's endpoints, each a table block
 * of its own, in one exec: a toggle costs the main thread two runs of the
 * tool, not six. */
static int xt_guard_update(enum rules_backend backend, const struct config *cfg,
			   const struct guard_set *guard)
{
	for (size_t i = 0; i < 2; i++) {
		char *guard_text = rules_render_xt_guard(cfg, guard, xt_families[i], false, 0);
		char *sni_text = rules_render_xt_sni_guard(cfg, guard, xt_families[i]);
		char *cut_text = rules_render_xt_cut(guard, xt_families[i], false, NULL);
		char *text = NULL;
		int rc = -1;

		if (guard_text && sni_text && cut_text &&
		    asprintf(&text, "%s%s%s", guard_text, sni_text, cut_text) >= 0)
			rc = xt_restore(backend, xt_families[i], text);
		else
			text = NULL;
		free(text);
		free(guard_text);
		free(sni_text);
		free(cut_text);
		if (rc < 0)
			return -1;
	}
	return 0;
}

static int xt_guard_read(enum rules_backend backend, const struct config *cfg,
			 struct guard_counters *out)
{
	bool found = false;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < 2; i++) {
		struct rules_xt_guard_scan g = {.base_chain = rules_xt_base_chain(cfg->hook)};

		if (rules_xt_save(backend, xt_families[i], rules_xt_guard_table(cfg->hook), true,
				  xt_guard_scan_cb, &g) < 0)
			return -1;
		found |= g.drop_rules || g.reject_rules || g.fragment_rules;
		guard_counters_add(out, &g.counters);
	}
	return found ? 1 : 0;
}

/* ---- dispatch ------------------------------------------------------------- */

const char *rules_backend_name(enum rules_backend backend)
{
	switch (backend) {
	case RULES_BACKEND_NFT: return "nft";
	case RULES_BACKEND_XT_NFT: return "xt (iptables-nft)";
	case RULES_BACKEND_XT_LEGACY: return "xt (iptables-legacy)";
	case RULES_BACKEND_EXTERNAL: return "external";
	}
	return "?";
}

static int nft_apply(const struct config *cfg, const struct guard_set *guard)
{
	char *text = rules_render_nft(cfg, guard);
	int rc;

	if (!text)
		return -1;
	rc = rules_nft_run(text, false, false);
	free(text);
	return rc;
}

int rules_install(enum rules_backend backend, const struct config *cfg,
		  const struct guard_set *guard)
{
	switch (backend) {
	case RULES_BACKEND_NFT:
		return nft_apply(cfg, guard);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		if (xt_install(backend, cfg, guard) < 0) {
			/* nothing half-installed is left behind */
			for (size_t i = 0; i < 2; i++)
				xt_remove_hook(backend, xt_families[i], cfg->hook);
			rules_xt_cut_remove(backend);
			rules_xt_sni_remove(backend, cfg);
			return -1;
		}
		return 0;
	case RULES_BACKEND_EXTERNAL:
		return 0;
	}
	return -1;
}

int rules_update(enum rules_backend backend, const struct config *cfg,
		 const struct guard_set *guard)
{
	switch (backend) {
	case RULES_BACKEND_NFT:
		return nft_apply(cfg, guard);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		return xt_update(backend, cfg, guard);
	case RULES_BACKEND_EXTERNAL:
		return 0;
	}
	return -1;
}

int rules_guard_update(enum rules_backend backend, const struct config *cfg,
		       const struct guard_set *guard)
{
	char *text;
	int rc;

	switch (backend) {
	case RULES_BACKEND_NFT:
		text = rules_render_nft_guard(guard);
		if (!text)
			return -1;
		rc = rules_nft_run(text, false, false);
		free(text);
		return rc;
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		return xt_guard_update(backend, cfg, guard);
	case RULES_BACKEND_EXTERNAL:
		return 0;
	}
	return -1;
}

static const char *const nft_guard_counters[] = {"guard_syn_dropped", "guard_syn_rejected",
						 "guard_fragments"};

/* The guard's three named counters in an nft LISTING into OUT; false
 * (OUT zero) when one is missing: a table without a guard. */
static bool nft_parse_guard_counters(const char *listing, struct guard_counters *out)
{
	long long v[3];

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < 3; i++)
		if ((v[i] = rules_nft_counter_packets(listing, nft_guard_counters[i])) < 0)
			return false;
	out->syn_dropped = (uint64_t)v[0];
	out->syn_rejected = (uint64_t)v[1];
	out->fragments = (uint64_t)v[2];
	return true;
}

static int nft_guard_read(struct guard_counters *out)
{
	char *listing = rules_nft_output("list counters table inet " RULES_NFT_TABLE, false, NULL, 0);
	bool found = listing && nft_parse_guard_counters(listing, out);

	/* no table (nothing installed), or an older version's without a guard */
	if (!found)
		memset(out, 0, sizeof(*out));
	free(listing);
	return found ? 1 : 0;
}

int rules_guard_read(enum rules_backend backend, const struct config *cfg,
		     struct guard_counters *out)
{
	memset(out, 0, sizeof(*out));
	switch (backend) {
	case RULES_BACKEND_NFT:
		return nft_guard_read(out);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		return xt_guard_read(backend, cfg, out);
	case RULES_BACKEND_EXTERNAL:
		return 0;
	}
	return -1;
}

int rules_remove(enum rules_backend backend, const struct config *cfg)
{
	switch (backend) {
	case RULES_BACKEND_NFT:
		return rules_nft_run("delete table inet " RULES_NFT_TABLE, false, false);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		for (size_t i = 0; i < 2; i++)
			xt_remove_hook(backend, xt_families[i], cfg->hook);
		rules_xt_cut_remove(backend);
		rules_xt_sni_remove(backend, cfg);
		return 0;
	case RULES_BACKEND_EXTERNAL:
		return 0;
	}
	return -1;
}

/* ---- the watchdog's check --------------------------------------------------- */

static size_t count_pairs(const struct config *cfg, int family)
{
	size_t n = 0;

	for (size_t i = 0; i < cfg->n_sites; i++)
		for (size_t a = 0; a < cfg->sites[i].n_addresses; a++)
			n += cfg->sites[i].addresses[a].family == family ? cfg->sites[i].n_ports : 0;
	return n;
}

static bool starts_with(const char *s, const char *prefix)
{
	return strncmp(s, prefix, strlen(prefix)) == 0;
}

void rules_xt_scan_line(struct rules_xt_scan *scan, const char *line)
{
	char base[64];

	if (starts_with(line, ":" RULES_XT_CHAIN " ")) {
		scan->chain_declared = true;
		return;
	}
	if (starts_with(line, "-A " RULES_XT_CHAIN " ")) {
		if (strstr(line, " -j NFQUEUE"))
			scan->queue_rules++;
		else
			scan->other_rules++;
		return;
	}
	snprintf(base, sizeof(base), "-A %s ", scan->base_chain);
	/* the jump ends its line: "-j GATEKEEPER" exactly, not a longer name */
	if (starts_with(line, base)) {
		size_t len = strcspn(line, "\r\n");
		static const char jump[] = " -j " RULES_XT_CHAIN;
		if (len >= sizeof(jump) - 1 &&
		    memcmp(line + len - (sizeof(jump) - 1), jump, sizeof(jump) - 1) == 0)
			scan->jumps++;
	}
}

int rules_xt_scan_verdict(const struct rules_xt_scan *scan, size_t want, char *why, size_t why_len)
{
	if (!scan->chain_declared)
		snprintf(why, why_len, "chain %s is gone", RULES_XT_CHAIN);
	else if (scan->jumps != 1)
		snprintf(why, why_len, "%zu jumps to %s from %s, want 1", scan->jumps, RULES_XT_CHAIN,
			 scan->base_chain);
	else if (scan->queue_rules != want || scan->other_rules)
		snprintf(why, why_len, "chain %s has %zu queueing rules (want %zu) and %zu others",
			 RULES_XT_CHAIN, scan->queue_rules, want, scan->other_rules);
	else
		return 0;
	return -1;
}

long rules_nft_count_elements(const char *set)
{
	const char *end = strstr(set, "\n\t}");
	const char *elements = strstr(set, "elements = {");
	long n = 1;

	if (!elements || (end && elements > end))
		return 0;
	for (const char *p = elements; *p && *p != '}'; p++)
		n += *p == ',';
	return n;
}

/* Whether a line of LISTING holds both NEEDLE and "queue". */
static bool nft_has_queue_rule(const char *listing, const char *needle)
{
	for (const char *p = strstr(listing, needle); p; p = strstr(p + 1, needle)) {
		const char *bol = p, *eol = strchr(p, '\n');
		while (bol > listing && bol[-1] != '\n')
			bol--;
		if (memmem(bol, eol ? (size_t)(eol - bol) : strlen(bol), " queue ", 7))
			return true;
	}
	return false;
}

long rules_nft_chain_rules(const char *chain)
{
	const char *end = strstr(chain, "\n\t}");
	long n = 0;

	if (!end)
		return -1;
	/* every rule is a line of its own below the "type filter hook" line */
	for (const char *p = strstr(chain, "policy accept;"); p && p < end; p = strchr(p + 1, '\n'))
		n++;
	return n - 1;
}

/* Rules in our chain guard: two pass-throughs, two allow-lists and eight
 * guard rules. */
static long nft_guard_rules(const char *listing)
{
	const char *chain = strstr(listing, "chain guard {");

	return chain ? rules_nft_chain_rules(chain) : -1;
}

long rules_nft_guard_elements(const char *listing)
{
	static const char *const sets[] = {"set guard_drop4 {", "set guard_reject4 {",
					   "set guard_drop6 {", "set guard_reject6 {",
					   "set guard_allow4 {", "set guard_allow6 {"};
	long n = 0;

	for (size_t i = 0; i < sizeof(sets) / sizeof(sets[0]); i++) {
		const char *set = strstr(listing, sets[i]);
		if (!set)
			return -1;
		n += rules_nft_count_elements(set);
	}
	return n;
}

int rules_nft_listing_check(const char *listing, const char *hook, long want4, long want6,
			    char *why, size_t why_len)
{
	const char *set4 = strstr(listing, "set managed4 {");
	const char *set6 = strstr(listing, "set managed6 {");
	char base[64];
	long n4, n6;

	snprintf(base, sizeof(base), "type filter hook %s ", hook);
	if (!starts_with(listing, "table inet " RULES_NFT_TABLE " {"))
		snprintf(why, why_len, "table inet %s is gone", RULES_NFT_TABLE);
	else if (!set4 || !set6)
		snprintf(why, why_len, "set managed%s is gone", set4 ? "6" : "4");
	else if (!strstr(listing, base))
		snprintf(why, why_len, "no base chain on hook %s", hook);
	else if (!nft_has_queue_rule(listing, "@managed4") || !nft_has_queue_rule(listing, "@managed6"))
		snprintf(why, why_len, "a queueing rule is gone");
	else if (!strstr(listing, "chain guard {") || nft_guard_rules(listing) != 12)
		snprintf(why, why_len, "the guard chain is gone or damaged");
	else if (want4 >= 0 && (n4 = rules_nft_count_elements(set4)) != want4)
		snprintf(why, why_len, "set managed4 has %ld elements, want %ld", n4, want4);
	else if (want6 >= 0 && (n6 = rules_nft_count_elements(set6)) != want6)
		snprintf(why, why_len, "set managed6 has %ld elements, want %ld", n6, want6);
	else
		return 0;
	return -1;
}

char *rules_nft_output(const char *cmd, bool terse, char *why, size_t why_len)
{
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	char *text = NULL;

	if (!ctx) {
		log_error("libnftables: cannot create a context");
		if (why)
			snprintf(why, why_len, "libnftables: cannot create a context");
		return NULL;
	}
	if (terse)
		nft_ctx_output_set_flags(ctx, nft_ctx_output_get_flags(ctx) | NFT_CTX_OUTPUT_TERSE);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, cmd) == 0)
		text = strdup(nft_ctx_get_output_buffer(ctx));
	else if (why)
		snprintf(why, why_len, "%s", nft_ctx_get_error_buffer(ctx));
	nft_ctx_free(ctx);
	return text;
}

static long guard_count(const struct guard_set *guard, int family)
{
	long n = 0;

	for (size_t i = 0; guard && i < guard->count; i++)
		n += guard->endpoints[i].addr.family == family;
	return n;
}

static size_t guard_allow_count(const struct guard_set *guard, int family)
{
	size_t n = 0;

	for (size_t i = 0; guard && i < guard->n_allows; i++)
		n += guard->allows[i].addr.family == family;
	return n;
}

/* The set's elements: each pair once, however many sites share it. */
static size_t count_set_pairs(const struct config *cfg, int family)
{
	struct rules_endpoint *e = NULL;
	size_t shared = rules_sni_endpoints(cfg, family, &e), n = count_pairs(cfg, family);

	/* a shared pair is counted once per site that claims it */
	for (size_t i = 0; shared != (size_t)-1 && i < shared; i++)
		for (size_t s = 0, first = 1; s < cfg->n_sites; s++)
			for (size_t a = 0; a < cfg->sites[s].n_addresses; a++)
				for (size_t p = 0; p < cfg->sites[s].n_ports; p++)
					if (cfg->sites[s].ports[p] == e[i].port &&
					    cfg->sites[s].addresses[a].family == family &&
					    memcmp(cfg->sites[s].addresses[a].bytes, e[i].addr.bytes, 16) == 0) {
						n -= first ? 0 : 1;
						first = 0;
					}
	free(e);
	return n;
}

static int nft_check(const struct config *cfg, const struct guard_set *guard,
		     struct guard_counters *seen, char *why, size_t why_len)
{
	size_t n4 = count_set_pairs(cfg, AF_INET), n6 = count_set_pairs(cfg, AF_INET6);
	bool terse = n4 + n6 > RULES_CHECK_MAX_ELEMENTS;
	char *listing = rules_nft_output("list table inet " RULES_NFT_TABLE, terse, NULL, 0);
	int rc;

	if (!listing) {
		/* "No such file or directory": the table is gone */
		snprintf(why, why_len, "table inet %s is gone", RULES_NFT_TABLE);
		return 0;
	}
	rc = rules_nft_listing_check(listing, config_hook_name(cfg->hook), terse ? -1 : (long)n4,
				     terse ? -1 : (long)n6, why, why_len) == 0;
	if (rc && seen)
		nft_parse_guard_counters(listing, seen);
	if (rc && !terse) {
		long want = guard_count(guard, AF_INET) + guard_count(guard, AF_INET6) +
			    (long)(guard ? guard->n_allows : 0);
		long have = rules_nft_guard_elements(listing);
		if (have != want) {
			snprintf(why, why_len, "the guard sets have %ld elements, want %ld", have, want);
			rc = 0;
		}
	}
	if (rc && rules_sni_nft_listing_check(listing, cfg, guard, !terse, why, why_len) < 0)
		rc = 0;
	free(listing);
	return rc;
}

static int xt_check(enum rules_backend backend, const struct config *cfg,
		    const struct guard_set *guard, struct guard_counters *seen, char *why,
		    size_t why_len)
{
	struct guard_counters sum = {0};
	int sni;

	for (size_t i = 0; i < 2; i++) {
		struct rules_xt_scan scan;
		struct rules_xt_guard_scan g;
		char reason[192];
		int family = xt_families[i];
		const char *table = rules_xt_table(cfg->hook);

		if (xt_scan_hook(backend, cfg, family, &scan, &g) < 0)
			return -1;
		if (rules_xt_scan_verdict(&scan, count_pairs(cfg, family), reason, sizeof(reason)) < 0 ||
		    (table = rules_xt_guard_table(cfg->hook),
		     rules_xt_guard_scan_verdict(&g, (size_t)guard_count(guard, family),
						 guard_allow_count(guard, family), reason,
						 sizeof(reason)) < 0)) {
			snprintf(why, why_len, "IPv%d, table %s: %s", family == AF_INET6 ? 6 : 4, table,
				 reason);
			return 0;
		}
		guard_counters_add(&sum, &g.counters);
	}
	sni = rules_xt_sni_check(backend, cfg, guard, why, why_len);
	if (sni <= 0)
		return sni;
	if (seen)
		*seen = sum;
	return 1;
}

int rules_check(enum rules_backend backend, const struct config *cfg,
		const struct guard_set *guard, struct guard_counters *seen, char *why,
		size_t why_len)
{
	why[0] = '\0';
	switch (backend) {
	case RULES_BACKEND_NFT:
		return nft_check(cfg, guard, seen, why, why_len);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		return xt_check(backend, cfg, guard, seen, why, why_len);
	case RULES_BACKEND_EXTERNAL:
		return 1;
	}
	return -1;
}
