#!/bin/bash
# The whole test suite: install dependencies, build with warnings as errors,
# run the unit tests and the end-to-end tests (root: namespaces, NFQUEUE).
# The last line is "N passed, N failed".
#
#   tests/run-all.sh [--no-deps] [BUILDDIR]
set -uo pipefail

cd "$(dirname "$0")/.."
deps=1
if [ "${1:-}" = "--no-deps" ]; then
	deps=0
	shift
fi
builddir=${1:-build-test}

if [ "$deps" = 1 ]; then
	bash tests/install-deps.sh >/tmp/gatekeeper-deps.$$.log 2>&1 || {
		cat /tmp/gatekeeper-deps.$$.log
		echo "0 passed, 1 failed"
		exit 1
	}
	rm -f /tmp/gatekeeper-deps.$$.log
fi

if [ ! -d "$builddir" ]; then
	meson setup "$builddir" --werror >/dev/null || { echo "0 passed, 1 failed"; exit 1; }
fi
if ! ninja -C "$builddir"; then
	echo "0 passed, 1 failed"
	exit 1
fi

meson test -C "$builddir" --print-errorlogs --num-processes 1 | tee "$builddir/test-summary.txt"
status=${PIPESTATUS[0]}

# meson prints "Ok: N", "Fail: N", "Timeout: N", ... at the end.
count() { sed -n "s/^$1:[[:space:]]*\([0-9][0-9]*\)[[:space:]]*\$/\1/p" "$builddir/test-summary.txt" | tail -n1; }
ok=$(count Ok); fail=$(count Fail); timeout=$(count Timeout); unexpected=$(count "Unexpected Pass")
skipped=$(count Skipped)
failed=$(( ${fail:-0} + ${timeout:-0} + ${unexpected:-0} ))
if [ "$status" != 0 ] && [ "$failed" = 0 ]; then
	failed=1
fi
if [ "${skipped:-0}" != 0 ]; then
	echo "${ok:-0} passed, $failed failed, ${skipped} skipped"
else
	echo "${ok:-0} passed, $failed failed"
fi
[ "$failed" = 0 ]
