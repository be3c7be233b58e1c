#!/bin/bash
# queue_watch.sh STOPFILE MAXLEN [PID]: samples NFQUEUE 0 of the current
# network namespace every 10 ms until STOPFILE exists, to say *when* the
# kernel queue filled and *why*: the queue's depth, its overflow counter,
# how late this sampler itself woke up (a late wake-up means the whole
# machine, not only gatekeeperd, was not running what it should), and,
# given gatekeeperd's PID, what its queue worker thread (gk-queue0) was
# doing: its state (R running or runnable, S sleeping, D in the kernel
# uninterruptibly), how long it ran and how long it waited for a CPU in the
# last interval (from /proc/.../schedstat), its major page faults, and the
# first frames of its kernel stack when it was not running.
#
# Prints a line for each notable sample (depth over MAXLEN/4, new queue
# drops, or a wake-up 20 ms late or more) and a summary last:
#   T_MS depth D dropped +N late L_MS [worker S ran R_MS waited W_MS majflt +F [stack]]
#   watch: S samples, max depth D of MAXLEN, max late L ms, drops N
# T_MS counts from the sampler's start. Runs on builtins only (no fork per
# sample), so it costs about 1% of a core.
set -u
stop=$1 maxlen=$2 pid=${3:-}
proc=/proc/net/netfilter/nfnetlink_queue
exec 9<> <(:) # read -t on a pipe nobody writes to: a sleep without a fork

worker=""
if [[ -n $pid ]]; then
	for task in /proc/"$pid"/task/*; do
		read -r comm <"$task/comm" 2>/dev/null || continue
		[[ $comm == gk-queue0 ]] && worker=$task
	done
	[[ -n $worker ]] || echo "watch: no gk-queue0 thread in $pid: the worker is not watched"
fi

# worker_sample: sets W_STATE, W_RUN_NS, W_WAIT_NS, W_MAJFLT (the 12th
# field of stat; comm has no space here).
worker_sample() {
	local _x
	read -r _x _x W_STATE _x _x _x _x _x _x _x _x W_MAJFLT _x <"$worker/stat" 2>/dev/null || return 1
	read -r W_RUN_NS W_WAIT_NS _x <"$worker/schedstat" 2>/dev/null || return 1
}

t0=${EPOCHREALTIME/./}
samples=0 max_depth=0 max_late=0 drops=0 first_dropped="" prev=0
W_STATE=R # until a sample says otherwise (set -u: the thread may be gone)
prev_run=0 prev_wait=0 prev_majflt=0
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
	extra=""
	if [[ -n $worker ]] && worker_sample; then
		extra=" worker $W_STATE ran $(((W_RUN_NS - prev_run) / 1000000)) waited"
		extra+=" $(((W_WAIT_NS - prev_wait) / 1000000)) majflt +$((W_MAJFLT - prev_majflt))"
		prev_run=$W_RUN_NS prev_wait=$W_WAIT_NS prev_majflt=$W_MAJFLT
	fi
	samples=$((samples + 1))
	((depth > max_depth)) && max_depth=$depth
	((late > max_late)) && max_late=$late
	new=$((dropped - prev))
	prev=$dropped
	drops=$((dropped - first_dropped))
	if ((depth > maxlen / 4 || new > 0 || late >= 20)); then
		if [[ -n $worker && $W_STATE != R ]]; then
			# where in the kernel it sleeps: the first three frames
			stack=""
			while read -r _ frame && [[ ${#stack} -lt 160 ]]; do
				stack+=" ${frame%%+*}"
			done <"$worker/stack" 2>/dev/null
			extra+=" [${stack# }]"
		fi
		printf '%d depth %d dropped +%d late %d%s\n' $(((10#$now - 10#$t0) / 1000)) \
			"$depth" "$new" "$late" "$extra"
	fi
done
printf 'watch: %d samples, max depth %d of %d, max late %d ms, drops %d\n' \
	"$samples" "$max_depth" "$maxlen" "$max_late" "$drops"
