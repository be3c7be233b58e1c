#!/bin/bash
# hardening.sh: issue 13 item 6, what the running daemon holds (daemon on
# the gw, hook prerouting, started as root in the foreground).
#
#   sandbox     /proc/PID/status of every thread: NoNewPrivs 1, Seccomp 2
#               (a filter); CAP_NET_RAW gone from CapEff/CapPrm/CapAmb
#               (kept only with iptables-legacy, whose tools need it). Under
#               the filter the daemon still decides (accept, drop, RST from
#               its raw socket), toggles, reloads and removes its rules.
#   fifo        a FIFO at state_file: a plain reader hangs on it (the
#               symptom: start-up used to hang the same way); the daemon is
#               ready, says "not a regular file" and decides.
#   xtables     with iptables-legacy (when the kernel has ip_tables): the
#               daemon gets its own /run/xtables.lock (a private mount
#               namespace) and the test holds it with flock(1). Symptom:
#               `iptables-legacy -w` waits without a bound. The daemon: a
#               toggle is decided at once, the control socket answers
#               within the 2 s lock wait, the guard's update fails (STALE)
#               and reaches the kernel once the lock is free.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=prerouting
readonly CAP_NET_RAW_BIT=$((1 << 13))
LOCK_HOLDER=""

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }

release_lock() {
	[[ -n $LOCK_HOLDER ]] || return 0
	kill "$LOCK_HOLDER" 2>/dev/null
	wait "$LOCK_HOLDER" 2>/dev/null
	LOCK_HOLDER=""
}

# status_field PID FIELD: FIELD's value in /proc/PID/status
status_field() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

# every_thread_sandboxed PID: each thread (main, workers) has no-new-privs
# and a seccomp filter; CAP_NET_RAW is absent unless KEEP_RAW=1
every_thread_sandboxed() {
	local pid=$1 keep_raw=$2 task nnp seccomp set value
	for task in /proc/"$pid"/task/*; do
		nnp=$(status_field "$pid/task/${task##*/}" NoNewPrivs)
		seccomp=$(status_field "$pid/task/${task##*/}" Seccomp)
		echo "task ${task##*/}: NoNewPrivs $nnp Seccomp $seccomp"
		[[ $nnp == 1 && $seccomp == 2 ]] || return 1
		for set in CapEff CapPrm CapAmb; do
			value=$(status_field "$pid/task/${task##*/}" "$set")
			echo "  $set $value"
			if ((keep_raw)); then
				[[ $set == CapAmb ]] || ((0x$value & CAP_NET_RAW_BIT)) || return 1
			else
				((0x$value & CAP_NET_RAW_BIT)) && return 1
			fi
		done
	done
	return 0
}

decides() {
	probe_says "handshake ok" "$SHOP4" "$SITE_PORT" 3000 &&
		probe_says timeout "$BLOG4" "$SITE_PORT" 1500 &&
		probe_says refused "$WIKI4" "$SITE_PORT" 3000 1000
}

toggles_under_filter() {
	ctl offline shop --action reject &&
		probe_says refused "$SHOP4" "$SITE_PORT" 3000 1000 &&
		ctl online shop &&
		probe_says "handshake ok" "$SHOP4" "$SITE_PORT" 3000 &&
		ctl reload
}

scenario_sandbox() {
	local keep_raw=0
	log "== sandbox"
	write_config "$TMP/gk.yaml" "$HOOK"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	grep -q 'backend xt (iptables-legacy)' "$DAEMON_LOG" && keep_raw=1
	check "every thread: NoNewPrivs 1, Seccomp 2, CAP_NET_RAW $( ((keep_raw)) && echo kept for iptables-legacy || echo dropped)" \
		every_thread_sandboxed "$DAEMON_PID" "$keep_raw"
	check "the log says the sandbox is on" grep -q 'sandbox: no-new-privs, seccomp allow-list loaded' "$DAEMON_LOG"
	check "under the filter: accepted, dropped, and an RST from the raw socket" decides
	check "under the filter: toggles (state file written), reload" toggles_under_filter
	check "clean stop under the filter" stop_daemon
	check "no rule left behind" no_daemon_rules "$NS_GW"
}

fifo_blocks_a_reader() {
	timeout 2 cat "$TMP/state.fifo" >/dev/null
	local rc=$?
	echo "timeout 2 cat FIFO -> $rc (124: still waiting for a writer)"
	[[ $rc == 124 ]]
}

scenario_fifo() {
	log "== FIFO at state_file"
	mkfifo "$TMP/state.fifo" || die "mkfifo"
	check "symptom: opening the FIFO for reading hangs" fifo_blocks_a_reader
	write_config "$TMP/gk.yaml" "$HOOK" "" "$TMP/state.fifo"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "the daemon is ready and says the state file is not a regular file" \
		grep -q "state file $TMP/state.fifo: not a regular file" "$DAEMON_LOG"
	check "it decides from the config" decides
	check "clean stop" stop_daemon
}

legacy_usable() {
	in_ns "$NS_GW" iptables-legacy -t raw -L -n >/dev/null 2>&1 &&
		grep -qx NFQUEUE /proc/net/ip_tables_targets
}

