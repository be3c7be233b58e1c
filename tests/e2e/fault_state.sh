#!/bin/bash
# fault_state.sh: the state directory read-only, then full (daemon on the
# gw, hook prerouting). The state directory is a 16 KiB tmpfs mounted in a
# mount namespace of the test's own (a holder process keeps it; the daemon
# runs in it through nsenter), so the host never sees the mount, and it is
# gone with the holder.
#
#   read-only, full   offline/online exit 1 with an error; the live state is
#                     unchanged (status and the next SYN), the state file
#                     is byte for byte the last good one, no temp file left
#   restart           the daemon comes back with the last good state
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fault_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fault_lib.sh"

readonly HOOK=prerouting
HOLDER_PID=""
STATE_DIR=""

holder_has_own_mount_ns() {
	local theirs ours
	theirs=$(readlink "/proc/$HOLDER_PID/ns/mnt") || return 1
	ours=$(readlink /proc/self/ns/mnt) || return 1
	[[ -n $theirs && $theirs != "$ours" ]]
}

in_mnt() { nsenter -t "$HOLDER_PID" -m -- "$@"; }

state_file_is_last_good() {
	in_mnt cat "$STATE_DIR/state" >"$TMP/state.now" || return 1
	cat "$TMP/state.now"
	cmp "$TMP/state.good" "$TMP/state.now"
}

no_temp_files() {
	local files
	files=$(in_mnt ls -A "$STATE_DIR")
	echo "state dir: $(tr '\n' ' ' <<<"$files")"
	! grep -v -x -e state -e fill <<<"$files"
}

ctl_fails() { # ARGS...: gatekeeperctl exits 1 with a message
	local out rc
	out=$(ctl "$@" 2>&1)
	rc=$?
	echo "gatekeeperctl $* -> $rc: $out"
	[[ $rc == 1 && -n $out ]]
}

live_state_unchanged() {
	ctl status | grep -E '^(shop|blog):'
	ctl status | grep -q '^shop: offline, from runtime' &&
		ctl status | grep -q '^blog: offline, from config' &&
		probe_says refused "$SHOP4" "$SITE_PORT" 3000 1000 &&
		probe_says timeout "$BLOG4" "$SITE_PORT" 1500
}

refused_changes() { # DESC
	check "$1: offline blog reject exits 1 with an error" ctl_fails offline blog --action reject
	check "$1: online shop exits 1 with an error" ctl_fails online shop
	check "$1: the live state is unchanged (status, next SYNs)" live_state_unchanged
	check "$1: the state file is the last good one, byte for byte" state_file_is_last_good
	check "$1: no temp file left in the state directory" no_temp_files
}

state_cleanup() {
	local status=$?
	[[ -n $DAEMON_PID ]] && end_process "$DAEMON_PID" TERM && DAEMON_PID=""
	[[ -n $HOLDER_PID ]] && kill "$HOLDER_PID" 2>/dev/null && wait "$HOLDER_PID" 2>/dev/null
	(exit "$status")
	cleanup
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	e2e_begin
	trap state_cleanup EXIT
	STATE_DIR="$TMP/state.d"
	mkdir "$STATE_DIR"
	# bounded: the holder ends by itself after 10 minutes at the latest
	unshare -m --propagation private sleep 600 &
	HOLDER_PID=$!
	wait_for holder_has_own_mount_ns || die "no mount namespace of our own"
	in_mnt mount -t tmpfs -o size=16k,mode=0755 "gk-$$-state" "$STATE_DIR" || die "mount tmpfs"
	# the daemon in the holder's mount namespace (ip netns exec puts it in the gw's network one)
	printf '#!/bin/sh\nexec nsenter -t %s -m -- %s "$@"\n' "$HOLDER_PID" "$(realpath "$GATEKEEPERD")" \
		>"$TMP/gatekeeperd"
	chmod 0755 "$TMP/gatekeeperd"
	GATEKEEPERD="$TMP/gatekeeperd"

	setup_topology
	start_tls_server "$SITE_PORT"
	write_fault_config "$TMP/gk.yaml" "$HOOK" true 1024 "$STATE_DIR/state"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "offline shop reject: the last good state" ctl offline shop --action reject
	in_mnt cat "$STATE_DIR/state" >"$TMP/state.good"
	check "the state file holds it" grep -qx 'shop offline reject' "$TMP/state.good"

	in_mnt mount -o remount,ro "$STATE_DIR" || die "remount ro"
	refused_changes "read-only"
	in_mnt mount -o remount,rw "$STATE_DIR" || die "remount rw"

	in_mnt dd if=/dev/zero of="$STATE_DIR/fill" bs=4k 2>/dev/null
	log "filled: $(in_mnt df -h "$STATE_DIR" | tail -n 1)"
	refused_changes "full"

	check "SIGTERM: exit 0" stop_daemon
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "restart: the last good state comes back from the file" \
		grep 'site shop: offline (reject) from the state file' "$DAEMON_LOG"
	check "restart: shop refused, blog dropped (the last good state)" live_state_unchanged
	in_mnt rm -f "$STATE_DIR/fill"
	check "room again: online shop works" ctl online shop
	check "SIGTERM: exit 0" stop_daemon
	finish
}

main "$@"
