#!/bin/bash
# lifecycle.sh: the daemon's life around the verdicts, daemon on the gw with
# hook prerouting.
#
#   --check            exits 0 and installs nothing
#   a bad config       exits non-zero with FILE:LINE:COL: messages, installs
#                      nothing
#   SIGKILL + restart  exactly one set of rules, verdicts right again
#   SIGUSR1            prints the per-site counters while running
#   SIGTERM            exit 0, no rule left
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=prerouting
readonly PROBE_MS=3000

# run_daemon_once NAME ARGS...: the daemon in the foreground in the gw
# namespace (bounded); output to $TMP/run.NAME.out, status to $TMP/run.NAME.status.
run_daemon_once() {
	local name=$1
	shift
	timeout 20 ip netns exec "$NS_GW" "$GATEKEEPERD" "$@" >"$TMP/run.$name.out" 2>&1
	echo $? >"$TMP/run.$name.status"
	log "gatekeeperd $* -> status $(cat "$TMP/run.$name.status")"
	sed 's/^/#   | /' "$TMP/run.$name.out"
}

status_is() { # NAME WANT
	echo "status $(cat "$TMP/run.$1.status"), want $2"
	[[ $(cat "$TMP/run.$1.status") == "$2" ]]
}

status_nonzero() {
	echo "status $(cat "$TMP/run.$1.status"), want non-zero"
	[[ $(cat "$TMP/run.$1.status") != 0 ]]
}

nothing_created() {
	local f status=0
	no_daemon_rules "$NS_GW" || status=1
	for f in "$TMP/control.sock" "$TMP/state"; do
		[[ -e $f ]] && { echo "$f exists"; status=1; }
	done
	return "$status"
}

# error_at NAME FILE LINE: the output has a "FILE:LINE:COL: " message.
error_at() {
	local name=$1 file=$2 line=$3
	grep -E "^$file:$line:[0-9]+: ." "$TMP/run.$name.out" && return 0
	echo "no message of the form $file:$line:COL: in the output"
	return 1
}

error_count() { # NAME WANT: number of FILE:LINE:COL messages
	local n
	n=$(grep -cE "^$TMP/[^:]+:[0-9]+:[0-9]+: " "$TMP/run.$1.out")
	echo "$n FILE:LINE:COL message(s), want $2"
	[[ $n == "$2" ]]
}

line_of() { grep -n -m1 -- "$2" "$1" | cut -d: -f1; }

check_mode() {
	run_daemon_once check --check -c "$TMP/good.yaml"
	check "--check on a good config exits 0" status_is check 0
	check "--check installs nothing (no rule, no socket, no state file)" nothing_created
}

bad_configs() {
	local key="$TMP/bad-key.yaml" addr="$TMP/bad-addr.yaml" both="$TMP/bad-both.yaml"
	sed 's/^state_file:/colour: blue\n&/' "$TMP/good.yaml" >"$key"
	sed 's/198\.51\.100\.12/198.51.100.312/' "$TMP/good.yaml" >"$addr"
	sed 's/198\.51\.100\.12/198.51.100.312/' "$key" >"$both"

	run_daemon_once bad-key -c "$key"
	check "unknown key: exits non-zero" status_nonzero bad-key
	check "unknown key: FILE:LINE:COL at the key" error_at bad-key "$key" "$(line_of "$key" colour)"
	run_daemon_once bad-addr -c "$addr"
	check "bad address: exits non-zero" status_nonzero bad-addr
	check "bad address: FILE:LINE:COL at the address" \
		error_at bad-addr "$addr" "$(line_of "$addr" 198.51.100.312)"
	run_daemon_once bad-both -c "$both"
	check "two mistakes: both reported, each FILE:LINE:COL" error_count bad-both 2
	check "bad configs install nothing" nothing_created
}

verdicts_ok() {
	check "$1: wiki (offline, reject) refused in < 1000 ms" \
		probe_says refused "$WIKI4" "$SITE_PORT" "$PROBE_MS" 1000
	check "$1: wiki over IPv6 refused in < 1000 ms" \
		probe_says refused "$WIKI6" "$SITE_PORT" "$PROBE_MS" 1000
	check "$1: shop (online) handshake ok" \
		probe_says "handshake ok cn=$CERT_CN" "$SHOP4" "$SITE_PORT" "$PROBE_MS"
	check "$1: blog (offline, drop) times out" probe_says timeout "$BLOG6" "$SITE_PORT" 1500
}

queue_count_is() { # WANT
	local n
	n=$(queue_rule_count "$NS_GW")
	echo "'queue' occurs $n time(s) in the ruleset, want $1"
	ruleset "$NS_GW"
	[[ $n == "$1" ]]
}

same_ruleset_as_first_start() {
	if ! diff -u "$TMP/ruleset.first" <(ruleset_shape "$NS_GW"); then
		echo "(- first start, + after the restart)"
		return 1
	fi
}

counter_lines() { grep -c 'site wiki: accepted' "$DAEMON_LOG"; }

sigusr1_prints_counters() {
	local before
	before=$(counter_lines)
	kill -USR1 "$DAEMON_PID"
	if ! wait_for eval "(( \$(counter_lines) > $before ))"; then
		echo "no new 'site wiki: accepted N dropped N rejected N' line"
		return 1
	fi
	grep 'site [a-z]*: accepted' "$DAEMON_LOG" | tail -n 3
	pid_alive "$DAEMON_PID" || { echo "the daemon died"; return 1; }
}

crash_and_restart() {
	local first
	start_daemon "$NS_GW" "$TMP/good.yaml"
	first=$(queue_rule_count "$NS_GW")
	ruleset_shape "$NS_GW" >"$TMP/ruleset.first"
	check "first start: the daemon's rules are in place" rules_as_expected "$NS_GW" "$HOOK"
	verdicts_ok "first start"
	kill_daemon
	log "after SIGKILL, left in the gw:"
	ruleset "$NS_GW" | sed 's/^/#   | /'
	start_daemon "$NS_GW" "$TMP/good.yaml"
	check "restart after SIGKILL: one set of rules ($first 'queue')" queue_count_is "$first"
	check "restart after SIGKILL: rules as expected" rules_as_expected "$NS_GW" "$HOOK"
	check "restart after SIGKILL: the same ruleset as after the first start" \
		same_ruleset_as_first_start
	verdicts_ok "after restart"
	check "SIGUSR1 prints the counters, daemon keeps running" sigusr1_prints_counters
	check "SIGTERM: daemon exits 0" stop_daemon
	check "clean stop leaves no rule" no_daemon_rules "$NS_GW"
	check "clean stop removes the control socket" negate test -e "$TMP/control.sock"
}

main() {
	require_environment
	e2e_begin
	setup_topology
	start_tls_server "$SITE_PORT"
	write_config "$TMP/good.yaml" "$HOOK"
	check_mode
	bad_configs
	crash_and_restart
	finish
}

main "$@"
