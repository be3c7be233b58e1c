#!/bin/bash
# fault_flood.sh: a SYN flood beyond the daemon's capacity (daemon on the
# gw, hook prerouting), once with queue.fail_open false and once true.
# The flood (syn_ledger as fast as it can, to offline blog) and the daemon
# share one CPU, and the packet worker thread runs SCHED_IDLE: it gets the
# CPU only when nothing else wants it, so the offered load is well above
# what it can decide (the daemon alone keeps up with this generator here).
# The main thread, which serves gatekeeperctl, keeps its normal priority.
#
#   fail_open false   the excess is dropped by the kernel (queue_dropped
#                     grows), no SYN to blog passes
#   fail_open true    the excess passes the queue and the kernel guard
#                     behind it drops every one (no SYN-ACK for offline
#                     blog; the guard counts them); the queue counts no drop
#   both              gatekeeperctl answers throughout (each call < 1 s),
#                     and afterwards every verdict is right again
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fault_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fault_lib.sh"

readonly HOOK=prerouting
readonly FLOOD_SECONDS=4
readonly CTL_MAX_MS=1000
FLOOD_PID=""

flood() {
	local fail_open=$1 line qd0 guard0 i t0 t1 tid ms worst=0 answered=0 calls=0 accept sent
	write_fault_config "$TMP/gk.$fail_open.yaml" "$HOOK" "$fail_open" 1024
	start_daemon "$NS_GW" "$TMP/gk.$fail_open.yaml"
	taskset -a -p -c 0 "$DAEMON_PID" >/dev/null || die "taskset"
	for tid in "/proc/$DAEMON_PID/task/"*; do
		tid=${tid##*/}
		[[ $tid == "$DAEMON_PID" ]] || chrt --idle -p 0 "$tid" || die "chrt"
	done
	qd0=$(kernel_queue queue_dropped)
	guard0=$(guard_count syn_dropped)
	ip netns exec "$NS_CLIENT" taskset -c 0 "$SYN_LEDGER" --src "$CLIENT4" --rate 0 \
		--seconds "$FLOOD_SECONDS" --wait-ms 300 "blog=$BLOG4:$SITE_PORT:any" \
		>"$TMP/flood.$fail_open.out" 2>&1 &
	FLOOD_PID=$!
	sleep 0.5
	while pid_alive "$FLOOD_PID" && ((calls < 20)); do
		calls=$((calls + 1))
		t0=$(date +%s%N)
		ctl stats >/dev/null && answered=$((answered + 1))
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		((ms > worst)) && worst=$ms
		sleep 0.1
	done
	wait "$FLOOD_PID"
	FLOOD_PID=""
	line=$(tail -n 1 "$TMP/flood.$fail_open.out")
	log "flood (fail_open $fail_open): $line; kernel queue drops $(($(kernel_queue queue_dropped) - qd0))"
	log "daemon: $(ctl stats | grep -E '^(packets|queue 0)' | tr '\n' ' ')"
	sent=$(ledger_field "$line" sent)
	accept=$(ledger_field "$line" accept)
	check "fail_open $fail_open, flood: gatekeeperctl answered $answered of $calls calls, the slowest in $worst ms" \
		eval "(( calls >= 5 && answered == calls && worst < CTL_MAX_MS ))"
	if [[ $fail_open == false ]]; then
		check "fail_open false, flood: the kernel dropped the excess (queue_dropped grew)" \
			eval "(( \$(kernel_queue queue_dropped) > qd0 ))"
		check "fail_open false, flood: no SYN to offline blog passed ($accept of $sent)" \
			eval "(( sent > 0 && accept == 0 ))"
	else
		check "fail_open true, flood: no SYN to offline blog was answered ($accept of $sent)" \
			eval "(( sent > 0 && accept == 0 ))"
		# the counters are read by the rules watchdog, every 2 s
		check "fail_open true, flood: the guard stopped the excess" \
			wait_for eval "(( \$(guard_count syn_dropped) - guard0 > 0 ))"
		check "fail_open true, flood: the kernel counted no drop" \
			eval "(( \$(kernel_queue queue_dropped) == qd0 ))"
	fi
	check "fail_open $fail_open, after the flood: the daemon is alive" pid_alive "$DAEMON_PID"
	check "fail_open $fail_open, after the flood: 1500 SYNs, every verdict right" \
		ledger --rate 1500 --seconds 1 --wait-ms 500 "shop=$SHOP4:$SITE_PORT:accept" \
		"blog=$BLOG4:$SITE_PORT:drop" "wiki=$WIKI4:$SITE_PORT:reject"
	check "fail_open $fail_open: SIGTERM, exit 0" stop_daemon
}

flood_cleanup() {
	local status=$?
	[[ -n $FLOOD_PID ]] && kill "$FLOOD_PID" 2>/dev/null && wait "$FLOOD_PID" 2>/dev/null
	(exit "$status")
	cleanup
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL SYN_LEDGER
	e2e_begin
	trap flood_cleanup EXIT
	setup_topology
	start_tls_server "$SITE_PORT"
	flood false
	flood true
	finish
}

main "$@"
