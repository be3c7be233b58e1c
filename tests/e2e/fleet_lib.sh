# shellcheck shell=bash
# Helpers of the fleet-mode end-to-end tests (FLEET-DESIGN.md); sourced after
# lib.sh, never run. lib.sh's basics (die, check, finish, in_ns, wait_for,
# end_process, ns_add, veth_pair, probe, daemon_ready, the cleanup trap) are
# used as they are; only its fixed 3-namespace topology is replaced.
#
# Topology, all on one bridge in 203.0.113.0/24 (documentation addresses):
#
#   gk-PID-lan     Linux bridge br<PID>, no address; every namespace below
#                  has one veth on it (bridge port g<PID><x>)
#   gk-PID-e1..e3  etcd members 203.0.113.11/.12/.13: clients https :2379
#                  (mTLS), peers http :2380, metrics http :2381
#   gk-PID-bA..bC  boxes A B C 203.0.113.21/.22/.23: tls_server on the
#                  wildcard address, ports 443 (site shop) and 8443 (site
#                  blog); gatekeeperd (hook input) when a test starts it
#   gk-PID-client  the client 203.0.113.100 (lib.sh's NS_CLIENT, so probe
#                  and probe_says work): probes the boxes, runs etcdctl
#
# Certificates ($TMP/pki, openssl CLI, EC P-256, 2 days): ca.pem; per member
# etcd-N.pem/.key (SAN IP of the member, EKU serverAuth+clientAuth: the 3.4
# gateway needs both under --client-cert-auth); per box box-X.pem/.key
# (clientAuth); admin.pem/.key (clientAuth, for etcdctl); foreign.pem/.key,
# a client certificate from another CA (foreign-ca.pem).
#
# Everything is removed by lib.sh's EXIT trap (wrapped below: boxes get
# SIGCONT and SIGTERM, etcd members SIGKILL, then lib.sh's cleanup).
#
# A scenario (register it in meson.build like fleet-cluster):
#   source "${SRCDIR:-$(dirname "$0")}/lib.sh"
#   source "${SRCDIR:-$(dirname "$0")}/fleet_lib.sh"
#   require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
#   e2e_begin; fleet_setup; fleet_up; fleet_schema_put
#   box_start A; box_start B; box_start C
#   check "A: offline shop" box_ctl A offline shop --action reject
#   check "B follows" wait_verdict B reset 5
#   finish
#
# Setup
#   fleet_setup                    certificates, topology, box tls_servers,
#                                  warmed paths (call after e2e_begin)
# etcd
#   etcd_start N                   start member N (1..3), also a restart on
#                                  its existing data dir; returns at once
#   etcd_cluster_up [N...]         waits (ETCD_UP_TIMEOUT s) until members N
#                                  (default: the running ones) are healthy
#                                  and agree on one leader
#   etcd_kill N                    SIGKILL member N (none running: no-op)
#   etcd_stop N / etcd_cont N      SIGSTOP / SIGCONT member N
#   etcd_isolate N / etcd_rejoin N cut member N from its peers (TCP 2380 is
#                                  black-holed on the bridge) / undo it;
#                                  its client port stays reachable
#   etcd_rebuild                   all members killed, data wiped, a new
#                                  cluster up (revisions restart)
#   lan_cut X Y / lan_heal X Y     black-hole the IP packets between nodes X
#                                  and Y (e1..e3, A..C, client) / undo it:
#                                  e.g. a box that sees only one member
#   etcd_leader                    prints the number of the leader member
#   etcd_status_json N...          etcdctl endpoint status -w json of N...
#   etcd_compact                   compacts at the current revision
#                                  (--physical); prints that revision
#   etcd_revision                  prints the current revision
#   etcdctl_fleet ARGS...          etcdctl 3 (admin cert, all 3 endpoints)
#                                  from the client namespace
#   etcdctl_member N ARGS...       the same against member N only
#   etcd_key_json KEY              prints KEY's value (1 if there is none)
#   etcd_key_is KEY VALUE          KEY holds VALUE (for check / wait_for)
#   etcd_gw ID N PATH BODY         one JSON-gateway POST to member N with
#                                  Grpc-Metadata-hasleader: true; ID: A|B|C
#                                  (from that box, its cert), admin, foreign
#                                  (other CA) or nocert (client namespace)
#   b64 TEXT                       base64 of TEXT, one line
#   json_field FIELD               FIELD of the JSON object on stdin
#   fleet_key PATH                 the etcd key P/PATH (P = prefix/fleet name/)
#   now_ms                         wall clock in ms
# Fleet keys (FLEET-DESIGN.md), straight through etcdctl
#   fleet_up                       etcd_start 1..3 + etcd_cluster_up, or die
#   fleet_schema_put [ID]          writes P schema ({"version":1,"id":ID,..})
#   fleet_site_put NAME STATE [ACTION]  writes P site/NAME (another
#                                  operator's toggle, without a daemon)
#   fleet_site_reset NAME          deletes P site/NAME
#   fleet_box_applied NAME         prints P box/NAME's "applied" revision
#   box_applied_at_least NAME REV  that revision >= REV (for wait_for)
# Boxes (NAME is A, B or C)
#   box_config NAME [FILE] [EXTRA] [SITES]  writes gatekeeperd's config for
#                                  NAME (hook input, sites shop:443 and
#                                  blog:8443 online on the box's address,
#                                  socket and state file in $TMP/box-NAME,
#                                  the fleet: section unless FLEET_SECTION=0)
#   box_start NAME                 gatekeeperd in NAME's namespace with that
#                                  config (box_config's default if none);
#                                  returns on its "ready:" line
#   box_stop NAME [SIG]            SIGTERM (or SIG); succeeds on exit 0
#   box_kill NAME                  SIGKILL
#   box_ctl NAME ARGS...           gatekeeperctl against NAME's socket
#   box_log NAME                   prints NAME's current daemon log
#   box_link_down / box_link_up NAME  black-hole everything to and from
#                                  NAME on the bridge (the link stays up:
#                                  silence, not errors) / undo it
#   box_verdict NAME [PORT] [MS]   from the client: open (handshake),
#                                  dark (timeout), reset (refused), or
#                                  "error ..." for PORT (default 443)
#   wait_verdict NAME WANT [TIMEOUT_S] [PORT]  polls box_verdict until WANT;
#                                  prints how long it took
#   box_accepts NAME [PORT]        connections NAME's tls_server accepted
# Names and pieces, for scenarios that need more
#   etcd_ns N / box_ns NAME        the namespaces (in_ns "$(box_ns A)" ...)
#   box_dir NAME                   $TMP/box-NAME: config, socket, state, logs
#   box_sites_yaml NAME            box_config's default sites
#   box_fleet_yaml NAME            box_config's fleet: section
#   BOX_ADDR[NAME], ETCD_ADDR[N], FLEET_CLIENT4; BOX_PID[NAME], ETCD_PID[N];
#   BOX_LOG[NAME] (the current daemon log), $TMP/etcd-N/etcd.log; PKI
#
# Environment, besides lib.sh's: GATEKEEPERCTL (box_ctl). FLEET_LEASE_TTL,
# FLEET_REQUEST_TIMEOUT (the fleet: section), FLEET_PROBE_MS (box_verdict's
# timeout, default 1000), ETCD_UP_TIMEOUT (default 20), FLEET_PYTHON (the
# JSON parser's interpreter, default /usr/bin/python3).

