#!/bin/bash
# fault_stop.sh: a daemon alive but stuck (SIGSTOP), daemon on the gw with
# hook prerouting and a small queue (queue.maxlen 64), once with
# queue.fail_open true and once false.
#
#   stuck       the kernel queue fills (64 SYNs wait); then fail_open true:
#               further SYNs pass the queue (fail-open on overload) and the
#               kernel guard behind it drops those to an offline site
#               (counted by the guard) and lets those to an online site
#               through; false: they are dropped by the queue and the
#               kernel counts them (queue_dropped)
#   SIGCONT     the 64 waiting SYNs are decided (the daemon's counters show
#               them), gatekeeperctl stats shows the kernel's drop count,
#               and new SYNs get the right verdicts again
#
# With fail_open true the queue counts nothing for a SYN it let pass: the
# guard's counters (gatekeeperctl stats) show the ones it stopped.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fault_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fault_lib.sh"

readonly HOOK=prerouting
readonly MAXLEN=64
readonly BURST=1000 # SYNs to the stuck daemon

stats_queue_field() { # WORD: the number after WORD on stats' "queue 0" line
	ctl stats | sed -n "s/^queue 0 .*\\b$1 \\([0-9]\\+\\).*/\\1/p"
}

stats_shows_kernel_drops() {
	ctl stats | grep '^queue 0'
	(($(stats_queue_field "kernel dropped") == $(kernel_queue queue_dropped)))
}

site_dropped() { ctl status --json | python3 -c '
import json, sys
print(next(s for s in json.load(sys.stdin)["sites"] if s["name"] == sys.argv[1])["counters"]["dropped"])' "$1"; }

stuck() {
	local fail_open=$1 line sent accept drop dropped0 qd0 guard0
	write_fault_config "$TMP/gk.$fail_open.yaml" "$HOOK" "$fail_open" "$MAXLEN"
	start_daemon "$NS_GW" "$TMP/gk.$fail_open.yaml"
	dropped0=$(site_dropped blog)
	qd0=$(kernel_queue queue_dropped)
	guard0=$(guard_count syn_dropped)
	syn_counters_reset
	kill -STOP "$DAEMON_PID"
	log "SIGSTOP (fail_open: $fail_open, maxlen $MAXLEN)"
	line=$(ledger --rate 2000 --seconds $((BURST / 2000)).5 --wait-ms 500 "blog=$BLOG4:$SITE_PORT:any" | tail -n 1)
	echo "# $line"
	sent=$(ledger_field "$line" sent)
	accept=$(ledger_field "$line" accept)
	drop=$(ledger_field "$line" drop)
	check "fail_open $fail_open, stuck: the kernel queue is full ($MAXLEN waiting)" \
		eval "(( \$(kernel_queue queue_total) == $MAXLEN ))"
	if [[ $fail_open == true ]]; then
		check "fail_open true, stuck: no SYN to offline blog is answered ($accept of $sent)" \
			eval "(( accept == 0 && drop == sent ))"
		check "fail_open true, stuck: no SYN to blog reached the server" \
			eval '(( $(syn_count "$BLOG4") == 0 ))'
		check "fail_open true, stuck: the queue counts no drop" \
			eval "(( \$(kernel_queue queue_dropped) == qd0 ))"
		# the queue still full and the daemon still stopped: online stays up
		check "fail_open true, stuck: online shop still answers every SYN" \
			ledger --rate 500 --seconds 0.4 --wait-ms 500 "shop=$SHOP4:$SITE_PORT:accept"
	else
		check "fail_open false, stuck: no SYN passes ($drop of $sent dropped)" \
			eval "(( accept == 0 && drop == sent ))"
		check "fail_open false, stuck: the kernel counts $((sent - MAXLEN)) queue drops" \
			eval "(( \$(kernel_queue queue_dropped) - qd0 == sent - MAXLEN ))"
	fi
	kill -CONT "$DAEMON_PID"
	check "fail_open $fail_open, after SIGCONT: the $MAXLEN held SYNs are decided (blog dropped +$MAXLEN)" \
		wait_for eval "(( \$(site_dropped blog) - dropped0 == MAXLEN ))"
	check "fail_open $fail_open, after SIGCONT: the queue is empty again" \
		wait_for eval "(( \$(kernel_queue queue_total) == 0 ))"
	check "fail_open $fail_open, after SIGCONT: stats shows the kernel's drops" \
		stats_shows_kernel_drops
	if [[ $fail_open == true ]]; then
		# the counters are read by the rules watchdog, every 2 s
		check "fail_open true, after SIGCONT: the guard counted the $((sent - MAXLEN)) SYNs it dropped" \
			wait_for eval "(( \$(guard_count syn_dropped) - guard0 == sent - MAXLEN ))"
	fi
	check "fail_open $fail_open, after SIGCONT: 1500 SYNs, every verdict right" \
		ledger --rate 1500 --seconds 1 --wait-ms 500 "shop=$SHOP4:$SITE_PORT:accept" \
		"blog=$BLOG4:$SITE_PORT:drop" "wiki=$WIKI4:$SITE_PORT:reject"
	check "fail_open $fail_open: SIGTERM, exit 0" stop_daemon
}

stop_cleanup() {
	local status=$?
	[[ -n $DAEMON_PID ]] && kill -CONT "$DAEMON_PID" 2>/dev/null
	(exit "$status")
	cleanup
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL SYN_LEDGER
	e2e_begin
	trap stop_cleanup EXIT
	setup_topology
	setup_syn_counters
	start_tls_server "$SITE_PORT"
	stuck true
	stuck false
	finish
}

main "$@"
