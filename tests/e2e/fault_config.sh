#!/bin/bash
# fault_config.sh: the config file replaced behind the daemon's back, then
# a reload (daemon on the gw, hook prerouting). For each bad file,
# `gatekeeperctl reload` exits 1 and the old config keeps serving (a site
# only the old config has stays refused), the daemon stays responsive:
#
#   garbage       random bytes
#   truncated     the file cut in the middle of a flow sequence, and empty
#   100 MB        refused by its size before it is read (16 MiB limit)
#
# and SIGHUP with a bad file does the same. A good file then reloads.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fault_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fault_lib.sh"

readonly HOOK=prerouting
CONFIG=""

# reload_refused DESC: reload exits 1 with a message; the old config serves.
reload_refused() {
	local desc=$1 rc t0 t1
	t0=$(date +%s%N)
	ctl reload >"$TMP/reload.out" 2>&1
	rc=$?
	t1=$(date +%s%N)
	check "$desc: reload exits 1 in $(((t1 - t0) / 1000000)) ms" \
		eval "head -n 2 $TMP/reload.out | cut -c 1-200; (( $rc == 1 ))"
	check "$desc: the old config still serves (wiki refused)" \
		probe_says refused "$WIKI4" "$SITE_PORT" 3000 1000
	check "$desc: status still lists the old three sites" \
		eval "ctl status | grep -c '^[a-z]*: ' | grep -qx 3"
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	e2e_begin
	setup_topology
	start_tls_server "$SITE_PORT"
	CONFIG="$TMP/gk.yaml"
	write_fault_config "$CONFIG" "$HOOK" true 1024
	cp "$CONFIG" "$TMP/good.yaml"
	start_daemon "$NS_GW" "$CONFIG"
	verdicts_right "start"

	head -c 65536 /dev/urandom >"$CONFIG"
	reload_refused "garbage (64 KiB of random bytes)"
	# cut inside "addresses: [198.51.100.12, ..." of the last site
	head -c "$(grep -bo "$WIKI4" "$TMP/good.yaml" | tail -n 1 | cut -d: -f1)" "$TMP/good.yaml" >"$CONFIG"
	echo -n "198.51." >>"$CONFIG"
	reload_refused "truncated mid-file"
	: >"$CONFIG"
	reload_refused "truncated to 0 bytes"
	rm -f "$CONFIG"
	head -c $((100 * 1024 * 1024)) /dev/zero | tr '\0' '#' >"$CONFIG"
	check "100 MB: the refusal names the size limit" \
		eval "ctl reload 2>&1 | grep 'larger than the 16 MiB limit'"
	reload_refused "100 MB"
	check "SIGHUP with the 100 MB file: refused, logged, the daemon keeps running" eval '
		n=$(grep -c "reload failed" "$DAEMON_LOG"); kill -HUP "$DAEMON_PID";
		wait_for eval "(( \$(grep -c \"reload failed\" $DAEMON_LOG) > n ))" && pid_alive "$DAEMON_PID"'
	rm -f "$CONFIG"
	reload_refused "file missing"
	verdicts_right "after the bad reloads"
	cp "$TMP/good.yaml" "$CONFIG"
	check "the good file again: reload exits 0" ctl reload
	check "SIGTERM: exit 0" stop_daemon
	finish
}

main "$@"
