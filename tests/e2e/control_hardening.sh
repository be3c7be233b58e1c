#!/bin/bash
# control_hardening.sh: the control socket against its own users (issue 13,
# items 3 and 4). The daemon starts as root with `user:` set (root-start,
# README's "real box" command), on the gw, hook prerouting.
#
#   the socket race       the daemon's user spins swapping the socket for a
#                         symlink to a victim file (tests/e2e/sock_swap.c)
#                         while the daemon starts 8 times: the swaps happen,
#                         the victim's owner and mode never change, and each
#                         start either binds its own socket or refuses with
#                         a clear error
#   unsafe directories    owned by another user, world-writable, a symlink:
#                         refused at start
#   born right            the socket is root:control.group, control.mode,
#                         with no chown/chmod after bind()
#   first request         a connection that says nothing is closed after
#                         ~3 s ("ERR timeout"), not the 30 s idle timeout
#   busy, retried         gatekeeperctl of a uid at its cap waits and gets in
#                         once a slot frees, instead of dying on EPIPE
#   fair slots            four group members take every slot (16 each: a
#                         uid asking for 64 gets 16) and ask every 20 s; a
#                         fifth is refused; root's gatekeeperctl still gets
#                         in, within 3 s, by evicting the longest idle
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=prerouting
readonly DAEMON_USER="gku$$" CTL_GROUP="gkc$$"
readonly RACE_STARTS=8
readonly ROOT_BOUND_MS=3000
# member uids: numbers only (setpriv needs no passwd entry), free ones
readonly MEMBER_BASE=$((62000 + ($$ % 500) * 8))
ACCOUNTS_MADE=0
OUTCOME=""
ATTACKER_PID=""
HOLD_PIDS=()
RUN_DIR=""
SOCK=""

# ---------------------------------------------------------------- helpers

make_accounts() {
	local i
	for ((i = 0; i < 6; i++)); do
		getent passwd "$((MEMBER_BASE + i))" >/dev/null && die "uid $((MEMBER_BASE + i)) is taken"
	done
	groupadd -r "$CTL_GROUP" || die "cannot create group $CTL_GROUP"
	ACCOUNTS_MADE=1
	useradd -r --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
		--user-group "$DAEMON_USER" || die "cannot create user $DAEMON_USER"
	ACCOUNTS_MADE=2
}

remove_accounts() {
	((ACCOUNTS_MADE >= 2)) && ! userdel "$DAEMON_USER" && ps -u "$DAEMON_USER" -o pid,args
	getent group "$DAEMON_USER" >/dev/null && groupdel "$DAEMON_USER" 2>/dev/null
	((ACCOUNTS_MADE >= 1)) && groupdel "$CTL_GROUP" 2>/dev/null
	ACCOUNTS_MADE=0
}

hardening_cleanup() {
	local status=$? pid
	[[ -n $ATTACKER_PID ]] && end_process "$ATTACKER_PID" TERM
	for pid in "${HOLD_PIDS[@]}"; do
		end_process "$pid" TERM
	done
	# the daemon runs as DAEMON_USER: end it first, or userdel refuses
	[[ -n $DAEMON_PID ]] && end_process "$DAEMON_PID" TERM
	DAEMON_PID=""
	remove_accounts
	(exit "$status")
	cleanup
}

# as_daemon_user CMD..., as_member N CMD... (the Nth member uid, in
# control.group only): exec, so that CMD & gives CMD's own pid to end
as_daemon_user() { exec setpriv --reuid "$DAEMON_USER" --regid "$DAEMON_USER" --clear-groups "$@"; }
as_member() {
	local uid=$((MEMBER_BASE + $1))
	shift
	exec setpriv --reuid "$uid" --regid "$uid" --groups "$CTL_GID" "$@"
}

file_id() { stat -c '%u:%g %a' "$1"; }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# start_once LOG: the daemon in the gw namespace, up to ready or exit.
# Sets OUTCOME to "ready" (DAEMON_PID set), "exited STATUS" or "hung".
start_once() {
	local log=$1 i status
	ip netns exec "$NS_GW" "$GATEKEEPERD" -c "$TMP/gk.yaml" >"$log" 2>&1 &
	DAEMON_PID=$!
	for ((i = 0; i < WAIT_TIMEOUT * 20; i++)); do
		grep -q 'ready:' "$log" 2>/dev/null && { OUTCOME=ready; return 0; }
		pid_alive "$DAEMON_PID" || break
		sleep 0.05
	done
	if pid_alive "$DAEMON_PID"; then
		end_process "$DAEMON_PID" TERM
		DAEMON_PID=""
		OUTCOME=hung
		return 1
	fi
	wait "$DAEMON_PID"
	status=$?
	DAEMON_PID=""
	OUTCOME="exited $status"
}

# ---------------------------------------------------------------- the race

