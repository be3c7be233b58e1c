#!/bin/bash
# notify.sh: the daemon's sd_notify messages, received on a test
# NOTIFY_SOCKET by notify_listen (playing systemd), daemon on the gw with
# hook forward, WATCHDOG_USEC=2 s (WATCHDOG_PID unset: any pid may use it).
#
#   READY=1     only once the rules are installed: the listener snapshots
#               the gw's ruleset when it receives it; with STATUS=
#   STATUS=     follows a toggle (gatekeeperctl offline)
#   RELOADING=1 then READY=1 around gatekeeperctl reload, SIGHUP, and a
#               refused reload (bad file), with MONOTONIC_USEC=
#   WATCHDOG=1  keeps coming while SYNs flow; stops while the packet
#               workers are stuck (each worker thread alone frozen with
#               ptrace, the main thread running), comes back after
#   STOPPING=1  at SIGTERM, the last message
#   every message is sent by the daemon's main pid (NotifyAccess=main)
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=forward
readonly WATCHDOG_USEC=2000000
LISTEN_PID=""
MSGS="" # the listener's output

start_listener() {
	MSGS="$TMP/notify.log"
	# On the first READY=1: the gw's rules at that moment (nft shows
	# iptables-nft's too; iptables-legacy's only its own save).
	"$NOTIFY_LISTEN" "$TMP/notify.sock" \
		"{ ip netns exec $NS_GW nft list ruleset; ip netns exec $NS_GW iptables-legacy-save;
		   ip netns exec $NS_GW ip6tables-legacy-save; } >$TMP/rules-at-ready 2>&1" >"$MSGS" 2>&1 &
	LISTEN_PID=$!
	wait_for grep -qx listening "$MSGS" || die "notify_listen did not start: $(cat "$MSGS")"
}

stop_listener() {
	[[ -n $LISTEN_PID ]] && end_process "$LISTEN_PID" TERM
	LISTEN_PID=""
}

# The fields after the timestamp and pid, in order.
fields() { cut -d' ' -f3- "$MSGS"; }

