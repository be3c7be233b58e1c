#!/bin/bash
# The packet-path benchmark (issue 5): one command, one table.
#
#   tests/bench/run.sh [--quick] [--flood-seconds S] [BUILDDIR]
#   tests/bench/run.sh --callgrind [BUILDDIR]   user-space instructions per SYN
#
# BUILDDIR (default: build-bench beside this repo's meson.build) must be
# configured with -Dbench=true:  meson setup build-bench -Dbench=true && ninja -C build-bench
#
# Topology, documentation addresses only, IPv4:
#
#   client ns  192.0.2.100/24 ── veth ── gw ns 192.0.2.1 | 198.51.100.1 (forwarding)
#                                           ── veth ── server ns 198.51.100.10 (online site, listener :443)
#                                                                198.51.100.11 (offline site, drop)
#
# synflood (client ns) sends SYNs from 192.0.2.2-.253 to the offline site;
# the decider in the gw ns drops them. Deciders, one after the other:
#   kernel    an nft rule in prerouting at raw priority drops them (no userspace)
#   textbook  tests/bench/textbook.c behind an xt NFQUEUE rule
#   gk-1q     gatekeeperd, queue.count 1, behind the same rule
#   gk-2q     gatekeeperd, queue.count 2, --queue-balance 0:1 --queue-cpu-fanout
# gatekeeperd runs with backend: external and the harness installs the same
# one-line rule for every decider, so all see identical kernel work.
#
# Everything (namespaces with their veths and nft tables, every process, the
# temp dir) carries the PID and is removed by the EXIT trap, also on failure
# or SIGINT. Every load is bounded in count and time.
set -u

QUICK=0
CALLGRIND=0
FLOOD_SECONDS=""
BUILD=""
while (($#)); do
	case $1 in
	--quick) QUICK=1 ;;
	--flood-seconds) FLOOD_SECONDS=$2; shift ;;
	--callgrind) CALLGRIND=1 ;;
	-h | --help) sed -n '2,8p' "$0"; exit 0 ;;
	*) BUILD=$1 ;;
	esac
	shift
done
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${BUILD:-$HERE/../../build-bench}
if ((QUICK)); then
	TRIAL=2 LAT_N=400 FLOOD_SECONDS=${FLOOD_SECONDS:-20}
else
	TRIAL=4 LAT_N=2000 FLOOD_SECONDS=${FLOOD_SECONDS:-300}
fi

GATEKEEPERD=$BUILD/gatekeeperd
SYNFLOOD=$BUILD/tests/bench/synflood
CONNLAT=$BUILD/tests/bench/connlat
TEXTBOOK=$BUILD/tests/bench/textbook
for b in "$GATEKEEPERD" "$SYNFLOOD" "$CONNLAT" "$TEXTBOOK"; do
	[[ -x $b ]] || { echo "missing $b: meson setup BUILDDIR -Dbench=true && ninja -C BUILDDIR" >&2; exit 2; }
done
[[ $(id -u) == 0 ]] || { echo "needs root (network namespaces)" >&2; exit 2; }

readonly NS_C="gkb-$$-client" NS_G="gkb-$$-gw" NS_S="gkb-$$-server"
readonly DEV_C="bc$$" DEV_GC="bgc$$" DEV_GS="bgs$$" DEV_S="bs$$"
readonly CLIENT=192.0.2.100 SRC_NET=192.0.2.0 ONLINE=198.51.100.10 OFFLINE=198.51.100.11
readonly PORT=443 FILLER_PORT=10000
# gatekeeperd's queue.maxlen: sized for bursts (a 100 ms stall at 160k SYN/s);
# the socket buffer follows from it. fail_open false: a full queue drops and
# the kernel counts it (with fail_open true it would accept, uncounted).
readonly MAXLEN=16384
# synflood's thread i runs on CPU i; a one-queue decider gets CPU 1 to
# itself (taskset). Unpinned, the scheduler tends to wake the decider on
# the CPU whose softirq woke it, the generator's, and leaves the other idle.
PIN="taskset -c 1"
WRAP="" # e.g. valgrind, in --callgrind mode
readonly TABLE="bench_$$"
TMP=$(mktemp -d "/tmp/gkb-$$.XXXXXX") || exit 1
CREATED_NS=()
PIDS=()
DAEMON_PID=""
GW_MAC=""