# One start under the attacker: bound (its own socket, or its own socket
# which the attacker then replaced: the daemon's user may delete files in
# its own directory), or refused with the message for it.
race_round() {
	local n=$1 log
	log="$TMP/race.$n.log"
	rm -f "$SOCK"
	start_once "$log"
	case $OUTCOME in
	ready)
		if [[ -S $SOCK && ! -L $SOCK ]]; then
			echo "start $n: bound; socket $(file_id "$SOCK")"
			[[ $(file_id "$SOCK") == "0:$CTL_GID 660" ]] || return 1
		else
			echo "start $n: bound, then the attacker replaced the socket"
		fi
		RACE_BOUND=$((RACE_BOUND + 1))
		end_process "$DAEMON_PID" TERM
		DAEMON_PID=""
		;;
	exited*)
		echo "start $n: $OUTCOME: $(grep -m1 'error' "$log")"
		grep -q 'was replaced or changed right after bind()' "$log" || return 1
		RACE_REFUSED=$((RACE_REFUSED + 1))
		;;
	*)
		echo "start $n: $OUTCOME"; cat "$log"; return 1 ;;
	esac
	echo "victim $(file_id "$TMP/victim") (was $VICTIM_ID)"
	[[ $(file_id "$TMP/victim") == "$VICTIM_ID" ]] && cmp -s "$TMP/victim" "$TMP/victim.orig"
}

the_race() {
	local i swaps
	echo "secret" >"$TMP/victim"
	chmod 0600 "$TMP/victim"
	cp -p "$TMP/victim" "$TMP/victim.orig"
	VICTIM_ID=$(file_id "$TMP/victim")
	RACE_BOUND=0 RACE_REFUSED=0
	as_daemon_user "$TMP/sock_swap" "$SOCK" "$TMP/victim" 90 >"$TMP/swap.out" 2>&1 &
	ATTACKER_PID=$!
	wait_for grep -q spinning "$TMP/swap.out" || die "sock_swap: $(cat "$TMP/swap.out")"
	for ((i = 1; i <= RACE_STARTS; i++)); do
		check "race, start $i: the victim keeps $VICTIM_ID; bound or refused clearly" race_round "$i"
	done
	end_process "$ATTACKER_PID" TERM
	ATTACKER_PID=""
	swaps=$(grep -c '^swap ' "$TMP/swap.out")
	log "race: $RACE_STARTS starts, $RACE_BOUND bound, $RACE_REFUSED refused; the attacker swapped $swaps sockets"
	check "the attack is real: the attacker swapped the socket for a symlink ($swaps times)" \
		eval "(( $swaps >= 1 ))"
	check "the victim file never changed owner, mode or content" \
		eval "[[ \$(file_id $TMP/victim) == '$VICTIM_ID' ]] && cmp $TMP/victim $TMP/victim.orig"
	rm -f "$SOCK" "$SOCK.swap"
}

# ---------------------------------------------------------------- directories

refused_start() { # WHY PATTERN
	start_once "$TMP/dir-$1.log"
	echo "$OUTCOME: $(grep -m1 error "$TMP/dir-$1.log")"
	[[ $OUTCOME == "exited 1" ]] && grep -qE -- "$2" "$TMP/dir-$1.log"
}

unsafe_directories() {
	chown nobody "$RUN_DIR"
	check "a socket directory owned by another user is refused" \
		refused_start owner 'belongs to uid [0-9]+, not to root or the daemon'
	chown "$DAEMON_USER:$DAEMON_USER" "$RUN_DIR"
	chmod 0777 "$RUN_DIR"
	check "a world-writable socket directory is refused" refused_start world 'writable by others'
	chmod 0775 "$RUN_DIR"
	check "a socket directory group-writable by the daemon's group is refused" \
		refused_start group 'writable by others'
	chmod 0755 "$RUN_DIR"
	mv "$RUN_DIR" "$RUN_DIR.real"
	ln -s "$RUN_DIR.real" "$RUN_DIR"
	check "a symlinked socket directory is refused" refused_start symlink 'is a symlink'
	rm "$RUN_DIR"
	mv "$RUN_DIR.real" "$RUN_DIR"
}

# ---------------------------------------------------------------- fairness

first_request_deadline() {
	local t
	(as_member 0 "$TMP/ctl_hold.py" "$SOCK" silent) >"$TMP/silent.out" 2>&1
	cat "$TMP/silent.out"
	t=$(awk '/closed after/ { print $3 }' "$TMP/silent.out")
	[[ -n $t ]] && grep -q 'ERR timeout' "$TMP/silent.out" &&
		awk -v t="$t" 'BEGIN { exit !(t >= 2.5 && t <= 5) }'
}

busy_retried() {
	local start end status
	as_member 1 "$TMP/ctl_hold.py" "$SOCK" hold 16 100 3 >"$TMP/hold-retry.out" 2>&1 &
	HOLD_PIDS+=($!)
	wait_for grep -q '^ready' "$TMP/hold-retry.out" || { cat "$TMP/hold-retry.out"; return 1; }
	cat "$TMP/hold-retry.out"
	grep -q 'ready held=16 refused=0' "$TMP/hold-retry.out" || return 1
	start=$(now_ms)
	(as_member 1 "$TMP/gatekeeperctl" -s "$SOCK" status) >"$TMP/retry.out" 2>&1
	status=$?
	end=$(now_ms)
	echo "gatekeeperctl status as the same uid: exit $status after $((end - start)) ms"
	head -3 "$TMP/retry.out"
	# refused (the uid's cap) until the holder left after 3 s: it waited
	((status == 0 && end - start >= 1500))
}