# line_no REGEX [AFTER]: line number of the first field matching REGEX
# after line AFTER (default 0); fails if none.
line_no() {
	local n
	n=$(awk -v re="$1" -v after="${2:-0}" '
		NR > after { f = $0; sub(/^[^ ]+ [^ ]+ /, "", f); if (f ~ re) { print NR; exit } }' "$MSGS")
	[[ -n $n ]] && echo "$n"
}

has_message_after() { line_no "$1" "$2" >/dev/null; }

rules_at_ready() {
	local a status=0
	grep -q '^on-ready status 0$' "$MSGS" || { echo "the on-ready snapshot did not run"; return 1; }
	for a in "${SITE_ADDRS[@]}"; do
		grep -q -- "$a" "$TMP/rules-at-ready" || { echo "no rule for $a when READY=1 came"; status=1; }
	done
	((status == 0)) && echo "all ${#SITE_ADDRS[@]} site addresses were in the gw's rules at READY=1"
	grep -iE 'queue|GATEKEEPER' "$TMP/rules-at-ready" | head -n 5
	return "$status"
}

ready_with_status() {
	local n
	n=$(line_no '^READY=1$') || { echo "no READY=1"; fields; return 1; }
	sed -n "$n,$((n + 1))p" "$MSGS"
	sed -n "$((n + 1))p" "$MSGS" |
		grep -qE ' STATUS=3 sites \(1 online, 2 offline\), backend (nft|xt \(iptables-(nft|legacy)\))$'
}

nothing_before_ready() {
	local n
	n=$(line_no '^READY=1$') || return 1
	head -n "$((n - 1))" "$MSGS" | grep -vE '^listening$' | grep -q . && {
		echo "messages before READY=1:"
		head -n "$((n - 1))" "$MSGS"
		return 1
	}
	return 0
}

status_follows_toggle() {
	local from
	from=$(wc -l <"$MSGS")
	"$GATEKEEPERCTL" -s "$TMP/control.sock" offline shop || return 1
	wait_for has_message_after '^STATUS=3 sites \(0 online, 3 offline\)' "$from" || return 1
	"$GATEKEEPERCTL" -s "$TMP/control.sock" reset shop || return 1
	wait_for has_message_after '^STATUS=3 sites \(1 online, 2 offline\)' "$from"
}

# reload_brackets WHAT CMD...: CMD triggers a reload; RELOADING=1 (with
# MONOTONIC_USEC=) and then READY=1 arrive after it.
reload_brackets() {
	local what=$1 from r m
	shift
	from=$(wc -l <"$MSGS")
	"$@"
	echo "$what: status $?"
	wait_for has_message_after '^READY=1$' "$from" || { echo "no READY=1 after $what"; return 1; }
	tail -n +"$((from + 1))" "$MSGS" | grep -vE 'WATCHDOG=1'
	r=$(line_no '^RELOADING=1$' "$from") || { echo "no RELOADING=1"; return 1; }
	m=$(line_no '^MONOTONIC_USEC=[0-9]+$' "$from") || { echo "no MONOTONIC_USEC="; return 1; }
	((m == r + 1)) || { echo "MONOTONIC_USEC= is not in the RELOADING=1 message"; return 1; }
	(($(line_no '^READY=1$' "$r") > r)) || { echo "READY=1 not after RELOADING=1"; return 1; }
	pid_alive "$DAEMON_PID"
}

hup_daemon() { kill -HUP "$DAEMON_PID"; }

refused_reload() {
	cp "$TMP/good.yaml" "$TMP/good.yaml.bak"
	echo "colour: blue" >>"$TMP/good.yaml"
	"$GATEKEEPERCTL" -s "$TMP/control.sock" reload
	local status=$?
	mv "$TMP/good.yaml.bak" "$TMP/good.yaml"
	[[ $status == 1 ]]
}

# watchdog_times FROM_LINE: the timestamps of the WATCHDOG=1 after it.
watchdog_times() { awk -v after="$1" 'NR > after && $3 == "WATCHDOG=1" { print $1 }' "$MSGS"; }

# max_gap_usec < TIMES: the largest gap between consecutive timestamps.
max_gap_usec() {
	awk 'NR == 1 { prev = $1; next } { g = ($1 - prev) * 1000000; if (g > max) max = g; prev = $1 }
	     END { printf "%d\n", max }'
}

packets() {
	"$GATEKEEPERCTL" -s "$TMP/control.sock" stats --json | grep -o '"packets":[0-9]*' | cut -d: -f2
}

pings_while_syns_flow() {
	local from i n gap p0 p1
	from=$(wc -l <"$MSGS")
	p0=$(packets)
	SECONDS=0
	for ((i = 0; i < 12; i++)); do # about 3 s of SYNs: accepted, rejected, dropped
		probe "$SHOP4" "$SITE_PORT" 1000 >/dev/null
		probe "$WIKI6" "$SITE_PORT" 1000 >/dev/null
		probe "$BLOG4" "$SITE_PORT" 200 >/dev/null
	done
	p1=$(packets)
	echo "the daemon decided $((p1 - p0)) packets meanwhile"
	((p1 - p0 >= 36)) || return 1
	n=$(watchdog_times "$from" | wc -l)
	gap=$(watchdog_times "$from" | max_gap_usec)
	echo "SYNs for about $SECONDS s: $n WATCHDOG=1, longest gap between them ${gap} us" \
		"(WATCHDOG_USEC $WATCHDOG_USEC)"
	# one every WATCHDOG_USEC/4: at least one per second of SYNs
	((n >= SECONDS && n >= 2 && gap < WATCHDOG_USEC))
}

worker_tids() {
	local t
	for t in /proc/"$DAEMON_PID"/task/*; do
		t=${t##*/}
		[[ $t != "$DAEMON_PID" ]] && echo "$t"
	done
}