# start_with_lock CONFIG LOCK: start_daemon, seeing LOCK as /run/xtables.lock
start_with_lock() {
	local config=$1 lock=$2
	DAEMON_STARTS=$((DAEMON_STARTS + 1))
	DAEMON_LOG="$TMP/daemon.$DAEMON_STARTS.log"
	# shellcheck disable=SC2016 # expanded by the inner sh
	unshare -m --propagation private sh -c 'mount --bind "$1" /run/xtables.lock && shift &&
		exec ip netns exec "$@"' sh "$lock" "$NS_GW" "$GATEKEEPERD" -c "$config" \
		>"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	daemon_ready && return 0
	show_daemon_log
	die "the daemon (xt-legacy, private xtables lock) did not start"
}

# in the daemon's mount and network namespaces: its xtables lock
in_daemon_ns() { nsenter -t "$DAEMON_PID" -m -n -- "$@"; }

unbounded_wait_blocks() {
	timeout 4 nsenter -t "$DAEMON_PID" -m -n -- iptables-legacy -w -t raw -L -n >/dev/null 2>&1
	local rc=$?
	echo "timeout 4 iptables-legacy -w -L -> $rc (124: still waiting for the lock)"
	[[ $rc == 124 ]]
}

# answered_within MS CMD...: CMD succeeds within MS
answered_within() {
	local max=$1 start ms rc
	shift
	start=$(date +%s%N)
	"$@"
	rc=$?
	ms=$((($(date +%s%N) - start) / 1000000))
	echo "$* -> $rc in $ms ms (limit $max)"
	((rc == 0 && ms <= max))
}

# control_answers_within MS TIMES: `gatekeeperctl status` TIMES times, 0.5 s
# apart, each answered within MS
control_answers_within() {
	local max=$1 times=$2 i start ms
	for ((i = 0; i < times; i++)); do
		start=$(date +%s%N)
		ctl status >/dev/null || { echo "status failed"; return 1; }
		ms=$((($(date +%s%N) - start) / 1000000))
		echo "status answered in $ms ms"
		((ms <= max)) || return 1
		sleep 0.5
	done
}

guard_says() { # WANT_STALE(yes|no) ENDPOINTS
	local status
	status=$(ctl stats | grep '^guard')
	echo "$status"
	grep -q "^guard *$2 offline endpoints" <<<"$status" || return 1
	if [[ $1 == yes ]]; then grep -q STALE <<<"$status"; else ! grep -q STALE <<<"$status"; fi
}

# wait_long SECONDS CMD...: like wait_for, with its own bound (the guard's
# retry backs off to 8 s)
wait_long() {
	local tries=$(($1 * 10)) i
	shift
	for ((i = 0; i < tries; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	"$@"
}

shop_in_kernel_guard() {
	in_ns "$NS_GW" iptables-legacy-save | grep -- "-A GATEKEEPER_OFFLINE" | grep -F -- "$SHOP4"
}

scenario_xtables_lock() {
	log "== xtables lock held (iptables-legacy)"
	: >"$TMP/xtables.lock"
	chmod 0600 "$TMP/xtables.lock"
	E2E_BACKEND=xt-legacy write_config "$TMP/gk.yaml" "$HOOK"
	start_with_lock "$TMP/gk.yaml" "$TMP/xtables.lock"
	check "before: the guard holds blog and wiki (4 endpoints)" guard_says no 4

	# one process holds it (not flock(1), whose child would keep the lock
	# after flock itself is killed): bounded to 60 s in any case
	(exec 9<"$TMP/xtables.lock" && flock 9 && exec sleep 60) &
	LOCK_HOLDER=$!
	wait_for sh -c "! flock -n '$TMP/xtables.lock' true" || die "the test could not take the lock"
	check "symptom: iptables-legacy -w (no timeout) waits for the held lock" unbounded_wait_blocks

	check "offline shop while the lock is held: answered within the lock wait" \
		answered_within 3000 ctl offline shop --action reject
	check "shop refused by the daemon" probe_says refused "$SHOP4" "$SITE_PORT" 3000 1000
	check "the guard's update failed in bounded time: STALE, still 4 endpoints" \
		wait_long 6 guard_says yes 4
	check "the control socket answers within the lock wait (2 s) while it is held" \
		control_answers_within 2600 10
	check "the workers still decide (wiki refused)" probe_says refused "$WIKI4" "$SITE_PORT" 3000 1000

	release_lock
	check "lock free: the retried update lands (6 endpoints, not stale)" wait_long 15 guard_says no 6
	check "shop's endpoint is in the kernel guard" shop_in_kernel_guard
	check "clean stop" stop_daemon
	check "no rule left behind" no_daemon_rules "$NS_GW"
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	e2e_begin
	# shellcheck disable=SC2154 # rc is set inside the trap
	trap 'rc=$?; release_lock; (exit $rc); cleanup' EXIT
	setup_topology
	start_tls_server "$SITE_PORT"

	scenario_sandbox
	scenario_fifo
	if legacy_usable; then
		scenario_xtables_lock
	else
		log "SKIP xtables lock: iptables-legacy or the kernel's ip_tables NFQUEUE missing"
	fi
	finish
}

main "$@"
