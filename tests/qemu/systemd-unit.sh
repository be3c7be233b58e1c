#!/bin/bash
# systemd-unit.sh: gatekeeper.service under a real systemd as PID 1, in
# Debian's stock kernel in qemu (run-in-vm.sh --systemd). Everything the
# unit file promises, seen from systemd's side:
#
#   meson install, systemd-sysusers, systemd-tmpfiles, daemon-reload; a
#   config (the shipped one, with the three test sites) at the path of the
#   unit's ExecStart=; `systemctl start` returns once READY=1 came (Type=
#   notify) with STATUS=; the main process runs as user gatekeeper with
#   CAP_NET_ADMIN and CAP_NET_RAW only, no_new_privs and a seccomp filter;
#   the kernel loads nft_queue on demand for it (it cannot), and xt_NFQUEUE
#   when its probe asks nft_compat for the target; gatekeeperctl
#   works on the socket in the RuntimeDirectory=, its toggles reach the
#   state file in the StateDirectory=; an online site is reached from a
#   client namespace, offline sites are dropped / refused (IPv4 and IPv6);
#   `systemctl reload` applies a changed config and refuses a broken one
#   and one the daemon refuses (a change that needs a restart)
#   with the daemon untouched; the watchdog keeps being fed past
#   WatchdogSec=; SIGKILL is followed by a restart (Restart=on-failure);
#   `systemctl stop` leaves the ruleset as it was before the start;
#   `systemd-analyze security` rates the loaded unit; then the xt backends
#   (iptables-nft and iptables-legacy children in the sandbox) the same way,
#   shorter, xt-legacy with ip_tables/ip6_tables from modules-load.d.
#
#   tests/qemu/systemd-unit.sh BUILDDIR     (root; boots the VM, ~2-3 min)
#
# The guest's root is this machine's under a tmpfs overlay, so installing
# into it touches nothing here. Topology, documentation addresses only: the
# guest's own network namespace (no network device of its own) is the
# router between a client and a server namespace, as the gw of
# tests/e2e/lib.sh: that is where systemd runs the daemon.
#
#   client ns 192.0.2.100 2001:db8:1::100 -- guest 192.0.2.1 | 198.51.100.1
#   2001:db8:1::1 | 2001:db8:2::1 -- server ns 198.51.100.10/.11/.12
#   2001:db8:2::10/11/12 (shop online, blog offline+drop, wiki offline+reject)
set -u

here=$(cd "$(dirname "$0")" && pwd)
source_root=$(cd "$here/../.." && pwd)

# ---------------------------------------------------------------- the host

# Boots the guest and runs this script in it; returns the guest's status.
run_on_host() {
	local builddir f
	[[ -d ${1:-} ]] || { echo "usage: $0 BUILDDIR" >&2; return 2; }
	builddir=$(realpath "$1")
	for f in gatekeeperd gatekeeperctl gatekeeper.service tests/e2e/tls_server tests/e2e/tls_probe; do
		[[ -e $builddir/$f ]] || { echo "$0: $builddir/$f missing: build first" >&2; return 2; }
	done
	# run-in-vm.sh cleans up the guest; nothing else is made here
	cd "$source_root" || return 2
	bash tests/qemu/run-in-vm.sh --systemd --timeout 600 -- \
		bash tests/qemu/systemd-unit.sh --guest "$builddir"
}

# ---------------------------------------------------------------- the guest

builddir=""
export SRCDIR=$source_root/tests/e2e
# shellcheck source-path=SCRIPTDIR/../e2e source=lib.sh
source "$SRCDIR/lib.sh"

