#!/bin/bash
# The soak (issue 7 part 4): SYNs at 50% of capacity to a mix of six sites
# for N minutes while one site changes state every second, through the
# control socket; every SYN's answer is checked against the state its site
# had at that moment (syn_ledger's ledger; no SYN goes to a site from
# maxlen / rate + 50 ms, at most 500 ms, before its toggle until the OK, the
# longest a full queue holds a SYN before the daemon decides it), and the
# daemon's RSS and fd count are sampled every 10 s.
#
#   tests/soak/run.sh [--minutes N] [--rate PPS] [--maxlen N] [BUILDDIR]
#
# BUILDDIR: default build/ beside this repo's meson.build (gatekeeperd,
# gatekeeperctl and tests/e2e/{syn_ledger,tls_server,tls_probe} built).
# --minutes: default 10. --rate: default half the capacity measured first
# (3 s of SYNs to the same mix as fast as syn_ledger sends them: the
# daemon's decided rate if the kernel queue overflowed, else the
# generator's rate, then the daemon is not the limit). --maxlen: the
# kernel queue's length (queue.maxlen), default 16384 as in the shipped
# config.
#
# Beside it, queue_watch.sh samples the kernel queue every 10 ms: a queue
# overflow is shown with its depth and with how late the sampler itself
# woke up (a machine-wide stall, not gatekeeperd's alone), and every 10 s
# the machine's CPU use and steal time are logged.
#
# Passes (exit 0) when no SYN got another verdict than its site's state,
# no toggle failed, the RSS grew by at most 1 MiB after the first minute
# and the fd count stayed flat (the fewest fds held in the last minute no
# more than in the first: a sample may catch a connection or a pipe in use).
# Topology and clean-up: tests/e2e/lib.sh (namespaces per PID, documentation
# addresses only, everything removed on exit).
set -u
MINUTES=10
RATE=""
MAXLEN=16384
BUILD=""
while (($#)); do
	case $1 in
	--minutes) MINUTES=$2; shift ;;
	--rate) RATE=$2; shift ;;
	--maxlen) MAXLEN=$2; shift ;;
	-h | --help) sed -n '2,30p' "$0"; exit 0 ;;
	*) BUILD=$1 ;;
	esac
	shift
done
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=$(cd "${BUILD:-$HERE/../../build}" && pwd) || exit 2
export GATEKEEPERD=$BUILD/gatekeeperd GATEKEEPERCTL=$BUILD/gatekeeperctl
export TLS_SERVER=$BUILD/tests/e2e/tls_server TLS_PROBE=$BUILD/tests/e2e/tls_probe
export SYN_LEDGER=$BUILD/tests/e2e/syn_ledger SRCDIR=$HERE/../e2e
# shellcheck source=../e2e/lib.sh
source "$SRCDIR/lib.sh"
# shellcheck source=../e2e/fault_lib.sh
source "$SRCDIR/fault_lib.sh"

readonly HOOK=prerouting
readonly RSS_SLACK_KIB=1024
LEDGER_PID=""
WATCH_PID=""

write_soak_config() { # FILE FAIL_OPEN
	cat >"$1" <<-EOF
		hook: $HOOK
		backend: ${E2E_BACKEND:-auto}
		queue: { num: 0, count: 1, fail_open: $2, maxlen: $MAXLEN }
		control: { socket: $TMP/control.sock }
		state_file: $TMP/state
		sites:
		  - { name: shop, addresses: [$SHOP4], ports: [$SITE_PORT], state: online }
		  - { name: blog, addresses: [$BLOG4], ports: [$SITE_PORT], state: offline, action: drop }
		  - { name: wiki, addresses: [$WIKI4], ports: [$SITE_PORT], state: offline, action: reject }
		  - { name: shop-alt, addresses: [$SHOP4], ports: [$OTHER_PORT], state: online }
		  - { name: blog-alt, addresses: [$BLOG4], ports: [$OTHER_PORT], state: offline, action: drop }
		  - { name: wiki-alt, addresses: [$WIKI4], ports: [$OTHER_PORT], state: offline, action: reject }
	EOF
}

