# shellcheck shell=bash
# Shared helpers of the end-to-end tests; sourced, never run.
#
# Topology (ARCHITECTURE.md, "Test topology"), documentation addresses only:
#
#   client ns  192.0.2.100/24      2001:db8:1::100/64
#      | veth
#   gw ns      192.0.2.1 | 198.51.100.1    2001:db8:1::1 | 2001:db8:2::1   (forwarding on)
#      | veth
#   server ns  198.51.100.10/.11/.12   2001:db8:2::10/11/12   tls_server on [::]:443
#
# Every name carries the PID, and everything a test creates (namespaces and
# with them their veths and nft tables, processes, the temp dir) is removed
# by the EXIT trap, also after a failure or SIGINT/SIGTERM.
#
# Environment: GATEKEEPERD, TLS_SERVER, TLS_PROBE (paths to the binaries),
# SRCDIR (tests/e2e in the source tree). E2E_KEEP=1 keeps the temp dir.
# E2E_BACKEND: the configs' backend (default auto). E2E_EXPECT_BACKEND
# (nft, xt-nft or xt-legacy): the backend the daemon must report in its
# "ready:" line, else the test fails (tests/qemu/README.md).

set -u

readonly NS_CLIENT="gk-$$-client"
readonly NS_GW="gk-$$-gw"
readonly NS_SERVER="gk-$$-server"

readonly CLIENT4=192.0.2.100 CLIENT6=2001:db8:1::100
readonly GW_CLIENT4=192.0.2.1 GW_SERVER4=198.51.100.1
readonly GW_CLIENT6=2001:db8:1::1 GW_SERVER6=2001:db8:2::1
# The managed sites: shop online, blog offline+drop, wiki offline+reject.
readonly SHOP4=198.51.100.10 BLOG4=198.51.100.11 WIKI4=198.51.100.12
readonly SHOP6=2001:db8:2::10 BLOG6=2001:db8:2::11 WIKI6=2001:db8:2::12
readonly SITE_ADDRS=("$SHOP4" "$BLOG4" "$WIKI4" "$SHOP6" "$BLOG6" "$WIKI6")
readonly SITE_PORT=443
readonly OTHER_PORT=8443 # served too, never managed
readonly CLOSED_PORT=9   # nobody listens: answers RST
readonly CERT_CN=shop.example
readonly SYN_TABLE="e2e_syn_$$"

WAIT_TIMEOUT=${WAIT_TIMEOUT:-10} # seconds, for every readiness poll
TMP=""
PASSED=0
FAILED=0
CREATED_NS=()
declare -A TLS_SERVER_PID=() TLS_SERVER_LOG=()
DAEMON_PID=""
DAEMON_LOG=""
DAEMON_STARTS=0

# ---------------------------------------------------------------- basics

log() { printf '# %s\n' "$*"; }

# Ends the test at once as a failure (the trap cleans up).
die() {
	printf 'not ok - %s\n' "$*"
	FAILED=$((FAILED + 1))
	exit 1
}

in_ns() {
	local ns=$1
	shift
	ip netns exec "$ns" "$@"
}

# wait_for CMD...: polls CMD until it succeeds, for at most WAIT_TIMEOUT s.
wait_for() {
	local tries=$((WAIT_TIMEOUT * 20)) i
	for ((i = 0; i < tries; i++)); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
	done
	log "gave up after ${WAIT_TIMEOUT}s waiting for: $*"
	return 1
}

pid_alive() {
	local state
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $state != Z* ]]
}

# Sends SIG to PID, waits (bounded) for it to end, SIGKILL as last resort.
# Returns the exit status as `wait` reports it (128+N for a signal).
end_process() {
	local pid=$1 sig=${2:-TERM} i
	kill "-$sig" "$pid" 2>/dev/null
	for ((i = 0; i < WAIT_TIMEOUT * 20; i++)); do
		pid_alive "$pid" || break
		sleep 0.05
	done
	if pid_alive "$pid"; then
		log "pid $pid ignored SIG$sig for ${WAIT_TIMEOUT}s, killing it"
		kill -KILL "$pid" 2>/dev/null
	fi
	wait "$pid" 2>/dev/null
}

