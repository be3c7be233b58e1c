#!/bin/bash
# install.sh: `meson install --destdir` puts every file where an operator
# expects it, with its mode, and the installed tree works the way the
# operator's next steps use it: systemd-sysusers and systemd-tmpfiles
# (--root=DESTDIR, the host is not touched) create the user, the group and
# the directories; the installed daemon validates the installed config; the
# man pages render. Everything lives in TMP, removed on exit.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

D="" # DESTDIR

# has_mode PATH MODE [UID:GID] (numeric: DESTDIR's users are not the host's)
has_mode() {
	local got
	got=$(stat -c '%a %u:%g %F' "$D$1" 2>&1) || { echo "$D$1: missing"; return 1; }
	echo "$1: $got"
	[[ $got == "$2 "* ]] || { echo "want mode $2"; return 1; }
	[[ -z ${3:-} || $got == "$2 $3 "* ]] || { echo "want owner $3"; return 1; }
}

do_install() {
	meson install -C "$BUILD_ROOT" --destdir "$D" --no-rebuild --quiet
}

unit_points_at_install() {
	local unit="$D$UNITDIR/gatekeeper.service"
	grep -E '^Exec' "$unit"
	grep -q "^ExecStart=$SBINDIR/gatekeeperd -c $SYSCONFDIR/gatekeeper/gatekeeper.yaml\$" "$unit" &&
		grep -q "^ExecStartPre=$SBINDIR/gatekeeperd --check --quiet " "$unit" &&
		! grep -q '@[a-z]*@' "$unit"
}

# Nothing installed that the list below does not know about.
no_stray_files() {
	local expected=(
		"$SBINDIR/gatekeeperd" "$BINDIR/gatekeeperctl" "$UNITDIR/gatekeeper.service"
		"$SYSUSERSDIR/gatekeeper.conf" "$TMPFILESDIR/gatekeeper.conf"
		"$SYSCONFDIR/gatekeeper/gatekeeper.yaml"
	)
	if [[ $HAVE_MAN == 1 ]]; then
		expected+=("$MANDIR/man8/gatekeeperd.8" "$MANDIR/man8/gatekeeperctl.8"
			"$MANDIR/man5/gatekeeper.yaml.5")
	fi
	diff <(printf '%s\n' "${expected[@]}" | sort) <(cd "$D" && find . -type f -printf '/%P\n' | sort)
}

sysusers_creates_user() {
	mkdir -p "$D/etc" # an empty /etc: the user comes from the snippet alone
	systemd-sysusers --root="$D" || return 1
	grep '^gatekeeper:' "$D/etc/passwd" "$D/etc/group" || return 1
	grep -q '^gatekeeper:[^:]*:[0-9]*:[0-9]*:[^:]*:/var/lib/gatekeeper:/usr/sbin/nologin$' "$D/etc/passwd"
}

tmpfiles_creates_dirs() {
	# --root resolves user names in DESTDIR's /etc/passwd (sysusers above)
	local uid gid
	systemd-tmpfiles --root="$D" --create || return 1
	uid=$(awk -F: '$1 == "gatekeeper" { print $3 }' "$D/etc/passwd")
	gid=$(awk -F: '$1 == "gatekeeper" { print $3 }' "$D/etc/group")
	echo "gatekeeper is $uid:$gid in DESTDIR"
	[[ -n $uid && -n $gid ]] &&
		has_mode /run/gatekeeper 755 0:0 &&
		has_mode /var/lib/gatekeeper 750 "$uid:$gid" &&
		has_mode /run/xtables.lock 600 "$uid:$gid"
}

installed_daemon_checks_installed_config() {
	local ns="gk-$$-install"
	ip netns add "$ns" || return 1
	CREATED_NS+=("$ns")
	"$D$SBINDIR/gatekeeperd" --version &&
		"$D$BINDIR/gatekeeperctl" --version &&
		in_ns "$ns" "$D$SBINDIR/gatekeeperd" --check -c "$D$SYSCONFDIR/gatekeeper/gatekeeper.yaml"
}

man_pages_render() {
	local page out
	for page in man8/gatekeeperd.8 man8/gatekeeperctl.8 man5/gatekeeper.yaml.5; do
		out=$(MANWIDTH=80 man -l "$D$MANDIR/$page" 2>&1) || { echo "$out"; return 1; }
		head -n 4 <<<"$out"
		grep -q NAME <<<"$out" && grep -q 'SEE ALSO' <<<"$out" || return 1
	done
}

main() {
	require_environment GATEKEEPERD GATEKEEPERCTL
	e2e_begin
	D="$TMP/destdir"
	check "meson install --destdir succeeds" do_install || { finish; return; }
	check "gatekeeperd in sbindir, 0755" has_mode "$SBINDIR/gatekeeperd" 755
	check "gatekeeperctl in bindir, 0755" has_mode "$BINDIR/gatekeeperctl" 755
	check "gatekeeper.service in the unit dir, 0644" has_mode "$UNITDIR/gatekeeper.service" 644
	check "the unit runs the installed daemon with the installed config" unit_points_at_install
	check "sysusers.d/gatekeeper.conf, 0644" has_mode "$SYSUSERSDIR/gatekeeper.conf" 644
	check "tmpfiles.d/gatekeeper.conf, 0644" has_mode "$TMPFILESDIR/gatekeeper.conf" 644
	check "sysconfdir/gatekeeper/gatekeeper.yaml, 0644 (read by user gatekeeper)" \
		has_mode "$SYSCONFDIR/gatekeeper/gatekeeper.yaml" 644
	check "the installed config is the shipped one" \
		cmp "$SOURCE_ROOT/conf/gatekeeper.yaml" "$D$SYSCONFDIR/gatekeeper/gatekeeper.yaml"
	if [[ $HAVE_MAN == 1 ]]; then
		check "gatekeeperd(8), 0644" has_mode "$MANDIR/man8/gatekeeperd.8" 644
		check "gatekeeperctl(8), 0644" has_mode "$MANDIR/man8/gatekeeperctl.8" 644
		check "gatekeeper.yaml(5), 0644" has_mode "$MANDIR/man5/gatekeeper.yaml.5" 644
		if command -v man >/dev/null; then
			check "the man pages render" man_pages_render
		fi
	else
		log "scdoc not found: no man pages built (-Dman=auto)"
	fi
	check "nothing else is installed" no_stray_files
	check "systemd-sysusers --root creates user and group gatekeeper" sysusers_creates_user
	check "systemd-tmpfiles --root creates /run/gatekeeper, /var/lib/gatekeeper, /run/xtables.lock" \
		tmpfiles_creates_dirs
	check "the installed daemon validates the installed config (--check, in a namespace)" \
		installed_daemon_checks_installed_config
	finish
}

main "$@"
