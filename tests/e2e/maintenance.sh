#!/bin/bash
# maintenance.sh: offline for the public but not for the ops network
# (allow-lists, in the config and at run time), and offline for a while
# (--for, --until), daemon on the gw, hook prerouting, fail_open true.
#
#   allow-lists     the public client is dropped/refused while the ops client
#                   completes TLS handshakes, IPv4 and IPv6; the same with the
#                   daemon SIGKILLed (the kernel guard keeps the lists)
#   deadlines       --for 3s returns by itself within a second of the
#                   deadline (2 s under TCG), also across a restart in the middle, and at once
#                   when the daemon starts after it
#   compatibility   a state file in the format of the version before loads
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=prerouting
readonly DROP_MS=400 # a dropped SYN: the probe gives up after this
readonly OPS_NETS="203.0.113.0/24,2001:db8:3::/64"
# Under TCG (WAIT_TIMEOUT raised, everything ~5x slower) a restart alone takes
# seconds and each status poll hundreds of ms: the restart's override lasts
# longer there, and the return may be seen a second later than it happens.
SLOW=0
((WAIT_TIMEOUT > 10)) && SLOW=1
readonly FOR=$((SLOW ? 10 : 3)) RESTART_FOR=$((SLOW ? 15 : 3)) LATE_MAX=$((1 + SLOW))

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }

write_maintenance_config() {
	local sites
	sites=$(site_yaml shop "$SHOP4" "$SHOP6" online
		site_yaml blog "$BLOG4" "$BLOG6" offline drop
		echo "    allow: [203.0.113.0/24, \"2001:db8:3::/64\"]"
		site_yaml wiki "$WIKI4" "$WIKI6" offline reject)
	write_config "$TMP/gk.yaml" "$HOOK" "queue: { num: 0, count: 1, fail_open: true }" "" "$sites"
}

# public_out ADDR: the public client does not get a handshake (dropped or refused).
public_out() {
	local line
	line=$(probe "$1" "$SITE_PORT" "$DROP_MS")
	echo "public $1 -> $line"
	[[ $line == timeout* || $line == refused* ]]
}

ops_in() { ops_probe_says "handshake ok" "$1" "$SITE_PORT" 2000; }

# site_json_has SITE TEXT: the site's object in `status --json` contains TEXT.
site_json_has() {
	ctl status --json | python3 -c 'import json, sys
site = [s for s in json.load(sys.stdin)["sites"] if s["name"] == sys.argv[1]][0]
print(json.dumps(site, separators=(",", ":")))' "$1" | tee /dev/stderr | grep -qF "$2"
}

site_state_is() { ctl status | grep -q "^$1: $2,"; }

# until_of SITE: the deadline in status --json (Unix time).
until_of() { ctl status --json | grep -o "\"name\":\"$1\".*" | grep -o '"until":[0-9]*' | head -n 1 | cut -d: -f2; }

# back_in_time SITE UNTIL: wait for SITE online; it must come within
# LATE_MAX seconds of UNTIL (one, on a machine of normal speed), not before.
back_in_time() {
	local site=$1 until=$2 now
	wait_for site_state_is "$site" online || return 1
	now=$(date +%s.%N)
	echo "deadline $until, online at $now"
	awk -v n="$now" -v u="$until" -v l="$LATE_MAX" 'BEGIN { exit !(n >= u && n - u <= l) }'
}

