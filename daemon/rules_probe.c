/* rules_probe: what the running kernel and the installed tools offer (nft's
 * queue and reject, the xt NFQUEUE target, iptables-nft/-legacy), looked at
 * without changing anything, and the backend chosen from it. Declared in
 * rules.h. */
#include "rules.h"
#include "rules_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#include "queue.h"
#include "xt_compat.h"

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
	return rules_nft_run(text, true, true) == 0;
}

void rules_probe(struct rules_probe *out)
{
	char path[256];

	memset(out, 0, sizeof(*out));
	out->nf_tables = rules_nft_run("list tables", false, true) == 0;
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
	out->iptables_nft = rules_tool_find("iptables-nft-restore", path, sizeof(path));
	out->iptables_legacy = rules_tool_find("iptables-legacy-restore", path, sizeof(path));
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
	/* the nft table's guard answers offline reject sites with nft reject */
	bool nft_ok = probe->nf_tables && probe->nft_queue && probe->nft_reject;
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
			 !probe->nf_tables ? "nf_tables (CONFIG_NF_TABLES)"
			 : !probe->nft_queue ? "the nft queue expression (CONFIG_NFT_QUEUE)"
					     : "the nft reject expression (CONFIG_NFT_REJECT)");
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