cleanup() {
	local status=$? pid ns
	trap - EXIT INT TERM
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		wait "$pid" 2>/dev/null
	done
	for ns in "${CREATED_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	if [[ -n ${BENCH_KEEP:-} ]]; then log "kept $TMP"; else rm -rf "$TMP"; fi
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

log() { printf '# %s\n' "$*" >&2; }
die() { log "FAILED: $*"; exit 1; }
in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }
calc() { awk "BEGIN { printf \"%.${2:-0}f\", ($1) }"; }

wait_for() { # TRIES CMD...: every 50 ms
	local tries=$1 i
	shift
	for ((i = 0; i < tries; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	return 1
}

# ---------------------------------------------------------------- topology

ns_add() {
	ip netns add "$1" || die "cannot create namespace $1"
	CREATED_NS+=("$1")
	ip -n "$1" link set lo up
}

setup_topology() {
	ns_add "$NS_C"
	ns_add "$NS_G"
	ns_add "$NS_S"
	ip -n "$NS_C" link add "$DEV_C" type veth peer name "$DEV_GC" netns "$NS_G" || die veth
	ip -n "$NS_G" link add "$DEV_GS" type veth peer name "$DEV_S" netns "$NS_S" || die veth
	ip -n "$NS_C" addr add "$CLIENT/24" dev "$DEV_C"
	ip -n "$NS_G" addr add 192.0.2.1/24 dev "$DEV_GC"
	ip -n "$NS_G" addr add 198.51.100.1/24 dev "$DEV_GS"
	ip -n "$NS_S" addr add "$ONLINE/24" dev "$DEV_S"
	ip -n "$NS_S" addr add "$OFFLINE/24" dev "$DEV_S"
	local ns dev
	for ns in "$NS_C:$DEV_C" "$NS_G:$DEV_GC" "$NS_G:$DEV_GS" "$NS_S:$DEV_S"; do
		ip -n "${ns%%:*}" link set "${ns#*:}" up
	done
	ip -n "$NS_C" route add default via 192.0.2.1
	ip -n "$NS_S" route add default via 198.51.100.1
	in_ns "$NS_G" sysctl -qw net.ipv4.ip_forward=1
	for ns in "$NS_C:$DEV_C" "$NS_G:$DEV_GC" "$NS_G:$DEV_GS" "$NS_S:$DEV_S"; do
		dev=${ns#*:}
		wait_for 200 bash -c "ip -n ${ns%%:*} -o link show dev $dev | grep -q 'state UP'" ||
			die "link $dev not up"
	done
	GW_MAC=$(ip -n "$NS_G" link show dev "$DEV_GC" | awk '/link\/ether/ { print $2 }')
	# What reaches the gw for the offline site, before any decider (-400).
	in_ns "$NS_G" nft -f - <<-EOF || die "nft counter"
		table ip $TABLE {
		  counter seen { }
		  chain count {
		    type filter hook prerouting priority -400; policy accept;
		    ip daddr $OFFLINE tcp flags & (syn | ack) == syn counter name seen
		  }
		}
	EOF
	ip netns exec "$NS_S" "$CONNLAT" listen "$ONLINE" "$PORT" 3600 >"$TMP/listener.log" 2>&1 &
	PIDS+=($!)
	wait_for 200 grep -qx listening "$TMP/listener.log" || die "listener did not start"
	# resolves the neighbours both ways before anything is timed
	in_ns "$NS_C" "$CONNLAT" connect "$ONLINE" "$PORT" 20 1000 >/dev/null
}

# ---------------------------------------------------------------- figures

seen_count() {
	in_ns "$NS_G" nft list counter ip "$TABLE" seen | awk '/packets/ { print $2; exit }'
}

# "ID_SEQUENCE DROPPED USER_DROPPED", summed over the queues of the gw ns.
queue_counts() {
	in_ns "$NS_G" cat /proc/net/netfilter/nfnetlink_queue 2>/dev/null |
		awk '{ s += $8; d += $6; u += $7 } END { printf "%.0f %.0f %.0f\n", s, d, u }'
}

kernel_drop_count() {
	in_ns "$NS_G" nft list chain ip "${TABLE}_k" decide 2>/dev/null |
		awk '/counter packets/ { for (i = 1; i < NF; i++) if ($i == "packets") { print $(i+1); exit } }'
}

# CPU time of PID in ns, all threads: the scheduler's exact run time
# (/proc/PID/task/*/schedstat). utime+stime of /proc/PID/stat are sampled
# at the tick, and on this tickless kernel a decider that wakes for a few
# microseconds at a time between ticks is mostly not seen by them.
cpu_ns() {
	[[ -n ${1:-} && -d /proc/$1/task ]] || { echo 0; return; }
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

flood() { # RATE SECONDS [PORTS [THREADS]]: foreground, prints the synflood line
	local rate=$1 secs=$2 ports=${3:-1} threads=${4:-$GEN_THREADS} count dport=$PORT
	((ports > 1)) && dport=$FILLER_PORT
	count=$(calc "($rate > 0 ? $rate : 3000000) * $secs * 1.05 + 64")
	in_ns "$NS_C" "$SYNFLOOD" "$DEV_C" "$GW_MAC" "$SRC_NET" "$OFFLINE" "$dport" \
		--ports "$ports" --rate "$rate" --count "$count" --seconds "$secs" --threads "$threads"
}

# trial RATE SECONDS [PORTS]: sets T_SENT T_SEEN T_DECIDED T_DROPS T_RATE
# (achieved send rate) T_DRATE (decided per s) T_CPU (µs per decided SYN).
trial() {
	local rate=$1 secs=$2 ports=${3:-1} q0 q1 s0 s1 c0 c1 k0 k1 out
	read -r -a q0 <<<"$(queue_counts)"
	s0=$(seen_count)
	k0=$(kernel_drop_count)
	c0=$(cpu_ns "$DECIDER_PID")
	out=$(flood "$rate" "$secs" "$ports")
	# let the queue drain before reading the figures
	sleep 0.3
	read -r -a q1 <<<"$(queue_counts)"
	s1=$(seen_count)
	k1=$(kernel_drop_count)
	c1=$(cpu_ns "$DECIDER_PID")
	T_SENT=$(awk '{ print $2 }' <<<"$out")
	local elapsed
	elapsed=$(awk '{ print $4 }' <<<"$out")
	T_RATE=$(awk '{ print $6 }' <<<"$out")
	T_SEEN=$((s1 - s0))
	if [[ $DECIDER == kernel ]]; then
		T_DECIDED=$((k1 - k0))
		T_DROPS=0
	else
		# a packet refused for a full queue gets no id; one that did not
		# fit in the socket buffer (user_dropped) had one
		T_DROPS=$(((q1[1] - q0[1]) + (q1[2] - q0[2])))
		T_DECIDED=$(((q1[0] - q0[0]) - (q1[2] - q0[2])))
	fi
	T_DRATE=$(calc "$T_DECIDED / $elapsed")
	if ((T_DECIDED > 0)); then
		T_CPU=$(calc "($c1 - $c0) / 1000 / $T_DECIDED" 2)
	else
		T_CPU=nan
	fi
	log "  $DECIDER rate ${rate}: sent $T_SENT ($T_RATE/s) seen $T_SEEN decided $T_DECIDED ($T_DRATE/s) drops $T_DROPS (user $((q1[2] - q0[2]))) cpu $(((c1 - c0) / 1000000)) ms, cpu/SYN ${T_CPU} us"
}

trial_clean() { # every SYN that reached the gw was decided, none dropped by the queue
	((T_DROPS == 0 && T_DECIDED >= T_SEEN && T_SEEN > 0))
}

# capacity: the highest offered rate with zero queue drops. Sets CAPACITY
# and CAP_NOTE ("" or "generator-bound").
capacity() {
	local lo=0 hi r i
	trial 0 "$TRIAL"
	CAP_NOTE=""
	if trial_clean; then
		CAPACITY=$T_RATE
		CAP_NOTE="generator-bound"
		return
	fi
	hi=$T_RATE
	r=$(calc "$T_DRATE * 0.95")
	for ((i = 0; i < 8; i++)); do
		trial "$r" "$TRIAL"
		if trial_clean && [[ $(calc "$T_RATE >= 0.97 * $r") == 1 ]]; then
			lo=$r
			break
		fi
		hi=$r
		r=$(calc "$r * 0.8")
	done
	for ((i = 0; i < 3 && lo > 0; i++)); do
		r=$(calc "($lo + $hi) / 2")
		trial "$r" "$TRIAL"
		if trial_clean && [[ $(calc "$T_RATE >= 0.97 * $r") == 1 ]]; then
			lo=$r
		else
			hi=$r
		fi
	done
	CAPACITY=$lo
}

# latency [FLOOD_RATE]: sets LAT_P50 LAT_P99 LAT_FAIL LAT_SLOW
latency() {
	local rate=${1:-0} out fpid="" secs
	if ((rate > 0)); then
		# long enough to cover the connects; synflood stops by itself
		secs=$(calc "$LAT_N * 0.0006 + 3")
		flood "$rate" "$secs" >"$TMP/bgflood.out" 2>&1 &
		fpid=$!
		PIDS+=("$fpid")
		sleep 0.5
	fi
	out=$(in_ns "$NS_C" "$CONNLAT" connect "$ONLINE" "$PORT" "$LAT_N" 200 3000)
	[[ -n $fpid ]] && wait "$fpid"
	read -r _ _ _ _ _ LAT_FAIL _ LAT_SLOW _ LAT_P50 _ LAT_P99 _ <<<"$out"
	log "  $DECIDER latency (flood $rate/s): $out"
}

# ---------------------------------------------------------------- deciders

queue_rule() { # COUNT
	local target="--queue-num 0"
	(($1 > 1)) && target="--queue-balance 0:$(($1 - 1)) --queue-cpu-fanout"
	# shellcheck disable=SC2086
	in_ns "$NS_G" iptables-nft -w -t raw -A PREROUTING -d 198.51.100.0/24 -p tcp \
		--tcp-flags SYN,ACK SYN -j NFQUEUE $target || die "iptables NFQUEUE rule"
}

remove_rules() {
	in_ns "$NS_G" nft delete table ip raw 2>/dev/null
	in_ns "$NS_G" nft delete table ip "${TABLE}_k" 2>/dev/null
	return 0
}

write_config() { # FILE QUEUES N_SITES
	local file=$1 queues=$2 n=$3 i
	{
		echo "hook: prerouting"
		echo "backend: external"
		echo "queue: { num: 0, count: $queues, fail_open: false, maxlen: $MAXLEN }"
		echo "control: { socket: $TMP/control.sock }"
		echo "state_file: $TMP/state"
		echo "sites:"
		echo "  - { name: shop, addresses: [$ONLINE], ports: [$PORT], state: online }"
		echo "  - { name: blog, addresses: [$OFFLINE], ports: [$PORT], state: offline, action: drop }"
		for ((i = 0; i < n - 2; i++)); do
			echo "  - { name: s$i, addresses: [$OFFLINE], ports: [$((FILLER_PORT + i))], state: offline }"
		done
	} >"$file"
}

# start_decider KIND [N_SITES]: sets DECIDER DECIDER_PID GEN_THREADS READY_MS
start_decider() {
	local kind=$1 n=${2:-10} cfg="$TMP/gk.yaml" log t0 t1 pin=$PIN
	DECIDER=$kind DECIDER_PID="" GEN_THREADS=1 READY_MS=""
	case $kind in
	none) ;;
	kernel)
		in_ns "$NS_G" nft -f - <<-EOF || die "nft drop rule"
			table ip ${TABLE}_k {
			  chain decide {
			    type filter hook prerouting priority -300; policy accept;
			    ip daddr $OFFLINE tcp flags & (syn | ack) == syn counter drop
			  }
			}
		EOF
		;;
	textbook)
		log="$TMP/textbook.log"
		# not in_ns: a backgrounded function is a subshell, $! would be its PID
		ip netns exec "$NS_G" $PIN $WRAP "$TEXTBOOK" 0 "$OFFLINE" >"$log" 2>&1 &
		DECIDER_PID=$!
		PIDS+=("$DECIDER_PID")
		wait_for 1200 grep -qx ready "$log" || die "textbook did not start: $(cat "$log")"
		queue_rule 1
		;;
	gk-1q | gk-2q)
		local queues=${kind:3:1}
		GEN_THREADS=$queues
		write_config "$cfg" "$queues" "$n"
		log="$TMP/gatekeeperd.$kind.$n.log"
		t0=$(date +%s%N)
		[[ $kind == gk-2q ]] && pin=""
		ip netns exec "$NS_G" $pin $WRAP "$GATEKEEPERD" -c "$cfg" >"$log" 2>&1 &
		DECIDER_PID=$!
		PIDS+=("$DECIDER_PID")
		wait_for 1200 grep -q 'ready:' "$log" || die "gatekeeperd did not start: $(cat "$log")"
		t1=$(date +%s%N)
		READY_MS=$(((t1 - t0) / 1000000))
		queue_rule "$queues"
		;;
	esac
	sleep 0.2
}