# require_environment [VAR...]: root, and each VAR (default: all three
# binaries) names an executable.
require_environment() {
	if [[ $(id -u) != 0 ]]; then
		echo "# SKIP: needs root (network namespaces, nftables)"
		exit 77
	fi
	local var vars=("$@")
	((${#vars[@]})) || vars=(GATEKEEPERD TLS_SERVER TLS_PROBE)
	for var in "${vars[@]}"; do
		[[ -n ${!var:-} && -x ${!var} ]] || die "\$$var is not an executable: '${!var:-}'"
	done
}

# Creates TMP and installs the cleanup trap; call first.
e2e_begin() {
	TMP=$(mktemp -d "/tmp/gk-e2e-$$.XXXXXX") || exit 1
	trap cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	sweep_stale_namespaces
}

# A run killed with SIGKILL (a harness's hard stop) never ran its trap: its
# namespaces, named gk-PID-..., outlive it. Those whose PID is gone are
# removed here, by the next run.
sweep_stale_namespaces() {
	local ns
	for ns in $(ip netns list 2>/dev/null | awk '{ print $1 }'); do
		[[ $ns =~ ^gk-([0-9]+)- ]] || continue
		[[ -d /proc/${BASH_REMATCH[1]} ]] && continue
		ip netns del "$ns" 2>/dev/null && log "removed $ns, left by a killed run"
	done
}

cleanup() {
	local status=$? pid ns
	trap - EXIT INT TERM
	[[ -n $DAEMON_PID ]] && end_process "$DAEMON_PID" TERM
	for pid in "${TLS_SERVER_PID[@]}"; do
		end_process "$pid" TERM
	done
	# Whatever else still runs inside our namespaces is ours too.
	for ns in "${CREATED_NS[@]}"; do
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null
		done
		ip netns del "$ns" 2>/dev/null
	done
	if [[ -n $TMP && ${E2E_KEEP:-0} != 1 ]]; then
		rm -rf "$TMP"
	elif [[ -n $TMP ]]; then
		log "kept $TMP"
	fi
	exit "$status"
}

# ---------------------------------------------------------------- topology

ns_add() {
	local ns=$1
	ip netns add "$ns" || die "cannot create namespace $ns"
	CREATED_NS+=("$ns")
	# Before any veth exists: DAD would leave the addresses tentative and
	# lose the first SYNs (ARCHITECTURE.md, "Test topology").
	in_ns "$ns" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
	ip -n "$ns" link set lo up
}

# veth_pair NS_A DEV_A NS_B DEV_B: created inside the namespaces, never in
# the host's.
veth_pair() {
	ip -n "$1" link add "$2" type veth peer name "$4" netns "$3" || die "cannot create veth $2/$4"
	ip -n "$1" link set "$2" up
	ip -n "$3" link set "$4" up
}

link_up() { ip -n "$1" -o link show dev "$2" | grep -q 'state UP'; }

no_tentative_address() {
	local ns
	for ns in "$@"; do
		[[ -z $(ip -n "$ns" -6 addr show tentative) ]] || return 1
	done
}

# client_link NS DEV ADDR4 ADDR6 GW_DEV GW4 GW6: a client namespace's link
# to the gw (a /24 and a /64), its default routes via the gw.
client_link() {
	local ns=$1 dev=$2 gw_dev=$5
	veth_pair "$ns" "$dev" "$NS_GW" "$gw_dev"
	ip -n "$ns" addr add "$3/24" dev "$dev"
	ip -n "$ns" addr add "$4/64" dev "$dev"
	ip -n "$ns" route add default via "$6"
	ip -n "$ns" -6 route add default via "$7"
	ip -n "$NS_GW" addr add "$6/24" dev "$gw_dev"
	ip -n "$NS_GW" addr add "$7/64" dev "$gw_dev"
}

setup_topology() {
	local dev_c="c$$" dev_gc="gc$$" dev_gs="gs$$" dev_s="s$$" a
	ns_add "$NS_CLIENT"
	ns_add "$NS_GW"
	ns_add "$NS_SERVER"
	veth_pair "$NS_GW" "$dev_gs" "$NS_SERVER" "$dev_s"
	client_link "$NS_CLIENT" "$dev_c" "$CLIENT4" "$CLIENT6" "$dev_gc" "$GW_CLIENT4" "$GW_CLIENT6"

	ip -n "$NS_GW" addr add "$GW_SERVER4/24" dev "$dev_gs"
	ip -n "$NS_GW" addr add "$GW_SERVER6/64" dev "$dev_gs"
	in_ns "$NS_GW" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1

	for a in "$SHOP4" "$BLOG4" "$WIKI4"; do
		ip -n "$NS_SERVER" addr add "$a/24" dev "$dev_s"
	done
	for a in "$SHOP6" "$BLOG6" "$WIKI6"; do
		ip -n "$NS_SERVER" addr add "$a/64" dev "$dev_s"
	done
	ip -n "$NS_SERVER" route add default via "$GW_SERVER4"
	ip -n "$NS_SERVER" -6 route add default via "$GW_SERVER6"

	wait_for link_up "$NS_CLIENT" "$dev_c" || die "client link up"
	wait_for link_up "$NS_GW" "$dev_gc" || die "gw client-side link up"
	wait_for link_up "$NS_GW" "$dev_gs" || die "gw server-side link up"
	wait_for link_up "$NS_SERVER" "$dev_s" || die "server link up"
	wait_for no_tentative_address "$NS_CLIENT" "$NS_GW" "$NS_SERVER" ||
		die "IPv6 addresses left tentative"
	warm_paths
}

# One connect to a closed port per site address: resolves the neighbours on
# both links in both directions, so no later SYN is lost to ND/ARP.
warm_paths() {
	local a
	for a in "${SITE_ADDRS[@]}"; do
		wait_for probe_says refused "$a" "$CLOSED_PORT" 1000 ||
			die "path to $a:$CLOSED_PORT does not answer RST"
	done
}

# setup_ops_client: an optional second client namespace, the operators'
# network, behind the gw on its own link (203.0.113.0/24, 2001:db8:3::/64).
# Only tests that call it have it; the others' topology is unchanged.
readonly NS_OPS="gk-$$-ops"
readonly OPS4=203.0.113.100 OPS6=2001:db8:3::100
readonly GW_OPS4=203.0.113.1 GW_OPS6=2001:db8:3::1
setup_ops_client() {
	local dev_o="o$$" dev_go="go$$"
	ns_add "$NS_OPS"
	client_link "$NS_OPS" "$dev_o" "$OPS4" "$OPS6" "$dev_go" "$GW_OPS4" "$GW_OPS6"
	wait_for link_up "$NS_OPS" "$dev_o" || die "ops link up"
	wait_for link_up "$NS_GW" "$dev_go" || die "gw ops-side link up"
	wait_for no_tentative_address "$NS_OPS" "$NS_GW" || die "IPv6 addresses left tentative"
	local a
	for a in "${SITE_ADDRS[@]}"; do
		wait_for ops_probe_says refused "$a" "$CLOSED_PORT" 1000 ||
			die "ops path to $a:$CLOSED_PORT does not answer RST"
	done
}

# ops_probe_says WANT ADDR PORT TIMEOUT_MS: probe_says from the ops client.
ops_probe_says() {
	local line
	line=$(in_ns "$NS_OPS" "$TLS_PROBE" "$2" "$3" "$4")
	echo "ops $2:$3 -> $line"
	[[ $line == "$1"* ]]
}

# ---------------------------------------------------------------- TLS

make_cert() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		-subj "/CN=$CERT_CN" -days 2 \
		-keyout "$TMP/key.pem" -out "$TMP/cert.pem" >"$TMP/openssl.log" 2>&1 ||
		die "openssl req failed: $(cat "$TMP/openssl.log")"
}

# start_tls_server PORT [NS [OPTION...]]: the wildcard-bound server, with
# tls_server's OPTIONs (--silent, --status-file FILE), logging accepts to
# TLS_SERVER_LOG[PORT]; returns once it printed "listening".
start_tls_server() {
	local port=$1 ns=${2:-$NS_SERVER} log="$TMP/tls_server.$1.log" pid
	shift $(($# < 2 ? $# : 2)) # what is left: the OPTIONs
	[[ -f $TMP/cert.pem ]] || make_cert
	# Not in_ns: a backgrounded function is a subshell, and $! would be its
	# PID rather than the server's.
	# shellcheck disable=SC2153 # TLS_SERVER comes from the environment
	ip netns exec "$ns" "$TLS_SERVER" "$@" "$port" "$TMP/cert.pem" "$TMP/key.pem" >"$log" 2>&1 &
	pid=$!
	TLS_SERVER_PID[$port]=$pid
	TLS_SERVER_LOG[$port]=$log
	local i
	for ((i = 0; i < WAIT_TIMEOUT * 20; i++)); do
		grep -qx listening "$log" && return 0
		pid_alive "$pid" || break
		sleep 0.05
	done
	die "tls_server on port $port did not start: $(cat "$log")"
}

# start_nginx NAME...: Debian's nginx in the server namespace on the
# wildcard address, port 443 (v4 and v6), one server block per NAME with
# server_name NAME.example, its own certificate (CN NAME.example) and a
# body "NAME"; requests logged to $TMP/nginx/access.log.
start_nginx() {
	local n names=("$@")
	mkdir -p "$TMP/nginx"
	for n in "${names[@]}"; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$n.example" \
			-days 2 -keyout "$TMP/nginx/$n.key" -out "$TMP/nginx/$n.pem" >/dev/null 2>&1 ||
			die "openssl req for $n"
	done
	{
		echo "daemon off; pid $TMP/nginx/nginx.pid; error_log $TMP/nginx/error.log;"
		echo "events {}"
		echo "http { access_log $TMP/nginx/access.log;"
		echo "  client_body_temp_path $TMP/nginx; proxy_temp_path $TMP/nginx;"
		echo "  fastcgi_temp_path $TMP/nginx; uwsgi_temp_path $TMP/nginx; scgi_temp_path $TMP/nginx;"
		for n in "${names[@]}"; do
			echo "  server { listen 443 ssl; listen [::]:443 ssl; server_name $n.example;"
			echo "    ssl_certificate $TMP/nginx/$n.pem; ssl_certificate_key $TMP/nginx/$n.key;"
			echo "    location / { return 200 \"$n\\n\"; } }"
		done
		echo "}"
	} >"$TMP/nginx/nginx.conf"
	ip netns exec "$NS_SERVER" nginx -c "$TMP/nginx/nginx.conf" -e "$TMP/nginx/error.log" \
		>"$TMP/nginx/out.log" 2>&1 &
	TLS_SERVER_PID[443]=$!
	wait_for eval "ip netns exec $NS_SERVER ss -Hltn 'sport = :443' | grep -q ." ||
		die "nginx did not start: $(cat "$TMP/nginx/error.log" "$TMP/nginx/out.log")"
}

# accept_count ADDR [PORT]: connections the tls_server accepted on ADDR.
accept_count() {
	local log=${TLS_SERVER_LOG[${2:-$SITE_PORT}]}
	grep -c "^accept $1 " "$log"
}

# probe ADDR PORT TIMEOUT_MS: tls_probe from the client namespace; prints
# its one line and returns its status.
probe() { in_ns "$NS_CLIENT" "$TLS_PROBE" "$@"; }

# probe_says WANT ADDR PORT TIMEOUT_MS [MAX_MS]: the probe's line starts
# with WANT (and took less than MAX_MS). Prints the line.
probe_says() {
	local want=$1 addr=$2 port=$3 timeout=$4 max_ms=${5:-} line ms
	line=$(probe "$addr" "$port" "$timeout")
	echo "$addr:$port -> $line"
	[[ $line == "$want"* ]] || return 1
	if [[ -n $max_ms ]]; then
		ms=${line##*ms=}
		((ms < max_ms)) || { echo "took ${ms} ms, limit ${max_ms} ms"; return 1; }
	fi
	return 0
}

# ---------------------------------------------------------------- SYN counters

counter_name() { local a=${1//./_}; echo "c_${a//:/_}"; }

# One nft counter per site address in the server namespace, before any
# other hook (priority -400): did a SYN to ADDR:SITE_PORT reach the server?
setup_syn_counters() {
	local ns=${1:-$NS_SERVER} a name family rules="" counters=""
	for a in "${SITE_ADDRS[@]}"; do
		name=$(counter_name "$a")
		family=ip
		[[ $a == *:* ]] && family=ip6
		counters+="  counter $name { }"$'\n'
		rules+="    $family daddr $a tcp dport $SITE_PORT tcp flags & (syn | ack) == syn counter name \"$name\""$'\n'
	done
	in_ns "$ns" nft -f - <<-EOF || die "cannot install the SYN counters"
		table inet $SYN_TABLE {
		$counters
		  chain count_syn {
		    type filter hook prerouting priority -400; policy accept;
		$rules
		  }
		}
	EOF
}

# syn_count ADDR [NS]: SYNs to ADDR:SITE_PORT seen by the server namespace.
syn_count() {
	in_ns "${2:-$NS_SERVER}" nft list counter inet "$SYN_TABLE" "$(counter_name "$1")" |
		awk '/packets/ { print $2; exit }'
}

syn_counters_reset() {
	in_ns "${1:-$NS_SERVER}" nft reset counters table inet "$SYN_TABLE" >/dev/null
}

# ---------------------------------------------------------------- the daemon

# daemon_ns: where the daemon runs for the script's HOOK: on the gw (a
# router in front of the server) for forward and prerouting, on the server
# itself for input.
daemon_ns() {
	case $HOOK in
	forward | prerouting) echo "$NS_GW" ;;
	input) echo "$NS_SERVER" ;;
	esac
}

# site_yaml NAME ADDR4 ADDR6 STATE [ACTION] [PORT]: one item of a config's
# sites: list, on PORT (default SITE_PORT). More keys of the site (a
# check: block) may follow it, indented by four spaces.
site_yaml() {
	local action=""
	[[ -n ${5:-} ]] && action=$'\n'"    action: $5"
	cat <<-EOF
		  - name: $1
		    addresses: [$2, "$3"]
		    ports: [${6:-$SITE_PORT}]
		    state: $4$action
	EOF
}

# write_config FILE HOOK [EXTRA_YAML] [STATE_FILE] [SITES_YAML] [CONTROL_YAML]:
# by default the three sites of the scenarios, else the items of SITES_YAML
# (see site_yaml). The control socket and the state file live in TMP (or
# STATE_FILE) so nothing outside it is touched; EXTRA_YAML (e.g. a queue:
# line) is added at the top level, CONTROL_YAML (e.g. "  group: x") under
# control:. An empty argument means its default.
write_config() {
	local file=$1 hook=$2 extra=${3:-} state=${4:-$TMP/state} sites=${5:-} control=""
	# a line of its own only when given: other configs stay as they were
	[[ -n ${6:-} ]] && control=$'\n'$6
	if [[ -z $sites ]]; then
		sites=$(site_yaml shop "$SHOP4" "$SHOP6" online
			site_yaml blog "$BLOG4" "$BLOG6" offline drop
			site_yaml wiki "$WIKI4" "$WIKI6" offline reject)
	fi
	cat >"$file" <<-EOF
		# written by tests/e2e/lib.sh
		hook: $hook
		backend: ${E2E_BACKEND:-auto}
		$extra
		control:
		  socket: $TMP/control.sock$control
		state_file: $state
		sites:
		$sites
	EOF
}

# daemon_ready: waits up to WAIT_TIMEOUT for the "ready:" line of
# DAEMON_PID in DAEMON_LOG and logs it; 1 if the daemon died first or
# never got ready.
daemon_ready() {
	local i
	for ((i = 0; i < WAIT_TIMEOUT * 20; i++)); do
		if grep -q 'ready:' "$DAEMON_LOG"; then
			log "daemon: $(grep -m1 'ready:' "$DAEMON_LOG")"
			return 0
		fi
		pid_alive "$DAEMON_PID" || return 1
		sleep 0.05
	done
	return 1
}

# start_daemon NS CONFIG: runs $GATEKEEPERD -c CONFIG in NS, output to
# DAEMON_LOG; returns once the log has a "ready:" line. A daemon that dies
# first fails the test, with its log.
start_daemon() {
	local ns=$1 config=$2
	DAEMON_STARTS=$((DAEMON_STARTS + 1))
	DAEMON_LOG="$TMP/daemon.$DAEMON_STARTS.log"
	ip netns exec "$ns" "$GATEKEEPERD" -c "$config" >"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	if daemon_ready; then
		check_backend
		return 0
	fi
	if pid_alive "$DAEMON_PID"; then
		end_process "$DAEMON_PID" TERM
		DAEMON_PID=""
		show_daemon_log
		die "daemon printed no 'ready:' line within ${WAIT_TIMEOUT}s"
	fi
	wait "$DAEMON_PID"
	local status=$?
	DAEMON_PID=""
	show_daemon_log
	die "daemon exited with status $status before it was ready"
}

# The "ready:" line names rules_backend_name() of the backend in use.
check_backend() {
	local want
	case ${E2E_EXPECT_BACKEND:-} in
	'') return 0 ;;
	nft) want='backend nft,' ;;
	xt-nft) want='backend xt (iptables-nft),' ;;
	xt-legacy) want='backend xt (iptables-legacy),' ;;
	*) die "E2E_EXPECT_BACKEND=$E2E_EXPECT_BACKEND: want nft, xt-nft or xt-legacy" ;;
	esac
	grep -m1 'ready:' "$DAEMON_LOG" | grep -qF "$want" ||
		die "the daemon did not choose backend $E2E_EXPECT_BACKEND (E2E_EXPECT_BACKEND)"
}

