#!/bin/bash
# Runs a command inside Debian's stock kernel (linux-image-amd64), booted in
# qemu under TCG (no KVM needed), and returns its exit status.
#
#   tests/qemu/run-in-vm.sh [--mem SIZE] [--timeout SECONDS] [--systemd] -- COMMAND...
#
# The guest's root is this machine's own filesystem: exported read-only over
# 9p and made writable with an overlay on a tmpfs, so every path is the same
# as on the host but every write vanishes with the guest. COMMAND runs as
# root in the current working directory; its output is shown on stdout (the
# serial console, kernel messages above loglevel 3 included). Exit status:
# COMMAND's, or 124 when the timeout killed the guest, or 125 when the guest
# never reported one (boot failure, panic).
#
# --systemd boots the host's systemd as PID 1 (to basic.target) and runs
# COMMAND as a service once it is up (guest-init.sh), so COMMAND can use
# systemctl; without it, COMMAND runs under a plain shell as PID 1.
#
# The kernel package is downloaded with `apt-get download`, unpacked (never
# installed) and kept in GK_VM_CACHE (default /var/cache/gatekeeper-qemu).
# GK_VM_KERNEL_PKG picks another package than the one linux-image-amd64
# depends on. Needs: qemu-system-x86, busybox-static, kmod (tests/install-deps.sh).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mem=1G
timeout=1200
systemd=0
cache=${GK_VM_CACHE:-/var/cache/gatekeeper-qemu}

usage() {
	echo "usage: $0 [--mem SIZE] [--timeout SECONDS] [--systemd] -- COMMAND..." >&2
	exit 2
}

while (($#)); do
	case $1 in
	--mem) mem=${2:?}; shift 2 ;;
	--timeout) timeout=${2:?}; shift 2 ;;
	--systemd) systemd=1; shift ;;
	--) shift; break ;;
	*) usage ;;
	esac
