#!/bin/bash
# fault_control.sh: abuse of the control socket (daemon on the gw, hook
# prerouting), with tests/e2e/ctl_abuse.py:
#
#   1,000 idle connections   from an unprivileged reader (the socket opened
#                            to all, as an operator may): the daemon serves
#                            what it can, refuses the rest "busy", keeps the
#                            slots reserved for privileged peers, so root's
#                            gatekeeperctl still works; SYN verdicts exact
#   1 MiB lines, random      answered "ERR malformed" and closed
#   bytes, half-closed       a request then SHUT_WR is still answered; a
#   sockets                  silent SHUT_WR is closed
#
# and after rounds of all of it: the daemon's fd count back to where it
# was, its RSS within 1 MiB of where it was.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fault_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fault_lib.sh"

readonly HOOK=prerouting
readonly NOBODY=65534
readonly RSS_SLACK_KIB=1024
IDLE_PID=""

abuse() { "$TMP/ctl_abuse.py" "$TMP/control.sock" "$@"; }
as_nobody() { setpriv --reuid "$NOBODY" --regid "$NOBODY" --clear-groups "$@"; }

strict_verdicts() {
	ledger --rate 1500 --seconds 1 --wait-ms 500 "shop=$SHOP4:$SITE_PORT:accept" \
		"blog=$BLOG4:$SITE_PORT:drop" "wiki=$WIKI4:$SITE_PORT:reject"
}

idle_connections() {
	local fds0=$1 fds
	as_nobody "$TMP/ctl_abuse.py" "$TMP/control.sock" idle 1000 8 >"$TMP/idle.out" 2>&1 &
	IDLE_PID=$!
	wait_for grep -q '^ready' "$TMP/idle.out" || die "ctl_abuse idle: $(cat "$TMP/idle.out")"
	log "1000 idle connections: $(cat "$TMP/idle.out")"
	fds=$(fd_count "$DAEMON_PID")
	check "1000 idle connections: the daemon holds at most 64 of them ($((fds - fds0)) more fds)" \
		eval "(( $fds - $fds0 <= 64 ))"
	check "1000 idle connections: root's gatekeeperctl is answered" ctl status
	check "1000 idle connections: SYN verdicts exact (1500 SYNs)" strict_verdicts
	wait "$IDLE_PID"
	IDLE_PID=""
	check "idle connections closed: the daemon's fds back to $fds0" \
		wait_for eval "(( \$(fd_count $DAEMON_PID) == $fds0 ))"
}

bad_clients() { # ROUNDS
	check "1 MiB lines: ERR malformed and closed" abuse bigline "$1"
	check "random bytes: ERR malformed and closed" abuse random "$1"
	check "half-closed sockets: answered, or closed when silent" abuse halfclose "$1"
}

control_cleanup() {
	local status=$?
	[[ -n $IDLE_PID ]] && kill "$IDLE_PID" 2>/dev/null && wait "$IDLE_PID" 2>/dev/null
	(exit "$status")
	cleanup
}

main() {
	local fds0 rss0 fds1 rss1
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL SYN_LEDGER
	e2e_begin
	trap control_cleanup EXIT
	install -m 0755 "${SRCDIR:-$(dirname "$0")}/ctl_abuse.py" "$TMP/ctl_abuse.py"
	setup_topology
	start_tls_server "$SITE_PORT"
	write_fault_config "$TMP/gk.yaml" "$HOOK" true 1024
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	chmod 0711 "$TMP"
	chmod 0666 "$TMP/control.sock" # what an operator does to let everyone read

	# one round first, so that what the allocator keeps is in the baseline
	bad_clients 2 >/dev/null
	fds0=$(fd_count "$DAEMON_PID")
	rss0=$(rss_kib "$DAEMON_PID")
	log "baseline: $fds0 fds, RSS $rss0 KiB"
	idle_connections "$fds0"
	bad_clients 20
	check "after the abuse: SYN verdicts exact (1500 SYNs)" strict_verdicts
	check "after the abuse: root's gatekeeperctl is answered" ctl stats
	fds1=$(fd_count "$DAEMON_PID")
	rss1=$(rss_kib "$DAEMON_PID")
	check "no fd growth: $fds0 -> $fds1" eval "(( $fds1 == $fds0 ))"
	check "no memory growth: RSS $rss0 -> $rss1 KiB (slack $RSS_SLACK_KIB KiB)" \
		eval "(( $rss1 - $rss0 <= RSS_SLACK_KIB ))"
	check "SIGTERM: exit 0" stop_daemon
	finish
}

main "$@"