stop_decider() {
	remove_rules
	if [[ -n $DECIDER_PID ]] && ! kill -0 "$DECIDER_PID" 2>/dev/null; then
		log "$DECIDER (pid $DECIDER_PID) had died: $(tail -n 5 "$TMP"/*.log | tr '\n' ' ')"
	fi
	if [[ -n $DECIDER_PID ]]; then
		kill -TERM "$DECIDER_PID" 2>/dev/null
		wait "$DECIDER_PID" 2>/dev/null
	fi
	DECIDER_PID=""
}

# ---------------------------------------------------------------- the run

declare -A CAP NOTE CPU P50 P99 FP50 FP99 FFAIL FSLOW
main() {
	local started kinds=(kernel textbook gk-1q gk-2q) k common i
	# timings mean little on a busy machine: wait (bounded) for a quiet one
	for ((i = 0; i < ${QUIET_WAIT:-120}; i++)); do
		[[ $(calc "$(cut -d' ' -f1 /proc/loadavg) < 0.7") == 1 ]] && break
		((i == 0)) && log "waiting up to ${QUIET_WAIT:-120} s for the load average to fall below 0.7"
		sleep 1
	done
	LOAD_AT_START=$(cut -d' ' -f1-3 /proc/loadavg)
	started=$(date +%s)
	log "build $BUILD, $(nproc) CPUs, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
	log "mode $([[ $QUICK == 1 ]] && echo quick || echo full): trial ${TRIAL}s, $LAT_N connects, flood ${FLOOD_SECONDS}s"
	setup_topology

	start_decider none
	latency
	P50[none]=$LAT_P50 P99[none]=$LAT_P99
	stop_decider

	for k in "${kinds[@]}"; do
		log "== $k"
		start_decider "$k"
		capacity
		CAP[$k]=$CAPACITY NOTE[$k]=$CAP_NOTE
		latency
		P50[$k]=$LAT_P50 P99[$k]=$LAT_P99
		latency "$(calc "$CAPACITY * 0.5")"
		FP50[$k]=$LAT_P50 FP99[$k]=$LAT_P99 FFAIL[$k]=$LAT_FAIL FSLOW[$k]=$LAT_SLOW
		stop_decider
	done

	# CPU per SYN at one common load, below every userspace capacity
	common=$(calc "${CAP[textbook]} * 0.8")
	((common > 0)) || common=20000
	for k in textbook gk-1q gk-2q; do
		start_decider "$k"
		trial "$common" $((TRIAL * 2))
		CPU[$k]=$T_CPU
		stop_decider
	done

	# 10 vs 10,000 sites, the flood spread over the sites' ports
	local n sites_rate
	sites_rate=$(calc "${CAP[gk-1q]} * 0.5")
	((sites_rate > 0)) || sites_rate=20000
	for n in 10 10000; do
		start_decider gk-1q "$n"
		trial "$sites_rate" $((TRIAL * 2)) $((n - 2))
		CPU[sites$n]=$T_CPU
		CPU[ready$n]=$READY_MS
		CPU[sitesclean$n]=$(trial_clean && echo yes || echo no)
		stop_decider
	done

	# RSS before and after a long flood at half the 1-queue capacity
	local rss0 rss1 frate
	frate=$(calc "${CAP[gk-1q]} * 0.5")
	start_decider gk-1q
	trial "$frate" 2
	rss0=$(rss_kib "$DECIDER_PID")
	trial "$frate" "$FLOOD_SECONDS"
	rss1=$(rss_kib "$DECIDER_PID")
	local flood_sent=$T_SENT flood_drops=$T_DROPS
	stop_decider

	report "$common" "$sites_rate" "$rss0" "$rss1" "$frate" "$flood_sent" "$flood_drops" \
		$(($(date +%s) - started))
}

