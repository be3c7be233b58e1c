#!/bin/bash
# cut.sh: `gatekeeperctl offline SITE --cut` (issue 15, item 3): drain vs cut,
# daemon on the gw (a router in front of the server), hook forward.
#
#   drain   `offline blog`: new connections refused, established ones (an idle
#           TLS connection over IPv4 and IPv6, an active transfer) live on
#   cut     `offline blog --cut`: all three end on both sides within CUT_BOUND
#           seconds (the server's sockets are gone from `ss` in the server
#           namespace, the clients see the reset and exit), while a TLS
#           connection to shop (online, same gw, same server) is untouched;
#           status, JSON, metrics and the state file show the cut
#   online  `online blog`: the cut rules are empty again and a new connection
#           completes its handshake
#
# The servers and clients are openssl s_server / s_client: they hold a
# connection as long as the peer does (tls_server closes after 2 s); the
# transfer's server is a few lines of Python's ssl, sending at a steady rate.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=forward
readonly STREAM_PORT=8443 # blog's second port: the active transfer
# One probe round at the cut, then one a second: an idle connection ends
# within about a second; the bound tested leaves room for a loaded machine.
CUT_BOUND=3
((WAIT_TIMEOUT > 10)) && CUT_BOUND=8 # TCG (tests/qemu): everything ~5x slower
readonly CUT_BOUND

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }

# endpoint ADDR PORT: "ADDR:PORT", IPv6 in brackets.
endpoint() { [[ $1 == *:* ]] && echo "[$1]:$2" || echo "$1:$2"; }

# serve ADDR PORT: openssl s_server on ADDR:PORT in the server namespace.
serve() {
	ip netns exec "$NS_SERVER" openssl s_server -quiet -accept "$(endpoint "$1" "$2")" \
		-cert "$TMP/cert.pem" -key "$TMP/key.pem" <"$TMP/hold" >"$TMP/server.$1.$2.log" 2>&1 &
}

