#!/bin/bash
# fault_rules.sh: the daemon's rules removed behind its back (daemon on the
# gw, hook prerouting). Each time the rules watchdog must see it and put
# them back within 5 s, log it loudly and count it:
#
#   nft flush ruleset          an admin wiping the firewall
#   firewall reload            iptables-restore of a table without our chain
#                              (what a firewall script or service does)
#   one jump deleted           partial damage: only the IPv6 jump gone
#
# and while nothing is touched, the checks find nothing to repair.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fault_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fault_lib.sh"

readonly HOOK=prerouting
# 5 s, the issue's bound; scaled like the test timeouts under emulation (qemu TCG)
readonly REPAIR_LIMIT_MS=$((5000 * ${E2E_TIMEOUT_MULTIPLIER:-1}))

stat_field() { # WORD: the number after WORD on stats' "rules" line
	ctl stats | sed -n "s/^rules .*\\b$1 \\([0-9]\\+\\).*/\\1/p"
}

quiet_checks() {
	local checks
	wait_for eval '(( $(stat_field checked) >= 2 ))' || { ctl stats; return 1; }
	checks=$(stat_field checked)
	echo "$checks checks, reinstalled $(stat_field reinstalled)"
	[[ $(stat_field reinstalled) == 0 && $(stat_field removed) == 0 ]]
}

# damage_repaired NAME CMD...: runs CMD (which damages the gw's rules), then waits until the
# rules are as expected again; says how long it took.
damage_repaired() {
	local name=$1 t0 t1 i before
	shift
	before=$(grep -c 'rules removed behind our back' "$DAEMON_LOG")
	"$@" || { echo "could not damage: $*"; return 1; }
	t0=$(date +%s%N)
	# no "damaged now?" look here: on a slow machine the daemon may repair
	# before we look; the log line below proves it noticed the damage
	for ((i = 0; i < 200; i++)); do
		rules_as_expected "$NS_GW" "$HOOK" >/dev/null 2>&1 && break
		sleep 0.05
	done
	t1=$(date +%s%N)
	echo "$name: rules back after $(((t1 - t0) / 1000000)) ms (limit $REPAIR_LIMIT_MS ms)"
	rules_as_expected "$NS_GW" "$HOOK" || return 1
	(((t1 - t0) / 1000000 <= REPAIR_LIMIT_MS)) || return 1
	wait_for eval "(( \$(grep -c 'rules removed behind our back' $DAEMON_LOG) > $before ))" ||
		{ echo "not logged"; return 1; }
	grep "rules removed behind our back\|rules reinstalled" "$DAEMON_LOG" | tail -n 2
}

flush_ruleset() {
	if [[ $(xt_flavour) == legacy ]]; then
		in_ns "$NS_GW" iptables-legacy -t raw -F && in_ns "$NS_GW" iptables-legacy -t raw -X &&
			in_ns "$NS_GW" ip6tables-legacy -t raw -F && in_ns "$NS_GW" ip6tables-legacy -t raw -X
	fi
	in_ns "$NS_GW" nft flush ruleset
}

firewall_reload() {
	local tool
	tool=iptables-$(xt_flavour)-restore
	if in_ns "$NS_GW" nft list table inet gatekeeper >/dev/null 2>&1; then
		# nft backend: a firewall that loads its own file with "flush ruleset"
		printf 'flush ruleset\ntable inet filter {\n chain input { type filter hook input priority 0; }\n}\n' |
			in_ns "$NS_GW" nft -f -
	else
		printf '*raw\n:PREROUTING ACCEPT [0:0]\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n' | in_ns "$NS_GW" "$tool"
	fi
}

delete_one_jump() {
	if in_ns "$NS_GW" nft list table inet gatekeeper >/dev/null 2>&1; then
		in_ns "$NS_GW" nft flush chain inet gatekeeper syn
	else
		in_ns "$NS_GW" "ip6tables-$(xt_flavour)" -w -t raw -D PREROUTING -p tcp -m tcp \
			--tcp-flags SYN,ACK SYN -j GATEKEEPER
	fi
}

metric_is() { # NAME WANT
	local v
	v=$(ctl metrics | awk -v n="$1" '$1 == n { print $2 }')
	echo "$1 = ${v:-<none>}, want $2"
	[[ $v == "$2" ]]
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	e2e_begin
	setup_topology
	start_tls_server "$SITE_PORT"
	write_fault_config "$TMP/gk.yaml" "$HOOK" true 1024
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "start: the rules are in place" rules_as_expected "$NS_GW" "$HOOK"
	check "untouched rules: checks run and find nothing to repair" quiet_checks

	check "nft flush ruleset: detected and reinstalled within 5 s, logged" \
		damage_repaired flush flush_ruleset
	verdicts_right "after the flush"
	check "firewall reload: detected and reinstalled within 5 s, logged" \
		damage_repaired reload firewall_reload
	check "one jump (IPv6) deleted: detected and reinstalled within 5 s" \
		damage_repaired jump delete_one_jump
	check "IPv6 verdict right again: wiki refused" \
		probe_says refused "$WIKI6" "$SITE_PORT" 3000 1000
	check "stats: reinstalled 3 times" eval '[[ $(stat_field reinstalled) == 3 ]]'
	check "metrics: gatekeeper_rules_reinstalled_total 3" metric_is gatekeeper_rules_reinstalled_total 3
	check "SIGTERM: exit 0" stop_daemon
	check "no rule left after the stop" no_daemon_rules "$NS_GW"
	finish
}

main "$@"