# shellcheck disable=SC2034 # lib.sh's wait_for reads it
WAIT_TIMEOUT=30 # TCG: everything is 5-15x slower than on the host
readonly UNIT=gatekeeper.service
readonly PROBE_MS=10000
readonly DROP_PROBE_MS=2000
readonly REFUSED_MAX_MS=3000
readonly FOREIGN_TABLE=gk_foreign_$$
readonly WANT_CAPS=0000000000003000 # CAP_NET_ADMIN (12), CAP_NET_RAW (13)
# the daemon drops CAP_NET_RAW once its raw sockets are open, except for
# iptables-legacy's tools; the bounding set keeps what the unit gave
readonly WANT_CAPS_NO_RAW=0000000000001000

GATEKEEPERCTL=""
CONFIG=""    # the -c of the unit's ExecStart=
SHIPPED=""   # the installed config, as shipped
TMPFILES=""  # the installed tmpfiles.d snippet
RULES_BEFORE=""
FOREIGN_LISTING=""
MAIN_PID=""

# ---------------------------------------------------------------- helpers

# shellcheck disable=SC2317 # run by the trap
guest_cleanup() {
	local status=$?
	timeout 60 systemctl stop "$UNIT" 2>/dev/null
	nft delete table inet "$FOREIGN_TABLE" 2>/dev/null
	(exit "$status")
	cleanup # lib.sh: namespaces, servers, TMP
}

prop() { systemctl show -P "$1" "$UNIT"; }

# unit_is STATE SUBSTATE
unit_is() {
	local got
	got="$(prop ActiveState)/$(prop SubState)"
	echo "$UNIT: $got (want $1/$2)"
	[[ $got == "$1/$2" ]]
}

# The journal of the current (or last) run of the unit.
unit_journal() {
	journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$(prop InvocationID)"
}

show_journal() {
	log "---- journal of $UNIT"
	journalctl --no-pager -o short-monotonic -u "$UNIT" -n 60 | sed 's/^/#   /'
	log "----"
}

# start_unit: `systemctl start` (which waits for READY=1), bounded.
start_unit() {
	timeout 120 systemctl start "$UNIT"
	local status=$?
	echo "systemctl start: status $status"
	MAIN_PID=$(prop MainPID)
	((status == 0)) && unit_is active running
}

ready_line_names() { # WANT: the backend in the "ready:" line
	local line
	wait_for eval 'unit_journal | grep -q "ready:"'
	line=$(unit_journal | grep -m1 'ready:')
	echo "${line:-no ready: line}"
	grep -qF "$1" <<<"$line"
}

status_text_set() {
	local text
	text=$(prop StatusText)
	echo "StatusText=$text"
	[[ -n $text ]]
}

# /proc/PID/status of the main process: user, groups and capabilities.
# runs_unprivileged [WANT]: WANT the CapInh/Prm/Eff/Amb (default: without
# CAP_NET_RAW), CapBnd always WANT_CAPS.
runs_unprivileged() {
	local st uid gid status=0 field want
	local caps=${1:-$WANT_CAPS_NO_RAW}
	st=$(cat "/proc/$MAIN_PID/status") || return 1
	uid=$(id -u gatekeeper) gid=$(id -g gatekeeper)
	grep -E '^(Name|Uid|Gid|Groups|Cap[A-Za-z]+|NoNewPrivs|Seccomp):' <<<"$st"
	grep -qP "^Uid:\t$uid\t$uid\t$uid\t$uid$" <<<"$st" || { echo "want uid $uid"; status=1; }
	grep -qP "^Gid:\t$gid\t$gid\t$gid\t$gid$" <<<"$st" || { echo "want gid $gid"; status=1; }
	# systemd's initgroups() lists the primary group; nothing else
	grep -qP "^Groups:\t($gid ?)?$" <<<"$st" || { echo "want no group but $gid"; status=1; }
	for field in CapInh CapPrm CapEff CapBnd CapAmb; do
		want=$caps
		[[ $field == CapBnd ]] && want=$WANT_CAPS
		grep -qP "^$field:\t$want$" <<<"$st" || { echo "want $field $want"; status=1; }
	done
	grep -qP '^NoNewPrivs:\t1$' <<<"$st" || { echo "want NoNewPrivs 1"; status=1; }
	grep -qP '^Seccomp:\t2$' <<<"$st" || { echo "want Seccomp 2 (filter)"; status=1; }
	return "$status"
}