# stop_daemon [SIG]: SIGTERM (or SIG) and wait; succeeds if it exited 0.
stop_daemon() {
	local pid=$DAEMON_PID status
	[[ -n $pid ]] || { echo "no daemon running"; return 1; }
	end_process "$pid" "${1:-TERM}"
	status=$?
	DAEMON_PID=""
	echo "daemon exit status $status"
	[[ $status == 0 ]]
}

# kill_daemon: SIGKILL, the crash case; the status is of no interest.
kill_daemon() {
	[[ -n $DAEMON_PID ]] || return 1
	end_process "$DAEMON_PID" KILL
	DAEMON_PID=""
}

show_daemon_log() {
	[[ -n $DAEMON_LOG && -f $DAEMON_LOG ]] || return 0
	log "---- $DAEMON_LOG"
	sed 's/^/#   /' "$DAEMON_LOG"
	log "----"
}

# site_counter SITE FIELD: the last "site SITE: accepted N dropped N
# rejected N" line of the daemon log, field accepted|dropped|rejected.
site_counter() {
	grep "site $1: " "$DAEMON_LOG" | tail -n 1 |
		sed -n "s/.*site $1: .*\\b$2 \\([0-9]\\+\\).*/\\1/p"
}

# counter_at_least SITE FIELD MIN
counter_at_least() {
	local n
	n=$(site_counter "$1" "$2")
	echo "site $1 $2 = ${n:-<none>} (want >= $3)"
	[[ -n $n ]] && ((n >= $3))
}