done
(($#)) || usage
[[ $(id -u) == 0 ]] || { echo "$0: needs root (9p export of /)" >&2; exit 2; }
for tool in qemu-system-x86_64 busybox depmod modprobe apt-get dpkg-deb; do
	command -v "$tool" >/dev/null || { echo "$0: $tool missing: run tests/install-deps.sh" >&2; exit 2; }
done

log() { printf 'run-in-vm: %s\n' "$*" >&2; }

# ---------------------------------------------------------------- the kernel

kernel_package() {
	if [[ -n ${GK_VM_KERNEL_PKG:-} ]]; then
		echo "$GK_VM_KERNEL_PKG"
		return
	fi
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1
}

# prepare_kernel: sets KDIR to an unpacked, depmod'ed kernel package in the
# cache, downloading it first if needed; an older cached one serves when apt
# cannot say which package is current.
prepare_kernel() {
	local pkg version tmp
	pkg=$(kernel_package)
	version=""
	[[ -n $pkg ]] && version=$(apt-cache show --no-all-versions "$pkg" 2>/dev/null |
		sed -n 's/^Version: //p' | head -n1)
	if [[ -z $pkg || -z $version ]]; then
		KDIR=$(find "$cache" -mindepth 2 -maxdepth 2 -name .complete -printf '%h\n' 2>/dev/null |
			sort -V | tail -n1)
		[[ -n $KDIR ]] || { log "cannot resolve linux-image-amd64 (apt-get update?) and nothing cached"; exit 2; }
		log "apt does not know linux-image-amd64; using cached $KDIR"
		return
	fi
	KDIR="$cache/${pkg}_$version"
	[[ -f $KDIR/.complete ]] && return
	log "downloading $pkg $version into $KDIR"
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/.download.XXXXXX")
	# apt drops privileges to _apt for the download when it can write here
	chown _apt "$tmp" 2>/dev/null || true
	if ! (cd "$tmp" && apt-get download -q "$pkg=$version" >/dev/null) ||
		! dpkg-deb -x "$tmp"/*.deb "$tmp/root"; then
		rm -rf "$tmp"
		log "cannot download or unpack $pkg $version"
		exit 2
	fi
	rm -f "$tmp"/*.deb
	local kver
	kver=$(basename "$(find "$tmp/root/lib/modules" -mindepth 1 -maxdepth 1 -type d | head -n1)")
	depmod -b "$tmp/root" "$kver"
	echo "$kver" >"$tmp/kver"
	rm -rf "$KDIR"
	mv "$tmp" "$KDIR"
	touch "$KDIR/.complete"
}

# ---------------------------------------------------------------- the initramfs

# build_initramfs OUT: busybox, stage 1 and the modules the root needs.
build_initramfs() {
	local out=$1 dir="$TMPDIR_VM/initramfs" kver path base
	kver=$(cat "$KDIR/kver")
	mkdir -p "$dir"/{bin,dev,proc,modules}
	cp /bin/busybox "$dir/bin/busybox"
	cp "$here/initramfs-init" "$dir/init"
	chmod 755 "$dir/init"
	: >"$dir/modules.load"
	# In dependency order; insmod takes no compressed modules, so unpack them.
	while read -r path; do
		base=$(basename "$path")
		case $base in
		*.ko.xz) xz -dc "$path" >"$dir/modules/${base%.xz}"; base=${base%.xz} ;;
		*.ko.zst) zstd -qdc "$path" >"$dir/modules/${base%.zst}"; base=${base%.zst} ;;
		*.ko.gz) gzip -dc "$path" >"$dir/modules/${base%.gz}"; base=${base%.gz} ;;
		*) cp "$path" "$dir/modules/$base" ;;
		esac
		grep -qx "$base" "$dir/modules.load" || echo "$base" >>"$dir/modules.load"
	done < <(modprobe -d "$KDIR/root" -S "$kver" -a --show-depends virtio_pci 9pnet_virtio 9p overlay |
		sed -n 's/^insmod \([^ ]*\).*/\1/p')
	(cd "$dir" && find . | busybox cpio -o -H newc 2>/dev/null) >"$out"
}

# ---------------------------------------------------------------- run

QEMU_PID=""
TAIL_PID=""
TMPDIR_VM=""
# shellcheck disable=SC2317 # run by the trap
cleanup() {
	local status=$?
	set +e
	trap - EXIT INT TERM
	[[ -n $QEMU_PID ]] && kill -KILL "$QEMU_PID" 2>/dev/null && wait "$QEMU_PID" 2>/dev/null
	[[ -n $TAIL_PID ]] && kill "$TAIL_PID" 2>/dev/null && wait "$TAIL_PID" 2>/dev/null
	[[ -n $TMPDIR_VM ]] && rm -rf "$TMPDIR_VM"
	exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

mkdir -p "$cache"
# one download at a time; concurrent runs share the cache
exec 9>"$cache/.lock"
flock 9
prepare_kernel
flock -u 9

TMPDIR_VM=$(mktemp -d /tmp/gk-vm.XXXXXX)
mkdir "$TMPDIR_VM/out"
build_initramfs "$TMPDIR_VM/initrd.cpio"

cmd=$(printf '%q ' "$@")
cmdline="console=ttyS0 quiet loglevel=3 panic=-1 gk.init=$here/guest-init.sh"
cmdline+=" gk.cmd=$(printf '%s' "$cmd" | base64 -w0) gk.cwd=$(printf '%s' "$PWD" | base64 -w0)"
if ((systemd)); then
	# the guest's root is no disk: nothing of the host's fstab applies
	cmdline+=" gk.systemd=1 systemd.unit=gk-vm.target fstab=no systemd.firstboot=off"
	cmdline+=" systemd.hostname=gk-vm"
	[[ -x /lib/systemd/systemd ]] || { log "--systemd: /lib/systemd/systemd missing"; exit 2; }
fi
# x86's COMMAND_LINE_SIZE is 2048
((${#cmdline} < 2000)) || { log "command too long for the kernel command line"; exit 2; }

console="$TMPDIR_VM/console"
: >"$console"
start=$SECONDS
qemu-system-x86_64 \
	-nodefaults -no-user-config -display none -no-reboot \
	-accel tcg,thread=multi -cpu max -smp 2 -m "$mem" \
	-serial "file:$console" \
	-kernel "$(ls "$KDIR"/root/boot/vmlinuz-*)" -initrd "$TMPDIR_VM/initrd.cpio" \
	-append "$cmdline" \
	-virtfs local,path=/,mount_tag=gkroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$KDIR/root/lib/modules,mount_tag=gkmods,security_model=none,readonly=on" \
	-virtfs "local,path=$TMPDIR_VM/out,mount_tag=gkout,security_model=none" \
	</dev/null >"$TMPDIR_VM/qemu.log" 2>&1 &
QEMU_PID=$!
# ends by itself once qemu has
tail -n +1 -s 0.2 -f --pid="$QEMU_PID" "$console" | sed -u 's/\r$//' &
TAIL_PID=$!

timed_out=0
while kill -0 "$QEMU_PID" 2>/dev/null; do
	if ((SECONDS - start >= timeout)); then
		log "timeout after ${timeout}s: killing the guest"
		kill -KILL "$QEMU_PID"
		timed_out=1
		break
	fi
	sleep 0.5
done
qemu_status=0
wait "$QEMU_PID" 2>/dev/null || qemu_status=$?
QEMU_PID=""
wait "$TAIL_PID" 2>/dev/null || true
TAIL_PID=""

if ((timed_out)); then
	exit 124
fi
if [[ ! -s $TMPDIR_VM/out/status ]]; then
	log "the guest reported no exit status (qemu status $qemu_status)"
	sed 's/^/run-in-vm: qemu: /' "$TMPDIR_VM/qemu.log" >&2
	exit 125
fi
status=$(cat "$TMPDIR_VM/out/status")
log "guest ran $((SECONDS - start))s, exit status $status"
exit "$status"