ctl() { "$GATEKEEPERCTL" "$@"; }

# The health checker under the unit: shop's check (it only reports: shop
# is state online) has passed, run by a `gatekeeperd --checker` child of
# the main process that holds no capability at all in its effective,
# permitted and ambient sets, with no_new_privs and its own seccomp filter.
# (CapBnd/CapInh keep the unit's two: clearing them needs capset() with
# CAP_SETPCAP; no_new_privs keeps them out of reach.)
checker_runs_caged() {
	local pid st ok=1 i
	for ((i = 0; i < 30; i++)); do
		ctl status | grep -qE "^ +$SHOP4 port $SITE_PORT: up" && break
		sleep 1
	done
	ctl status | grep -E "^ +$SHOP4 port $SITE_PORT:" || return 1
	ctl status | grep -qE "^ +$SHOP4 port $SITE_PORT: up" || ok=0
	for pid in $(cat "/proc/$MAIN_PID/task/"*/children 2>/dev/null); do
		tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- --checker && break
		pid=
	done
	[[ -n ${pid:-} ]] || { echo "no --checker child of $MAIN_PID"; return 1; }
	st=$(cat "/proc/$pid/status") || return 1
	grep -E '^(Uid|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' <<<"$st"
	grep -qP '^CapEff:\t0+$' <<<"$st" && grep -qP '^CapPrm:\t0+$' <<<"$st" &&
		grep -qP '^CapAmb:\t0+$' <<<"$st" && grep -qP '^NoNewPrivs:\t1$' <<<"$st" &&
		grep -qP '^Seccomp:\t2$' <<<"$st" || ok=0
	((ok))
}

socket_in_runtime_dir() {
	local sock=/run/gatekeeper/control.sock
	stat -c '%F %U:%G %a %n' /run/gatekeeper "$sock" || return 1
	[[ -S $sock && $(stat -c %U:%G "$sock") == gatekeeper:gatekeeper ]]
}

ctl_status_lists_sites() {
	local out
	out=$(ctl status) || { echo "$out"; return 1; }
	echo "$out"
	grep -q shop <<<"$out" && grep -q blog <<<"$out" && grep -q wiki <<<"$out"
}

state_file_says() { # SITE WORD: the StateDirectory='s state file names SITE with WORD
	local f=/var/lib/gatekeeper/state
	stat -c '%U:%G %a %n' "$f" || return 1
	cat "$f"
	grep "$1" "$f" | grep -q "$2"
}

# never_reached ADDR: no SYN to ADDR:443 got to the server since the reset
never_reached() {
	local n
	n=$(syn_count "$1")
	echo "$n SYN(s) to $1:$SITE_PORT reached the server namespace"
	[[ $n == 0 ]]
}

# The three verdicts over both families; LABEL names the moment.
verdicts() {
	local label=$1 fam shop blog wiki
	syn_counters_reset "$NS_SERVER"
	for fam in 4 6; do
		if [[ $fam == 4 ]]; then shop=$SHOP4 blog=$BLOG4 wiki=$WIKI4; else shop=$SHOP6 blog=$BLOG6 wiki=$WIKI6; fi
		check "$label: IPv$fam shop (online) completes a handshake" \
			probe_says "handshake ok cn=$CERT_CN" "$shop" "$SITE_PORT" "$PROBE_MS"
		check "$label: IPv$fam blog (offline, drop) times out" \
			probe_says timeout "$blog" "$SITE_PORT" "$DROP_PROBE_MS"
		check "$label: IPv$fam wiki (offline, reject) refused in < $REFUSED_MAX_MS ms" \
			probe_says refused "$wiki" "$SITE_PORT" "$PROBE_MS" "$REFUSED_MAX_MS"
		check "$label: IPv$fam no SYN to blog or wiki reached the server" \
			eval "never_reached $blog && never_reached $wiki"
	done
}