# The xtables flavour whose tools show the daemon's xt rules: the one the
# config forces, else the one the daemon is expected to pick.
xt_flavour() {
	case ${E2E_BACKEND:-auto} in
	xt-legacy) echo legacy ;;
	auto) [[ ${E2E_EXPECT_BACKEND:-} == xt-legacy ]] && echo legacy || echo nft ;;
	*) echo nft ;;
	esac
}

# The daemon's rules in NS, as `nft list ruleset` shows them (nft native
# table inet gatekeeper, or xtables chains GATEKEEPER via iptables-nft);
# with iptables-legacy, which nft cannot see, also iptables-legacy-save's
# output without its dated comments and packet counters.
ruleset() {
	in_ns "$1" nft list ruleset
	if [[ $(xt_flavour) == legacy ]]; then
		in_ns "$1" iptables-legacy-save | sed -E '/^#/d; s/ \[[0-9]+:[0-9]+\]$//'
		in_ns "$1" ip6tables-legacy-save | sed -E '/^#/d; s/ \[[0-9]+:[0-9]+\]$//'
	fi
}

no_daemon_rules() {
	local rules
	rules=$(ruleset "$1")
	if grep -E 'gatekeeper|GATEKEEPER|queue' <<<"$rules"; then
		echo "left behind in $1 (above)"
		return 1
	fi
	return 0
}

