#!/bin/bash
# The package's life in a fresh Debian 12 root (debootstrap minbase):
# apt install, enable and start, a site toggled; apt install of a higher
# version (conffile, state file and the site's override kept, the daemon
# restarted, one set of rules); apt remove (daemon stopped, no rule left);
# apt purge (config, state, user and group gone).
#
#   tests/package/lifecycle.sh DEB_V1 DEB_V2     (as root)
#
# systemd is not PID 1 here: the maintainer scripts' systemd branch runs
# against tests/package/systemctl-shim, which starts and stops the daemon
# with the unit's own ExecStartPre=/ExecStart= lines (see there for what
# that does not cover). apt runs in the root inside the test's gw network
# namespace, so the daemon's rules and traffic stay in the namespaces of the
# test (tests/package/netns.sh). Prints "N passed, N failed" last.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
root_reexec "$0" "$@"
source "$here/netns.sh"

DEB1=$(realpath "$1")
DEB2=$(realpath "$2")
CONF=/etc/gatekeeper/gatekeeper.yaml
STATE=/var/lib/gatekeeper/state

trap 'cleanup_root' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# apt in the root, in the gw namespace: no network there, so everything it
# installs must already be there (prepare installs the dependencies). apt
# gives dpkg a PATH of its own (DPkg::Path): the shim's directory goes first.
apt_gw() { ip netns exec "$NS_G" chroot "$ROOT" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	HOME=/root LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
	apt-get -y -q -o Dpkg::Use-Pty=0 -o DPkg::Path=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin "$@"; }
ctl() { ip netns exec "$NS_G" chroot "$ROOT" /usr/bin/gatekeeperctl "$@"; }

daemon_pid() { cat "$ROOT/run/gk-shim-gatekeeper.pid" 2>/dev/null; }
pid_is_gatekeeperd() {
	[[ -n $1 ]] && grep -qx gatekeeperd "/proc/$1/comm" 2>/dev/null &&
		! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null
}
daemon_running() {
	local pid
	pid=$(daemon_pid)
	pid_is_gatekeeperd "$pid"
}
no_daemon() {
	local p
	p=$(pgrep -x gatekeeperd | while read -r p; do
		[[ $(readlink "/proc/$p/root") == "$ROOT" ]] && echo "$p"
	done)
	[[ -z $p ]] || { echo "gatekeeperd still runs: $p"; return 1; }
}

prepare() {
	new_root lifecycle || return 1
	mkdir -p "$ROOT/tmp/debs"
	cp "$DEB1" "$DEB2" "$ROOT/tmp/debs/"
	in_root apt-get update -q >"$ROOT/tmp/apt-update.log" 2>&1 || { cat "$ROOT/tmp/apt-update.log"; return 1; }
	# What the package pulls in (Depends and Recommends, as apt does by
	# default), installed before the test's systemctl is in place.
	local deps
	deps=$(in_root apt-get install -s "/tmp/debs/${DEB1##*/}" | awk '$1 == "Inst" && $2 != "gatekeeper" { print $2 }')
	echo "dependencies:" $deps
	# shellcheck disable=SC2086
	in_root apt-get install -y -q $deps >"$ROOT/tmp/apt-deps.log" 2>&1 || { tail -n 30 "$ROOT/tmp/apt-deps.log"; return 1; }
	install -m 0755 "$here/systemctl-shim" "$ROOT/usr/local/sbin/systemctl"
	mkdir -p "$ROOT/run/systemd/system"
	topology_up "$ROOT/tmp/netprobe.log"
}

installed_files() {
	local f status=0
	for f in /usr/sbin/gatekeeperd /usr/bin/gatekeeperctl /lib/systemd/system/gatekeeper.service \
		/usr/lib/sysusers.d/gatekeeper.conf /usr/lib/tmpfiles.d/gatekeeper.conf "$CONF" \
		/usr/share/man/man8/gatekeeperd.8.gz /usr/share/man/man8/gatekeeperctl.8.gz \
		/usr/share/man/man5/gatekeeper.yaml.5.gz /usr/share/doc/gatekeeper/README.md.gz \
		/usr/share/doc/gatekeeper/README.Debian /usr/share/doc/gatekeeper/copyright; do
		[[ -e $ROOT$f ]] && echo "$f" || { echo "missing: $f"; status=1; }
	done
	return "$status"
}

config_is_conffile() {
	in_root dpkg-query -W -f='${Conffiles}\n' gatekeeper | tee /dev/stderr | grep -q "^ $CONF "
}

user_and_dirs() {
	in_root getent passwd gatekeeper && in_root getent group gatekeeper &&
		in_root stat -c '%n %a %U:%G' /var/lib/gatekeeper /run/gatekeeper &&
		[[ $(in_root stat -c '%a %U' /var/lib/gatekeeper) == "750 gatekeeper" ]]
}

