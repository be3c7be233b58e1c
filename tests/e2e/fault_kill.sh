#!/bin/bash
# fault_kill.sh: SIGKILL under load (daemon on the gw, hook prerouting),
# once with queue.fail_open true and once false.
#
#   while it is down    fail_open true: SYNs to online sites pass, the
#                       kernel guard left behind drops or rejects every SYN
#                       to an offline site; false: every managed SYN is
#                       dropped (online sites too)
#   after a restart     exactly one set of rules, the guard taken over and
#                       its counts reported, every verdict right again (a
#                       ledger of SYNs with no mismatch, and TLS probes)
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fault_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fault_lib.sh"

readonly HOOK=prerouting
LOAD_PID=""
REJECT_OUTCOME=reject

packets_decided() { ctl stats | sed -n 's/^packets *\([0-9]*\).*/\1/p'; }

# outcome_is LINE FIELD: FIELD (accept|drop|reject) equals sent, and sent > 0.
all_outcomes() {
	local line=$1 field=$2 sent n
	echo "$line"
	sent=$(ledger_field "$line" sent)
	n=$(ledger_field "$line" "$field")
	((sent > 0 && n == sent))
}

crash_under_load() {
	local fail_open=$1 line want first past
	write_fault_config "$TMP/gk.$fail_open.yaml" "$HOOK" "$fail_open" 1024
	start_daemon "$NS_GW" "$TMP/gk.$fail_open.yaml"
	first=$(queue_rule_count "$NS_GW")
	REJECT_OUTCOME=$(guard_reject_outcome "$HOOK")
	# load on all three sites, bounded: 2000 SYN/s for 6 s
	ip netns exec "$NS_CLIENT" "$SYN_LEDGER" --src "$CLIENT4" --rate 2000 --seconds 6 \
		--wait-ms 500 "shop=$SHOP4:$SITE_PORT:any" "blog=$BLOG4:$SITE_PORT:any" \
		"wiki=$WIKI4:$SITE_PORT:any" >"$TMP/load.$fail_open.out" 2>&1 &
	LOAD_PID=$!
	wait_for eval '(( $(packets_decided) > 1000 ))' || die "the load did not reach the daemon"
	kill_daemon
	log "SIGKILL under load (fail_open: $fail_open)"
	check "fail_open $fail_open: the dead daemon's rules are still in place" \
		eval '(( $(queue_rule_count "$NS_GW") == first ))'
	line=$(ledger --rate 1000 --seconds 1 --wait-ms 500 "blog=$BLOG4:$SITE_PORT:any" | tail -n 1)
	if [[ $fail_open == true ]]; then
		want=accept past=accepted
		check "fail_open true, daemon dead: the guard drops every SYN to offline blog" \
			all_outcomes "$line" drop
		line=$(ledger --rate 1000 --seconds 0.5 --wait-ms 500 "wiki=$WIKI4:$SITE_PORT:any" | tail -n 1)
		check "fail_open true, daemon dead: the guard answers every SYN to offline wiki ($REJECT_OUTCOME)" \
			all_outcomes "$line" "$REJECT_OUTCOME"
		check "fail_open true, daemon dead: no SYN to blog or wiki reached the server" \
			eval '(( $(syn_count "$BLOG4") == 0 && $(syn_count "$WIKI4") == 0 ))'
	else
		want=drop past=dropped
		check "fail_open false, daemon dead: every SYN to blog is dropped" \
			all_outcomes "$line" drop
	fi
	check "fail_open $fail_open, daemon dead: an online site is $past too" \
		eval "[[ \$(ledger --rate 500 --seconds 0.5 --wait-ms 500 shop=$SHOP4:$SITE_PORT:$want | tail -n 1) == *'mismatch 0 '* ]]"
	wait "$LOAD_PID"
	LOAD_PID=""
	syn_counters_reset
	log "load: $(tail -n 1 "$TMP/load.$fail_open.out")"

	start_daemon "$NS_GW" "$TMP/gk.$fail_open.yaml"
	if [[ $fail_open == true ]]; then
		check "fail_open true, restarted: the log says what the guard left behind decided" \
			grep -q "kernel guard left by an earlier instance dropped" "$DAEMON_LOG"
		check "fail_open true, restarted: stats counts the guard's drops (1500 SYNs)" \
			eval '(( $(guard_count syn_dropped) + $(guard_count syn_rejected) >= 1500 ))'
	fi
	check "fail_open $fail_open, restarted: exactly one set of rules ($first 'queue')" \
		eval '(( $(queue_rule_count "$NS_GW") == first ))'
	check "fail_open $fail_open, restarted: rules as expected" rules_as_expected "$NS_GW" "$HOOK"
	check "fail_open $fail_open, restarted: 1500 SYNs, every verdict right" \
		ledger --rate 1500 --seconds 1 --wait-ms 500 "shop=$SHOP4:$SITE_PORT:accept" \
		"blog=$BLOG4:$SITE_PORT:drop" "wiki=$WIKI4:$SITE_PORT:reject"
	verdicts_right "fail_open $fail_open, restarted"
	check "fail_open $fail_open: SIGTERM, exit 0" stop_daemon
	check "fail_open $fail_open: no rule left" no_daemon_rules "$NS_GW"
}

kill_cleanup() {
	local status=$?
	[[ -n $LOAD_PID ]] && kill "$LOAD_PID" 2>/dev/null && wait "$LOAD_PID" 2>/dev/null
	(exit "$status")
	cleanup
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL SYN_LEDGER
	e2e_begin
	trap kill_cleanup EXIT
	setup_topology
	setup_syn_counters
	start_tls_server "$SITE_PORT"
	crash_under_load true
	crash_under_load false
	finish
}

main "$@"
