# shellcheck shell=bash
# Helpers of the fault-injection scenarios (fault_*.sh); sourced after
# lib.sh, never run. Same rules as lib.sh: everything carries the PID and
# is removed by the EXIT trap; readiness is polled.

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }

# write_fault_config FILE HOOK FAIL_OPEN MAXLEN [STATE_FILE]: lib.sh's three
# sites (shop online, blog offline+drop, wiki offline+reject) with the
# queue settings of the scenario.
write_fault_config() {
	write_config "$1" "$2" "queue: { num: 0, count: 1, fail_open: $3, maxlen: $4 }" "${5:-}"
}

# ledger ARGS...: syn_ledger from the client namespace, from CLIENT4.
ledger() { in_ns "$NS_CLIENT" "$SYN_LEDGER" --src "$CLIENT4" "$@"; }

# ledger_field LINE WORD: the number after WORD in a syn_ledger line.
ledger_field() { sed -n "s/.*\\b$2 \\([0-9]\\+\\).*/\\1/p" <<<"$1"; }

fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# kernel_queue FIELD: a figure of queue 0 in the gw namespace, from
# /proc/net/netfilter/nfnetlink_queue (queue_total, queue_dropped,
# user_dropped, id_sequence).
kernel_queue() {
	local col
	case $1 in
	queue_total) col=3 ;;
	queue_dropped) col=6 ;;
	user_dropped) col=7 ;;
	id_sequence) col=8 ;;
	esac
	in_ns "$NS_GW" cat /proc/net/netfilter/nfnetlink_queue | awk -v c="$col" '$1 == 0 { print $c }'
}

# The usual verdicts of the three sites, each as a check.
verdicts_right() {
	check "$1: shop (online) completes the handshake" \
		probe_says "handshake ok cn=$CERT_CN" "$SHOP4" "$SITE_PORT" 3000
	check "$1: blog (offline, drop) times out" probe_says timeout "$BLOG6" "$SITE_PORT" 1500
	check "$1: wiki (offline, reject) is refused in < 1000 ms" \
		probe_says refused "$WIKI4" "$SITE_PORT" 3000 1000
}

# What the kernel guard does with an undecided SYN to offline wiki (action
# reject) at HOOK: the nft guard answers a RST at every hook; xtables has
# REJECT only in the filter table, so its guard at prerouting (mangle)
# drops instead (kmod-free/README.md).
guard_reject_outcome() {
	local hook=$1
	if [[ $(ctl stats | sed -n 's/^backend *//p') == nft || $hook != prerouting ]]; then
		echo reject
	else
		echo drop
	fi
}

# guard_count KEY: a figure of `gatekeeperctl stats --json`'s "guard".
guard_count() { ctl stats --json | python3 -c 'import json, sys; print(json.load(sys.stdin)["guard"][sys.argv[1]])' "$1"; }
