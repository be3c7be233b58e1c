#!/bin/bash
# privdrop.sh: started as root with -u USER (a test user made for this run
# and removed on exit), the daemon runs as USER once it is set up, with
# only the capabilities it needs (/proc/PID/status), and as that user still
# serves toggles, a reload that changes the rules, and a clean stop that
# removes them. Daemon on the gw, hook prerouting.
#
#   backend xt-nft (auto on a kernel without the nft queue expression) or
#   nft: CAP_NET_ADMIN only (0x1000) in CapEff, CapPrm, CapInh, CapAmb;
#   CapBnd 0; no supplementary group.
#   backend xt-legacy (when the kernel has ip_tables): CAP_NET_ADMIN and
#   CAP_NET_RAW (0x3000), which iptables-legacy's tools need, and the
#   iptables lock /run/xtables.lock owned by the user, mode 0600, as the
#   shipped tmpfiles.d snippet makes it; the test gives the daemon its own
#   copy of the lock (a private mount namespace) rather than touch the
#   host's.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=prerouting
readonly TEST_USER="gkt$$"
USER_MADE=0
RUN_DIR=""

make_user() {
	useradd --system --no-create-home --user-group --shell /usr/sbin/nologin "$TEST_USER" ||
		die "useradd $TEST_USER"
	USER_MADE=1
}

# The daemon runs as the user: end it first, or userdel refuses.
cleanup_user() {
	[[ -n $DAEMON_PID ]] && end_process "$DAEMON_PID" TERM
	DAEMON_PID=""
	remove_user
}

remove_user() {
	((USER_MADE)) && userdel "$TEST_USER" 2>/dev/null
	getent group "$TEST_USER" >/dev/null && groupdel "$TEST_USER" 2>/dev/null
	USER_MADE=0
}

# The socket and state file in a directory the user owns, under a TMP it
# may traverse.
prepare_dirs() {
	RUN_DIR="$TMP/run"
	chmod 0711 "$TMP"
	mkdir -p "$RUN_DIR"
	chown "$TEST_USER:$TEST_USER" "$RUN_DIR"
	chmod 0750 "$RUN_DIR"
}

write_privdrop_config() { # FILE BACKEND
	write_config "$1" "$HOOK"
	sed -i -e "s|^backend: .*|backend: $2|" \
		-e "s|socket: $TMP/control.sock|socket: $RUN_DIR/control.sock|" \
		-e "s|^state_file: .*|state_file: $RUN_DIR/state|" "$1"
}

# start_as_user CONFIG [LOCK]: like start_daemon, with -u; with LOCK, the
# daemon sees LOCK as /run/xtables.lock (a private mount namespace).
start_as_user() {
	local config=$1 lock=${2:-}
	DAEMON_STARTS=$((DAEMON_STARTS + 1))
	DAEMON_LOG="$TMP/daemon.$DAEMON_STARTS.log"
	if [[ -n $lock ]]; then
		# shellcheck disable=SC2016 # expanded by the inner sh
		unshare -m --propagation private sh -c 'mount --bind "$1" /run/xtables.lock && shift &&
			exec ip netns exec "$@"' sh "$lock" "$NS_GW" "$GATEKEEPERD" -c "$config" \
			-u "$TEST_USER" >"$DAEMON_LOG" 2>&1 &
	else
		ip netns exec "$NS_GW" "$GATEKEEPERD" -c "$config" -u "$TEST_USER" >"$DAEMON_LOG" 2>&1 &
	fi
	DAEMON_PID=$!
	daemon_ready && return 0
	show_daemon_log
	die "daemon as $TEST_USER did not get ready"
}

status_field() { awk -v f="$1:" '$1 == f { $1 = ""; print substr($0, 2) }' "/proc/$DAEMON_PID/status"; }

runs_as_user() {
	local uid gid
	uid=$(id -u "$TEST_USER") gid=$(id -g "$TEST_USER")
	grep -E '^(Name|Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs):' "/proc/$DAEMON_PID/status"
	[[ $(status_field Uid | tr -s '\t ' ' ') == "$uid $uid $uid $uid" ]] &&
		[[ $(status_field Gid | tr -s '\t ' ' ') == "$gid $gid $gid $gid" ]] &&
		[[ -z $(status_field Groups) ]]
}

