#!/bin/bash
# fleet.sh: the fleet mode's figures (issue 16, daemon/FLEET-DESIGN.md), on
# tests/e2e/fleet_lib.sh's test bed: a real 3-member etcd cluster over mTLS,
# boxes A B C each running gatekeeperd (hook input, sites shop :443 and
# blog :8443) in its own namespace, a client namespace; documentation
# addresses (203.0.113.0/24) only, every namespace and process removed on
# exit (lib.sh's and fleet_lib.sh's trap; names carry the PID).
#
#   tests/bench/fleet.sh [TOGGLES] [BUILDDIR]    (root; TOGGLES default 400)
#
# BUILDDIR needs -Dbench=true (connlat). Every time is taken from outside the
# daemons, by the client's real TCP connects or gatekeeperctl's replies:
#
#  1. toggle -> verdict on the other boxes: TOGGLES toggles of shop on A,
#     alternately `offline shop --action reject` and `online shop`; each is
#     timed from just before gatekeeperctl starts (fork/exec, A's put, etcd's
#     commit, the watch to B and C, their apply) until a TCP connect from the
#     client to B and to C gets the new answer (RST / SYN-ACK; polled every
#     1 ms). "every other box" is the later of B and C per toggle. A real
#     TLS probe (tls_probe) confirms the last verdict on both.
#  2. catch-up after a partition: C black-holed on the bridge, three toggles
#     on A, C's status stale, then the link restored: time from the heal
#     until C's verdict is the new one (client connects, 1 ms apart).
#  3. staleness: the member box B is connected to is stopped (SIGSTOP), or
#     cut off from its peers (its client port still answers): time until B's
#     `status --json` says stale_since != 0, and until B is connected again
#     (elsewhere) and no longer stale. Polled with gatekeeperctl (~10 ms).
#  4. SYN verdicts with the whole etcd cluster down: connlat (2000 connects,
#     SYN -> SYN/ACK, 200 us apart) from the client to box A's shop (online,
#     decided by the daemon's queue), rounds alternating A with its fleet:
#     section (stale, etcd dead) and A without one (single box), plus the
#     same with no daemon; the daemon's CPU per connect (schedstat).
#  5. etcd writes per toggle: etcd's revision before and after toggles with
#     --wait (every live box applied) and a pause, and while idle; and the
#     step between consecutive toggles' committed revisions in 1.
#
# FLEET_BENCH_PROBE_A=1 probes A's own verdict in 1 too (a diagnosis: it
# adds to the polling load). FLEET_BENCH_REPS (default 10) repetitions of 2 and 3 (3 by isolation:
# half of them, at least 3). Bounded: TOGGLES <= 2000, each phase has a
# time limit.
set -u
TOGGLES=${1:-400}
BUILD=${2:-$(cd "$(dirname "$0")/../.." && pwd)/build}
REPS=${FLEET_BENCH_REPS:-10}
((TOGGLES >= 2 && TOGGLES <= 2000)) || { echo "TOGGLES: 2..2000" >&2; exit 2; }
((REPS >= 1 && REPS <= 50)) || { echo "FLEET_BENCH_REPS: 1..50" >&2; exit 2; }
TOGGLES=$((TOGGLES / 2 * 2)) # even: the last toggle leaves shop online
export GATEKEEPERD=$BUILD/gatekeeperd GATEKEEPERCTL=$BUILD/gatekeeperctl
export TLS_SERVER=$BUILD/tests/e2e/tls_server TLS_PROBE=$BUILD/tests/e2e/tls_probe
CONNLAT=$BUILD/tests/bench/connlat
BENCH_DIR=$(cd "$(dirname "$0")" && pwd)
export SRCDIR
SRCDIR=$(cd "$(dirname "$0")/../e2e" && pwd)
# shellcheck source=../e2e/lib.sh
source "$SRCDIR/lib.sh"
# shellcheck source=../e2e/fleet_lib.sh
source "$SRCDIR/fleet_lib.sh"
PROBE_PY=$BENCH_DIR/fleet_probe.py
readonly STALE_LIMIT_S=15 CATCHUP_LIMIT_MS=20000 TOGGLE_SECONDS=600