# stream_server ADDR PORT: a TLS server (Python's ssl, i.e. OpenSSL) that
# sends its one client 1 kB every 10 ms until the connection ends: an
# active transfer at a steady rate (s_server and curl --limit-rate send in
# bursts with long pauses).
stream_server() {
	ip netns exec "$NS_SERVER" python3 -c '
import socket, ssl, sys, time
addr, port, cert, key = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
s = socket.socket(socket.AF_INET6 if ":" in addr else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((addr, port))
s.listen(4)
c = ctx.wrap_socket(s.accept()[0], server_side=True)
try:
    for _ in range(12000):  # 2 minutes at most
        c.sendall(b"x" * 1023 + b"\n")
        time.sleep(0.01)
except OSError as e:
    print("stream ended:", e, flush=True)
' "$1" "$2" "$TMP/cert.pem" "$TMP/key.pem" >"$TMP/server.$1.$2.log" 2>&1 &
}

listening() {
	in_ns "$NS_SERVER" ss -Htln | awk -v e="$(endpoint "$1" "$2")" '{ for (i = 1; i <= NF; i++) if ($i == e) f = 1 } END { exit !f }'
}

# connect NAME ADDR PORT: an s_client in the client namespace that sends
# nothing and reads until the connection ends; its PID in CLIENT[NAME].
declare -A CLIENT=()
connect() {
	ip netns exec "$NS_CLIENT" openssl s_client -quiet -connect "$(endpoint "$2" "$3")" \
		<"$TMP/hold" >"$TMP/client.$1.out" 2>"$TMP/client.$1.err" &
	CLIENT[$1]=$!
}

# established NS ADDR PORT: the connections on ADDR:PORT (local or peer
# side) that NS's `ss` lists as established.
established() {
	in_ns "$1" ss -Htn state established |
		awk -v e="$(endpoint "$2" "$3")" '{ for (i = 1; i <= NF; i++) if ($i == e) n++ } END { print n + 0 }'
}

# up NAME ADDR PORT: the client runs and both ends list the connection.
up() {
	local s c
	s=$(established "$NS_SERVER" "$2" "$3")
	c=$(established "$NS_CLIENT" "$2" "$3")
	echo "$1: client pid ${CLIENT[$1]}, established at the server $s, at the client $c"
	pid_alive "${CLIENT[$1]}" && ((s == 1 && c == 1))
}

# down NAME ADDR PORT: the client has exited and neither end lists it.
down() {
	local s c
	s=$(established "$NS_SERVER" "$2" "$3")
	c=$(established "$NS_CLIENT" "$2" "$3")
	echo "$1: established at the server $s, at the client $c"
	! pid_alive "${CLIENT[$1]}" && ((s == 0 && c == 0))
}

all_blog_down() {
	down idle4 "$BLOG4" "$SITE_PORT" && down idle6 "$BLOG6" "$SITE_PORT" &&
		down stream "$BLOG4" "$STREAM_PORT"
}

all_blog_up() {
	up idle4 "$BLOG4" "$SITE_PORT" && up idle6 "$BLOG6" "$SITE_PORT" &&
		up stream "$BLOG4" "$STREAM_PORT"
}

# transfer_flows: the transfer's client output grows (within 2 s).
transfer_flows() {
	local a b i
	a=$(stat -c %s "$TMP/client.stream.out")
	for ((i = 0; i < 20; i++)); do
		sleep 0.1
		b=$(stat -c %s "$TMP/client.stream.out")
		((b > a)) && break
	done
	echo "transfer: $a -> $b bytes"
	((b > a))
}

# cut_elements: the endpoints in the kernel's cut rules (nft sets cut4/cut6,
# or the xt GATEKEEPER_CUT chains' RST rules), both families.
cut_elements() {
	if in_ns "$NS_GW" nft list table inet gatekeeper >/dev/null 2>&1; then
		in_ns "$NS_GW" nft list set inet gatekeeper cut4 | grep -c '\. 443\|\. 8443'
		in_ns "$NS_GW" nft list set inet gatekeeper cut6 | grep -c '\. 443\|\. 8443'
	else
		in_ns "$NS_GW" "iptables-$(xt_flavour)-save" -t filter | grep -c -- '-j GATEKEEPER_CUT_RESET'
		in_ns "$NS_GW" "ip6tables-$(xt_flavour)-save" -t filter | grep -c -- '-j GATEKEEPER_CUT_RESET'
	fi
}

# cut_rules COUNT: COUNT rules/elements in all (two per endpoint on xt).
cut_rules() {
	local n
	n=$(cut_elements | awk '{ s += $1 } END { print s + 0 }')
	echo "cut rules/elements: $n (want $1)"
	((n == $1))
}

metric() {
	local line
	line=$(ctl metrics | grep -E "^$1 ")
	echo "$line" >&2
	awk '{ print $2 }' <<<"$line"
}

drain() {
	check "blog online: an idle TLS connection over IPv4 and IPv6 and a transfer are up" \
		wait_for all_blog_up
	check "shop: an idle TLS connection is up" wait_for up shop "$SHOP4" "$SITE_PORT"
	check "offline blog (no --cut)" ctl offline blog
	check "drain: a new connection to blog is refused" probe_says timeout "$BLOG4" "$SITE_PORT" 400
	sleep 2
	check "drain: 2 s later blog's established connections live on" all_blog_up
	check "drain: the transfer goes on" transfer_flows
	check "drain: no cut in force (status)" negate grep -q cut <(ctl status | grep -A6 '^blog:' | grep '  cut ')
	check "drain: no cut rules" cut_rules 0
}

cut() {
	local t0 t1 ms
	t0=$(date +%s%N)
	check "offline blog --cut" ctl offline blog --cut
	WAIT_TIMEOUT=$((CUT_BOUND + 2)) wait_for all_blog_down
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	log "blog's connections ended $ms ms after the cut (bound ${CUT_BOUND}s)"
	check "cut: the idle IPv4 and IPv6 connections and the transfer ended on both ends" all_blog_down
	check "cut: within ${CUT_BOUND}s ($ms ms)" test "$ms" -le $((CUT_BOUND * 1000))
	check "cut: the idle clients saw the reset" \
		grep -E 'errno=104' "$TMP/client.idle4.err" "$TMP/client.idle6.err"
	check "cut: the transfer's client saw the reset" grep -E 'errno=104' "$TMP/client.stream.err"
	check "cut: the transfer's server saw the connection end" \
		wait_for grep -q 'stream ended' "$TMP/server.$BLOG4.$STREAM_PORT.log"
	check "cut: shop's connection (online site, same gw) is untouched" up shop "$SHOP4" "$SITE_PORT"
	check "cut: the cut rules hold blog's 4 endpoints (2 addresses, 2 ports)" cut_rules "$(cut_expected 4)"
	check "status: cut in force" grep -q '  cut        in force' <(ctl status)
	check "status --json: \"cut\":true" grep -q '"name":"blog".*"cut":true' <(ctl status --json)
	check "metrics: gatekeeper_site_cut{site=\"blog\"} 1" test "$(metric 'gatekeeper_site_cut\{site="blog"\}')" = 1
	check "metrics: the cut's RSTs are counted" test "$(metric gatekeeper_cut_resets_total)" -gt 0
	check "metrics: probes were sent" test "$(metric 'gatekeeper_site_cut_probes_total\{site="blog"\}')" -gt 0
	check "state file: +cut blog" grep -qx '+cut blog' "$TMP/state"
	check "cut: a new connection to blog is refused" probe_says timeout "$BLOG4" "$SITE_PORT" 400
	# the cut is part of the override: a restart keeps it (state file)
	check "restart: SIGTERM, exit 0" stop_daemon
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "restart: the cut is in force again" grep -q '  cut        in force' <(ctl status)
	check "restart: and its rules" cut_rules "$(cut_expected 4)"
}

# Two xt rules per endpoint (client to server, server to client); one nft
# set element.
cut_expected() {
	if in_ns "$NS_GW" nft list table inet gatekeeper >/dev/null 2>&1; then
		echo "$1"
	else
		echo $(($1 * 2))
	fi
}

back_online() {
	check "online blog" ctl online blog
	check "online: no cut rules left" cut_rules 0
	check "online: status shows no cut" negate grep -q '  cut        in force' <(ctl status)
	check "online: the state file has no +cut line" negate grep -q '^+cut' "$TMP/state"
	check "online: a new connection to blog completes its handshake" \
		wait_for probe_says "handshake ok" "$BLOG4" "$SITE_PORT" 2000
	check "online: shop's connection is still up" up shop "$SHOP4" "$SITE_PORT"
}

main() {
	require_environment GATEKEEPERD TLS_PROBE GATEKEEPERCTL
	e2e_begin
	setup_topology
	make_cert
	mkfifo "$TMP/hold"
	# read-write: opening never blocks, and nobody ever writes to it
	exec 7<>"$TMP/hold"
	local sites
	sites=$(site_yaml shop "$SHOP4" "$SHOP6" online
		site_yaml blog "$BLOG4" "$BLOG6" online drop "$SITE_PORT, $STREAM_PORT")
	write_config "$TMP/gk.yaml" "$HOOK" "queue: { num: 0, count: 1, fail_open: true }" "" "$sites"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	serve "$SHOP4" "$SITE_PORT"
	serve "$BLOG4" "$SITE_PORT"
	serve "$BLOG6" "$SITE_PORT"
	stream_server "$BLOG4" "$STREAM_PORT"
	for a in "$SHOP4 $SITE_PORT" "$BLOG4 $SITE_PORT" "$BLOG6 $SITE_PORT" "$BLOG4 $STREAM_PORT"; do
		# shellcheck disable=SC2086 # two words
		wait_for listening $a || die "s_server on $a did not start"
	done
	connect shop "$SHOP4" "$SITE_PORT"
	connect idle4 "$BLOG4" "$SITE_PORT"
	connect idle6 "$BLOG6" "$SITE_PORT"
	connect stream "$BLOG4" "$STREAM_PORT"
	drain
	cut
	back_online
	check "SIGTERM, exit 0" stop_daemon
	check "no rule left" no_daemon_rules "$NS_GW"
	finish
}

main "$@"