SITES=("shop=$SHOP4:$SITE_PORT:accept" "blog=$BLOG4:$SITE_PORT:drop" "wiki=$WIKI4:$SITE_PORT:reject"
	"shop-alt=$SHOP4:$OTHER_PORT:accept" "blog-alt=$BLOG4:$OTHER_PORT:drop"
	"wiki-alt=$WIKI4:$OTHER_PORT:reject")

packets_decided() { ctl stats | sed -n 's/^packets *\([0-9]*\).*/\1/p'; }

# Sets RATE to half the capacity, unless given.
calibrate() {
	local p0 p1 qd0 qd1 line sent capacity what
	write_soak_config "$TMP/calibrate.yaml" false
	start_daemon "$NS_GW" "$TMP/calibrate.yaml"
	p0=$(packets_decided)
	qd0=$(kernel_queue queue_dropped)
	local site any=()
	for site in "${SITES[@]}"; do any+=("${site%:*}:any"); done
	line=$(ledger --rate 0 --seconds 3 --wait-ms 300 "${any[@]}" | tail -n 1)
	p1=$(packets_decided)
	qd1=$(kernel_queue queue_dropped)
	stop_daemon >/dev/null
	sent=$(ledger_field "$line" sent)
	if ((qd1 > qd0)); then
		capacity=$(((p1 - p0) / 3)) what="daemon-bound: the kernel queue overflowed"
	else
		capacity=$((sent / 3)) what="generator-bound: no queue drop, the daemon kept up"
	fi
	log "capacity: $capacity SYN/s ($what; $((p1 - p0)) decided, $((qd1 - qd0)) queue drops in 3 s)"
	CAPACITY=$capacity CAPACITY_NOTE=$what
	[[ -n $RATE ]] || RATE=$((capacity / 2))
}

# cpu_ticks: "BUSY TOTAL STEAL", the machine's CPU ticks since boot.
cpu_ticks() {
	awk '$1 == "cpu" { t = 0; for (i = 2; i <= NF; i++) t += $i
		print t - $5 - $6, t, $9 }' /proc/stat
}

CPU_PREV=""
sample() { # appends "SECONDS RSS_KIB FDS CPU_BUSY_% STEAL_TICKS" to $TMP/samples
	local now busy=0 steal=0
	now=$(cpu_ticks)
	if [[ -n $CPU_PREV ]]; then
		read -r busy steal < <(echo "$CPU_PREV $now" | awk '{
			dt = $5 - $2; printf "%d %d\n", dt ? 100 * ($4 - $1) / dt : 0, $6 - $3 }')
	fi
	CPU_PREV=$now
	echo "$1 $(rss_kib "$DAEMON_PID") $(fd_count "$DAEMON_PID") $busy $steal" >>"$TMP/samples"
}

soak_cleanup() {
	local status=$?
	[[ -n $LEDGER_PID ]] && kill "$LEDGER_PID" 2>/dev/null && wait "$LEDGER_PID" 2>/dev/null
	[[ -n $WATCH_PID ]] && kill "$WATCH_PID" 2>/dev/null && wait "$WATCH_PID" 2>/dev/null
	(exit "$status")
	cleanup
}