# fp ARGS...: fleet_probe.py in the client namespace.
fp() { in_ns "$NS_CLIENT" "$FLEET_PYTHON" -B "$PROBE_PY" "$@"; }

# stats: numbers on stdin (-1 = not seen) -> "n N p50 X p99 Y max Z missing M"
# (nearest rank).
stats() {
	"$FLEET_PYTHON" -c 'import math, sys
v = [float(x) for x in sys.stdin.read().split()]
ok = sorted(x for x in v if x >= 0)
pick = lambda q: ok[max(0, math.ceil(q * len(ok)) - 1)] if ok else float("nan")
print("n %d p50 %.1f p99 %.1f max %.1f missing %d" % (len(ok), pick(0.5), pick(0.99),
      ok[-1] if ok else float("nan"), len(v) - len(ok)))'
}

box_live() { status_is "$1" fleet.connection connected && ! is_stale "$1"; }

# toggle_to WANT: one toggle of shop on A that gives WANT (reset|open).
toggle_to() {
	if [[ $1 == reset ]]; then
		box_ctl A offline shop --action reject
	else
		box_ctl A online shop
	fi
}
other() { [[ $1 == reset ]] && echo open || echo reset; }

# etcd_disk NAME: "sum_s count" of etcd's histogram NAME (etcd_disk_...),
# added over the members (their metrics port, from the client).
etcd_disk() {
	local n
	for n in "${ETCD_MEMBERS[@]}"; do
		in_ns "$NS_CLIENT" curl -s --max-time 2 "http://${ETCD_ADDR[$n]}:$ETCD_METRICS_PORT/metrics"
	done | awk -v m="$1" '$1 == m "_sum" { s += $2 } $1 == m "_count" { c += $2 } END { printf "%f %d\n", s, c }'
}

# disk_delta BEFORE AFTER: "N fsyncs, mean X ms" between two etcd_disk lines.
disk_delta() {
	awk -v a="$1" -v b="$2" 'BEGIN { split(a, x, " "); split(b, y, " "); n = y[2] - x[2]
		printf "%d, mean %.1f ms", n, n ? (y[1] - x[1]) * 1000 / n : 0 }'
}

# put_ms N COUNT: COUNT puts of a key outside the fleet's prefix through
# member N's JSON gateway (curl, admin certificate, hasleader), one line
# each: ms from the request's start to the reply (after the TLS handshake).
put_ms() {
	local i
	for ((i = 0; i < $2; i++)); do
		in_ns "$NS_CLIENT" curl -sS -o /dev/null -w '%{time_appconnect} %{time_total}\n' --max-time 2 \
			--cacert "$PKI/ca.pem" --cert "$PKI/admin.pem" --key "$PKI/admin.key" \
			-H 'Grpc-Metadata-hasleader: true' -X POST \
			"https://${ETCD_ADDR[$1]}:$ETCD_CLIENT_PORT/v3/kv/put" \
			-d "{\"key\":\"$(b64 /gatekeeper-bench/put)\",\"value\":\"$(b64 "$i")\"}"
	done | awk '{ printf "%.2f\n", ($2 - $1) * 1000 }'
}

cpu_ns() { # PID: CPU time of all its threads (schedstat), ns
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ t += $1 } END { printf "%.0f\n", t }'
}

# connlat_row LABEL [PID]: 2000 connects to A's shop; one table row.
connlat_row() {
	local label=$1 pid=${2:-} c0=0 c1=0 out cpu=- f
	[[ -n $pid ]] && c0=$(cpu_ns "$pid")
	out=$(in_ns "$NS_CLIENT" "$CONNLAT" connect "${BOX_ADDR[A]}" "$SITE_PORT" 2000 200 3000)
	[[ -n $pid ]] && { c1=$(cpu_ns "$pid"); cpu=$(awk -v d=$((c1 - c0)) 'BEGIN { printf "%.1f", d / 1000 / 2000 }'); }
	# n N ok N fail N slow N p50_us X p99_us Y max_us Z
	read -r -a f <<<"$out"
	printf '| %-34s | %7s | %7s | %8s | %4s/%s | %6s |\n' "$label" "${f[9]}" "${f[11]}" "${f[13]}" \
		"${f[5]}" "${f[7]}" "$cpu" >>"$TMP/synlat.md"
	log "connlat $label: $out (cpu $cpu us/connect)"
}