# Instructions per decided SYN in user space, textbook vs gk-1q, counted by
# callgrind (repeatable where timings are not): each decider runs twice,
# with N and with 3N SYNs at a rate it keeps up with under valgrind; the
# difference divided by the extra SYNs leaves start-up and shut-down out.
callgrind_main() {
	local k n=20000 rate=4000 runs i ir decided out
	setup_topology
	echo "| decider | Ir per SYN (user space) | SYNs (run 1 / run 2) |"
	echo "|---|---|---|"
	for k in textbook gk-1q; do
		runs=()
		for i in 1 3; do
			out="$TMP/callgrind.$k.$i"
			WRAP="valgrind --tool=callgrind --callgrind-out-file=$out"
			start_decider "$k"
			trial "$rate" $((n * i / rate))
			decided=$T_DECIDED
			stop_decider
			ir=$(awk '/^(summary|totals):/ { print $2; exit }' "$out")
			runs+=("$ir" "$decided")
			log "  $k: $decided SYNs, $ir Ir"
			[[ -n ${KEEP_PROFILE:-} ]] && cp "$out" "$KEEP_PROFILE.$k.$i"
		done
		echo "| $k | $(calc "(${runs[2]} - ${runs[0]}) / (${runs[3]} - ${runs[1]})") | ${runs[1]} / ${runs[3]} |"
	done
	WRAP=""
}