# The guest's ruleset and iptables-legacy's (which nft does not show),
# without packet counters: for comparing two moments. iptables-legacy-save
# only once ip_tables is there: it would modprobe it, and what the daemon
# finds loaded is part of the test.
rules_snapshot() {
	{
		nft list ruleset
		[[ -e /proc/net/ip_tables_names ]] && iptables-legacy-save
		[[ -e /proc/net/ip6_tables_names ]] && ip6tables-legacy-save
	} 2>&1 | sed -E '/^#/d; s/ \[[0-9]+:[0-9]+\]$//; s/counter packets [0-9]+ bytes [0-9]+/counter/'
}

rules_as_before_start() {
	local now
	now=$(rules_snapshot)
	diff <(echo "$RULES_BEFORE") <(echo "$now") && echo "ruleset as before the start:" && echo "$now"
}

# For the xt backends: iptables-nft leaves its tables with empty base
# chains behind (as it does for any user); none of ours may be left, and
# the foreign table must be intact.
no_rules_of_ours() {
	local now
	now=$(rules_snapshot)
	echo "$now"
	if grep -E 'gatekeeper|GATEKEEPER|NFQUEUE|queue' <<<"$now"; then
		echo "left behind (above)"
		return 1
	fi
	diff <(foreign_listing) <(echo "$FOREIGN_LISTING") && echo "table inet $FOREIGN_TABLE intact"
}

module_loaded() { grep -q "^$1 " /proc/modules; }

# ---------------------------------------------------------------- setup

# The guest's namespace is the router (lib.sh's gw); client and server get
# namespaces of their own, each linked to it by a veth made inside them.
setup_guest_topology() {
	local dev_c="gkc$$" dev_s="gks$$" a
	sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ns_add "$NS_CLIENT"
	ns_add "$NS_SERVER"
	ip -n "$NS_CLIENT" link add c0 type veth peer name "$dev_c" netns 1 || die "veth to the client"
	ip -n "$NS_SERVER" link add s0 type veth peer name "$dev_s" netns 1 || die "veth to the server"
	ip -n "$NS_CLIENT" link set c0 up
	ip -n "$NS_SERVER" link set s0 up
	ip link set "$dev_c" up
	ip link set "$dev_s" up

	ip -n "$NS_CLIENT" addr add "$CLIENT4/24" dev c0
	ip -n "$NS_CLIENT" addr add "$CLIENT6/64" dev c0
	ip -n "$NS_CLIENT" route add default via "$GW_CLIENT4"
	ip -n "$NS_CLIENT" -6 route add default via "$GW_CLIENT6"
	ip addr add "$GW_CLIENT4/24" dev "$dev_c"
	ip addr add "$GW_CLIENT6/64" dev "$dev_c"
	ip addr add "$GW_SERVER4/24" dev "$dev_s"
	ip addr add "$GW_SERVER6/64" dev "$dev_s"
	sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	for a in "$SHOP4" "$BLOG4" "$WIKI4"; do
		ip -n "$NS_SERVER" addr add "$a/24" dev s0
	done
	for a in "$SHOP6" "$BLOG6" "$WIKI6"; do
		ip -n "$NS_SERVER" addr add "$a/64" dev s0
	done
	ip -n "$NS_SERVER" route add default via "$GW_SERVER4"
	ip -n "$NS_SERVER" -6 route add default via "$GW_SERVER6"

	wait_for link_up "$NS_CLIENT" c0 || die "client link up"
	wait_for link_up "$NS_SERVER" s0 || die "server link up"
	wait_for no_tentative_address "$NS_CLIENT" "$NS_SERVER" || die "IPv6 addresses left tentative"
	warm_paths
}

foreign_listing() {
	nft list table inet "$FOREIGN_TABLE" 2>&1 | sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/'
}