queue_rule_count() { ruleset "$1" | grep -c queue; }

# The ruleset's lines without what changes by itself (packet counters) and
# sorted (a chain deleted and re-created is listed in another order), for
# comparing two moments: a duplicated or a missing rule still shows.
ruleset_shape() {
	ruleset "$1" 2>/dev/null |
		sed -E 's/counter packets [0-9]+ bytes [0-9]+/counter/; /packets [0-9]+ bytes [0-9]+/d; /^\s*$/d' |
		sort
}

# rules_as_expected NS HOOK: NS holds the daemon's rules for HOOK and
# nothing else of it: either the nft table inet gatekeeper (queue chain and
# guard chain on HOOK), or for each family the xt chain GATEKEEPER (raw for
# prerouting, mangle otherwise), jumped to once from the hook's base chain,
# queueing exactly the managed address:port pairs, and the guard's chains
# (mangle for prerouting, filter otherwise) jumped to once, guarding only
# managed pairs (two rules each: first fragments, SYNs). Prints what it saw.
rules_as_expected() {
	local ns=$1 hook=$2 tables
	tables=$(in_ns "$ns" nft list tables | grep -v " $SYN_TABLE\$")
	echo "tables:"
	echo "$tables"
	if grep -qx 'table inet gatekeeper' <<<"$tables"; then
		nft_rules_as_expected "$ns" "$hook" "$tables"
	else
		xt_rules_as_expected "$ns" "$hook" "$tables"
	fi
}

