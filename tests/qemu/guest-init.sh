#!/bin/bash
# Stage 2 of the test VM, PID 1 after switch_root (see run-in-vm.sh): the
# root is the host's filesystem under a tmpfs overlay (so the host's /tmp,
# build trees included, is seen as it was at boot). Mounts the API
# filesystems and a fresh /run, runs the command from the kernel command line in its working
# directory, reports the status on the console and in the gkout export,
# then powers off. Never returns: PID 1 must not exit.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root TERM=dumb LC_ALL=C.UTF-8
umask 022

poweroff_now() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 60
}

mount -t proc proc /proc
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
mkdir -p /run/gk-out /run/netns /run/lock
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000 gkout /run/gk-out; then
	echo "gk-vm: cannot mount the gkout export"
	poweroff_now
fi
ip link set lo up
hostname gk-vm

arg() { tr ' ' '\n' </proc/cmdline | sed -n "s/^gk\\.$1=//p" | base64 -d; }
cmd=$(arg cmd)
cwd=$(arg cwd)

echo "gk-vm: kernel $(uname -r), running in ${cwd}: ${cmd}"
# through a pipe, as in CI: the console is a tty and would get progress bars
(cd "$cwd" && exec bash -c "$cmd") </dev/null 2>&1 | cat
status=${PIPESTATUS[0]}
echo "$status" >/run/gk-out/status
echo "gk-vm: exit status $status"
poweroff_now