main() {
	local i r out want rev0 rev1 t0 ep member started f
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	[[ -x $CONNLAT ]] || die "$CONNLAT missing: build with -Dbench=true"
	command -v etcd >/dev/null || die "needs etcd"
	started=$(date +%s)
	e2e_begin
	fleet_setup
	fleet_up
	for i in A B C; do
		box_start "$i"
	done
	wait_for status_is C fleet.connection connected || die "box C never connected"
	box_ctl A fleet init >/dev/null || die "fleet init"
	for i in A B C; do
		wait_for status_is "$i" fleet.initialised true || die "box $i never saw the schema"
	done
	# warm-up (paths, etcd, the boxes' watches), ending online
	for want in reset open reset open; do
		toggle_to "$want" >/dev/null || die "warm-up toggle"
	done
	for i in A B C; do
		wait_verdict "$i" open 5 >/dev/null || die "box $i: shop not open after the warm-up"
	done

	# ---- 1. toggle -> new verdict on B and C
	log "1. $TOGGLES toggles on A, B and C probed"
	local wal0 wal1 commit0 commit1
	wal0=$(etcd_disk etcd_disk_wal_fsync_duration_seconds)
	commit0=$(etcd_disk etcd_disk_backend_commit_duration_seconds)
	fp toggles "$GATEKEEPERCTL" "$(box_dir A)/control.sock" "$SITE_PORT" "$TOGGLES" "$TOGGLE_SECONDS" \
		"${BOX_ADDR[B]}" "${BOX_ADDR[C]}" ${FLEET_BENCH_PROBE_A:+"${BOX_ADDR[A]}"} \
		>"$TMP/toggles.txt" 2>"$TMP/toggles.err"
	wal1=$(etcd_disk etcd_disk_wal_fsync_duration_seconds)
	commit1=$(etcd_disk etcd_disk_backend_commit_duration_seconds)
	sed 's/^/#   /' "$TMP/toggles.err"
	local n_done final_b final_c
	n_done=$(wc -l <"$TMP/toggles.txt")
	final_b=$(box_verdict B)
	final_c=$(box_verdict C)
	log "after the loop (tls_probe, full handshake): B $final_b, C $final_c (want open)"
	{
		awk '{ if ($5 < 0 || $6 < 0) print -1; else print ($5 > $6 ? $5 : $6) }' "$TMP/toggles.txt" |
			stats >"$TMP/t_all"
		awk '{ print $5 }' "$TMP/toggles.txt" | stats >"$TMP/t_b"
		awk '{ print $6 }' "$TMP/toggles.txt" | stats >"$TMP/t_c"
		awk '{ print $3 }' "$TMP/toggles.txt" | stats >"$TMP/t_ctl"
		awk 'NF >= 7 { print $7 }' "$TMP/toggles.txt" | stats >"$TMP/t_a"
		awk 'NR > 1 && prev > 0 && $4 > 0 { print $4 - prev } { prev = $4 }' "$TMP/toggles.txt" |
			sort -n | uniq -c | awk '{ printf("%s+%d: %d times", (NR > 1 ? ", " : ""), $2, $1) }' >"$TMP/t_steps"
		grep -c ' reset ' "$TMP/toggles.txt" >"$TMP/t_nreset"
	}

	# a bare etcd put, for comparison: etcd's own commit on this machine
	local put_leader put_follower leader
	leader=$(etcd_leader) || leader=1
	put_leader=$(put_ms "$leader" 50 | stats)
	put_follower=$(put_ms $((leader % 3 + 1)) 50 | stats)

	# ---- 5. etcd writes per toggle (and while idle)
	log "5. etcd writes per toggle"
	sleep 1
	rev0=$(etcd_revision)
	sleep 5
	rev1=$(etcd_revision)
	local idle_writes=$((rev1 - rev0)) w_toggles=20
	rev0=$(etcd_revision)
	for ((i = 0; i < w_toggles; i++)); do
		want=$([[ $((i % 2)) == 0 ]] && echo reset || echo open)
		if [[ $want == reset ]]; then
			box_ctl A offline shop --action reject --wait >/dev/null
		else
			box_ctl A online shop --wait >/dev/null
		fi || log "toggle $i --wait: not applied everywhere"
		sleep 0.2
	done
	sleep 1
	rev1=$(etcd_revision)
	local toggle_writes=$((rev1 - rev0))
	log "idle 5 s: $idle_writes writes; $w_toggles toggles: revision $rev0 -> $rev1"

	# ---- 2. catch-up after a partition heals
	log "2. catch-up of C after a partition, $REPS times"
	: >"$TMP/catchup.txt"
	want=open
	for ((r = 0; r < REPS; r++)); do
		box_link_down C
		for i in 1 2 3; do
			want=$(other "$want")
			toggle_to "$want" >/dev/null || log "rep $r: toggle on A failed"
		done
		within "$STALE_LIMIT_S" is_stale C || log "rep $r: C did not notice it was cut off"
		t0=$(date +%s%N)
		box_link_up C
		out=$(fp verdict "$t0" "${BOX_ADDR[C]}" "$SITE_PORT" "$want" "$CATCHUP_LIMIT_MS")
		echo "$out" >>"$TMP/catchup.txt"
		log "rep $r: C gives $want $out ms after the heal"
		within 20 box_live C || log "rep $r: C not connected again within 20 s"
	done
	toggle_to open >/dev/null
	wait_verdict C open 5 >/dev/null || log "C: shop not open after the catch-up phase"

	# ---- 3. time to notice staleness
	log "3. staleness of B: its member stopped (SIGSTOP) / isolated"
	: >"$TMP/stale_stop.txt"
	: >"$TMP/stale_iso.txt"
	local n_iso=$((REPS / 2 < 3 ? 3 : REPS / 2)) how file
	for ((r = 0; r < REPS + n_iso; r++)); do
		how=$([[ $r -lt $REPS ]] && echo stop || echo isolate)
		file=$TMP/stale_$([[ $how == stop ]] && echo stop || echo iso).txt
		within 20 box_live B || log "B not live before rep $r"
		ep=$(status_field B fleet.endpoint)
		member=${ep#https://"$LAN_PREFIX".1}
		member=${member%%:*}
		t0=$(date +%s%N)
		if [[ $how == stop ]]; then etcd_stop "$member"; else etcd_isolate "$member"; fi
		out=$(fp status "$t0" "$GATEKEEPERCTL" "$(box_dir B)/control.sock" $((STALE_LIMIT_S * 2000)) |
			tr '\n' ' ')
		if [[ $how == stop ]]; then etcd_cont "$member"; else etcd_rejoin "$member"; fi
		# "stale MS connected MS ENDPOINT"
		read -r -a f <<<"$out"
		echo "${f[1]:--1} ${f[3]:--1} ${f[0]:-none}" >>"$file"
		log "rep $r ($how member $member, B was on $ep): $out"
		etcd_cluster_up >/dev/null || log "the cluster did not come back after rep $r"
	done

	# ---- 4. SYN verdicts with etcd down: fleet box vs single box
	log "4. connect latency at A, the whole etcd cluster down"
	for i in 1 2 3; do
		etcd_kill "$i"
	done
	within "$STALE_LIMIT_S" is_stale A || log "A not stale with etcd down"
	: >"$TMP/synlat.md"
	for r in 1 2 3; do
		box_verdict A | grep -qx open || die "A: shop not open (fleet, round $r)"
		connlat_row "fleet: section, etcd down ($r)" "${BOX_PID[A]}"
		box_stop A >/dev/null || log "box A: exit status not 0"
		FLEET_SECTION=0 box_config A
		box_start A
		box_verdict A | grep -qx open || die "A: shop not open (single box, round $r)"
		connlat_row "single box, no fleet: ($r)" "${BOX_PID[A]}"
		box_stop A >/dev/null || log "box A: exit status not 0"
		connlat_row "no daemon ($r)"
		box_config A
		box_start A
	done

	# ---- the figures
	local t_all t_b t_c t_ctl
	t_all=$(<"$TMP/t_all") t_b=$(<"$TMP/t_b") t_c=$(<"$TMP/t_c") t_ctl=$(<"$TMP/t_ctl")
	local a_line=""
	[[ -z ${FLEET_BENCH_PROBE_A:-} ]] || a_line=$'\n'"   box A's own verdict:             $(<"$TMP/t_a")"
	cat <<-EOF

		gatekeeper fleet benchmark — $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)
		load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine skews every figure)
		3 etcd members ($(etcd --version | head -1)), mTLS; lease_ttl $FLEET_LEASE_TTL, request_timeout $FLEET_REQUEST_TIMEOUT; $(( $(date +%s) - started )) s

		1. toggle on A -> new verdict on B and C, ms from just before gatekeeperctl starts until a client
		   TCP connect gets the new answer (RST for offline reject, SYN/ACK for online; polled every 1 ms)
		   $n_done toggles ($(<"$TMP/t_nreset") offline reject, the rest online)
		   every other box (later of B, C): $t_all
		   box B:                           $t_b
		   box C:                           $t_c
		   gatekeeperctl on A returned:     $t_ctl   (committed, applied on A)$a_line
		   last verdict by tls_probe: B $final_b, C $final_c (want open)
		   $(grep -m1 'flipped back' "$TMP/toggles.err" | sed 's/^# //') (a verdict seen new, then old again before the next toggle)
		   etcd during these toggles, all 3 members (data dir on $(df -T "$TMP" | awk 'NR == 2 { print $2 }')): WAL fsyncs $(disk_delta "$wal0" "$wal1");
		   backend commits $(disk_delta "$commit0" "$commit1")
		   a bare put (curl, JSON gateway, request to reply after the TLS handshake), for comparison:
		     to the leader:   $put_leader
		     to a follower:   $put_follower
	EOF
	echo "2. catch-up after a partition heals (C black-holed, 3 toggles on A, C stale, heal -> C's new verdict), ms:"
	echo "   $(stats <"$TMP/catchup.txt")"
	echo "3. staleness noticed by B (status stale_since != 0) / B connected again and not stale, ms from the event:"
	echo "   (\"missed\": stale and connected elsewhere between two polls, counted at the poll that saw the new endpoint:" \
		"$(grep -c missed "$TMP/stale_stop.txt") of the SIGSTOPs, $(grep -c missed "$TMP/stale_iso.txt") of the isolations)"
	echo "   member SIGSTOPped:     stale $(awk '{ print $1 }' "$TMP/stale_stop.txt" | stats)"
	echo "                          again $(awk '{ print $2 }' "$TMP/stale_stop.txt" | stats)"
	echo "   member isolated:       stale $(awk '{ print $1 }' "$TMP/stale_iso.txt" | stats)"
	echo "                          again $(awk '{ print $2 }' "$TMP/stale_iso.txt" | stats)"
	echo "4. connect latency to A's shop (connlat: 2000 connects, SYN -> SYN/ACK, 200 us apart), etcd cluster down:"
	printf '| %-34s | %7s | %7s | %8s | %6s | %6s |\n' "A" "p50 us" "p99 us" "max us" "fail/slow" "CPU us"
	echo "|------------------------------------|---------|---------|----------|-----------|--------|"
	cat "$TMP/synlat.md"
	echo "5. etcd writes: $w_toggles toggles with --wait, 0.2 s apart: revision +$toggle_writes" \
		"= $(awk -v w="$toggle_writes" -v n="$w_toggles" 'BEGIN { printf "%.2f", w / n }') per toggle;" \
		"idle 5 s: +$idle_writes"
	echo "   step between consecutive committed revisions in 1: $(<"$TMP/t_steps")"
}

main "$@"