added() { calc "$1 - $2" 0; }

report() {
	local common=$1 sites_rate=$2 rss0=$3 rss1=$4 frate=$5 flood_sent=$6 flood_drops=$7 took=$8 k
	echo
	echo "gatekeeper packet-path benchmark — $(nproc) CPUs, kernel $(uname -r), $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "load average at start: $LOAD_AT_START (other work on the machine skews every figure)"
	echo "mode $([[ $QUICK == 1 ]] && echo quick || echo full), ${took} s; capacity = highest offered SYN/s with 0 kernel queue drops (trials of ${TRIAL} s)"
	echo
	printf '| %-9s | %13s | %11s | %16s | %12s | %20s | %14s |\n' decider "capacity SYN/s" "CPU µs/SYN" \
		"connect p50/p99" "added p99" "p50/p99 under flood" "flood fail/slow"
	printf '|%s|%s|%s|%s|%s|%s|%s|\n' ----------- --------------- ------------- ------------------ \
		-------------- ---------------------- ----------------
	printf '| %-9s | %14s | %11s | %16s | %12s | %20s | %15s |\n' "no rule" - - \
		"${P50[none]}/${P99[none]} µs" - - -
	for k in kernel textbook gk-1q gk-2q; do
		printf '| %-9s | %14s | %11s | %16s | %12s | %20s | %15s |\n' "$k" \
			"${CAP[$k]}${NOTE[$k]:+ *}" "${CPU[$k]:-—}" "${P50[$k]}/${P99[$k]} µs" \
			"$(added "${P99[$k]}" "${P99[none]}") µs" "${FP50[$k]}/${FP99[$k]} µs" \
			"${FFAIL[$k]}/${FSLOW[$k]} of $LAT_N"
	done
	echo
	echo "CPU µs/SYN: the decider's CPU time (schedstat, all threads) over a ${common} SYN/s flood of $((TRIAL * 2)) s; kernel: no process (softirq)."
	echo "* generator-bound: no drops even at the generator's top rate (1 sender thread; 2 for gk-2q)."
	echo "flood: offline-site SYNs at 50% of that decider's capacity while the connects run; slow = over 500 ms."
	echo
	echo "| sites | gk-1q CPU µs/SYN at ${sites_rate}/s over all sites | 0 drops | start to ready |"
	echo "|---|---|---|---|"
	echo "| 10 | ${CPU[sites10]} | ${CPU[sitesclean10]} | ${CPU[ready10]} ms |"
	echo "| 10000 | ${CPU[sites10000]} | ${CPU[sitesclean10000]} | ${CPU[ready10000]} ms |"
	echo
	echo "RSS gk-1q: ${rss0} KiB before, ${rss1} KiB after ${FLOOD_SECONDS} s at ${frate} SYN/s ($flood_sent SYNs, $flood_drops queue drops): growth $((rss1 - rss0)) KiB"
	echo
	echo "targets:"
	target "gk-1q CPU/SYN <= 0.5 x textbook" "$(calc "${CPU[gk-1q]} <= 0.5 * ${CPU[textbook]}")" \
		"$(calc "${CPU[gk-1q]} / ${CPU[textbook]}" 2) x"
	target "gk-1q capacity >= 2 x textbook" "$(calc "${CAP[gk-1q]} >= 2 * ${CAP[textbook]}")" \
		"$(calc "${CAP[gk-1q]} / ${CAP[textbook]}" 2) x"
	target "gk-1q capacity >= 0.5 x kernel-only" "$(calc "${CAP[gk-1q]} >= 0.5 * ${CAP[kernel]}")" \
		"$(calc "${CAP[gk-1q]} / ${CAP[kernel]}" 2) x"
	target "gk-1q added p99 idle <= 100 µs" "$(calc "${P99[gk-1q]} - ${P99[none]} <= 100")" \
		"$(added "${P99[gk-1q]}" "${P99[none]}") µs"
	target "no failed online connect under a 50% flood (gk-1q, gk-2q)" \
		"$(calc "${FFAIL[gk-1q]} + ${FFAIL[gk-2q]} + ${FSLOW[gk-1q]} + ${FSLOW[gk-2q]} == 0")" \
		"${FFAIL[gk-1q]}+${FFAIL[gk-2q]} failed, ${FSLOW[gk-1q]}+${FSLOW[gk-2q]} slow"
	target "10000 sites within 10% of 10 sites" \
		"$(calc "${CPU[sites10000]} <= 1.1 * ${CPU[sites10]}")" \
		"$(calc "${CPU[sites10000]} / ${CPU[sites10]}" 2) x"
	target "RSS growth <= 1 MiB" "$(calc "$rss1 - $rss0 <= 1024")" "$((rss1 - rss0)) KiB"
}

target() { printf '  %-58s %-4s (%s)\n' "$1" "$([[ $2 == 1 ]] && echo met || echo MISSED)" "$3"; }

if ((CALLGRIND)); then
	callgrind_main
else
	main
fi