# Freezes every packet worker for 6 s (> WATCHDOG_USEC/2 + the daemon's
# 2 s heartbeat slack + WATCHDOG_USEC): the pings must stop long enough for
# systemd's watchdog to fire, then resume; the daemon says why.
pings_stop_when_workers_stuck() {
	local from tids gap thaw_line
	tids=$(worker_tids)
	echo "worker threads: $tids"
	[[ -n $tids ]] || return 1
	from=$(wc -l <"$MSGS")
	# shellcheck disable=SC2086 # one TID per word
	"$FREEZE_THREADS" 6 $tids >"$TMP/freeze.log" 2>&1 || { cat "$TMP/freeze.log"; return 1; }
	cat "$TMP/freeze.log"
	thaw_line=$(wc -l <"$MSGS")
	wait_for has_message_after '^WATCHDOG=1$' "$thaw_line" || { echo "no ping after the thaw"; return 1; }
	gap=$(watchdog_times "$from" | max_gap_usec)
	echo "longest gap between WATCHDOG=1 around the freeze: ${gap} us (want > $WATCHDOG_USEC)"
	grep 'withholding the watchdog ping' "$DAEMON_LOG" | head -n 2
	((gap > WATCHDOG_USEC)) && grep -q 'withholding the watchdog ping' "$DAEMON_LOG"
}

stopping_last() {
	stop_daemon || return 1
	local last
	last=$(grep -vE '^(listening|on-ready)' "$MSGS" | tail -n 1 | cut -d' ' -f3-)
	echo "last message: $last"
	[[ $last == STOPPING=1 ]]
}

all_from_daemon() { # PID
	local others
	others=$(awk -v pid="$1" '$2 ~ /^[0-9]+$/ && $2 != pid' "$MSGS")
	[[ -z $others ]] || { echo "from other pids:"; echo "$others"; return 1; }
	echo "$(grep -c '^[0-9]' "$MSGS") fields, all from pid $1"
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL NOTIFY_LISTEN FREEZE_THREADS
	e2e_begin
	# shellcheck disable=SC2154 # rc is set inside the trap
	trap 'rc=$?; stop_listener; (exit $rc); cleanup' EXIT
	setup_topology
	start_tls_server "$SITE_PORT"
	write_config "$TMP/good.yaml" "$HOOK"
	start_listener
	export NOTIFY_SOCKET="$TMP/notify.sock" WATCHDOG_USEC
	unset WATCHDOG_PID
	start_daemon "$NS_GW" "$TMP/good.yaml"
	unset NOTIFY_SOCKET WATCHDOG_USEC
	local pid=$DAEMON_PID
	wait_for line_no '^READY=1$' || die "no READY=1 within ${WAIT_TIMEOUT}s: $(cat "$MSGS")"
	wait_for grep -q '^on-ready status' "$MSGS"
	check "nothing is sent before READY=1" nothing_before_ready
	check "READY=1 comes with STATUS=3 sites (1 online, 2 offline), backend ..." ready_with_status
	check "when READY=1 came the rules for every site address were installed" rules_at_ready
	check "STATUS= follows a toggle (offline shop, reset shop)" status_follows_toggle
	check "gatekeeperctl reload: RELOADING=1 (MONOTONIC_USEC=), then READY=1" \
		reload_brackets "gatekeeperctl reload" "$GATEKEEPERCTL" -s "$TMP/control.sock" reload
	check "SIGHUP: RELOADING=1, then READY=1" reload_brackets SIGHUP hup_daemon
	check "a refused reload: RELOADING=1, then READY=1, daemon keeps serving" \
		reload_brackets "refused reload" refused_reload
	check "WATCHDOG=1 keeps coming while SYNs flow" pings_while_syns_flow
	check "stuck packet workers: WATCHDOG=1 withheld longer than WATCHDOG_USEC, then resumed" \
		pings_stop_when_workers_stuck
	check "verdicts still right after the freeze" \
		probe_says refused "$WIKI4" "$SITE_PORT" 3000 1000
	check "SIGTERM: STOPPING=1 is the last message" stopping_last
	check "every message came from the daemon's pid $pid" all_from_daemon "$pid"
	finish
}

main "$@"
