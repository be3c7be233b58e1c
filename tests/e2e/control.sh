#!/bin/bash
# control.sh: gatekeeperctl against a running daemon (on the gw, hook
# forward), the next SYN after every command, and the control socket's
# defences.
#
#   offline / online      the very next connection gets the new verdict
#   restart               the overrides come back from the state file
#   reset                 back to the config's state, gone from the file
#   reload                a site added and one removed; overrides kept;
#                         a broken config keeps the old one serving and
#                         gatekeeperctl exits 1 with FILE:LINE:COL
#   permissions           a user outside root and control.group can read
#                         status but offline exits 1 (permission)
#   flood                 200 clients, one sending 1 MiB of garbage, while
#                         SYNs keep being decided and root is still answered
#   control.group         a member (supplementary group only) may change state
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=forward
readonly PROBE_MS=3000
readonly DROP_PROBE_MS=1500
readonly REFUSED_MAX_MS=1000
readonly OK_LINE="handshake ok cn=$CERT_CN"
readonly CTL_USER="gk-test-$$"
USER_CREATED=0
FLOOD_PID=""

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }

# as_user CMD...: CMD as CTL_USER, without any supplementary group.
as_user() { setpriv --reuid "$CTL_USER" --regid "$CTL_USER" --clear-groups "$@"; }

# ctl_says WANT_STATUS PATTERN ARGS...: gatekeeperctl ARGS exits WANT_STATUS
# and its output (stdout and stderr) matches the extended regex PATTERN.
ctl_says() {
	local want=$1 pattern=$2 out status
	shift 2
	out=$(ctl "$@" 2>&1)
	status=$?
	echo "gatekeeperctl $* -> status $status"
	printf '%s\n' "$out"
	[[ $status == "$want" ]] || { echo "want status $want"; return 1; }
	grep -qE -- "$pattern" <<<"$out" || { echo "want output matching: $pattern"; return 1; }
}

# The command returns, and the very next SYN gets the new verdict.
then_probe() { # CTL_ARGS... -- WANT ADDR PORT TIMEOUT [MAX_MS]
	local args=()
	while [[ $1 != -- ]]; do args+=("$1"); shift; done
	shift
	ctl "${args[@]}" || { echo "gatekeeperctl ${args[*]} failed"; return 1; }
	probe_says "$@"
}

state_file_has() { echo "state file:"; cat "$TMP/state"; grep -qx -- "$1" "$TMP/state"; }
state_file_lacks() { echo "state file:"; cat "$TMP/state"; ! grep -q -- "$1" "$TMP/state"; }
log_has() { grep -E -- "$1" "$DAEMON_LOG"; }