readonly FLEET_NAME=e2e
readonly FLEET_PREFIX=/gatekeeper
readonly NS_LAN="gk-$$-lan"
readonly FLEET_BRIDGE="br$$"
readonly LAN_PREFIX=203.0.113
readonly FLEET_CLIENT4=$LAN_PREFIX.100
readonly ETCD_MEMBERS=(1 2 3)
readonly BOXES=(A B C)
readonly ETCD_CLIENT_PORT=2379 ETCD_PEER_PORT=2380 ETCD_METRICS_PORT=2381
readonly BOX_BLOG_PORT=8443
readonly FLEET_NFT_TABLE="fleet_$$" # in NS_LAN, family bridge
declare -A ETCD_ADDR=([1]=$LAN_PREFIX.11 [2]=$LAN_PREFIX.12 [3]=$LAN_PREFIX.13)
declare -A BOX_ADDR=([A]=$LAN_PREFIX.21 [B]=$LAN_PREFIX.22 [C]=$LAN_PREFIX.23)
declare -A ETCD_PID=() BOX_PID=() BOX_LOG=() BOX_CONFIG=() BOX_STARTS=()
PKI=""
ETCD_GENERATION=1 # etcd_rebuild makes a new cluster: a new token

FLEET_LEASE_TTL=${FLEET_LEASE_TTL:-3s}
FLEET_REQUEST_TIMEOUT=${FLEET_REQUEST_TIMEOUT:-1s}
FLEET_PROBE_MS=${FLEET_PROBE_MS:-1000}
ETCD_UP_TIMEOUT=${ETCD_UP_TIMEOUT:-20}
# Debian's python3 (tests/packages.txt) for JSON, by path: a pyenv shim
# first in PATH costs over a second per call, and the helpers parse often.
FLEET_PYTHON=${FLEET_PYTHON:-/usr/bin/python3}
[[ -x $FLEET_PYTHON ]] || FLEET_PYTHON=python3

