#include "rules.h"

#include <errno.h>
#include <fcntl.h>
#include <nftables/libnftables.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "gk_build.h"
#include "log.h"
#include "queue.h"
#include "child.h"
#include "xt_compat.h"

static const char nft_template[] = GK_NFT_TEMPLATE;

/* The xtables base chain for each hook: raw PREROUTING runs before
 * conntrack, mangle INPUT/FORWARD before the filter table's verdicts. */
static const char *xt_table(enum config_hook hook)
{
	return hook == CONFIG_HOOK_PREROUTING ? "raw" : "mangle";
}

static const char *xt_base_chain(enum config_hook hook)
{
	switch (hook) {
	case CONFIG_HOOK_PREROUTING: return "PREROUTING";
	case CONFIG_HOOK_INPUT: return "INPUT";
	case CONFIG_HOOK_FORWARD: return "FORWARD";
	}
	return "PREROUTING";
}

/* ---- nft ---------------------------------------------------------------- */

static int nft_run(const char *text, bool dry_run, bool quiet)
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

static void nft_put_field(FILE *out, const struct config *cfg, const char *name, size_t len)
{
	if (len == 4 && memcmp(name, "HOOK", 4) == 0)
		fputs(config_hook_name(cfg->hook), out);
	else if (len == 8 && memcmp(name, "PRIORITY", 8) == 0)
		fputs(cfg->hook == CONFIG_HOOK_PREROUTING ? "-300" : "-150", out);
	else if (len == 9 && memcmp(name, "ELEMENTS4", 9) == 0)
		nft_put_elements(out, cfg, AF_INET);
	else if (len == 9 && memcmp(name, "ELEMENTS6", 9) == 0)
		nft_put_elements(out, cfg, AF_INET6);
	else if (len == 5 && memcmp(name, "QUEUE", 5) == 0)
		nft_put_queue(out, cfg);
	else if (len == 10 && memcmp(name, "CHECK_MARK", 10) == 0)
		fputs(RULES_CHECK_MARK_TEXT, out);
}

/* Writes LEN bytes of LINE with every {{FIELD}} filled in. */
static void nft_put_line(FILE *out, const struct config *cfg, const char *line, size_t len)
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
		nft_put_field(out, cfg, open + 2, (size_t)(close - open - 2));
		line = close + 2;
	}
}

char *rules_render_nft(const struct config *cfg)
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
			nft_put_line(out, cfg, p, len);
		p += len;
	}
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* ---- xt ----------------------------------------------------------------- */

static const char *const tool_dirs[] = {"/usr/sbin", "/sbin", "/usr/local/sbin", "/usr/bin"};

static bool tool_find(const char *name, char *path, size_t len)
{
	for (size_t i = 0; i < sizeof(tool_dirs) / sizeof(tool_dirs[0]); i++) {
		snprintf(path, len, "%s/%s", tool_dirs[i], name);
		if (access(path, X_OK) == 0)
			return true;
	}
	return false;
}

static const char *xt_flavour(enum rules_backend backend)
{
	return backend == RULES_BACKEND_XT_LEGACY ? "legacy" : "nft";
}

/* Runs "[ip|ip6]tables-FLAVOUR[-restore] ARGS", feeding INPUT on stdin when
 * given. Returns the exit status, or -1 if it could not run. */