json_valid() { ctl "$@" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(sorted(d))'; }

first_commands() {
	check "status lists the three sites from the config" \
		ctl_says 0 'wiki: offline, from config' status
	check "status --json is valid JSON" json_valid status --json
	check "stats names the backend and the queue" ctl_says 0 '^queue 0 +waiting' stats
	check "stats --json is valid JSON" json_valid stats --json
	check "unknown site: exit 1, says how to list them" \
		ctl_says 1 "no site 'nosuch'.*status" offline nosuch
	check "bad action: usage, exit 2" ctl_says 2 'unknown action' offline shop --action maybe
	check "no command: usage, exit 2" ctl_says 2 'Usage'
	check "--help lists every command" ctl_says 0 'reset SITE' --help
	check "no daemon at the socket: exit 3" \
		eval "\"\$GATEKEEPERCTL\" -s $TMP/nothing.sock status; (( \$? == 3 ))"
}

toggles() {
	check "offline shop -> the next SYN is dropped" \
		then_probe offline shop -- timeout "$SHOP4" "$SITE_PORT" "$DROP_PROBE_MS"
	check "offline shop --action reject -> the next one is refused" \
		then_probe offline shop --action reject -- refused "$SHOP6" "$SITE_PORT" "$PROBE_MS" "$REFUSED_MAX_MS"
	check "online blog -> the next one completes the TLS handshake" \
		then_probe online blog -- "$OK_LINE" "$BLOG4" "$SITE_PORT" "$PROBE_MS"
	check "status shows the run-time source" \
		ctl_says 0 'shop: offline, from runtime \(config: online, drop\)' status
	check "the state file holds both overrides" state_file_has "shop offline reject"
	check "... blog too" state_file_has "blog online drop"
	check "every change is logged with the peer's uid and pid" \
		log_has 'site blog: online .* by uid 0 pid [0-9]+'
}

restart_keeps_overrides() {
	check "SIGTERM: exit 0" stop_daemon
	check "the socket file is removed on exit" eval "[[ ! -e $TMP/control.sock ]]"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "after a restart: overrides restored from the state file" \
		log_has 'site shop: offline \(reject\) from the state file'
	check "after a restart: shop still refused" \
		probe_says refused "$SHOP4" "$SITE_PORT" "$PROBE_MS" "$REFUSED_MAX_MS"
	check "after a restart: blog still online" probe_says "$OK_LINE" "$BLOG6" "$SITE_PORT" "$PROBE_MS"
	check "reset shop -> back to the config: handshake" \
		then_probe reset shop -- "$OK_LINE" "$SHOP4" "$SITE_PORT" "$PROBE_MS"
	check "reset shop: gone from the state file" state_file_lacks shop
	check "reset shop: status says from config" ctl_says 0 'shop: online, from config' status
}

# write_reload_config FILE [GROUP]: wiki removed, "alt" added on shop's
# address, port 8443; control.group GROUP if given.
write_reload_config() {
	local sites group=""
	[[ -n ${2:-} ]] && group="  group: $2"
	sites=$(site_yaml shop "$SHOP4" "$SHOP6" online
		site_yaml blog "$BLOG4" "$BLOG6" offline drop
		site_yaml alt "$SHOP4" "$SHOP6" offline reject "$OTHER_PORT")
	write_config "$1" "$HOOK" "" "" "$sites" "$group"
}

reloads() {
	check "before the reload: wiki refused" \
		probe_says refused "$WIKI4" "$SITE_PORT" "$PROBE_MS" "$REFUSED_MAX_MS"
	check "before the reload: shop:$OTHER_PORT is not managed" \
		probe_says "$OK_LINE" "$SHOP4" "$OTHER_PORT" "$PROBE_MS"
	check "offline wiki (an override on a site about to go)" ctl offline wiki
	cp "$TMP/gk.yaml" "$TMP/gk.orig.yaml"
	write_reload_config "$TMP/gk.yaml"
	check "reload: exit 0, says how many sites" ctl_says 0 'reloaded .*: 3 sites' reload
	check "reload added alt: shop:$OTHER_PORT now refused" \
		probe_says refused "$SHOP6" "$OTHER_PORT" "$PROBE_MS" "$REFUSED_MAX_MS"
	check "reload removed wiki: its handshake completes" \
		probe_says "$OK_LINE" "$WIKI4" "$SITE_PORT" "$PROBE_MS"
	check "reload kept blog's override" probe_says "$OK_LINE" "$BLOG4" "$SITE_PORT" "$PROBE_MS"
	check "reload dropped wiki's override from the state file" state_file_lacks wiki

	local line
	printf 'colour: blue\n' >>"$TMP/gk.yaml"
	line=$(grep -n -m1 colour "$TMP/gk.yaml" | cut -d: -f1)
	check "broken reload: exit 1 with FILE:LINE:COL" \
		ctl_says 1 "^gatekeeperctl: $TMP/gk.yaml:$line:[0-9]+: " reload
	check "broken reload: says the old config keeps running" \
		ctl_says 1 'keeps running the previous config' reload
	check "broken reload: alt still refused" \
		probe_says refused "$SHOP4" "$OTHER_PORT" "$PROBE_MS" "$REFUSED_MAX_MS"
	check "broken reload: shop still online" probe_says "$OK_LINE" "$SHOP4" "$SITE_PORT" "$PROBE_MS"
	check "broken reload via SIGHUP: logged, the daemon keeps running" sighup_refused
	write_reload_config "$TMP/gk.yaml"
	check "fixed config: reload exits 0" ctl reload
}

failed_reloads() { grep -c 'reload failed' "$DAEMON_LOG"; }

sighup_refused() {
	local before
	before=$(failed_reloads)
	kill -HUP "$DAEMON_PID"
	wait_for eval "(( \$(failed_reloads) > $before ))" || return 1
	pid_alive "$DAEMON_PID" && ctl status >/dev/null
}

make_user() {
	if ! id "$CTL_USER" >/dev/null 2>&1; then
		useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
			--user-group "$CTL_USER" || die "cannot create user $CTL_USER"
		USER_CREATED=1
	fi
	# the binaries where the user can run them
	install -m 0755 "$GATEKEEPERCTL" "$TMP/gatekeeperctl"
	install -m 0755 "$CTL_FLOOD" "$TMP/ctl_flood"
}

permissions() {
	local user_ctl=("$TMP/gatekeeperctl" -s "$TMP/control.sock")
	make_user
	chmod 0711 "$TMP" # so that only the socket's own mode is in the way
	check "the socket is mode 0660" eval "[[ \$(stat -c %a $TMP/control.sock) == 660 ]]"
	check_not "an outsider cannot open the 0660 socket" as_user "${user_ctl[@]}" status
	# what an operator does to let everyone read: the daemon's own check
	# (SO_PEERCRED) must still stop changes
	chmod 0666 "$TMP/control.sock"
	check "an outsider reads status" as_user "${user_ctl[@]}" status
	check "an outsider's offline: exit 1, permission denied, nothing changed" eval \
		"as_user ${user_ctl[*]} offline shop >$TMP/perm.out 2>&1; s=\$?; cat $TMP/perm.out;
		 (( s == 1 )) && grep -q 'permission denied' $TMP/perm.out"
	check "an outsider's reload: exit 1" eval "as_user ${user_ctl[*]} reload; (( \$? == 1 ))"
	check "shop still online after the refused offline" \
		probe_says "$OK_LINE" "$SHOP4" "$SITE_PORT" "$PROBE_MS"
	check "the refusal is logged" log_has "'offline' refused to uid [0-9]+ pid"
}

flood() {
	local i probes_ok=0 probes=0 ctl_ok=0 ctls=0 status
	# read-only clients of one uid: 16 slots at most (the per-uid cap)
	as_user "$TMP/ctl_flood" "$TMP/control.sock" 200 6 >"$TMP/flood.out" 2>&1 &
	FLOOD_PID=$!
	sleep 0.5
	for ((i = 0; i < 8; i++)); do
		probes=$((probes + 1))
		probe_says "$OK_LINE" "$SHOP4" "$SITE_PORT" "$PROBE_MS" && probes_ok=$((probes_ok + 1))
		probe_says refused "$SHOP4" "$OTHER_PORT" "$PROBE_MS" "$REFUSED_MAX_MS" &&
			probes_ok=$((probes_ok + 1))
		probes=$((probes + 1))
		ctls=$((ctls + 1))
		ctl status >/dev/null && ctl_ok=$((ctl_ok + 1))
		sleep 0.3
	done
	wait "$FLOOD_PID"
	status=$?
	FLOOD_PID=""
	log "flood: $(cat "$TMP/flood.out") (exit $status)"
	check "during the flood every probe got its verdict ($probes_ok/$probes)" \
		eval "(( $probes_ok == $probes ))"
	check "during the flood root's gatekeeperctl was answered ($ctl_ok/$ctls)" \
		eval "(( $ctl_ok == $ctls ))"
	check "the flood was answered and the garbage client dropped" \
		eval "(( $status == 0 )) && cat $TMP/flood.out"
	check "after the flood: the daemon is alive and answers" ctl_says 0 'protocol 1' stats
}

# Members of control.group may change state, also through a supplementary
# group only (SO_PEERGROUPS).
group_members() {
	local gid member
	gid=$(getent group "$CTL_USER" | cut -d: -f3)
	member=(setpriv --reuid "$CTL_USER" --regid 65534 --groups "$gid"
		"$TMP/gatekeeperctl" -s "$TMP/control.sock")
	write_reload_config "$TMP/gk.yaml" "$CTL_USER"
	check "reload with control.group: exit 0" ctl reload
	check "the socket now belongs to the group, mode 0660" \
		eval "[[ \$(stat -c '%G %a' $TMP/control.sock) == '$CTL_USER 660' ]]"
	check "a supplementary member takes shop offline: the next SYN is dropped" eval \
		"${member[*]} offline shop && probe_says timeout $SHOP4 $SITE_PORT $DROP_PROBE_MS"
	check "... and resets it: the next one completes" eval \
		"${member[*]} reset shop && probe_says '$OK_LINE' $SHOP4 $SITE_PORT $PROBE_MS"
	check "the member's change is logged with its uid" \
		log_has "site shop: offline .* by uid $(id -u "$CTL_USER") pid [0-9]+"
}

control_cleanup() {
	local status=$?
	[[ -n $FLOOD_PID ]] && kill "$FLOOD_PID" 2>/dev/null && wait "$FLOOD_PID" 2>/dev/null
	if ((USER_CREATED)); then
		userdel "$CTL_USER" 2>/dev/null
		getent group "$CTL_USER" >/dev/null && groupdel "$CTL_USER" 2>/dev/null
	fi
	(exit "$status")
	cleanup
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL CTL_FLOOD
	e2e_begin
	trap control_cleanup EXIT
	setup_topology
	start_tls_server "$SITE_PORT"
	start_tls_server "$OTHER_PORT"
	write_config "$TMP/gk.yaml" "$HOOK"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	first_commands
	toggles
	restart_keeps_overrides
	reloads
	permissions
	flood
	group_members
	check "SIGTERM: exit 0" stop_daemon
	finish
}

main "$@"
