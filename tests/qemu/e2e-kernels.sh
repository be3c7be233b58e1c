#!/bin/bash
# The end-to-end suite beyond run-all.sh's plain `meson test` (which covers
# this machine's kernel with `backend: auto`):
#   1. this kernel again with each xt flavour it offers that auto did not
#      already pick (iptables-nft, iptables-legacy), the backend-dependent
#      tests;
#   2. Debian's stock kernel in qemu (run-in-vm.sh), where auto must pick
#      the native nft backend (every e2e test but those of the daemon's
#      user-space side, suite e2e-userspace), then xt-nft and xt-legacy
#      forced (the backend-dependent tests);
#   3. the same kernel with systemd as PID 1 running the installed
#      gatekeeper.service (systemd-unit.sh): one more test.
# Uses an existing build, never builds. The last line is "N passed, N failed".
#
#   tests/qemu/e2e-kernels.sh BUILDDIR
set -u

cd "$(dirname "$0")/../.." || exit 1
[[ -d ${1:-} ]] || { echo "usage: $0 BUILDDIR"; echo "0 passed, 1 failed"; exit 1; }
builddir=$(realpath "$1")
log=$(mktemp /tmp/gk-e2e-kernels.XXXXXX) || exit 1
trap 'rm -f "$log"' EXIT
passed=0
failed=0

# add_counts STATUS: adds the last "N passed, N failed" line of the log; a
# run that failed without saying so counts as one failure.
add_counts() {
	local status=$1 line p f
	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n1)
	p=$(sed -n 's/^\([0-9]*\) passed.*/\1/p' <<<"$line")
	f=$(sed -n 's/.* \([0-9]*\) failed$/\1/p' <<<"$line")
	if [[ -z $line ]] || { ((status != 0)) && ((f == 0)); }; then
		f=$((${f:-0} + 1))
	fi
	passed=$((passed + ${p:-0}))
	failed=$((failed + f))
}

# The tests whose outcome depends on the backend (privdrop and probe pick
# their backends themselves). On this kernel the other xt flavour also
# runs the kernel guard's tests (crafted packets, a dead or stuck daemon);
# in the VM, under TCG, they run once, with the native nft backend.
xt_tests="verdicts-forward verdicts-prerouting verdicts-input lifecycle control cut"
guard_tests="evasion-prerouting evasion-forward evasion-input fault-kill fault-stop"

auto=$(bash tests/qemu/kernel-offers.sh --auto)
flavours=()
for flavour in xt-nft xt-legacy; do
	[[ $flavour != "$auto" ]] && bash tests/qemu/kernel-offers.sh "$flavour" && flavours+=("$flavour")
done
echo "=== this kernel ($(uname -r)): auto picks $auto; other flavours: ${flavours[*]:-none}"
if ((${#flavours[@]})); then
	bash tests/qemu/e2e-flavours.sh "$builddir" --only "$xt_tests $guard_tests" "${flavours[@]}" |
		tee "$log"
	add_counts "${PIPESTATUS[0]}"
fi

echo "=== Debian's stock kernel in qemu (TCG)"
# TCG runs the guest 5-15x slower: longer readiness polls and timeouts.
bash tests/qemu/run-in-vm.sh --timeout 3000 -- \
	env E2E_TIMEOUT_MULTIPLIER=3 WAIT_TIMEOUT=30 \
	bash tests/qemu/e2e-flavours.sh "$builddir" --no-suite e2e-userspace auto=nft --only "$xt_tests" xt-nft xt-legacy \
	2>&1 | tee "$log"
add_counts "${PIPESTATUS[0]}"

echo "=== gatekeeper.service under systemd as PID 1, Debian's stock kernel in qemu (TCG)"
# its checks print "ok"/"not ok" lines; here it is one test
if bash tests/qemu/systemd-unit.sh "$builddir"; then
	passed=$((passed + 1))
else
	failed=$((failed + 1))
fi

echo "$passed passed, $failed failed"
((failed == 0))