fair_slots() {
	local i start end status rounds_ok
	for ((i = 2; i < 6; i++)); do
		as_member "$i" "$TMP/ctl_hold.py" "$SOCK" hold 64 20 26 >"$TMP/hold-$i.out" 2>&1 &
		HOLD_PIDS+=($!)
		wait_for grep -q '^ready' "$TMP/hold-$i.out" || die "ctl_hold: $(cat "$TMP/hold-$i.out")"
		log "member uid $((MEMBER_BASE + i)): $(cat "$TMP/hold-$i.out")"
	done
	check "a member uid asking for 64 connections gets 16 (the per-uid cap), 4 such take every slot" \
		eval "grep -h '^ready' $TMP/hold-[2-5].out; (( \$(grep -l 'ready held=16 refused=48' $TMP/hold-[2-5].out | wc -l) == 4 ))"
	check "with every slot taken, a fifth member is refused busy" eval \
		"(as_member 0 $TMP/ctl_hold.py $SOCK hold 1 100 0) | tee /dev/stderr | grep -q 'held=0 refused=1'"
	start=$(now_ms)
	"$GATEKEEPERCTL" -s "$SOCK" status >"$TMP/root1.out" 2>&1
	status=$?
	end=$(now_ms)
	check "root's gatekeeperctl status gets in within ${ROOT_BOUND_MS} ms ($((end - start)) ms, exit $status)" \
		eval "head -3 $TMP/root1.out; (( $status == 0 && $end - $start <= $ROOT_BOUND_MS ))"
	check "the daemon made room by closing the longest-idle member" \
		grep -E "closing the longest-idle client \(uid [0-9]+ pid [0-9]+, group member\) for uid 0" "$DAEMON_LOG"
	# the members ask again at 20 s: they are still served, but one slot
	# was given to root
	WAIT_TIMEOUT=30 wait_for eval "(( \$(grep -l '^round 1' $TMP/hold-[2-5].out | wc -l) == 4 ))"
	rounds_ok=$(cat "$TMP"/hold-[2-5].out | awk -F'[ =]' '/^round 1/ { a += $4; e += $6 } END { print a, e }')
	log "after 20 s the members' requests: answered, evicted: $rounds_ok"
	check "the members asking every 20 s kept their other 63 slots; one was given to root" \
		eval "[[ '$rounds_ok' == '63 1' ]]"
	start=$(now_ms)
	"$GATEKEEPERCTL" -s "$SOCK" status >"$TMP/root2.out" 2>&1
	status=$?
	end=$(now_ms)
	check "after the members' 20 s round, root still gets in ($((end - start)) ms, exit $status)" \
		eval "(( $status == 0 && $end - $start <= $ROOT_BOUND_MS ))"
	for i in "${!HOLD_PIDS[@]}"; do
		wait "${HOLD_PIDS[$i]}" 2>/dev/null
	done
	HOLD_PIDS=()
}

main() {
	require_environment GATEKEEPERD GATEKEEPERCTL SOCK_SWAP CTL_HOLD
	e2e_begin
	trap hardening_cleanup EXIT
	make_accounts
	CTL_GID=$(getent group "$CTL_GROUP" | cut -d: -f3)
	ns_add "$NS_GW"
	# what README's root-start box has: a directory the daemon's user owns
	chmod 0711 "$TMP"
	RUN_DIR="$TMP/run"
	SOCK="$RUN_DIR/control.sock"
	mkdir "$RUN_DIR"
	chown "$DAEMON_USER:$DAEMON_USER" "$RUN_DIR"
	chmod 0755 "$RUN_DIR"
	install -m 0755 "$SOCK_SWAP" "$TMP/sock_swap"
	install -m 0755 "$CTL_HOLD" "$TMP/ctl_hold.py"
	install -m 0755 "$GATEKEEPERCTL" "$TMP/gatekeeperctl"
	write_config "$TMP/gk.yaml" "$HOOK" "user: $DAEMON_USER" "$RUN_DIR/state" "" \
		"  group: $CTL_GROUP"
	sed -i "s|socket: $TMP/control.sock|socket: $SOCK|" "$TMP/gk.yaml"

	the_race
	unsafe_directories

	DAEMON_STARTS=0
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "the socket is born root:$CTL_GROUP 0660, the daemon runs as $DAEMON_USER" eval \
		"echo socket \$(file_id $SOCK); [[ \$(file_id $SOCK) == '0:$CTL_GID 660' ]] &&
		 [[ \$(stat -c %U /proc/$DAEMON_PID) == $DAEMON_USER ]]"
	check "a silent connection is closed after the first-request deadline (~3 s)" first_request_deadline
	check "gatekeeperctl of a uid at its cap retries busy and gets in when a slot frees" busy_retried
	fair_slots
	check "SIGTERM: exit 0" stop_daemon
	finish
}

main "$@"