not_enabled_not_started() {
	cat "$ROOT/var/log/systemctl-shim.log"
	in_root systemctl is-enabled gatekeeper.service
	[[ $(in_root systemctl is-enabled gatekeeper.service) == disabled ]] &&
		! daemon_running && no_gk_rules
}

enable_now() {
	in_root systemctl enable gatekeeper.service &&
		ip netns exec "$NS_G" chroot "$ROOT" env PATH=/usr/local/sbin:/usr/sbin:/usr/bin systemctl start gatekeeper.service &&
		daemon_running && gk_rules_once
}

operator_edits_config() {
	# a change of the operator's: the conffile is modified
	sed -i '1a # changed by the operator' "$ROOT$CONF" &&
		grep -n 'changed by the operator' "$ROOT$CONF" &&
		ctl reload
}

take_offline() {
	ctl offline shop --action reject && both_see refused && grep -H . "$ROOT$STATE"
}

upgrade() {
	local before after
	before=$(daemon_pid)
	cp "$ROOT$STATE" "$ROOT/tmp/state.before"
	: >"$ROOT/var/log/systemctl-shim.log"
	apt_gw install "/tmp/debs/${DEB2##*/}" || return 1
	cat "$ROOT/var/log/systemctl-shim.log"
	after=$(daemon_pid)
	echo "daemon pid before $before, after $after"
	in_root dpkg-query -W gatekeeper
	grep -H . "/proc/$before/comm" "/proc/$before/status" 2>/dev/null | grep -E 'comm|State'
	[[ $(in_root dpkg-query -W -f='${Version}' gatekeeper) == "$(dpkg-deb -f "$DEB2" Version)" ]] &&
		[[ -n $after && $after != "$before" ]] && daemon_running && ! pid_is_gatekeeperd "$before"
}

kept_after_upgrade() {
	grep -n 'changed by the operator' "$ROOT$CONF" || { echo "the operator's change is gone"; return 1; }
	ls "$ROOT/etc/gatekeeper/"
	! ls "$ROOT/etc/gatekeeper/"*.dpkg-* 2>/dev/null || { echo "dpkg left a conffile copy"; return 1; }
	cmp "$ROOT/tmp/state.before" "$ROOT$STATE" || return 1
	ctl status | tee /dev/stderr | grep -q '^shop: offline, from runtime' && both_see refused
}

back_online() { ctl online shop && both_see connected; }

remove() {
	: >"$ROOT/var/log/systemctl-shim.log"
	apt_gw remove gatekeeper || return 1
	cat "$ROOT/var/log/systemctl-shim.log"
	no_daemon && no_gk_rules && both_see connected
}

kept_after_remove() {
	[[ -f $ROOT$CONF && -f $ROOT$STATE ]] && in_root getent passwd gatekeeper &&
		[[ $(in_root dpkg-query -W -f='${db:Status-Abbrev}' gatekeeper) == "rc " ]]
}

purge() {
	apt_gw purge gatekeeper || return 1
	local gone status=0
	for gone in /etc/gatekeeper /var/lib/gatekeeper /run/gatekeeper \
		/etc/systemd/system/multi-user.target.wants/gatekeeper.service; do
		if [[ -e $ROOT$gone || -L $ROOT$gone ]]; then
			echo "still there: $gone"
			status=1
		fi
	done
	if in_root getent passwd gatekeeper || in_root getent group gatekeeper; then
		echo "user or group gatekeeper still there"
		status=1
	fi
	in_root dpkg-query -W gatekeeper 2>&1
	return "$status"
}

main() {
	check "a fresh minbase root, the package's dependencies, the test network" prepare ||
		{ summary; exit 1; }
	check "apt install ./$(basename "$DEB1")" apt_gw install "/tmp/debs/${DEB1##*/}" || { summary; exit 1; }
	check "daemon, ctl, unit, sysusers, tmpfiles, config, man pages, docs installed" installed_files
	check "$CONF is a conffile" config_is_conffile
	check "user and group gatekeeper, /var/lib/gatekeeper 0750 and /run/gatekeeper made" user_and_dirs
	check "installed disabled and not started: no daemon, no rule" not_enabled_not_started
	check "systemctl enable + start: daemon up, one set of rules" enable_now
	check "client connects to the online site shop (IPv4, IPv6)" both_see connected
	check "the operator edits the config; gatekeeperctl reload" operator_edits_config
	check "gatekeeperctl offline shop --action reject: client refused; state file written" take_offline
	check "apt install of the higher version: daemon restarted (new pid)" upgrade
	check "after the upgrade: one set of rules, not two" gk_rules_once
	check "after the upgrade: edited conffile kept, state file unchanged, shop still offline" kept_after_upgrade
	check "gatekeeperctl online shop: client connects" back_online
	check "apt remove: daemon stopped, no rule left" remove
	check "after remove: config, state and user kept (status rc)" kept_after_remove
	check "apt purge: config, state, run dir, enablement, user and group gone" purge
	summary
}

main
