#!/bin/bash
# Builds the libFuzzer targets (clang, ASan+UBSan, in BUILDDIR, default
# build-fuzz/) and runs each for SECONDS (default 60) on a copy of its
# committed corpus, so a run never grows tests/fuzz/corpus/. Prints one line
# per target (executions, corpus size, result) and, last, "N passed, N
# failed" with each target counted as one test. Exits non-zero on any
# crash, leak, sanitizer report, timeout or failed check.
#
#   tests/fuzz/run.sh [SECONDS]
#
# Environment: FUZZ_BUILDDIR (build-fuzz), FUZZ_JOBS (targets run at once;
# the number of CPUs), FUZZ_KEEP=1 keeps the grown corpora (path printed).
# Crash inputs are kept in BUILDDIR/fuzz-artifacts/ either way.
set -uo pipefail

cd "$(dirname "$0")/../.."
seconds=${1:-60}
builddir=${FUZZ_BUILDDIR:-build-fuzz}
jobs=${FUZZ_JOBS:-$(nproc)}
targets=(packet clienthello config control control_session state textsafe checker_proto sni_hold etcd_json
	fleet_value)
# Per target: its dictionary, and options beyond the common ones (a
# session must be able to send more than one 4 KiB request line).
declare -A dicts=([config]=config.dict [control]=control.dict
	[control_session]=control.dict [state]=state.dict [fleet_value]=fleet.dict)
declare -A options=([control_session]=-max_len=12000)

if ! [[ $seconds =~ ^[0-9]+$ ]] || [ "$seconds" = 0 ]; then
	echo "usage: $0 [SECONDS]" >&2
	exit 2
fi

give_up() {
	echo "fuzz: $1"
	echo "0 passed, ${#targets[@]} failed"
	exit 1
}

if [ ! -f "$builddir/build.ninja" ]; then
	# no werror here: clang warns about things gcc (the werror build) does not
	setup_log=$(mktemp /tmp/gatekeeper-fuzz-setup.XXXXXX)
	CC=clang meson setup "$builddir" -Dfuzz=true -Dtests=false \
		-Db_sanitize=address,undefined -Db_lundef=false >"$setup_log" 2>&1 || {
		cat "$setup_log"
		rm -f "$setup_log"
		give_up "cannot configure $builddir (needs clang and libclang-rt-14-dev)"
	}
	rm -f "$setup_log"
fi
ninja -C "$builddir" >"$builddir/fuzz-build.log" 2>&1 || {
	cat "$builddir/fuzz-build.log"
	give_up "build failed"
}

work=$(mktemp -d /tmp/gatekeeper-fuzz.XXXXXX)
if [ "${FUZZ_KEEP:-0}" = 1 ]; then
	trap 'echo "fuzz: corpora kept in $work"' EXIT
else
	trap 'rm -rf "$work"' EXIT
fi
artifacts="$builddir/fuzz-artifacts"
mkdir -p "$artifacts"

# A report is fatal and says where it came from; leaks are checked after
# every input (libFuzzer's default with ASan).
export ASAN_OPTIONS=${ASAN_OPTIONS:-halt_on_error=1:abort_on_error=1:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# run_target NAME: fuzzes NAME; its output goes to $work/NAME.log.
run_target() {
	local t=$1 extra=() rc
	[ -n "${dicts[$t]:-}" ] && extra+=(-dict="tests/fuzz/${dicts[$t]}")
	[ -n "${options[$t]:-}" ] && extra+=("${options[$t]}")
	cp -r "tests/fuzz/corpus/$t" "$work/$t"
	# -timeout: one input running 10 s is a hang, i.e. a bug; the outer
	# timeout only guards against libFuzzer itself getting stuck.
	timeout $((seconds * 2 + 120)) "$builddir/tests/fuzz/fuzz_$t" \
		-max_total_time="$seconds" -timeout=10 -print_final_stats=1 \
		-artifact_prefix="$artifacts/$t-" "${extra[@]}" "$work/$t" >"$work/$t.log" 2>&1
	rc=$?
	echo "$rc" >"$work/$t.rc"
}

start=$(date +%s)
running=0
for t in "${targets[@]}"; do
	run_target "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait

passed=0 failed=0
seeds() { find "tests/fuzz/corpus/$1" -type f | wc -l; }
for t in "${targets[@]}"; do
	log="$work/$t.log"
	rc=$(cat "$work/$t.rc" 2>/dev/null || echo 1)
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)
	# libFuzzer's own count: the inputs that together give its coverage
	size=$(sed -n 's/.*DONE .* corp: \([0-9]*\/[0-9]*[a-zA-Z]*\).*/\1/p' "$log" | tail -n1)
	result=ok
	if [ "$rc" != 0 ] || grep -qE '^==[0-9]+==ERROR|runtime error:|^SUMMARY: ' "$log"; then
		result="FAILED (exit $rc)"
	fi
	printf 'fuzz %-15s %11s executions  corpus %3s seeds -> %-13s %ss  %s\n' \
		"$t" "${execs:-?}" "$(seeds "$t")" "${size:-?}" "$seconds" "$result"
	if [ "$result" = ok ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
		echo "---- $t: last lines of the fuzzer's output"
		tail -n 40 "$log" | sed 's/^/    /'
		echo "---- crash inputs (add each to tests/fuzz/corpus/$t/ once fixed):"
		ls -1 "$artifacts/$t-"* 2>/dev/null | sed 's/^/    /'
	fi
done
echo "fuzz: ${#targets[@]} targets in $(($(date +%s) - start)) s, $jobs at a time"
echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