# A table of someone else's in the guest's namespace: stop must leave it.
add_foreign_table() {
	nft -f - <<-EOF || die "cannot add the foreign table"
		table inet $FOREIGN_TABLE {
		  chain c {
		    type filter hook prerouting priority 10; policy accept;
		    tcp dport 8443 counter
		  }
		}
	EOF
	FOREIGN_LISTING=$(foreign_listing)
}

install_all() {
	meson install -C "$builddir" --no-rebuild --quiet || return 1
	local unit
	systemctl daemon-reload || return 1
	unit=$(prop FragmentPath)
	echo "unit: $unit ($(prop LoadState))"
	[[ $(prop LoadState) == loaded ]] || return 1
	grep -E '^Exec' "$unit"
	CONFIG=$(sed -n 's/^ExecStart=.* -c \([^ ]*\)$/\1/p' "$unit")
	GATEKEEPERD=$(sed -n 's/^ExecStart=\([^ ]*\) .*/\1/p' "$unit")
	GATEKEEPERCTL=$(dirname "$(dirname "$GATEKEEPERD")")/bin/gatekeeperctl
	TMPFILES=$(meson introspect --installed "$builddir" | tr ',' '\n' |
		sed -n 's/.*"\([^"]*tmpfiles.d\/gatekeeper.conf\)"}*$/\1/p' | head -n1)
	echo "daemon $GATEKEEPERD, config $CONFIG, ctl $GATEKEEPERCTL, tmpfiles $TMPFILES"
	[[ -x $GATEKEEPERD && -x $GATEKEEPERCTL && -f $CONFIG && -f $TMPFILES ]] || return 1
	SHIPPED="$TMP/shipped.yaml"
	cp "$CONFIG" "$SHIPPED"
}

sysusers_and_tmpfiles() {
	systemd-sysusers || return 1
	getent passwd gatekeeper && getent group gatekeeper || return 1
	systemd-tmpfiles --create "$TMPFILES" || return 1
	stat -c '%F %U:%G %a %n' /run/gatekeeper /var/lib/gatekeeper /run/xtables.lock
}

# write_unit_config BACKEND BLOG_STATE: the shipped config up to its
# sites, with BACKEND, then the three test sites.
write_unit_config() {
	{
		sed -n '/^sites:/q; p' "$SHIPPED" | sed "s/^backend: .*/backend: $1/"
		cat <<-EOF
			# the test sites (tests/qemu/systemd-unit.sh)
			sites:
			  - name: shop
			    addresses: [$SHOP4, "$SHOP6"]
			    ports: [$SITE_PORT]
			    state: online
			    check: {type: tls, interval: 2s, timeout: 1500ms, addresses: [$SHOP4]}
			  - name: blog
			    addresses: [$BLOG4, "$BLOG6"]
			    ports: [$SITE_PORT]
			    state: $2
			    action: drop
			  - name: wiki
			    addresses: [$WIKI4, "$WIKI6"]
			    ports: [$SITE_PORT]
			    state: offline
			    action: reject
		EOF
	} >"$CONFIG.new" && mv "$CONFIG.new" "$CONFIG"
}

# ---------------------------------------------------------------- scenarios

reload_applies() { # BACKEND BLOG_STATE: rewrite, reload, same process
	local status
	write_unit_config "$1" "$2"
	timeout 60 systemctl reload "$UNIT"
	status=$?
	echo "systemctl reload: status $status; MainPID $(prop MainPID) (was $MAIN_PID)"
	((status == 0)) && [[ $(prop MainPID) == "$MAIN_PID" ]] && unit_is active running
}

reload_refuses_broken() {
	local status
	printf 'sites: [\n' >>"$CONFIG"
	timeout 60 systemctl reload "$UNIT"
	status=$?
	echo "systemctl reload of a broken config: status $status (want non-zero)"
	((status != 0)) && [[ $(prop MainPID) == "$MAIN_PID" ]] && unit_is active running
}

