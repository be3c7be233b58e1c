#!/bin/bash
# queue_watch.sh STOPFILE MAXLEN: samples NFQUEUE 0 of the current network
# namespace every 10 ms until STOPFILE exists, to say *when* the kernel
# queue filled and *why*: the queue's depth, its overflow counter, and how
# late this sampler itself woke up (a late wake-up means the whole machine,
# not only gatekeeperd, was not running what it should).
#
# Prints a line for each notable sample (depth over MAXLEN/4, new queue
# drops, or a wake-up 20 ms late or more) and a summary last:
#   T_MS depth D dropped +N late L_MS
#   watch: S samples, max depth D of MAXLEN, max late L ms, drops N
# T_MS counts from the sampler's start. Runs on builtins only (no fork per
# sample), so it costs about 1% of a core.
set -u
stop=$1 maxlen=$2
proc=/proc/net/netfilter/nfnetlink_queue
exec 9<> <(:) # read -t on a pipe nobody writes to: a sleep without a fork

usec() { local t=${EPOCHREALTIME/./}; echo $((10#$t)); }

t0=$(usec)
samples=0 max_depth=0 max_late=0 drops=0 first_dropped=""
while [[ ! -e $stop ]]; do
	before=${EPOCHREALTIME/./}
	read -r -t 0.01 -u 9 _
	now=${EPOCHREALTIME/./}
	late=$(((10#$now - 10#$before - 10000) / 1000))
	# queue_num portid queue_total copy_mode copy_range queue_dropped ...
	depth=0 dropped=""
	while read -r num _ total _ _ qdropped _; do
		[[ $num == 0 ]] && depth=$total dropped=$qdropped
	done <"$proc"
	[[ -n $dropped ]] || continue # no listener on queue 0 (yet)
	[[ -n $first_dropped ]] || first_dropped=$dropped prev=$dropped
	samples=$((samples + 1))
	((depth > max_depth)) && max_depth=$depth
	((late > max_late)) && max_late=$late
	new=$((dropped - prev))
	prev=$dropped
	drops=$((dropped - first_dropped))
	if ((depth > maxlen / 4 || new > 0 || late >= 20)); then
		printf '%d depth %d dropped +%d late %d\n' $(((10#$now - t0) / 1000)) "$depth" "$new" "$late"
	fi
done
printf 'watch: %d samples, max depth %d of %d, max late %d ms, drops %d\n' \
	"$samples" "$max_depth" "$maxlen" "$max_late" "$drops"
