#!/bin/bash
# Stage 2 of the test VM, PID 1 after switch_root (see run-in-vm.sh): the
# root is the host's filesystem under a tmpfs overlay (so the host's /tmp,
# build trees included, is seen as it was at boot). Mounts the API
# filesystems and a fresh /run, runs the command from the kernel command line in its working
# directory, reports the status on the console and in the gkout export,
# then powers off. Never returns: PID 1 must not exit.
#
# With gk.systemd=1 (run-in-vm.sh --systemd) it only writes two units into
# the overlay's /etc and execs systemd as PID 1, which boots to
# gk-vm.target: basic.target plus gk-vm-command.service, which runs this
# script again with --unit to run the command, and powers off when it ends.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LC_ALL=C.UTF-8
umask 022

self=$(realpath "$0")

poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 60
}

arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^gk\\.$1=//p"; }

# run_command: the command from the kernel command line in its directory;
# its status on the console and in the gkout export (mounted on
# /run/gk-out). Returns 0 once the status is reported.
run_command() {
	local cmd cwd status
	cmd=$(arg cmd | base64 -d)
	cwd=$(arg cwd | base64 -d)
	echo "gk-vm: kernel $(uname -r), running in ${cwd}: ${cmd}"
	# through a pipe, as in CI: the console is a tty and would get progress bars
	(cd "$cwd" && exec bash -c "$cmd") </dev/null 2>&1 | cat
	status=${PIPESTATUS[0]}
	echo "$status" >/run/gk-out/status || return 1
	sync
	echo "gk-vm: exit status $status"
}

mount_gkout() {
	mkdir -p /run/gk-out
	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 gkout /run/gk-out && return 0
	echo "gk-vm: cannot mount the gkout export"
	return 1
}

# The units systemd boots into (the overlay's /etc; gone with the guest).
# The command owns the console, so systemd's status lines do not interleave
# with its output; whichever way it ends, systemd powers off at once (no
# orderly stop of the other units: the status is reported already).
write_units() {
	cat >/etc/systemd/system/gk-vm.target <<-UNIT
		[Unit]
		Description=run-in-vm: the basic system and the command
		Requires=basic.target gk-vm-command.service
		After=basic.target
		AllowIsolate=yes
	UNIT
	cat >/etc/systemd/system/gk-vm-command.service <<-UNIT
		[Unit]
		Description=run-in-vm: the command from the kernel command line
		After=basic.target
		SuccessAction=poweroff-force
		FailureAction=poweroff-force

		[Service]
		Type=oneshot
		ExecStart=/bin/bash $self --unit
		TimeoutStartSec=infinity
		StandardInput=null
		StandardOutput=tty
		StandardError=inherit
		TTYPath=/dev/console
	UNIT
}

if [[ ${1:-} == --unit ]]; then
	# run by gk-vm-command.service: /proc, /sys, /dev and /run are systemd's
	mount_gkout && run_command
	exit
fi

mount -t proc proc /proc
if [[ $(arg systemd) == 1 ]]; then
	write_units
	# The host may be a container (docker leaves /.dockerenv in its root,
	# which is ours too): systemd would then believe it runs in one, and
	# ignore the kernel command line's systemd.* options among other things.
	rm -f /.dockerenv
	# tmp.conf empties /tmp at boot: over 9p that takes long, and the
	# host's /tmp (build trees, the command's directory) is to stay visible
	mkdir -p /etc/tmpfiles.d
	ln -sfn /dev/null /etc/tmpfiles.d/tmp.conf
	echo "gk-vm: kernel $(uname -r), handing over to systemd"
	# shellcheck disable=SC2093 # the line after it runs only if exec failed
	exec /lib/systemd/systemd
	echo "gk-vm: cannot exec /lib/systemd/systemd"
	poweroff_now
fi
mount -t sysfs sysfs /sys
mkdir -p /dev/pts /dev/shm
# what udev/systemd would add to devtmpfs; bash's <(...) needs /dev/fd
ln -sfn /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs -o mode=1777 tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/netns /run/lock
mount_gkout || poweroff_now
ip link set lo up
hostname gk-vm

run_command
poweroff_now
