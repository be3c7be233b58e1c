#!/bin/bash
# The package phase of tests/run-all.sh (issue 17):
#   1. dpkg-buildpackage -us -uc -b on a copy of the tree -> gatekeeper_V_amd64.deb
#   2. lintian on it: no error, no warning (debian/*.lintian-overrides give reasons)
#   3. the same tree rebuilt as V+pkgtest1, for the upgrade
#   4. tests/package/lifecycle.sh: install, upgrade, remove, purge in a fresh root
#   5. tests/package/fresh-root.sh: the README quick start in a fresh root,
#      then the package's autopkgtest there
# Last line "N passed, N failed". The debootstrap root is cached
# (tests/package/lib.sh: GK_ROOT_CACHE) and unpacked anew for 4 and 5.
#
#   tests/package/run.sh     (as root; Debian 12 with tests/packages.txt)
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
SRC=$(cd "$here/../.." && pwd)
BUILD="$GK_WORK/gk-debbuild-$$"
trap 'rm -rf "$BUILD"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# copy_tree DIR: the work tree as git sees it (ignored files left out)
copy_tree() {
	mkdir -p "$1" && (cd "$SRC" && git ls-files -c -o --exclude-standard -z |
		xargs -0 tar --no-recursion -cf - 2>/dev/null) | tar -xf - -C "$1"
}

# build NAME [VERSION]: the tree in BUILD/NAME/gatekeeper, built there;
# with VERSION, a changelog entry for it first.
build() {
	local dir="$BUILD/$1/gatekeeper" t=$SECONDS
	copy_tree "$dir" || return 1
	if [[ -n ${2:-} ]]; then
		{
			printf 'gatekeeper (%s) bookworm; urgency=medium\n\n' "$2"
			printf '  * Rebuilt with a higher version for tests/package/lifecycle.sh.\n\n'
			printf ' -- %s  %s\n\n' "$(sed -n 's/^Maintainer: //p' "$dir/debian/control")" "$(date -R)"
			cat "$dir/debian/changelog"
		} >"$dir/debian/changelog.new" && mv "$dir/debian/changelog.new" "$dir/debian/changelog"
	fi
	(cd "$dir" && dpkg-buildpackage -us -uc -b) >"$BUILD/$1.log" 2>&1 ||
		{ tail -n 40 "$BUILD/$1.log"; return 1; }
	grep -E '^(Ok|Fail):' "$BUILD/$1.log"
	ls "$BUILD/$1"/*.deb
	echo "($((SECONDS - t)) s)"
}

deb_of() { ls "$BUILD/$1"/gatekeeper_*_amd64.deb; }

contents() {
	local deb
	deb=$(deb_of v1) || return 1
	dpkg-deb -c "$deb" | awk '{ print $1, $6 }' | grep -v '/$'
	dpkg-deb -f "$deb" Package Version Depends Recommends
	dpkg-deb -c "$deb" | grep -q ' ./usr/share/man/man8/gatekeeperd.8.gz$' &&
		dpkg-deb -c "$deb" | grep -q ' ./lib/systemd/system/gatekeeper.service$' &&
		dpkg-deb -I "$deb" conffiles | grep -qx /etc/gatekeeper/gatekeeper.yaml
}

lintian_clean() {
	local out changes
	changes=$(ls "$BUILD"/v1/gatekeeper_*_amd64.changes) || return 1
	# as nobody: lintian warns when it runs as root
	chmod -R a+rX "$BUILD"
	out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups env HOME=/tmp \
		lintian --pedantic -I -E --show-overrides "$changes" 2>&1)
	echo "${out:-(no output)}"
	! grep -E '^[EW]: ' <<<"$out"
}

counted() { # DESC SCRIPT ARGS...: a script whose last line is "N passed, N failed"
	local desc=$1 out last p f
	shift
	out="$BUILD/counted.log"
	"$@" 2>&1 | tee "$out" | sed 's/^/    /'
	last=$(tail -n1 "$out")
	p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$last")
	f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$last")
	if [[ -z $p ]]; then
		echo "not ok - $desc: no summary line"
		FAILED=$((FAILED + 1))
		return
	fi
	echo "# $desc: $p passed, $f failed"
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
}

start=$SECONDS
if check "dpkg-buildpackage -us -uc -b" build v1; then
	check "the .deb: daemon, ctl, unit, sysusers, tmpfiles, man pages, docs; the config a conffile" contents
	check "lintian --pedantic: no error, no warning" lintian_clean
	v2="$(dpkg-deb -f "$(deb_of v1)" Version)+pkgtest1"
	if check "rebuilt as $v2 (for the upgrade)" build v2 "$v2"; then
		counted "lifecycle" bash "$here/lifecycle.sh" "$(deb_of v1)" "$(deb_of v2)"
	fi
fi
counted "fresh root" bash "$here/fresh-root.sh" $(deb_of v1 2>/dev/null)
log "package phase: $((SECONDS - start)) s"
summary