etcd_ns() { echo "gk-$$-e$1"; }
box_ns() { echo "gk-$$-b$1"; }
box_dir() { echo "$TMP/box-$1"; }

# etcd_endpoints [N...]: the client URLs of members N (default: all),
# comma-separated.
etcd_endpoints() {
	local n out=() members=("$@")
	((${#members[@]})) || members=("${ETCD_MEMBERS[@]}")
	for n in "${members[@]}"; do
		out+=("https://${ETCD_ADDR[$n]}:$ETCD_CLIENT_PORT")
	done
	local IFS=,
	echo "${out[*]}"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# ---------------------------------------------------------------- cleanup

# lib.sh's cleanup, kept under another name; ours runs first.
eval "lib_cleanup() $(declare -f cleanup | tail -n +2)"

# Boxes first (SIGTERM: a daemon that leaves rules or hangs shows in its
# log), then the members (SIGKILL, also a stopped one), then lib.sh's.
cleanup() {
	local status=$? name n
	trap - EXIT INT TERM
	for name in "${!BOX_PID[@]}"; do
		kill -CONT "${BOX_PID[$name]}" 2>/dev/null # a frozen one hears TERM too
		end_process "${BOX_PID[$name]}" TERM
	done
	for n in "${!ETCD_PID[@]}"; do
		kill -KILL "${ETCD_PID[$n]}" 2>/dev/null
		wait "${ETCD_PID[$n]}" 2>/dev/null
	done
	(exit "$status")
	lib_cleanup
}

# ---------------------------------------------------------------- certificates

# fleet_cert NAME CN EXT [CA]: key NAME.key, certificate NAME.pem signed by
# CA (default ca) with the extension lines EXT.
fleet_cert() {
	local name=$1 cn=$2 ext=$3 ca=${4:-ca}
	printf '%s\n' "$ext" >"$PKI/$name.ext"
	if ! openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$cn" \
		-keyout "$PKI/$name.key" -out "$PKI/$name.csr" >>"$PKI/openssl.log" 2>&1 ||
		! openssl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.pem" -CAkey "$PKI/$ca.key" \
			-set_serial "0x$(openssl rand -hex 8)" -days 2 -extfile "$PKI/$name.ext" \
			-out "$PKI/$name.pem" >>"$PKI/openssl.log" 2>&1; then
		die "openssl: certificate $name: $(cat "$PKI/openssl.log")"
	fi
}

# fleet_ca NAME: a self-signed CA NAME.pem/NAME.key.
fleet_ca() {
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=gatekeeper e2e $1" \
		-days 2 -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign \
		-keyout "$PKI/$1.key" -out "$PKI/$1.pem" >>"$PKI/openssl.log" 2>&1 ||
		die "openssl: CA $1: $(cat "$PKI/openssl.log")"
}

# The CA, every member's server certificate, the clients' certificates.
fleet_certs() {
	local n b client_ext="basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
	PKI=$TMP/pki
	mkdir -p "$PKI"
	fleet_ca ca
	fleet_ca foreign-ca
	for n in "${ETCD_MEMBERS[@]}"; do
		fleet_cert "etcd-$n" "e$n" "basicConstraints=CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth,clientAuth
subjectAltName=IP:${ETCD_ADDR[$n]}"
	done
	for b in "${BOXES[@]}"; do
		fleet_cert "box-$b" "box $b" "$client_ext"
	done
	fleet_cert admin admin "$client_ext"
	fleet_cert foreign foreign "$client_ext" foreign-ca
}

# ---------------------------------------------------------------- topology

# lan_attach NS ADDR TAG: NS gets a veth on the bridge with ADDR/24.
lan_attach() {
	local ns=$1 addr=$2 tag=$3 dev="f$$$3" port="g$$$3"
	ns_add "$ns"
	veth_pair "$ns" "$dev" "$NS_LAN" "$port"
	ip -n "$NS_LAN" link set "$port" master "$FLEET_BRIDGE" || die "cannot attach $port to the bridge"
	ip -n "$ns" addr add "$addr/24" dev "$dev"
	wait_for link_up "$ns" "$dev" || die "link $dev in $ns up"
}

# box_tls_servers NAME: tls_server on 443 and 8443 in NAME's namespace,
# logs in TLS_SERVER_LOG["NAME:PORT"] (lib.sh's cleanup ends them).
box_tls_servers() {
	local name=$1 port pid log i
	[[ -f $TMP/cert.pem ]] || make_cert
	for port in "$SITE_PORT" "$BOX_BLOG_PORT"; do
		log="$(box_dir "$name")/tls_server.$port.log"
		: >"$log" # exists before the first grep below
		ip netns exec "$(box_ns "$name")" "$TLS_SERVER" "$port" "$TMP/cert.pem" "$TMP/key.pem" >"$log" 2>&1 &
		pid=$!
		TLS_SERVER_PID["$name:$port"]=$pid
		TLS_SERVER_LOG["$name:$port"]=$log
		for ((i = 0; i < WAIT_TIMEOUT * 20; i++)); do
			grep -qx listening "$log" && break
			pid_alive "$pid" || die "tls_server $name:$port died: $(cat "$log")"
			sleep 0.05
		done
		grep -qx listening "$log" || die "tls_server $name:$port did not start: $(cat "$log")"
	done
}

# box_accepts NAME [PORT]: connections NAME's tls_server accepted.
box_accepts() { accept_count "${BOX_ADDR[$1]}" "$1:${2:-$SITE_PORT}"; }

# Certificates, namespaces, bridge, the boxes' tls_servers; every box
# answers the client (closed port 9: RST) before it returns.
fleet_setup() {
	local n b
	fleet_certs
	ns_add "$NS_LAN"
	ip -n "$NS_LAN" link add "$FLEET_BRIDGE" type bridge || die "cannot create the bridge"
	ip -n "$NS_LAN" link set "$FLEET_BRIDGE" up
	in_ns "$NS_LAN" nft add table bridge "$FLEET_NFT_TABLE" || die "nft bridge table"
	for n in "${ETCD_MEMBERS[@]}"; do
		lan_attach "$(etcd_ns "$n")" "${ETCD_ADDR[$n]}" "e$n"
		mkdir -p "$TMP/etcd-$n"
	done
	for b in "${BOXES[@]}"; do
		lan_attach "$(box_ns "$b")" "${BOX_ADDR[$b]}" "b$b"
		mkdir -p "$(box_dir "$b")"
	done
	lan_attach "$NS_CLIENT" "$FLEET_CLIENT4" c
	for b in "${BOXES[@]}"; do
		box_tls_servers "$b"
		wait_for probe_says refused "${BOX_ADDR[$b]}" "$CLOSED_PORT" 1000 ||
			die "box $b (${BOX_ADDR[$b]}) does not answer the client"
	done
}

# lan_rule NAME RULE: a chain NAME on the bridge's forward hook holding
# RULE (created or replaced); lan_unrule NAME deletes it.
lan_rule() {
	lan_unrule "$1"
	in_ns "$NS_LAN" nft -f - <<-EOF
		table bridge $FLEET_NFT_TABLE {
		  chain $1 {
		    type filter hook forward priority 0; policy accept;
		    $2
		  }
		}
	EOF
}

lan_unrule() { in_ns "$NS_LAN" nft delete chain bridge "$FLEET_NFT_TABLE" "$1" 2>/dev/null || true; }

# ---------------------------------------------------------------- etcd

# etcd_start N: member N with every URL explicit, mTLS on the client URL,
# pre-vote, 1 s progress notifications; log in $TMP/etcd-N/etcd.log.
etcd_start() {
	local n=$1 a=${ETCD_ADDR[$1]} m cluster=()
	[[ -z ${ETCD_PID[$n]:-} ]] || die "etcd member $n already runs (pid ${ETCD_PID[$n]})"
	for m in "${ETCD_MEMBERS[@]}"; do
		cluster+=("e$m=http://${ETCD_ADDR[$m]}:$ETCD_PEER_PORT")
	done
	local IFS=,
	ip netns exec "$(etcd_ns "$n")" etcd --name "e$n" --data-dir "$TMP/etcd-$n/data" \
		--listen-client-urls "https://$a:$ETCD_CLIENT_PORT" \
		--advertise-client-urls "https://$a:$ETCD_CLIENT_PORT" \
		--listen-peer-urls "http://$a:$ETCD_PEER_PORT" \
		--initial-advertise-peer-urls "http://$a:$ETCD_PEER_PORT" \
		--listen-metrics-urls "http://$a:$ETCD_METRICS_PORT" \
		--initial-cluster "${cluster[*]}" --initial-cluster-state new \
		--initial-cluster-token "gk-e2e-$$-$ETCD_GENERATION" \
		--client-cert-auth --trusted-ca-file "$PKI/ca.pem" \
		--cert-file "$PKI/etcd-$n.pem" --key-file "$PKI/etcd-$n.key" \
		--pre-vote=true --experimental-watch-progress-notify-interval=1s \
		--logger=zap --log-outputs=stderr \
		>>"$TMP/etcd-$n/etcd.log" 2>&1 &
	ETCD_PID[$n]=$!
	disown "${ETCD_PID[$n]}" # no "Killed" job notice on etcd_kill
}

# etcdctl_at ENDPOINTS ARGS...: etcdctl as the admin, from the client
# namespace, against ENDPOINTS (etcd_endpoints' list); 1 s to dial, 2 s a
# command.
etcdctl_at() {
	local eps=$1
	shift
	in_ns "$NS_CLIENT" etcdctl --endpoints="$eps" --cacert="$PKI/ca.pem" \
		--cert="$PKI/admin.pem" --key="$PKI/admin.key" --dial-timeout=1s \
		--command-timeout=2s "$@"
}

# etcdctl_member N ARGS...: against member N only; etcdctl_fleet ARGS...:
# against all members.
etcdctl_member() {
	local n=$1
	shift
	etcdctl_at "$(etcd_endpoints "$n")" "$@"
}
etcdctl_fleet() { etcdctl_at "$(etcd_endpoints)" "$@"; }

# json_field FIELD: FIELD of the JSON object on stdin (nested: a.b.c;
# a list index is a number), printed as text; 1 if absent or no JSON.
json_field() {
	"$FLEET_PYTHON" -c 'import json, sys
try:
    v = json.load(sys.stdin)
except ValueError:
    sys.exit(1)
for k in sys.argv[1].split("."):
    try:
        v = v[int(k)] if isinstance(v, list) else v[k]
    except (KeyError, IndexError, ValueError, TypeError):
        sys.exit(1)
print(v if isinstance(v, str) else json.dumps(v))' "$1"
}

# etcd_status_json N...: `endpoint status -w json` of members N, one list.
etcd_status_json() {
	(($#)) || return 1
	etcdctl_at "$(etcd_endpoints "$@")" endpoint status -w json
}

# etcd_members_agree N...: members N are healthy (a linearizable read each)
# and name the same leader. Prints what it saw.
etcd_members_agree() {
	(($#)) || return 1
	etcdctl_at "$(etcd_endpoints "$@")" endpoint health || return 1
	etcd_status_json "$@" | "$FLEET_PYTHON" -c 'import json, sys
st = json.load(sys.stdin)
leaders = {s["Status"]["leader"] for s in st}
print("leaders seen:", " ".join("%x" % l for l in leaders), "from", len(st), "members")
sys.exit(0 if len(st) == int(sys.argv[1]) and len(leaders) == 1 and 0 not in leaders else 1)' "$#"
}

# etcd_cluster_up [N...]: waits until members N (default: the running
# ones) are healthy and agree on a leader.
etcd_cluster_up() {
	local members=("$@") WAIT_TIMEOUT=$ETCD_UP_TIMEOUT
	((${#members[@]})) || mapfile -t members < <(printf '%s\n' "${!ETCD_PID[@]}" | sort)
	if ! wait_for etcd_members_agree "${members[@]}"; then
		etcd_members_agree "${members[@]}"
		return 1
	fi
}

# etcd_leader: the number of the member that leads, by what the members
# that answer say.
etcd_leader() {
	local addr n
	addr=$(etcd_status_json "${ETCD_MEMBERS[@]}" 2>/dev/null | "$FLEET_PYTHON" -c 'import json, sys
for s in json.load(sys.stdin):
    if s["Status"]["header"]["member_id"] == s["Status"]["leader"]:
        print(s["Endpoint"].split("//")[1].split(":")[0])
        break')
	for n in "${ETCD_MEMBERS[@]}"; do
		[[ ${ETCD_ADDR[$n]} == "$addr" ]] && { echo "$n"; return 0; }
	done
	return 1
}

# etcd_kill N: SIGKILL; etcd_start N restarts it on its data.
etcd_kill() {
	[[ -n ${ETCD_PID[$1]:-} ]] || return 0
	end_process "${ETCD_PID[$1]}" KILL
	unset "ETCD_PID[$1]"
}

etcd_stop() { kill -STOP "${ETCD_PID[$1]:-none}"; }
etcd_cont() { kill -CONT "${ETCD_PID[$1]:-none}"; }

# etcd_isolate N: the bridge drops member N's peer traffic (TCP 2380 either
# way): to its peers it is silence, its client port stays reachable.
etcd_isolate() {
	local a=${ETCD_ADDR[$1]}
	lan_rule "iso_e$1" "ip saddr $a tcp dport $ETCD_PEER_PORT drop
		ip saddr $a tcp sport $ETCD_PEER_PORT drop
		ip daddr $a tcp dport $ETCD_PEER_PORT drop
		ip daddr $a tcp sport $ETCD_PEER_PORT drop"
}

etcd_rejoin() { lan_unrule "iso_e$1"; }

# etcd_rebuild: every member killed, its data gone, a new cluster formed
# (the "empty or rebuilt etcd" of FLEET-DESIGN.md: revisions restart).
etcd_rebuild() {
	local n
	for n in "${ETCD_MEMBERS[@]}"; do
		etcd_cont "$n" 2>/dev/null
		etcd_kill "$n"
		etcd_rejoin "$n"
		rm -rf "$TMP/etcd-$n/data"
	done
	ETCD_GENERATION=$((ETCD_GENERATION + 1))
	fleet_up
}

# node_addr NODE: the address of e1..e3, A..C or client.
node_addr() {
	case $1 in
	e[1-3]) echo "${ETCD_ADDR[${1#e}]}" ;;
	[ABC]) echo "${BOX_ADDR[$1]}" ;;
	client) echo "$FLEET_CLIENT4" ;;
	*) echo "node_addr: unknown node $1" >&2; return 1 ;;
	esac
}

# lan_cut X Y: the bridge drops every IP packet between nodes X and Y
# (e1..e3, A..C, client), both ways; ARP still works: a black hole.
lan_cut() {
	local x y
	x=$(node_addr "$1") && y=$(node_addr "$2") || return 1
	lan_rule "cut_$1_$2" "ip saddr $x ip daddr $y drop
		ip saddr $y ip daddr $x drop"
}

lan_heal() { lan_unrule "cut_$1_$2"; }

# etcd_revision: the cluster's current revision.
etcd_revision() { etcdctl_fleet get / -w json | json_field header.revision; }

# etcd_compact: compacts at the current revision, physically; prints it.
etcd_compact() {
	local rev
	rev=$(etcd_revision) || return 1
	etcdctl_fleet compact "$rev" --physical >/dev/null || return 1
	echo "$rev"
}

# etcd_key_json KEY: KEY's value as stored; 1 if there is no such key.
etcd_key_json() {
	etcdctl_fleet get "$1" -w json | "$FLEET_PYTHON" -c 'import base64, json, sys
kvs = json.load(sys.stdin).get("kvs")
if not kvs:
    sys.exit(1)
sys.stdout.write(base64.b64decode(kvs[0].get("value", "")).decode())'
}

# etcd_key_is KEY VALUE: KEY holds VALUE (prints what it holds).
etcd_key_is() {
	local got
	got=$(etcd_key_json "$1") || { echo "$1: no such key"; return 1; }
	echo "$1 = $got"
	[[ $got == "$2" ]]
}

# fleet_key PATH: the key P/PATH, P being prefix/fleet name.
fleet_key() { echo "$FLEET_PREFIX/$FLEET_NAME/$1"; }

b64() { printf '%s' "$1" | base64 -w0; }

# etcd_gw ID N PATH BODY: a POST to member N's JSON gateway, hasleader set,
# 2 s at most; prints the reply body. ID A|B|C: from that box's namespace
# with its certificate; admin, foreign (another CA's), nocert: from the
# client's.
etcd_gw() {
	local id=$1 n=$2 path=$3 body=$4 ns=$NS_CLIENT cred=()
	case $id in
	A | B | C) ns=$(box_ns "$id") cred=(--cert "$PKI/box-$id.pem" --key "$PKI/box-$id.key") ;;
	admin | foreign) cred=(--cert "$PKI/$id.pem" --key "$PKI/$id.key") ;;
	nocert) ;;
	*) echo "etcd_gw: unknown identity $id" >&2; return 2 ;;
	esac
	in_ns "$ns" curl -sS --max-time "${ETCD_GW_MAX_TIME:-2}" --cacert "$PKI/ca.pem" "${cred[@]}" \
		-H 'Grpc-Metadata-hasleader: true' -X POST \
		"https://${ETCD_ADDR[$n]}:$ETCD_CLIENT_PORT$path" -d "$body"
}

# ---------------------------------------------------------------- fleet keys
# The keys of FLEET-DESIGN.md, written and read directly: a scenario can set
# the fleet's state without a daemon's help (another operator's toggle, a
# rebuilt etcd) and assert what the boxes wrote.

# fleet_up: members 1..3 started, a healthy cluster with a leader, or die.
fleet_up() {
	local n
	for n in "${ETCD_MEMBERS[@]}"; do
		etcd_start "$n"
	done
	etcd_cluster_up "${ETCD_MEMBERS[@]}" >"$TMP/etcd_cluster_up.log" 2>&1 ||
		die "etcd cluster not up within ${ETCD_UP_TIMEOUT}s: $(cat "$TMP/etcd_cluster_up.log")"
}

# fleet_schema_put [ID]: P schema as `fleet init` writes it (ID default: a
# random 128-bit hex).
fleet_schema_put() {
	local id=${1:-$(openssl rand -hex 16)}
	etcdctl_fleet put "$(fleet_key schema)" \
		"{\"version\":1,\"id\":\"$id\",\"by\":\"e2e\",\"at\":$(date +%s)}" >/dev/null
}

# fleet_site_put NAME STATE [ACTION]: P site/NAME, an operator's toggle as
# if from box "e2e" (STATE offline or online).
fleet_site_put() {
	local action=",\"action\":\"${3:-drop}\""
	etcdctl_fleet put "$(fleet_key "site/$1")" \
		"{\"state\":\"$2\"$action,\"by\":\"e2e\",\"box\":\"e2e\",\"at\":$(date +%s)}" >/dev/null
}

# fleet_site_reset NAME: deletes P site/NAME (the toggle's `reset`).
fleet_site_reset() { etcdctl_fleet del "$(fleet_key "site/$1")" >/dev/null; }

# fleet_box_applied NAME: the revision box NAME says it applied (P box/NAME
# .applied); 1 if the key is absent (no lease: the box is not live).
fleet_box_applied() {
	local v
	v=$(etcd_key_json "$(fleet_key "box/$1")") || return 1
	json_field applied <<<"$v"
}

# box_applied_at_least NAME REV: for wait_for after a toggle at REV.
box_applied_at_least() {
	local got
	got=$(fleet_box_applied "$1") || { echo "box $1: no box key"; return 1; }
	echo "box $1 applied $got (want >= $2)"
	((got >= $2))
}

# ---------------------------------------------------------------- boxes

# box_sites_yaml NAME: the box's sites, shop on 443 and blog on 8443 of
# its own address, both online.
box_sites_yaml() {
	cat <<-EOF
		  - name: shop
		    addresses: [${BOX_ADDR[$1]}]
		    ports: [$SITE_PORT]
		    state: online
		  - name: blog
		    addresses: [${BOX_ADDR[$1]}]
		    ports: [$BOX_BLOG_PORT]
		    state: online
	EOF
}

# box_fleet_yaml NAME: the fleet: section for box NAME.
box_fleet_yaml() {
	local eps
	eps=$(etcd_endpoints)
	cat <<-EOF
		fleet:
		  name: $FLEET_NAME
		  box: $1
		  endpoints: ["${eps//,/\",\"}"]
		  prefix: $FLEET_PREFIX
		  ca_file: $PKI/ca.pem
		  cert_file: $PKI/box-$1.pem
		  key_file: $PKI/box-$1.key
		  lease_ttl: $FLEET_LEASE_TTL
		  request_timeout: $FLEET_REQUEST_TIMEOUT
	EOF
}

# box_config NAME [FILE] [EXTRA] [SITES]: gatekeeperd's config for box
# NAME (FILE default $TMP/box-NAME/gatekeeper.yaml); EXTRA is top-level
# YAML, SITES replaces box_sites_yaml's items. FLEET_SECTION=0 leaves the
# fleet: section out.
box_config() {
	local name=$1 file=${2:-$(box_dir "$1")/gatekeeper.yaml} extra=${3:-} sites=${4:-} fleet=""
	[[ -n $sites ]] || sites=$(box_sites_yaml "$name")
	[[ ${FLEET_SECTION:-1} == 0 ]] || fleet=$(box_fleet_yaml "$name")
	cat >"$file" <<-EOF
		# written by tests/e2e/fleet_lib.sh for box $name
		hook: input
		backend: ${E2E_BACKEND:-auto}
		$extra
		control:
		  socket: $(box_dir "$name")/control.sock
		state_file: $(box_dir "$name")/state
		sites:
		$sites
		$fleet
	EOF
	BOX_CONFIG[$name]=$file
}

# box_start NAME: gatekeeperd in NAME's namespace; returns on "ready:".
# A daemon that dies or never gets ready fails the test, with its log.
box_start() {
	local name=$1 DAEMON_PID DAEMON_LOG status
	[[ -z ${BOX_PID[$name]:-} ]] || die "box $name already runs (pid ${BOX_PID[$name]})"
	[[ -n ${BOX_CONFIG[$name]:-} ]] || box_config "$name"
	BOX_STARTS[$name]=$((${BOX_STARTS[$name]:-0} + 1))
	DAEMON_LOG="$(box_dir "$name")/daemon.${BOX_STARTS[$name]}.log"
	: >"$DAEMON_LOG" # before daemon_ready's first look, not by the background job
	ip netns exec "$(box_ns "$name")" "$GATEKEEPERD" -c "${BOX_CONFIG[$name]}" >"$DAEMON_LOG" 2>&1 &
	DAEMON_PID=$!
	BOX_PID[$name]=$DAEMON_PID
	BOX_LOG[$name]=$DAEMON_LOG
	if daemon_ready; then
		check_backend
		return 0
	fi
	if pid_alive "$DAEMON_PID"; then
		end_process "$DAEMON_PID" TERM
		status="no 'ready:' line within ${WAIT_TIMEOUT}s"
	else
		wait "$DAEMON_PID"
		status="exit status $? before it was ready"
	fi
	unset "BOX_PID[$name]"
	box_log "$name"
	die "box $name: gatekeeperd: $status"
}

# box_stop NAME [SIG]: succeeds if the daemon exited 0.
box_stop() {
	local pid=${BOX_PID[$1]:-} status
	[[ -n $pid ]] || { echo "box $1: no daemon running"; return 1; }
	end_process "$pid" "${2:-TERM}"
	status=$?
	unset "BOX_PID[$1]"
	echo "box $1: daemon exit status $status"
	[[ $status == 0 ]]
}

box_kill() {
	[[ -n ${BOX_PID[$1]:-} ]] || return 1
	end_process "${BOX_PID[$1]}" KILL
	unset "BOX_PID[$1]"
}

box_ctl() {
	local name=$1
	shift
	"$GATEKEEPERCTL" -s "$(box_dir "$name")/control.sock" "$@"
}

# status_field NAME FIELD: FIELD (json_field's dotted path) of box NAME's
# status JSON; status_is NAME FIELD VALUE.
status_field() { box_ctl "$1" status --json | json_field "$2"; }
status_is() {
	local v
	v=$(status_field "$1" "$2") || return 1
	[[ $v == "$3" ]]
}

# is_stale NAME: box NAME's status says its view of the fleet is stale.
is_stale() {
	local v
	v=$(status_field "$1" fleet.stale_since) || return 1
	[[ $v != 0 ]]
}

# within SECONDS CMD...: wait_for with its own limit.
within() {
	local WAIT_TIMEOUT=$1
	shift
	wait_for "$@"
}

box_log() {
	[[ -n ${BOX_LOG[$1]:-} && -f ${BOX_LOG[$1]} ]] || return 0
	log "---- box $1: ${BOX_LOG[$1]}"
	sed 's/^/#   /' "${BOX_LOG[$1]}"
	log "----"
}

# box_link_down NAME: the bridge drops every frame from and to box NAME
# (ARP included): a black hole, its link and routes stay up.
box_link_down() {
	lan_rule "down_b$1" "iifname \"g$$b$1\" drop
		oifname \"g$$b$1\" drop"
}

box_link_up() { lan_unrule "down_b$1"; }

# box_verdict NAME [PORT] [MS]: what the client sees at the box's
# address: open, dark, reset, or "error ..." (tls_probe's line).
box_verdict() {
	local line
	line=$(probe "${BOX_ADDR[$1]}" "${2:-$SITE_PORT}" "${3:-$FLEET_PROBE_MS}")
	case $line in
	"handshake ok"*) echo open ;;
	timeout*) echo dark ;;
	refused*) echo reset ;;
	*) echo "error $line" ;;
	esac
}

# wait_verdict NAME WANT [TIMEOUT_S] [PORT]: polls box_verdict until it
# says WANT, for at most TIMEOUT_S (default WAIT_TIMEOUT) s; prints the
# time it took or the last verdict.
wait_verdict() {
	local name=$1 want=$2 limit=$((${3:-$WAIT_TIMEOUT} * 1000)) port=${4:-$SITE_PORT} start got i
	start=$(now_ms)
	for ((i = 0; i < 1000; i++)); do
		got=$(box_verdict "$name" "$port")
		if [[ $got == "$want" ]]; then
			echo "box $name:$port $want after $(($(now_ms) - start)) ms"
			return 0
		fi
		(($(now_ms) - start < limit)) || break
		sleep 0.05
	done
	echo "box $name:$port still '$got' after $(($(now_ms) - start)) ms, want $want"
	return 1
}