# A file --check accepts but the daemon refuses (queue.maxlen needs a
# restart): `systemctl reload` must fail too, not report the SIGHUP it sent.
reload_refuses_restart_only() {
	local status
	write_unit_config auto online
	sed -i 's/^  maxlen: .*/  maxlen: 1024/' "$CONFIG"
	grep -q '^  maxlen: 1024$' "$CONFIG" || return 1
	timeout 60 systemctl reload "$UNIT"
	status=$?
	echo "systemctl reload of a restart-only change: status $status (want non-zero)"
	journalctl -u "$UNIT" --no-pager -n 20 | grep "needs a restart" || return 1
	write_unit_config auto offline
	((status != 0)) && [[ $(prop MainPID) == "$MAIN_PID" ]] && unit_is active running
}

# The watchdog: pings keep coming for longer than WatchdogSec= and
# nothing is restarted.
watchdog_fed() {
	local usec seconds t0 t1 restarts
	usec=$(systemd-analyze timespan "$(prop WatchdogUSec)" | sed -n 's/^ *μs: //p')
	[[ -n $usec && $usec != 0 ]] || { echo "no WatchdogSec= in force"; return 1; }
	seconds=$((usec / 1000000 + 5))
	t0=$(prop WatchdogTimestampMonotonic)
	restarts=$(prop NRestarts)
	echo "WatchdogSec=$((usec / 1000000))s; waiting ${seconds}s"
	sleep "$seconds"
	t1=$(prop WatchdogTimestampMonotonic)
	echo "last ping at ${t0}us, then ${t1}us; MainPID $(prop MainPID) (was $MAIN_PID);" \
		"NRestarts $(prop NRestarts) (was $restarts)"
	! journalctl --no-pager -u "$UNIT" | grep -i 'watchdog timeout' &&
		((t1 > t0)) && [[ $(prop MainPID) == "$MAIN_PID" && $(prop NRestarts) == "$restarts" ]] &&
		unit_is active running
}

main_pid_replaced() { # OLD_PID
	local pid
	pid=$(prop MainPID)
	[[ $pid != 0 && $pid != "$1" ]] && unit_is active running
}

restarts_after_sigkill() {
	local old=$MAIN_PID restarts
	restarts=$(prop NRestarts)
	kill -KILL "$old" || return 1
	wait_for main_pid_replaced "$old" || { unit_is active running; return 1; }
	MAIN_PID=$(prop MainPID)
	echo "MainPID $old killed, now $MAIN_PID; NRestarts $(prop NRestarts) (was $restarts)"
	[[ $(prop NRestarts) == $((restarts + 1)) ]]
}

stop_unit() {
	local status
	timeout 60 systemctl stop "$UNIT"
	status=$?
	echo "systemctl stop: status $status; Result=$(prop Result) ExecMainStatus=$(prop ExecMainStatus)"
	((status == 0)) && unit_is inactive dead && [[ $(prop Result) == success ]] || return 1
	if pgrep -a -x gatekeeperd; then
		echo "gatekeeperd still runs"
		return 1
	fi
}

exposure_at_most() { # MAX
	local out level
	out=$(systemd-analyze security --no-pager "$UNIT" 2>&1)
	grep -E '^✗' <<<"$out"
	level=$(sed -n 's/^→ Overall exposure level for [^:]*: \([0-9.]*\) .*/\1/p' <<<"$out")
	echo "exposure: ${level:-<not found>} (want <= $1)"
	[[ -n $level ]] && awk -v l="$level" -v m="$1" 'BEGIN { exit !(l <= m) }'
}