# table_has_rules NS "FAMILY NAME": anything but chain heads in it?
table_has_rules() {
	# shellcheck disable=SC2086 # FAMILY NAME are two words on purpose
	in_ns "$1" nft list table $2 |
		grep -vE '^\s*(table .*\{|chain .*\{|type .*;|\}|)\s*$' | grep -q .
}

expected_pairs() { # FAMILY(4|6) -> "ADDR PORT" lines, sorted
	local a
	for a in "${SITE_ADDRS[@]}"; do
		if [[ $1 == 6 && $a == *:* ]] || [[ $1 == 4 && $a != *:* ]]; then
			echo "$a $SITE_PORT"
		fi
	done | sort
}

nft_rules_as_expected() {
	local ns=$1 hook=$2 tables=$3 text status=0 fam got
	text=$(in_ns "$ns" nft list table inet gatekeeper)
	echo "$text"
	# another table is someone else's business, unless it queues
	if grep -v '^table inet gatekeeper$' <<<"$tables" | while read -r t; do
		# shellcheck disable=SC2086 # "FAMILY NAME" are two words on purpose
		in_ns "$ns" nft list $t
	done | grep -q 'queue'; then
		echo "a queue rule outside table inet gatekeeper"
		status=1
	fi
	grep -q "type filter hook $hook " <<<"$text" || { echo "no base chain on hook $hook"; status=1; }
	grep -q "chain guard {" <<<"$text" || { echo "no guard chain"; status=1; }
	# the cut's chains (cut_input, cut_forward, cut_output at priority
	# filter) are on every filter hook, whatever the queueing hook
	if grep 'hook ' <<<"$text" | grep -v "hook $hook " | grep -v 'priority filter;' >/dev/null; then
		echo "a base chain on another hook"
		status=1
	fi
	for fam in 4 6; do
		got=$(in_ns "$ns" nft -j list set inet gatekeeper "managed$fam" |
			grep -oE '"concat": \[[^]]*\]' | grep -oE '"[^"]+"|[0-9]+' |
			grep -v concat | tr -d '"' | paste -d' ' - - | sort)
		if [[ $got != "$(expected_pairs "$fam")" ]]; then
			echo "set managed$fam holds:"
			echo "$got"
			status=1
		fi
	done
	return "$status"
}

