# shellcheck shell=bash
# Shared by the package tests (tests/package/*.sh); sourced, never run.
#
# A fresh Debian 12 root: `debootstrap --variant=minbase bookworm` once,
# kept as a tarball in GK_ROOT_CACHE (default /var/cache/gatekeeper-roots),
# and unpacked anew for each test under GK_WORK (default /var/tmp) in a
# directory whose name carries the PID. The tests run in a mount namespace
# of their own (root_reexec), so every mount they make (proc, sys, dev, a
# tmpfs /run, the apt archive) goes with them; the EXIT trap still unmounts,
# ends every process of the root and of the test's network namespaces,
# deletes those namespaces and the root.
#
# Environment: GK_DEBIAN_MIRROR (default: the host's bookworm/main source),
# GK_ROOT_CACHE, GK_WORK, GK_KEEP_ROOT=1 (keep the unpacked root, for a look).

set -u

GK_ROOT_CACHE=${GK_ROOT_CACHE:-/var/cache/gatekeeper-roots}
GK_WORK=${GK_WORK:-/var/tmp}
ROOT_TARBALL="$GK_ROOT_CACHE/bookworm-minbase.tar"
ROOT=""       # the unpacked root of this test
CREATED_NS=() # network namespaces this test made
PASSED=0
FAILED=0

log() { printf '# %s\n' "$*"; }

# root_reexec "$0" "$@": run the calling script again in a private mount
# namespace (once).
root_reexec() {
	if [[ -z ${GK_PKG_UNSHARED:-} ]]; then
		export GK_PKG_UNSHARED=1
		exec unshare --mount --propagation private bash "$@"
	fi
}

# The host's Debian mirror (the one apt uses for bookworm main).
debian_mirror() {
	if [[ -n ${GK_DEBIAN_MIRROR:-} ]]; then
		echo "$GK_DEBIAN_MIRROR"
		return
	fi
	apt-cache policy 2>/dev/null | awk '$3 == "bookworm/main" && $2 ~ /^https?:/ { print $2; exit }' |
		grep . || echo http://deb.debian.org/debian
}

# Builds the cached minbase tarball when it is missing (about a minute).
# Concurrent runs serialise on a lock; a half-built tarball is never kept.
ensure_root_tarball() {
	mkdir -p "$GK_ROOT_CACHE" || return 1
	(
		flock 9
		[[ -s $ROOT_TARBALL ]] && exit 0
		local dir="$GK_ROOT_CACHE/build.$$" mirror
		mirror=$(debian_mirror)
		echo "# debootstrap --variant=minbase bookworm from $mirror (cached in $ROOT_TARBALL)"
		rm -rf "$dir"
		if ! debootstrap --variant=minbase bookworm "$dir" "$mirror" >"$dir.log" 2>&1; then
			tail -n 20 "$dir.log"
			rm -rf "$dir" "$dir.log"
			exit 1
		fi
		# The host's Debian sources (updates and security too), so the root
		# gets the packages the host's apt would get.
		if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
			cp /etc/apt/sources.list.d/debian.sources "$dir/etc/apt/sources.list.d/"
			rm -f "$dir/etc/apt/sources.list"
		fi
		# A test root: dpkg need not fsync, apt needs no translations.
		echo force-unsafe-io >"$dir/etc/dpkg/dpkg.cfg.d/gk-test-unsafe-io"
		echo 'Acquire::Languages "none";' >"$dir/etc/apt/apt.conf.d/gk-test-no-languages"
		rm -rf "$dir/var/cache/apt/archives"/*.deb "$dir/var/lib/apt/lists"/*_Packages
		tar -C "$dir" -cf "$ROOT_TARBALL.tmp" . && mv "$ROOT_TARBALL.tmp" "$ROOT_TARBALL"
		local status=$?
		rm -rf "$dir" "$dir.log"
		exit "$status"
	) 9>"$GK_ROOT_CACHE/.lock"
}

# new_root NAME: unpacks the cached root to GK_WORK/gk-NAME-PID, mounts
# proc, sys, dev and a tmpfs /run, hard-links the host's downloaded .debs
# into the root's apt archive (what the host has fetched, the root need not
# fetch again; the root's apt keeps a lock of its own) and copies the
# host's resolv.conf. Sets ROOT.
new_root() {
	ensure_root_tarball || { echo "no root: debootstrap failed"; return 1; }
	ROOT="$GK_WORK/gk-$1-$$"
	rm -rf "$ROOT"
	mkdir -p "$ROOT" && tar -C "$ROOT" -xf "$ROOT_TARBALL" || return 1
	# a mount point of its own: `ip netns exec` in the root remounts / as a slave
	mount --bind "$ROOT" "$ROOT" &&
		mount -t proc proc "$ROOT/proc" &&
		mount --rbind /sys "$ROOT/sys" &&
		mount --bind /dev "$ROOT/dev" &&
		mount --bind /dev/pts "$ROOT/dev/pts" &&
		mount -t tmpfs -o mode=0755 tmpfs "$ROOT/run" || return 1
	find /var/cache/apt/archives -maxdepth 1 -name '*.deb' -exec cp -l -t "$ROOT/var/cache/apt/archives/" {} + \
		2>/dev/null || true
	mkdir -p "$ROOT/run/lock"
	cp -L /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null
	return 0
}

in_root() { chroot "$ROOT" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"; }

# The processes whose root directory is ROOT (or below it).
root_pids() {
	local p link
	for p in /proc/[0-9]*; do
		link=$(readlink "$p/root" 2>/dev/null) || continue
		[[ $link == "$ROOT" || $link == "$ROOT"/* ]] && echo "${p#/proc/}"
	done
}

cleanup_root() {
	local pid ns i
	for ns in "${CREATED_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -TERM "$pid" 2>/dev/null
		done
	done
	if [[ -n $ROOT ]]; then
		for pid in $(root_pids); do kill -TERM "$pid" 2>/dev/null; done
		for ((i = 0; i < 50; i++)); do
			[[ -z $(root_pids) ]] && break
			sleep 0.1
		done
		for pid in $(root_pids); do kill -KILL "$pid" 2>/dev/null; done
	fi
	for ns in "${CREATED_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	if [[ -n $ROOT && -d $ROOT ]]; then
		umount -R -l "$ROOT" 2>/dev/null
		if [[ ${GK_KEEP_ROOT:-0} == 1 ]]; then
			log "kept $ROOT"
		elif ! grep -q " $ROOT/" /proc/self/mounts; then
			rm -rf "$ROOT"
		else
			log "$ROOT still has mounts: not removed"
		fi
	fi
}

# check DESC CMD...: runs CMD, prints "ok - DESC" or "not ok - DESC" and
# counts; CMD's output follows as "#" lines.
check() {
	local desc=$1 out status
	shift
	out=$(mktemp "$GK_WORK/gk-check-$$.XXXXXX") || return 1
	"$@" >"$out" 2>&1 # in this shell: CMD may set variables
	status=$?
	if ((status == 0)); then
		PASSED=$((PASSED + 1))
		printf 'ok - %s\n' "$desc"
	else
		FAILED=$((FAILED + 1))
		printf 'not ok - %s\n' "$desc"
	fi
	sed 's/^/#   /' "$out"
	rm -f "$out"
	return "$status"
}

negate() { ! "$@"; }

# The last line every package test prints.
summary() {
	echo "$PASSED passed, $FAILED failed"
	((FAILED == 0))
}