# The default backend (auto, nft on this kernel): the whole round.
scenario_auto() {
	local had_queue_module=0 had_xt_module=0
	module_loaded nft_queue && had_queue_module=1
	module_loaded xt_NFQUEUE && had_xt_module=1
	write_unit_config auto offline
	check "systemctl start: active once READY=1 came (Type=notify)" start_unit ||
		{ show_journal; finish; }
	check "the ready: line names backend nft" ready_line_names 'backend nft,'
	check "STATUS= reached systemd (StatusText)" status_text_set
	check "runs as gatekeeper, CapEff/Prm/Inh/Amb = $WANT_CAPS_NO_RAW (cap_net_raw dropped), Bnd = $WANT_CAPS, no_new_privs, seccomp" \
		runs_unprivileged
	if ((had_queue_module)); then
		log "nft_queue was loaded before the start: autoload not observed"
	else
		check "the kernel loaded nft_queue on demand for the daemon (no CAP_SYS_MODULE)" \
			module_loaded nft_queue
	fi
	# the probe asks nft_compat for the xt target (ProtectKernelModules=
	# hides modules.dep): the kernel loads it to answer
	if ((had_xt_module)); then
		log "xt_NFQUEUE was loaded before the start: the probe's kernel query not observed"
	else
		check "the probe's query loaded xt_NFQUEUE in the sandbox (ProtectKernelModules=yes)" \
			module_loaded xt_NFQUEUE
	fi
	check "the health checker runs caged (no capability, no_new_privs, seccomp) and shop's check passed" \
		checker_runs_caged
	check "the control socket is in the RuntimeDirectory=, owned by gatekeeper" \
		socket_in_runtime_dir
	check "gatekeeperctl status (root) over /run/gatekeeper/control.sock" ctl_status_lists_sites
	verdicts "started"

	check "gatekeeperctl offline shop --action reject" ctl offline shop --action reject
	check "the toggle reached the state file in the StateDirectory=" state_file_says shop offline
	check "IPv4 shop now refused" probe_says refused "$SHOP4" "$SITE_PORT" "$PROBE_MS"
	check "gatekeeperctl reset shop" ctl reset shop
	check "IPv4 shop online again" probe_says "handshake ok cn=$CERT_CN" "$SHOP4" "$SITE_PORT" "$PROBE_MS"

	if [[ -n $(prop ExecReload) ]]; then
		check "systemctl reload with blog online in the file: same process" reload_applies auto online
		check "after the reload: IPv6 blog completes a handshake" \
			probe_says "handshake ok cn=$CERT_CN" "$BLOG6" "$SITE_PORT" "$PROBE_MS"
		check "systemctl reload of a broken file fails, the daemon stays" reload_refuses_broken
		check "after the refused reload: IPv6 blog still online" \
			probe_says "handshake ok cn=$CERT_CN" "$BLOG6" "$SITE_PORT" "$PROBE_MS"
		check "systemctl reload with blog offline again" reload_applies auto offline
		check "after the reload: IPv6 blog times out" probe_says timeout "$BLOG6" "$SITE_PORT" "$DROP_PROBE_MS"
		check "systemctl reload of a change needing a restart fails, the daemon stays" \
			reload_refuses_restart_only
		check "after the refused reload: IPv6 blog still offline" \
			probe_says timeout "$BLOG6" "$SITE_PORT" "$DROP_PROBE_MS"
	else
		log "the unit has no ExecReload=: reload not tested"
	fi

	check "the watchdog keeps being fed past WatchdogSec=, no restart" watchdog_fed
	check "SIGKILL: systemd restarts it (Restart=on-failure)" restarts_after_sigkill
	verdicts "restarted"
	check "systemctl stop: inactive, Result=success, no process left" stop_unit
	check "after the stop the ruleset is the one before the start (foreign table kept)" \
		rules_as_before_start
}

# Backend xt-legacy on a modular kernel: iptables-legacy's tools modprobe
# ip_tables / ip6_tables themselves (the kernel loads neither on demand),
# which the unit forbids (no CAP_SYS_MODULE); the admin lists them in
# modules-load.d (kmod-free/README.md). Done here that way.
load_legacy_modules_at_boot() {
	printf '%s\n' ip_tables ip6_tables >/etc/modules-load.d/gatekeeper-xt-legacy.conf
	systemctl restart systemd-modules-load.service || return 1
	ls /proc/net/ip_tables_names /proc/net/ip6_tables_names
}

