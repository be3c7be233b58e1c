/* xt_compat: ask the running kernel whether it has an xtables target.
 *
 * /proc/net/ip_tables_targets lists only the targets already loaded, and
 * the module lists in /lib/modules are hidden from a sandboxed daemon
 * (systemd's ProtectKernelModules=). nf_tables' compat layer answers the
 * question itself, loading the target's module on demand like a rule
 * that uses it would. Needs CAP_NET_ADMIN and nft_compat (built in or
 * loadable); without them the answer is "don't know" (false). */
#ifndef GK_XT_COMPAT_H
#define GK_XT_COMPAT_H

#include <stdbool.h>

/* True if the kernel has the xtables target NAME (e.g. "NFQUEUE") for IPv4. */
bool xt_compat_target_present(const char *name);

#endif
