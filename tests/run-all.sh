#!/bin/bash
# The whole test suite: install dependencies, build with warnings as errors,
# run the unit tests and the end-to-end tests (root: namespaces, NFQUEUE);
# then the same unit and e2e tests against an ASan+UBSan build, where any
# sanitizer report (leaks at exit included) fails; then each fuzz target
# for FUZZ_SECONDS. The last line is "N passed, N failed", summed over all
# phases (a fuzz target counts as one test).
#
#   tests/run-all.sh [--no-deps] [BUILDDIR]
#
# Between them, the e2e suite once more with the other xt flavours and on
# Debian's stock kernel in qemu, and the systemd unit under systemd as PID 1
# there (tests/qemu/e2e-kernels.sh).
#
# Environment: SANITIZERS=0 skips the ASan+UBSan phase, FUZZ_SECONDS=0 the
# fuzzing (default 45 s per target), GK_SKIP_VM=1 the other kernel and
# flavours (for quick local runs; CI never sets it); ASAN_BUILDDIR (build-asan) and
# FUZZ_BUILDDIR (build-fuzz) name their build dirs. GK_MESON_TEST_ARGS: what
# the main phase passes to `meson test` (suites, test names: a subset; the
# fresh-root test in tests/package/ runs one). GK_SKIP_PACKAGE=1 skips the
# package phase (tests/package/run.sh).
set -uo pipefail

cd "$(dirname "$0")/.."
deps=1
if [ "${1:-}" = "--no-deps" ]; then
	deps=0
	shift
fi
builddir=${1:-build-test}
asan_builddir=${ASAN_BUILDDIR:-build-asan}
fuzz_seconds=${FUZZ_SECONDS:-45}

passed=0 failed=0 skipped=0

if [ "$deps" = 1 ]; then
	bash tests/install-deps.sh >/tmp/gatekeeper-deps.$$.log 2>&1 || {
		cat /tmp/gatekeeper-deps.$$.log
		echo "0 passed, 1 failed"
		exit 1
	}
	rm -f /tmp/gatekeeper-deps.$$.log
fi

# The backend `backend: auto` must pick on this kernel, found with nft and
# iptables alone; the e2e suite fails if the daemon chose another.
if [ -z "${E2E_EXPECT_BACKEND:-}" ] && expect=$(bash tests/qemu/kernel-offers.sh --auto 2>/dev/null); then
	export E2E_EXPECT_BACKEND=$expect
fi

# count FILE WORD: N of the last "WORD: N" line meson test printed.
count() { sed -n "s/^$2:[[:space:]]*\([0-9][0-9]*\)[[:space:]]*\$/\1/p" "$1" | tail -n1; }

