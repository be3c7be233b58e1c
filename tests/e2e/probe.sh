#!/bin/bash
# probe.sh: `gatekeeperd --check` tells what the running kernel offers and
# which backend auto picks, names the kernel option of what is missing, and
# refuses a backend that cannot work; a missing iptables tool is named with
# the package to install; the daemon never runs modprobe or insmod.
# Everything runs in a namespace of its own (the nft probes are dry-run
# transactions anyway); the missing-tool case hides the tools with
# /dev/null bind mounts in a private mount namespace.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

NS=""

check_out() { # NAME ARGS... -> $TMP/NAME.out, $TMP/NAME.status
	local name=$1
	shift
	in_ns "$NS" "$GATEKEEPERD" "$@" >"$TMP/$name.out" 2>&1
	echo $? >"$TMP/$name.status"
}

shows() { # NAME STATUS REGEX...: exit status and every REGEX in the output
	local name=$1 want=$2 re status=0
	shift 2
	sed 's/^/| /' "$TMP/$name.out"
	echo "exit status $(cat "$TMP/$name.status"), want $want"
	[[ $(cat "$TMP/$name.status") == "$want" ]] || status=1
	for re in "$@"; do
		grep -qE -- "$re" "$TMP/$name.out" || { echo "missing: $re"; status=1; }
	done
	return "$status"
}

with_backend() { # BACKEND FILE
	sed "s/^backend: .*/backend: $1/" "$SOURCE_ROOT/conf/demo.yaml" >"$2"
}

# The tools hidden: each tool path the daemon searches that exists gets
# /dev/null bind-mounted over it (a symlink's target is covered).
hidden_tools_check() { # NAME TOOL-GLOB ARGS...
	local name=$1 glob=$2
	shift 2
	# shellcheck disable=SC2016 # expanded by the inner bash
	unshare -m --propagation private bash -c '
		glob=$1; shift
		for d in /usr/sbin /sbin /usr/local/sbin /usr/bin; do
			for f in $d/$glob; do
				[[ -e $f ]] && { mount --bind /dev/null "$f" || exit 99; }
			done
		done
		exec "$@"' bash "$glob" ip netns exec "$NS" "$GATEKEEPERD" "$@" >"$TMP/$name.out" 2>&1
	echo $? >"$TMP/$name.status"
}

# strace -f over a start, a reload and a stop: the execve calls made.
execs_of_a_cycle() {
	local config=$1 i pid
	# LeakSanitizer cannot run under ptrace: in an ASan build, no leak check
	# for this one traced run (every other run of the daemon has it)
	ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" \
		strace -f -qq -e trace=execve -e signal=none -o "$TMP/strace.out" \
		ip netns exec "$NS" "$GATEKEEPERD" -c "$config" >"$TMP/cycle.log" 2>&1 &
	local strace_pid=$!
	for ((i = 0; i < WAIT_TIMEOUT * 20; i++)); do
		grep -q 'ready:' "$TMP/cycle.log" && break
		sleep 0.05
	done
	grep -q 'ready:' "$TMP/cycle.log" || { cat "$TMP/cycle.log"; end_process "$strace_pid"; return 1; }
	pid=$(pgrep -P "$strace_pid" -x gatekeeperd)
	"$GATEKEEPERCTL" -s "$TMP/control.sock" reload || return 1
	end_process "$pid" TERM
	wait "$strace_pid"
	echo "programs executed:"
	grep -o 'execve("[^"]*"' "$TMP/strace.out" | sort | uniq -c
}

no_module_loading() {
	execs_of_a_cycle "$1" || return 1
	grep -q 'execve("[^"]*iptables\|execve("[^"]*gatekeeperd' "$TMP/strace.out" ||
		{ echo "strace saw nothing: not a trace"; return 1; }
	! grep -E 'execve\("[^"]*(modprobe|insmod|kmod)"' "$TMP/strace.out"
}

main() {
	require_environment GATEKEEPERD GATEKEEPERCTL
	e2e_begin
	NS="gk-$$-probe"
	ns_add "$NS"

	local want_backend nft_queue
	check_out auto --check -c "$SOURCE_ROOT/conf/demo.yaml"
	check "--check lists every kernel feature and the tools" shows auto 0 \
		'^  nf_tables +(yes|no)' '^  nft queue expression +(yes|no)' \
		'^  nft reject expression +(yes|no)' '^  xt NFQUEUE target +(yes|no)' \
		'^  nfnetlink_queue +(yes|no)' '^  iptables-nft-restore +(yes|no)' \
		'^  iptables-legacy-restore +(yes|no)'
	check "--check: every missing feature names its kernel option" negate \
		grep -E '^  (nf_tables|nft .*|xt .*|nfnetlink_queue) +no$' "$TMP/auto.out"
	nft_queue=$(sed -n 's/^  nft queue expression *\(yes\|no\).*/\1/p' "$TMP/auto.out")
	if [[ $nft_queue == no ]]; then
		# this machine's kernel: nf_tables without the nft queue expression
		check "nft queue missing: named as CONFIG_NFT_QUEUE" shows auto 0 \
			'^  nft queue expression +no  \(kernel option CONFIG_NFT_QUEUE\)$'
		want_backend='xt \(iptables-(nft|legacy)\)'
		grep -qE '^  nf_tables +yes' "$TMP/auto.out" &&
			grep -qE '^  iptables-nft-restore +yes' "$TMP/auto.out" &&
			want_backend='xt \(iptables-nft\)'
		check "nft queue missing: auto picks $want_backend" shows auto 0 \
			"^backend: $want_backend \\(config: auto\\)$"
		with_backend nft "$TMP/nft.yaml"
		check_out nft --check -c "$TMP/nft.yaml"
		check "backend: nft without the nft queue expression: exit 1, naming CONFIG_NFT_QUEUE" \
			shows nft 1 'no usable rules backend: backend nft: .*CONFIG_NFT_QUEUE'
		check_out nft-start -c "$TMP/nft.yaml"
		check "... and the daemon refuses to start the same way" \
			shows nft-start 1 'CONFIG_NFT_QUEUE'
	else
		check "nft queue present: auto picks nft" shows auto 0 '^backend: nft \(config: auto\)$'
	fi
	check_out quiet --check --quiet -c "$SOURCE_ROOT/conf/demo.yaml"
	# shellcheck disable=SC2016 # expanded by eval
	check "--check --quiet: exit 0, prints nothing" eval '[[ ! -s $TMP/quiet.out ]] && shows quiet 0'

	with_backend xt-nft "$TMP/xt-nft.yaml"
	hidden_tools_check no-tool 'iptables-nft-restore' --check -c "$TMP/xt-nft.yaml"
	check "xt-nft without iptables-nft-restore: --check exits 1, says apt-get install iptables" \
		shows no-tool 1 'iptables-nft-restore +no' \
		'iptables-nft-restore not found: apt-get install iptables'
	hidden_tools_check no-tool-start 'ip*tables-*-restore' -c "$TMP/xt-nft.yaml"
	check "... and the daemon refuses to start, with the same message" \
		shows no-tool-start 1 'iptables-nft-restore not found: apt-get install iptables'
	check "... having installed nothing" no_daemon_rules "$NS"

	if command -v strace >/dev/null; then
		write_config "$TMP/cycle.yaml" prerouting
		check "start, reload, stop: no modprobe, insmod or kmod executed (strace -f)" \
			no_module_loading "$TMP/cycle.yaml"
		check "... and the rules are gone" no_daemon_rules "$NS"
	else
		log "SKIP the modprobe check: strace is not installed"
	fi
	finish
}

main "$@"