main() {
	local seconds=$((MINUTES * 60)) t start line status rss_first rss_last rss_max fd_min fd_max qd0 qd1
	local fd_first fd_last settle
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL SYN_LEDGER
	e2e_begin
	trap soak_cleanup EXIT
	setup_topology
	start_tls_server "$SITE_PORT"
	start_tls_server "$OTHER_PORT"
	calibrate
	# fail_open false: an overflowing queue would show as drops (counted by
	# the kernel and as ledger mismatches), not pass unseen as accepts
	write_soak_config "$TMP/gk.yaml" false
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	qd0=$(kernel_queue queue_dropped)
	# A SYN is decided with the state at the moment the worker takes it
	# from the queue, which may be that long after it was sent: a full
	# queue holds MAXLEN / RATE seconds of SYNs. No SYN goes to a site
	# for that long (and 50 ms) before its toggle, or a SYN still queued
	# when the toggle lands would be charged to the old state.
	settle=$((MAXLEN * 1000 / RATE + 50))
	((settle <= 500)) || settle=500
	log "soak: $MINUTES min at $RATE SYN/s over ${#SITES[@]} sites, one toggle per second, maxlen $MAXLEN, settle $settle ms"
	in_ns "$NS_GW" bash "$HERE/queue_watch.sh" "$TMP/watch.stop" "$MAXLEN" "$DAEMON_PID" >"$TMP/watch.out" &
	WATCH_PID=$!
	ip netns exec "$NS_CLIENT" "$SYN_LEDGER" --src "$CLIENT4" --rate "$RATE" --seconds "$seconds" \
		--wait-ms 1000 --control "$TMP/control.sock" --toggle-ms 1000 --settle-ms "$settle" \
		--progress 60 "${SITES[@]}" >"$TMP/ledger.out" 2>"$TMP/ledger.err" &
	LEDGER_PID=$!
	start=$(date +%s)
	: >"$TMP/samples"
	while pid_alive "$LEDGER_PID"; do
		t=$(($(date +%s) - start))
		sample "$t"
		sleep 10
	done
	wait "$LEDGER_PID"
	status=$?
	LEDGER_PID=""
	touch "$TMP/watch.stop"
	wait "$WATCH_PID"
	WATCH_PID=""
	sample "$(($(date +%s) - start))"
	qd1=$(kernel_queue queue_dropped)
	sed 's/^/# ledger: /' "$TMP/ledger.err"
	sed 's/^/# /' "$TMP/ledger.out"
	sed 's/^/# queue: /' "$TMP/watch.out"
	sed 's/^/# sample: /' "$TMP/samples"
	line=$(tail -n 1 "$TMP/ledger.out")
	# RSS after the first minute (or the first sample of a shorter run) against the last
	rss_first=$(awk '$1 >= 60 { print $2; exit }' "$TMP/samples")
	[[ -n $rss_first ]] || rss_first=$(awk 'NR == 1 { print $2 }' "$TMP/samples")
	rss_last=$(tail -n 1 "$TMP/samples" | cut -d' ' -f2)
	rss_max=$(sort -n -k2 "$TMP/samples" | tail -n 1 | cut -d' ' -f2)
	fd_min=$(sort -n -k3 "$TMP/samples" | head -n 1 | cut -d' ' -f3)
	fd_max=$(sort -n -k3 "$TMP/samples" | tail -n 1 | cut -d' ' -f3)
	# a sample may catch a toggle's connection or the rules watchdog's
	# pipes to its *-save child: a leak shows in the fewest fds held, so
	# the first minute's lowest count is compared with the last minute's
	fd_first=$(awk '$1 < 60' "$TMP/samples" | sort -n -k3 | head -n 1 | cut -d' ' -f3)
	fd_last=$(tail -n 6 "$TMP/samples" | sort -n -k3 | head -n 1 | cut -d' ' -f3)
	echo
	echo "soak: $MINUTES min, $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "capacity $CAPACITY SYN/s ($CAPACITY_NOTE); offered $RATE SYN/s"
	echo "ledger: $line"
	echo "kernel queue drops during the soak: $((qd1 - qd0))"
	echo "RSS: $rss_first KiB after the first minute, $rss_last KiB at the end, max $rss_max KiB ($(wc -l <"$TMP/samples") samples)"
	echo "fds: $fd_min..$fd_max"
	echo "machine: CPU busy $(awk 'NR > 1 { s += $4; if ($4 > m) m = $4; n++ } END {
		printf "%d %% on average, %d %% at most", n ? s / n : 0, m }' "$TMP/samples") per 10 s;" \
		"steal $(awk '{ s += $5 } END { print s }' "$TMP/samples") ticks"
	echo "queue $(tail -n 1 "$TMP/watch.out")"
	check "every verdict matched its site's state, every toggle took" eval "(( $status == 0 ))"
	check "SYNs were sent and toggles happened" \
		eval "(( \$(ledger_field '$line' sent) > 0 && \$(ledger_field '$line' toggles) >= $seconds - 5 ))"
	check "RSS flat: grew $((rss_last - rss_first)) KiB (at most $RSS_SLACK_KIB)" \
		eval "(( $rss_last - $rss_first <= RSS_SLACK_KIB ))"
	check "fd count flat: $fd_first at the least in the first minute, $fd_last in the last" \
		eval "(( $fd_last <= $fd_first ))"
	check "the daemon is alive and exits 0 on SIGTERM" stop_daemon
	finish
}

main "$@"