caps_are() { # HEX: CapEff, CapPrm, CapInh and CapAmb; CapBnd 0
	local want field got status=0
	want=$(printf '%016x' "$1")
	for field in CapEff CapPrm CapInh CapAmb; do
		got=$(status_field "$field")
		echo "$field $got (want $want)"
		[[ $got == "$want" ]] || status=1
	done
	got=$(status_field CapBnd)
	echo "CapBnd $got (want 0)"
	[[ $got == 0000000000000000 ]] || status=1
	# every thread, not just the main one: the workers decide the packets
	for t in /proc/"$DAEMON_PID"/task/*; do
		got=$(awk '$1 == "CapEff:" { print $2 }' "$t/status")
		[[ $got == "$want" ]] || { echo "thread ${t##*/}: CapEff $got"; status=1; }
	done
	return "$status"
}

ctl() { "$GATEKEEPERCTL" -s "$RUN_DIR/control.sock" "$@"; }

toggle_works() {
	probe_says "handshake ok cn=$CERT_CN" "$SHOP4" "$SITE_PORT" 3000 ||
		{ ctl stats | grep -iE 'verdict|packets'; return 1; }
	ctl offline shop --action reject || return 1
	probe_says refused "$SHOP4" "$SITE_PORT" 3000 1000 || return 1
	ctl reset shop || return 1
	probe_says "handshake ok cn=$CERT_CN" "$SHOP4" "$SITE_PORT" 3000 || return 1
	echo "state file:"
	cat "$RUN_DIR/state"
}

# A reload that adds a managed address: the rules tools run as the user.
reload_changes_rules() {
	local config=$1
	sed -i "s|addresses: \[$SHOP4, \"$SHOP6\"\]|addresses: [$SHOP4, \"$SHOP6\", 198.51.100.13]|" "$config"
	ctl reload || return 1
	ruleset "$NS_GW" | grep -- 198.51.100.13 || { echo "no rule for 198.51.100.13 after the reload"; return 1; }
	! grep -E 'error|cannot' "$DAEMON_LOG"
}

clean_stop() {
	stop_daemon || return 1
	no_daemon_rules "$NS_GW" || return 1
	[[ ! -e $RUN_DIR/control.sock ]] || { echo "control socket left behind"; return 1; }
}

# scenario NAME BACKEND CAPS [LOCK]
scenario() {
	local name=$1 backend=$2 caps=$3 lock=${4:-} config="$TMP/$1.yaml"
	E2E_BACKEND=$backend write_privdrop_config "$config" "$backend"
	[[ $backend == xt-legacy ]] && export E2E_BACKEND=xt-legacy
	start_as_user "$config" "$lock"
	check "$name: runs as $TEST_USER, no supplementary group" runs_as_user
	check "$name: capabilities $(printf '%#x' "$caps") (CapEff/Prm/Inh/Amb), CapBnd 0" caps_are "$caps"
	check "$name: rules installed" rules_as_expected "$NS_GW" "$HOOK"
	check "$name: toggles work as $TEST_USER (state file written)" toggle_works
	check "$name: a reload that changes the rules works as $TEST_USER" reload_changes_rules "$config"
	check "$name: SIGTERM exits 0 and removes every rule and the socket" clean_stop
	unset E2E_BACKEND
}

legacy_usable() {
	in_ns "$NS_GW" iptables-legacy -t raw -L -n >/dev/null 2>&1 &&
		grep -qx NFQUEUE /proc/net/ip_tables_targets
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	e2e_begin
	# shellcheck disable=SC2154 # rc is set inside the trap
	trap 'rc=$?; cleanup_user; (exit $rc); cleanup' EXIT
	make_user
	prepare_dirs
	setup_topology
	start_tls_server "$SITE_PORT"

	local backend
	backend=$(in_ns "$NS_GW" "$GATEKEEPERD" --check -c "$SOURCE_ROOT/conf/demo.yaml" 2>/dev/null |
		sed -n 's/^backend: \(.*\) (config: auto)$/\1/p')
	case $backend in
	nft) scenario "backend nft" nft 0x1000 ;;
	'xt (iptables-nft)') scenario "backend xt-nft" xt-nft 0x1000 ;;
	*) log "auto picks '$backend' here: only the xt-legacy scenario runs" ;;
	esac

	if legacy_usable; then
		: >"$TMP/xtables.lock"
		chown "$TEST_USER:$TEST_USER" "$TMP/xtables.lock"
		chmod 0600 "$TMP/xtables.lock"
		scenario "backend xt-legacy" xt-legacy 0x3000 "$TMP/xtables.lock"
	else
		log "SKIP xt-legacy: iptables-legacy or the kernel's ip_tables NFQUEUE missing"
	fi
	finish
}

main "$@"
