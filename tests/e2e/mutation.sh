#!/bin/bash
# mutation.sh: proves the suite can fail. Runs "verdicts.sh forward" against
# accept_all.sh, a daemon that treats every site as online; passes only if
# verdicts.sh fails, and fails where it should: on the offline sites, while
# the daemon itself started and the online site still passed.
set -u
here=${SRCDIR:-$(dirname "$0")}
out=$(mktemp "/tmp/gk-e2e-mutation-$$.XXXXXX") || exit 1
trap 'rm -f "$out"' EXIT

if [[ $(id -u) != 0 ]]; then
	echo "# SKIP: needs root"
	exit 77
fi

real_daemon=${GATEKEEPERD:?GATEKEEPERD names the daemon under test}
GATEKEEPERD_REAL=$real_daemon GATEKEEPERD="$here/accept_all.sh" SRCDIR="$here" \
	bash "$here/verdicts.sh" forward >"$out" 2>&1
status=$?
sed 's/^/#   | /' "$out"

failures=0
expect() { # DESC CMD...
	if "${@:2}"; then
		echo "ok - $1"
	else
		echo "not ok - $1"
		failures=$((failures + 1))
	fi
}
expect "verdicts.sh fails against the accept-all daemon" test "$status" != 0
expect "the mutant daemon did start" grep -q '^ok - IPv4 shop (online): handshake ok' "$out"
expect "the drop verdict caught it" grep -q '^not ok - IPv4 blog (offline, drop): client times out' "$out"
expect "the reject verdict caught it" grep -q '^not ok - IPv4 wiki (offline, reject)' "$out"
expect "the server-side counters caught it" grep -q '^not ok - IPv6 blog: no SYN reached the server' "$out"
((failures == 0))