xt_rules_as_expected() {
	local ns=$1 hook=$2 tables=$3 table=mangle guard_table=filter base fam save got status=0
	[[ $hook == prerouting ]] && table=raw guard_table=mangle
	base=${hook^^}
	local other
	while read -r other; do
		# filter: also the cut's chains (GATEKEEPER_CUT), whatever the hook
		[[ -z $other || $other =~ ^table\ ip6?\ ($table|$guard_table|filter)$ ]] && continue
		if table_has_rules "$ns" "${other#table }"; then
			echo "unexpected $other, with rules"
			status=1
		else
			echo "note: empty $other (base chains only)"
		fi
	done <<<"$tables"
	for fam in 4 6; do
		save=$(in_ns "$ns" "$([[ $fam == 6 ]] && echo ip6tables || echo iptables)-$(xt_flavour)-save")
		echo "--- IPv$fam"
		grep -E '^(\*|:|-A)' <<<"$save"
		if [[ $(grep -c -- '-j GATEKEEPER$' <<<"$save") != 1 ]] ||
			! grep -q -- "^-A $base .*--tcp-flags SYN,ACK SYN -j GATEKEEPER" <<<"$save"; then
			echo "IPv$fam: want one jump to GATEKEEPER for SYNs, from $base"
			status=1
		fi
		if grep -- '-j NFQUEUE' <<<"$save" | grep -v '^-A GATEKEEPER ' >/dev/null; then
			echo "IPv$fam: NFQUEUE outside the GATEKEEPER chain"
			status=1
		fi
		got=$(grep '^-A GATEKEEPER ' <<<"$save" |
			sed -n 's|.* -d \([^/ ]*\)/[0-9]* .*--dport \([0-9]*\) .*-j NFQUEUE.*|\1 \2|p' | sort)
		if [[ $got != "$(expected_pairs "$fam")" ]] ||
			[[ $(grep -c '^-A GATEKEEPER ' <<<"$save") != $(wc -l <<<"$got") ]]; then
			echo "IPv$fam: GATEKEEPER does not queue exactly the managed pairs"
			status=1
		fi
		if [[ $(grep -c -- "^-A $base -p tcp -j GATEKEEPER_GUARD$" <<<"$save") != 1 ]] ||
			[[ $(grep -c -- '-j GATEKEEPER_GUARD$' <<<"$save") != 1 ]]; then
			echo "IPv$fam: want one jump to GATEKEEPER_GUARD, from $base"
			status=1
		fi
		got=$(grep '^-A GATEKEEPER_OFFLINE ' <<<"$save" |
			sed -n 's|.* -d \([^/ ]*\)/[0-9]* .*--dport \([0-9]*\) .*-j GATEKEEPER_[A-Z]*$|\1 \2|p' | sort)
		# an allow-list's "-s NET ... -j RETURN" lines guard nothing
		if [[ $(grep '^-A GATEKEEPER_OFFLINE ' <<<"$save" | grep -vc -- ' -j RETURN$') != $(grep -c . <<<"$got") ]] ||
			[[ -n $(comm -23 <(sort -u <<<"$got") <(expected_pairs "$fam")) ]]; then
			echo "IPv$fam: GATEKEEPER_OFFLINE guards something else than managed pairs"
			status=1
		fi
	done
	return "$status"
}

# ---------------------------------------------------------------- assertions

# check DESC CMD...: runs CMD in this shell (so it may change state), prints
# "ok - DESC" or "not ok - DESC" and counts; CMD's output is shown as
# "#" lines either way, so a log tells what was seen.
check() {
	local desc=$1 out="$TMP/check-output" status
	shift
	"$@" >"$out" 2>&1
	status=$?
	if ((status == 0)); then
		PASSED=$((PASSED + 1))
		printf 'ok - %s\n' "$desc"
	else
		FAILED=$((FAILED + 1))
		printf 'not ok - %s\n' "$desc"
	fi
	sed 's/^/#   /' "$out"
	return "$status"
}

# check_not DESC CMD...: CMD must fail.
check_not() {
	local desc=$1
	shift
	check "$desc" negate "$@"
}

negate() { ! "$@"; }

# The end of every scenario: the exit status tells meson the result.
finish() {
	log "passed $PASSED, failed $FAILED"
	if ((FAILED > 0)); then
		show_daemon_log
		exit 1
	fi
	((PASSED > 0)) || exit 1
	exit 0
}