allow_lists() {
	local a
	for a in "$BLOG4" "$BLOG6"; do
		check "config allow: the public client is dropped at blog $a" public_out "$a"
		check "config allow: the ops client completes a handshake with blog $a" ops_in "$a"
	done
	check "wiki has no allow-list: ops refused too" ops_probe_says refused "$WIKI4" "$SITE_PORT" 1000
	check "offline wiki --allow at run time" ctl offline wiki --allow "$OPS_NETS"
	for a in "$WIKI4" "$WIKI6"; do
		check "run-time allow: the public client is refused at wiki $a" public_out "$a"
		check "run-time allow: the ops client completes a handshake with wiki $a" ops_in "$a"
	done
	check "status shows the allow-list and the allowed count" \
		eval 'ctl status | tee /dev/stderr | grep -q "allow      203.0.113.0/24 2001:db8:3::/64 (from runtime)"'
	check "status --json: allow and counters.allowed" \
		eval 'site_json_has wiki "\"allowed\":2}" && site_json_has wiki "\"allow\":[\"203.0.113.0/24\",\"2001:db8:3::/64\"]"'
	check "metrics: verdict allow" eval 'ctl metrics | grep -q "gatekeeper_syn_verdicts_total{site=\"wiki\",verdict=\"allow\"} 2"'
	check "bad --allow refused" negate ctl offline wiki --allow 203.0.113.7/24

	kill_daemon
	log "daemon SIGKILLed: the guard decides"
	for a in "$BLOG4" "$BLOG6" "$WIKI4" "$WIKI6"; do
		check "daemon dead: the guard keeps the public out of $a" public_out "$a"
		check "daemon dead: the guard lets the ops client into $a" ops_in "$a"
	done
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "restarted: the run-time allow-list came back from the state file" ops_in "$WIKI4"
	check "restarted: rules as expected" rules_as_expected "$NS_GW" "$HOOK"
	check "the rules watchdog agrees: nothing reinstalled" \
		eval 'ctl stats --json | grep -q "\"reinstalled\":0"'
	check "reset wiki" ctl reset wiki
	check "reset: ops refused at wiki again" ops_probe_says refused "$WIKI4" "$SITE_PORT" 1000
}

deadlines() {
	local until
	check "--for 0s refused" negate ctl offline shop --for 0s
	check "--until in the past refused" negate ctl offline shop --until 2020-01-01T00:00Z
	check "--until malformed refused" negate ctl offline shop --until 2026-13-99
	check "--for 400d refused" negate ctl offline shop --for 400d

	check "offline shop --for ${FOR}s" ctl offline shop --for "${FOR}s"
	until=$(until_of shop)
	check "status shows the deadline" eval 'ctl status | grep -A6 "^shop:" | grep -q "until "'
	check "shop is offline now" public_out "$SHOP4"
	check "--for ${FOR}s: back online by itself within $LATE_MAX s of the deadline" back_in_time shop "$until"
	check "the log says why" grep -q "site shop: the offline override ended at its deadline" "$DAEMON_LOG"

	check "offline shop --for ${RESTART_FOR}s, then a restart in the middle" ctl offline shop --for "${RESTART_FOR}s"
	until=$(until_of shop)
	check "stopped" stop_daemon
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "restarted before the deadline: still offline" site_state_is shop offline
	check "restarted: back online within $LATE_MAX s of the deadline" back_in_time shop "$until"

	# the file as a daemon stopped before the deadline left it
	check "stopped" stop_daemon
	printf 'gatekeeper-state 1\nshop offline drop\n+until shop %s\n' $(($(date +%s) - 2)) >"$TMP/state"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "started after the deadline: online at once" site_state_is shop online
	check "... and logged" grep -q "while gatekeeperd was not running" "$DAEMON_LOG"
}

# The request of the version before, on the socket itself.
old_style_request() {
	python3 - "$TMP/control.sock" <<-'PY'
		import socket, sys
		s = socket.socket(socket.AF_UNIX)
		s.connect(sys.argv[1])
		s.sendall(b"offline shop drop\n")
		reply = s.recv(4096).decode()
		print(reply)
		sys.exit(0 if reply.startswith("OK") and "shop: offline (drop), from runtime" in reply else 1)
	PY
}

old_state_file() {
	check "stopped" stop_daemon
	printf 'gatekeeper-state 1\n# run-time overrides of gatekeeperd; written by the daemon, do not edit\nshop offline reject\n' >"$TMP/state"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "a state file of the previous format loads" site_state_is shop offline
	check "its override is in force" probe_says refused "$SHOP4" "$SITE_PORT" 1000
	check "an old-style request still works (offline SITE ACTION)" old_style_request
	check "reset shop" ctl reset shop
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	e2e_begin
	setup_topology
	setup_ops_client
	start_tls_server "$SITE_PORT"
	write_maintenance_config
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	allow_lists
	deadlines
	old_state_file
	check "SIGTERM, exit 0" stop_daemon
	check "no rule left" no_daemon_rules "$NS_GW"
	finish
}

main "$@"