static int xt_exec(enum rules_backend backend, int family, bool restore, const char *input,
		   char *const extra[], bool quiet)
{
	char name[64], path[256];
	char *argv[16];
	int argc = 0, pipefd[2] = {-1, -1};
	pid_t pid;

	snprintf(name, sizeof(name), "%s-%s%s", family == AF_INET6 ? "ip6tables" : "iptables",
		 xt_flavour(backend), restore ? "-restore" : "");
	if (!tool_find(name, path, sizeof(path))) {
		log_error("%s not found: install the iptables package", name);
		return -1;
	}
	argv[argc++] = path;
	argv[argc++] = "-w";
	if (restore)
		argv[argc++] = "--noflush";
	for (size_t i = 0; extra && extra[i] && argc < 15; i++)
		argv[argc++] = extra[i];
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

char *rules_render_xt(const struct config *cfg, int family, bool with_jump)
{
	char *text = NULL, addr[64];
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);

	if (!out)
		return NULL;
	/* With --noflush, declaring our chain empties it: the chain's old and
	 * new contents swap in one commit, with no window in between. */
	fprintf(out, "*%s\n:%s - [0:0]\n", xt_table(cfg->hook), RULES_XT_CHAIN);
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
	if (with_jump)
		fprintf(out, "-I %s 1 -p tcp -m tcp --tcp-flags SYN,ACK SYN -j %s\n",
			xt_base_chain(cfg->hook), RULES_XT_CHAIN);
	fputs("COMMIT\n", out);
	if (fclose(out) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* Deletes every jump to our chain from BASE; true if one was there. */
static bool xt_delete_jumps(enum rules_backend backend, int family, const char *table,
			    const char *base)
{
	char *args[] = {"-t", (char *)table, "-D", (char *)base, "-p", "tcp", "-m", "tcp",
			"--tcp-flags", "SYN,ACK", "SYN", "-j", RULES_XT_CHAIN, NULL};
	bool found = false;

	/* bounded: a sane table has at most a few stale copies */
	for (int i = 0; i < 64 && xt_exec(backend, family, false, NULL, args, true) == 0; i++)
		found = true;
	return found;
}

static void xt_delete_chain(enum rules_backend backend, int family, const char *table)
{
	char *flush[] = {"-t", (char *)table, "-F", RULES_XT_CHAIN, NULL};
	char *del[] = {"-t", (char *)table, "-X", RULES_XT_CHAIN, NULL};

	xt_exec(backend, family, false, NULL, flush, true);
	xt_exec(backend, family, false, NULL, del, true);
}

/* Removes our jumps and chains from every hook, whatever hook a previous
 * instance was configured with. Returns true if anything was there. */
static bool xt_purge(enum rules_backend backend, int family)
{
	static const enum config_hook hooks[] = {CONFIG_HOOK_PREROUTING, CONFIG_HOOK_INPUT,
						 CONFIG_HOOK_FORWARD};
	bool found = false;

	for (size_t i = 0; i < 3; i++)
		found |= xt_delete_jumps(backend, family, xt_table(hooks[i]),
					 xt_base_chain(hooks[i]));
	xt_delete_chain(backend, family, "raw");
	xt_delete_chain(backend, family, "mangle");
	return found;
}

static int xt_apply(enum rules_backend backend, const struct config *cfg, bool with_jump)
{
	static const int families[] = {AF_INET, AF_INET6};

	for (size_t i = 0; i < 2; i++) {
		char *text = rules_render_xt(cfg, families[i], with_jump);
		int rc;

		if (!text)
			return -1;
		rc = xt_exec(backend, families[i], true, text, NULL, false);
		free(text);
		if (rc != 0) {
			log_error("%stables-%s-restore failed (exit %d)",
				  families[i] == AF_INET6 ? "ip6" : "ip", xt_flavour(backend), rc);
			return -1;
		}
	}
	return 0;
}

/* ---- probe and dispatch ----------------------------------------------------- */

static bool file_contains_line(const char *path, const char *word)
{
	FILE *f = fopen(path, "re");
	char line[128];
	bool found = false;

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		found = strcmp(line, word) == 0;
	}
	fclose(f);
	return found;
}

/* /proc lists only the xt targets already loaded; on a modular kernel the
 * module list says whether the kernel can load it when a rule needs it. */
static bool module_available(const char *name)
{
	static const char *const lists[] = {"modules.builtin", "modules.dep"};
	char path[512], line[512], want[80];
	struct utsname uts;
	bool found = false;

	if (uname(&uts) < 0)
		return false;
	snprintf(want, sizeof(want), "/%s.ko", name);
	for (size_t i = 0; i < 2 && !found; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/lib/modules/%s/%s", uts.release, lists[i]);
		f = fopen(path, "re");
		if (!f)
			continue;
		while (!found && fgets(line, sizeof(line), f))
			found = strstr(line, want) != NULL;
		fclose(f);
	}
	return found;
}

static bool nft_probe_rule(const char *rule)
{
	char text[512];

	snprintf(text, sizeof(text),
		 "add table inet gatekeeper_probe\n"
		 "add chain inet gatekeeper_probe c { type filter hook prerouting priority -300; }\n"
		 "add rule inet gatekeeper_probe c %s\n",
		 rule);
	return nft_run(text, true, true) == 0;
}

void rules_probe(struct rules_probe *out)
{
	char path[256];

	memset(out, 0, sizeof(*out));
	out->nf_tables = nft_run("list tables", false, true) == 0;
	if (out->nf_tables) {
		out->nft_queue = nft_probe_rule("tcp dport 443 queue num 0 bypass");
		out->nft_reject = nft_probe_rule("tcp dport 443 reject with tcp reset");
	}
	/* loaded; or loadable, by the module lists or else (they are hidden
	 * under ProtectKernelModules=) by the kernel's word, which loads it */
	out->xt_nfqueue = file_contains_line("/proc/net/ip_tables_targets", "NFQUEUE") ||
			  file_contains_line("/proc/net/ip6_tables_targets", "NFQUEUE") ||
			  module_available("xt_NFQUEUE") || xt_compat_target_present("NFQUEUE");
	out->nfnetlink_queue = queue_subsystem_present();
	out->iptables_nft = tool_find("iptables-nft-restore", path, sizeof(path));
	out->iptables_legacy = tool_find("iptables-legacy-restore", path, sizeof(path));
}

static void probe_line(FILE *out, const char *what, bool yes, const char *option)
{
	fprintf(out, "  %-34s %s", what, yes ? "yes" : "no");
	if (!yes && option)
		fprintf(out, "  (kernel option %s)", option);
	fputc('\n', out);
}

void rules_probe_print(const struct rules_probe *probe, FILE *out)
{
	fputs("kernel:\n", out);
	probe_line(out, "nf_tables", probe->nf_tables, "CONFIG_NF_TABLES");
	probe_line(out, "nft queue expression", probe->nft_queue, "CONFIG_NFT_QUEUE");
	probe_line(out, "nft reject expression", probe->nft_reject, "CONFIG_NFT_REJECT");
	probe_line(out, "xt NFQUEUE target", probe->xt_nfqueue,
		   "CONFIG_NETFILTER_XT_TARGET_NFQUEUE");
	probe_line(out, "nfnetlink_queue", probe->nfnetlink_queue,
		   "CONFIG_NETFILTER_NETLINK_QUEUE");
	fputs("tools:\n", out);
	probe_line(out, "iptables-nft-restore", probe->iptables_nft, NULL);
	probe_line(out, "iptables-legacy-restore", probe->iptables_legacy, NULL);
}

/* xt through a forced flavour: iptables-nft also needs nf_tables. */
static int choose_xt_flavour(const struct rules_probe *probe, enum config_backend want,
			     enum rules_backend *out, char *why, size_t why_len)
{
	bool nft = want == CONFIG_BACKEND_XT_NFT;

	if (nft ? (probe->iptables_nft && probe->nf_tables) : probe->iptables_legacy) {
		*out = nft ? RULES_BACKEND_XT_NFT : RULES_BACKEND_XT_LEGACY;
		return 0;
	}
	snprintf(why, why_len, "backend %s: %s", config_backend_name(want),
		 nft && probe->iptables_nft ? "the kernel lacks nf_tables (CONFIG_NF_TABLES)"
		 : nft ? "iptables-nft-restore not found: apt-get install iptables"
		       : "iptables-legacy-restore not found: apt-get install iptables");
	return -1;
}

int rules_choose(const struct rules_probe *probe, enum config_backend want,
		 enum rules_backend *out, char *why, size_t why_len)
{
	bool nft_ok = probe->nf_tables && probe->nft_queue;
	bool xt_ok = probe->xt_nfqueue && (probe->iptables_nft || probe->iptables_legacy);

	why[0] = '\0';
	if (want == CONFIG_BACKEND_EXTERNAL) {
		*out = RULES_BACKEND_EXTERNAL;
		return 0;
	}
	if (!probe->nfnetlink_queue) {
		snprintf(why, why_len, "the kernel has no nfnetlink_queue "
			 "(CONFIG_NETFILTER_NETLINK_QUEUE): NFQUEUE cannot work");
		return -1;
	}
	if (nft_ok && (want == CONFIG_BACKEND_AUTO || want == CONFIG_BACKEND_NFT)) {
		*out = RULES_BACKEND_NFT;
		return 0;
	}
	if (want == CONFIG_BACKEND_NFT) {
		snprintf(why, why_len, "backend nft: the kernel lacks %s",
			 probe->nf_tables ? "the nft queue expression (CONFIG_NFT_QUEUE)"
					  : "nf_tables (CONFIG_NF_TABLES)");
		return -1;
	}
	if (!probe->xt_nfqueue) {
		snprintf(why, why_len, "neither the nft queue expression (CONFIG_NFT_QUEUE) nor the "
			 "xt NFQUEUE target (CONFIG_NETFILTER_XT_TARGET_NFQUEUE) is available");
		return -1;
	}
	if (want == CONFIG_BACKEND_XT_NFT || want == CONFIG_BACKEND_XT_LEGACY)
		return choose_xt_flavour(probe, want, out, why, why_len);
	if (xt_ok) {
		*out = probe->iptables_nft && probe->nf_tables ? RULES_BACKEND_XT_NFT
							       : RULES_BACKEND_XT_LEGACY;
		return 0;
	}
	snprintf(why, why_len, "the xt NFQUEUE target needs iptables-nft or iptables-legacy: "
		 "apt-get install iptables");
	return -1;
}

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

static int nft_apply(const struct config *cfg)
{
	char *text = rules_render_nft(cfg);
	int rc;

	if (!text)
		return -1;
	rc = nft_run(text, false, false);
	free(text);
	return rc;
}

int rules_install(enum rules_backend backend, const struct config *cfg)
{
	bool stale4, stale6;

	switch (backend) {
	case RULES_BACKEND_NFT:
		return nft_apply(cfg);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		stale4 = xt_purge(backend, AF_INET);
		stale6 = xt_purge(backend, AF_INET6);
		if (stale4 || stale6)
			log_warn("removed stale %s rules left by an earlier instance",
				 rules_backend_name(backend));
		if (xt_apply(backend, cfg, true) < 0) {
			xt_purge(backend, AF_INET);
			xt_purge(backend, AF_INET6);
			return -1;
		}
		return 0;
	case RULES_BACKEND_EXTERNAL:
		return 0;
	}
	return -1;
}

int rules_update(enum rules_backend backend, const struct config *cfg)
{
	switch (backend) {
	case RULES_BACKEND_NFT:
		return nft_apply(cfg);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		return xt_apply(backend, cfg, false);
	case RULES_BACKEND_EXTERNAL:
		return 0;
	}
	return -1;
}

int rules_remove(enum rules_backend backend, const struct config *cfg)
{
	switch (backend) {
	case RULES_BACKEND_NFT:
		return nft_run("delete table inet " RULES_NFT_TABLE, false, false);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY: {
		static const int families[] = {AF_INET, AF_INET6};
		const char *table = xt_table(cfg->hook);
		for (size_t i = 0; i < 2; i++) {
			xt_delete_jumps(backend, families[i], table, xt_base_chain(cfg->hook));
			xt_delete_chain(backend, families[i], table);
		}
		return 0;
	}
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

/* Elements in the set block that starts at SET (nft's listing: "elements =
 * { a . p, b . p,\n ... }"); no element contains a comma. */
static long nft_count_elements(const char *set)
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
	else if (want4 >= 0 && (n4 = nft_count_elements(set4)) != want4)
		snprintf(why, why_len, "set managed4 has %ld elements, want %ld", n4, want4);
	else if (want6 >= 0 && (n6 = nft_count_elements(set6)) != want6)
		snprintf(why, why_len, "set managed6 has %ld elements, want %ld", n6, want6);
	else
		return 0;
	return -1;
}

static int nft_check(const struct config *cfg, char *why, size_t why_len)
{
	size_t n4 = count_pairs(cfg, AF_INET), n6 = count_pairs(cfg, AF_INET6);
	bool terse = n4 + n6 > RULES_CHECK_MAX_ELEMENTS;
	struct nft_ctx *ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	int rc;

	if (!ctx) {
		log_error("libnftables: cannot create a context");
		return -1;
	}
	if (terse)
		nft_ctx_output_set_flags(ctx, nft_ctx_output_get_flags(ctx) | NFT_CTX_OUTPUT_TERSE);
	nft_ctx_buffer_output(ctx);
	nft_ctx_buffer_error(ctx);
	if (nft_run_cmd_from_buffer(ctx, "list table inet " RULES_NFT_TABLE) != 0) {
		/* "No such file or directory": the table is gone */
		snprintf(why, why_len, "table inet %s is gone", RULES_NFT_TABLE);
		rc = 0;
	} else {
		rc = rules_nft_listing_check(nft_ctx_get_output_buffer(ctx), config_hook_name(cfg->hook),
					     terse ? -1 : (long)n4, terse ? -1 : (long)n6, why,
					     why_len) == 0;
	}
	nft_ctx_free(ctx);
	return rc;
}

/* Runs ip[6]tables-FLAVOUR-save -t TABLE and feeds its output to SCAN.
 * 0, or -1 if it could not run or failed. */
static int xt_save_scan(enum rules_backend backend, int family, const char *table,
			struct rules_xt_scan *scan)
{
	char name[64], path[256], *line = NULL;
	char *argv[] = {path, "-t", (char *)table, NULL};
	int pipefd[2], status;
	size_t cap = 0;
	FILE *in;
	pid_t pid;

	snprintf(name, sizeof(name), "%s-%s-save", family == AF_INET6 ? "ip6tables" : "iptables",
		 xt_flavour(backend));
	if (!tool_find(name, path, sizeof(path))) {
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
			rules_xt_scan_line(scan, line);
		free(line);
		fclose(in);
	}
	status = child_wait(pid);
	if (!in || status != 0) {
		log_warn("rules check: %s -t %s failed", name, table);
		return -1;
	}
	return 0;
}

static int xt_check(enum rules_backend backend, const struct config *cfg, char *why, size_t why_len)
{
	static const int families[] = {AF_INET, AF_INET6};

	for (size_t i = 0; i < 2; i++) {
		struct rules_xt_scan scan = {.base_chain = xt_base_chain(cfg->hook)};
		char reason[192];

		if (xt_save_scan(backend, families[i], xt_table(cfg->hook), &scan) < 0)
			return -1;
		if (rules_xt_scan_verdict(&scan, count_pairs(cfg, families[i]), reason,
					  sizeof(reason)) < 0) {
			snprintf(why, why_len, "IPv%d, table %s: %s", families[i] == AF_INET6 ? 6 : 4,
				 xt_table(cfg->hook), reason);
			return 0;
		}
	}
	return 1;
}

int rules_check(enum rules_backend backend, const struct config *cfg, char *why, size_t why_len)
{
	why[0] = '\0';
	switch (backend) {
	case RULES_BACKEND_NFT:
		return nft_check(cfg, why, why_len);
	case RULES_BACKEND_XT_NFT:
	case RULES_BACKEND_XT_LEGACY:
		return xt_check(backend, cfg, why, why_len);
	case RULES_BACKEND_EXTERNAL:
		return 1;
	}
	return -1;
}
