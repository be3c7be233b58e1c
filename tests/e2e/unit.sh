#!/bin/bash
# unit.sh: the installed gatekeeper.service passes `systemd-analyze verify`
# and `systemd-analyze security --offline=true` rates its exposure <= 2.0.
#
# systemd 252's verify checks that each Exec*= binary exists on the host
# and that `man` finds each Documentation= page; --root=DESTDIR does not
# help (the host's targets the unit refers to are then missing). So the
# installed unit is verified as a copy whose Exec*= lines point into
# DESTDIR, with MANPATH at DESTDIR's man pages: every check verify makes
# runs, against the installed files. A unit with an unknown directive must
# fail the same check, so it is known to look.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly MAX_EXPOSURE=2.0
D=""
UNIT=""

install_and_copy() {
	meson install -C "$BUILD_ROOT" --destdir "$D" --no-rebuild --quiet || return 1
	mkdir -p "$TMP/units"
	# only the Exec lines move into DESTDIR; everything else is as installed
	sed -E "/^Exec/ s|$PREFIX/|$D$PREFIX/|g" "$D$UNITDIR/gatekeeper.service" >"$UNIT"
	grep -E '^Exec' "$UNIT"
}

verify() { # UNIT
	local out status
	if [[ $HAVE_MAN == 1 ]]; then
		out=$(MANPATH="$D$MANDIR" systemd-analyze verify "$1" 2>&1)
	else
		out=$(systemd-analyze verify --man=no "$1" 2>&1)
	fi
	status=$?
	echo "systemd-analyze verify: status $status"
	[[ -n $out ]] && echo "$out"
	[[ $status == 0 && -z $out ]]
}

verify_catches_a_typo() {
	local bad="$TMP/units/gatekeeper-typo.service"
	sed 's/^NoNewPrivileges=yes/NoNewPrivilege=yes/' "$UNIT" >"$bad"
	! verify "$bad"
}

exposure_at_most() { # MAX
	local out level
	out=$(systemd-analyze security --offline=true "$UNIT" 2>&1)
	grep -E '^✗' <<<"$out"
	level=$(sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' <<<"$out")
	echo "exposure: ${level:-<not found>} (want <= $1)"
	[[ -n $level ]] && awk -v l="$level" -v m="$1" 'BEGIN { exit !(l <= m) }'
}

# The settings the issue names, read back from what systemd parsed.
unit_has() { # PROPERTY VALUE_REGEX
	local line
	line=$(grep -E "^$1=" "$UNIT")
	echo "${line:-$1 not set}"
	grep -qE "^$1=$2\$" <<<"$line"
}

main() {
	require_environment GATEKEEPERD
	command -v systemd-analyze >/dev/null || die "systemd-analyze not installed (package systemd)"
	e2e_begin
	D="$TMP/destdir"
	UNIT="$TMP/units/gatekeeper.service"
	check "install to DESTDIR, unit copy pointing into it" install_and_copy || { finish; return; }
	check "systemd-analyze verify: clean" verify "$UNIT"
	check "systemd-analyze verify: a misspelt directive is reported" verify_catches_a_typo
	check "systemd-analyze security --offline=true: exposure <= $MAX_EXPOSURE" \
		exposure_at_most "$MAX_EXPOSURE"
	check "Type=notify" unit_has Type notify
	check "WatchdogSec= set" unit_has WatchdogSec '[0-9]+s?'
	check "Restart=on-failure" unit_has Restart on-failure
	check "User=gatekeeper" unit_has User gatekeeper
	check "capabilities: NET_ADMIN and NET_RAW only" \
		unit_has CapabilityBoundingSet 'CAP_NET_ADMIN CAP_NET_RAW'
	check "ProtectSystem=strict" unit_has ProtectSystem strict
	check "RestrictAddressFamilies=AF_UNIX AF_NETLINK AF_INET AF_INET6" \
		unit_has RestrictAddressFamilies 'AF_UNIX AF_NETLINK AF_INET AF_INET6'
	check "UMask=0077" unit_has UMask 0077
	check "no ProcSubset=pid (the probe reads /proc/net)" negate grep -q '^ProcSubset=pid' "$UNIT"
	finish
}

main "$@"