# tally_meson BUILDDIR STATUS: adds the "Ok: N", "Fail: N", ... lines that
# `meson test` printed (saved in BUILDDIR/test-summary.txt) to the totals.
tally_meson() {
	local sum=$1/test-summary.txt status=$2 ok fail timeout unexpected skip f
	ok=$(count "$sum" Ok); fail=$(count "$sum" Fail); timeout=$(count "$sum" Timeout)
	unexpected=$(count "$sum" "Unexpected Pass"); skip=$(count "$sum" Skipped)
	f=$(( ${fail:-0} + ${timeout:-0} + ${unexpected:-0} ))
	if [ "$status" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	passed=$((passed + ${ok:-0}))
	failed=$((failed + f))
	skipped=$((skipped + ${skip:-0}))
}

# The normal build (warnings are errors) and every meson test. Returns 1
# when the build fails: then nothing else is worth running.
main_phase() {
	if [ ! -d "$builddir" ]; then
		meson setup "$builddir" --werror >/dev/null || { failed=$((failed + 1)); return 1; }
	fi
	if ! ninja -C "$builddir"; then
		failed=$((failed + 1))
		return 1
	fi
	# shellcheck disable=SC2086 # GK_MESON_TEST_ARGS: words for meson test
	meson test -C "$builddir" --print-errorlogs --num-processes 1 ${GK_MESON_TEST_ARGS:-} |
		tee "$builddir/test-summary.txt"
	tally_meson "$builddir" "${PIPESTATUS[0]}"
}

# The unit and e2e suites again, built with ASan+UBSan (gcc). Every report
# is fatal (the process aborts) and is also written to a file, so one from
# a daemon whose exit status a test ignores, or from a leak found at exit,
# still fails the phase: each report file counts as one failure.
sanitizer_phase() {
	local reports="$asan_builddir/sanitizer-reports" status n
	# no --werror: sanitizer instrumentation makes gcc warn spuriously, and
	# the normal build above already enforces the warnings
	if [ ! -d "$asan_builddir" ]; then
		meson setup "$asan_builddir" -Db_sanitize=address,undefined -Db_lundef=false \
			>/dev/null || { failed=$((failed + 1)); return 1; }
	fi
	if ! ninja -C "$asan_builddir"; then
		failed=$((failed + 1))
		return 1
	fi
	rm -rf "$reports"
	mkdir -p "$reports"
	chmod 1777 "$reports" # the daemon may drop to config 'user:'
	(
		export ASAN_OPTIONS="halt_on_error=1:abort_on_error=1:detect_leaks=1:log_path=$PWD/$reports/asan"
		export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$PWD/$reports/ubsan"
		meson test -C "$asan_builddir" --suite unit --suite e2e --no-suite e2e-harness \
			--print-errorlogs --num-processes 1 --timeout-multiplier 2
	) | tee "$asan_builddir/test-summary.txt"
	status=${PIPESTATUS[0]}
	tally_meson "$asan_builddir" "$status"
	n=$(find "$reports" -type f | wc -l)
	if [ "$n" != 0 ]; then
		echo "sanitizers: $n report(s) in $reports:"
		find "$reports" -type f -exec sh -c 'echo "---- $1"; cat "$1"' _ {} \;
		failed=$((failed + n))
	else
		echo "sanitizers: no reports"
	fi
}

# counted_run CMD...: runs CMD (whose last line is "N passed, N failed"),
# showing its output, and adds its counts to the totals.
counted_run() {
	local out="/tmp/gatekeeper-phase.$$.log" last p f
	"$@" 2>&1 | tee "$out"
	last=$(tail -n1 "$out")
	rm -f "$out"
	p=$(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\1/p' <<<"$last")
	f=$(sed -n 's/^\([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed$/\2/p' <<<"$last")
	if [ -z "$p" ]; then
		failed=$((failed + 1))
		return 1
	fi
	passed=$((passed + p))
	failed=$((failed + f))
}

# Each libFuzzer target for FUZZ_SECONDS on a copy of its corpus.
fuzz_phase() { counted_run bash tests/fuzz/run.sh "$fuzz_seconds"; }

# The e2e suite with the other xt flavours of this kernel and on Debian's
# stock kernel in qemu, where `auto` must pick the native nft backend; then
# gatekeeper.service under systemd as PID 1 in that kernel (one test).
kernels_phase() { counted_run bash tests/qemu/e2e-kernels.sh "$builddir"; }

# The Debian package: built, lintian, install/upgrade/remove/purge in a
# fresh debootstrap root, and the README quick start in another
# (tests/package/run.sh).
package_phase() { counted_run bash tests/package/run.sh; }

# phase_time NAME FUNCTION: runs it and says how long it took.
phase_time() {
	local name=$1 start=$SECONDS rc
	shift
	"$@"
	rc=$?
	echo "phase $name: $((SECONDS - start)) s"
	return $rc
}

if phase_time main main_phase; then
	if [ "${GK_SKIP_VM:-0}" != 1 ]; then
		phase_time kernels kernels_phase
	fi
	if [ "${SANITIZERS:-1}" != 0 ]; then
		phase_time sanitizers sanitizer_phase
	fi
	if [ "$fuzz_seconds" != 0 ]; then
		phase_time fuzz fuzz_phase
	fi
	if [ "${GK_SKIP_PACKAGE:-0}" != 1 ]; then
		phase_time package package_phase
	fi
fi

if [ "$skipped" != 0 ]; then
	echo "$passed passed, $failed failed, $skipped skipped"
else
	echo "$passed passed, $failed failed"
fi
[ "$failed" = 0 ]