# xt_queue_rules_once FLAVOUR: NFQUEUE rules per family (want 3: one per site)
xt_queue_rules_once() {
	local n4 n6
	n4=$("iptables-${1#xt-}-save" | grep -c -- '-j NFQUEUE')
	n6=$("ip6tables-${1#xt-}-save" | grep -c -- '-j NFQUEUE')
	echo "NFQUEUE rules: IPv4 $n4, IPv6 $n6 (want 3 each)"
	[[ $n4 == 3 && $n6 == 3 ]]
}

# An xt backend: its iptables-*-restore children run inside the sandbox.
scenario_xt() { # FLAVOUR READY_WORDS
	log "=== backend $1 ($(module_loaded xt_NFQUEUE && echo xt_NFQUEUE loaded || echo xt_NFQUEUE not loaded))"
	if [[ $1 == xt-legacy ]] && ! [[ -e /proc/net/ip_tables_names && -e /proc/net/ip6_tables_names ]]; then
		check "$1: ip_tables, ip6_tables loaded at boot (modules-load.d)" load_legacy_modules_at_boot
	fi
	write_unit_config "$1" offline
	check "$1: systemctl start: active" start_unit || return 1
	check "$1: the ready: line names backend $2" ready_line_names "backend $2,"
	if [[ $1 == xt-legacy ]]; then
		check "$1: runs as gatekeeper with CapEff $WANT_CAPS (its tools need cap_net_raw)" \
			runs_unprivileged "$WANT_CAPS"
	else
		check "$1: runs as gatekeeper with CapEff $WANT_CAPS_NO_RAW" runs_unprivileged
	fi
	verdicts "$1"
	if [[ -n $(prop ExecReload) ]]; then
		check "$1: systemctl reload with blog online (the rules installed again): same process" \
			reload_applies "$1" online
		check "$1: after the reload: IPv4 blog completes a handshake" \
			probe_says "handshake ok cn=$CERT_CN" "$BLOG4" "$SITE_PORT" "$PROBE_MS"
		check "$1: after the reload: one NFQUEUE rule per site and family" xt_queue_rules_once "$1"
	fi
	check "$1: systemctl stop" stop_unit
	check "$1: after the stop none of our rules is left (foreign table kept)" no_rules_of_ours
}

main() {
	builddir=${1:?}
	# It installs into / and adds a user: never outside the throwaway guest.
	if ! grep -qw 'gk.systemd=1' /proc/cmdline || [[ $(cat /proc/1/comm) != systemd ]]; then
		echo "$0 --guest: only inside tests/qemu/run-in-vm.sh --systemd" >&2
		exit 2
	fi
	TLS_SERVER=$builddir/tests/e2e/tls_server TLS_PROBE=$builddir/tests/e2e/tls_probe
	require_environment TLS_SERVER TLS_PROBE
	e2e_begin
	trap guest_cleanup EXIT
	log "systemd $(systemctl --version | head -n1 | cut -d' ' -f2), kernel $(uname -r)"
	check "meson install; daemon-reload finds $UNIT" install_all || finish
	check "systemd-sysusers: user gatekeeper; systemd-tmpfiles --create" sysusers_and_tmpfiles ||
		finish
	setup_guest_topology
	start_tls_server "$SITE_PORT"
	setup_syn_counters "$NS_SERVER"
	add_foreign_table
	RULES_BEFORE=$(rules_snapshot)

	scenario_auto
	check "systemd-analyze security $UNIT: exposure <= 2.0" exposure_at_most 2.0
	scenario_xt xt-nft "xt (iptables-nft)"
	scenario_xt xt-legacy "xt (iptables-legacy)"
	((FAILED == 0)) || show_journal
	finish
}

if [[ ${1:-} == --guest ]]; then
	main "${2:-}"
else
	run_on_host "$@"
fi
