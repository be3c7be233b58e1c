#!/bin/bash
# sni.sh: three sites on one address, told apart by TLS server name (issue
# 14). Debian's nginx on the server's wildcard address (0.0.0.0:443 and
# [::]:443) with three server_name blocks, each with its own certificate;
# the daemon on the gw, hook forward.
#
#   shop.example  online            -> its certificate, and HTTP through curl
#   blog.example  offline, drop     -> no certificate: the client hears nothing
#   wiki.example  offline, reject   -> no certificate: the connection is reset
#   no name / another name          -> sni.unknown_name: reject
#   a ~2 kB ClientHello over a route with MTU 1280 (two segments)
#   toggles take effect on the next connection
#   the rules watchdog puts back flushed or deleted SNI rules
#   reloads: names moved, unknown_name changed, a shared endpoint added and
#   removed, sharing ended and resumed, sni.hold changed; sni.max_pending
#   refused; a daemon started
#   with nothing shared refuses a reload that shares an address
# and nginx never logged a request for blog or wiki.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=forward
readonly NAMES=(shop blog wiki)
readonly MAX_PENDING=20 FLOOD=60
# A refused connection: the RST is the verdict alone; under TCG
# (tests/qemu) starting openssl alone takes a second or two.
REFUSED_MS=1500
((WAIT_TIMEOUT > 10)) && REFUSED_MS=6000
readonly REFUSED_MS

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }

endpoint() { [[ $1 == *:* ]] && echo "[$1]:$2" || echo "$1:$2"; }

# cert_of ADDR NAME [MS]: the subject the server sent for NAME ("" for no
# SNI), or "none"; s_client's exit after MS of silence counts as none.
cert_of() {
	local sni=()
	[[ -n $2 ]] && sni=(-servername "$2")
	timeout "$(((${3:-2500} + 999) / 1000))" ip netns exec "$NS_CLIENT" \
		openssl s_client -connect "$(endpoint "$1" 443)" "${sni[@]}" </dev/null 2>&1 |
		sed -n 's/^subject=.*CN *= *\([^ ,]*\).*/\1/p' | head -n1 | grep . || echo none
}

says_cert() { # WANT ADDR NAME
	local got
	got=$(cert_of "$2" "$3")
	echo "$2 servername '${3:-}': certificate $got (want $1)"
	[[ $got == "$1" ]]
}

# refused ADDR NAME: the connection is reset at once (s_client reports an
# error within a second, no certificate).
refused() {
	local t0 out ms
	t0=$(date +%s%N)
	out=$(timeout 3 ip netns exec "$NS_CLIENT" openssl s_client -connect "$(endpoint "$1" 443)" \
		${2:+-servername "$2"} </dev/null 2>&1)
	ms=$((($(date +%s%N) - t0) / 1000000))
	echo "$1 '${2:-}': $(grep -m1 -E 'errno|reset|error' <<<"$out") after $ms ms"
	! grep -q '^subject=' <<<"$out" && ((ms < REFUSED_MS))
}

http_says() { # ADDR NAME WANT
	local got
	got=$(ip netns exec "$NS_CLIENT" curl -sk --max-time 3 --resolve "$2:443:$1" "https://$2/") || true
	echo "curl https://$2/ via $1: '$got'"
	[[ $got == "$3" ]]
}

nginx_never_saw() { # NAME
	! grep -q "\"$1\"" "$TMP/nginx/access.log" 2>/dev/null &&
		! grep -q "$1" "$TMP/nginx/access.log" 2>/dev/null
}

# big_hello ADDR NAME: a Python client whose ClientHello (~2 kB: a long ALPN
# list) does not fit one segment at MTU 1280; prints the peer's CN.
big_hello() {
	ip netns exec "$NS_CLIENT" timeout 5 python3 -c '
import socket, ssl, sys
addr, name = sys.argv[1], sys.argv[2]
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
ctx.set_alpn_protocols(["x%03d" % i + "y" * 40 for i in range(40)] + ["http/1.1"])
s = socket.create_connection((addr, 443), timeout=3)
t = ctx.wrap_socket(s, server_hostname=name)
cert = t.getpeercert(binary_form=True)
print("handshake ok", len(cert))
' "$1" "$2" 2>&1 | tail -n1
}

# half_hellos ADDR N SECONDS: N connections that each send the first 40
# bytes of a ClientHello and then nothing, held open SECONDS (bounded).
half_hellos() {
	ip netns exec "$NS_CLIENT" timeout $(($3 + 5)) python3 -c '
import socket, ssl, sys, time
addr, n, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ctx = ssl.create_default_context(); i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
obj = ctx.wrap_bio(i, o, server_hostname="shop.example")
try: obj.do_handshake()
except ssl.SSLWantReadError: pass
hello = o.read()
socks = []
for _ in range(n):
    s = socket.create_connection((addr, 443), timeout=3)
    s.sendall(hello[:40])
    socks.append(s)
print("holding", len(socks), flush=True)
time.sleep(secs)
' "$1" "$2" "$3"
}

# sni_figure WORD: a figure of the stats line "sni ..." (hellos, full, ...).
sni_figure() { ctl stats | sed -n "s/^sni .* $1 \([0-9][0-9]*\).*/\1/p"; }

# sni_packets: the SNI queue's packets so far (gatekeeperctl stats).
sni_packets() { ctl stats | sed -n 's/^sni  *\([0-9][0-9]*\).*/\1/p'; }

# sni_config [UNKNOWN_NAME [HOLD [MAX_PENDING]]]: the three sites; each on SHOP4 and SHOP6
# with server_names NAME.example unless SNI_ADDRS[NAME] / SNI_NAMES[NAME]
# say otherwise (the reload checks).
declare -A SNI_ADDRS=() SNI_NAMES=()
sni_config() {
	local sites
	sites=$(for n in shop blog wiki; do
		case $n in
		shop) st="online" ;;
		blog) st=$'offline\n    action: drop' ;;
		wiki) st=$'offline\n    action: reject' ;;
		esac
		printf '  - name: %s\n    addresses: [%s]\n    ports: [443]\n    state: %s\n    server_names: [%s]\n' \
			"$n" "${SNI_ADDRS[$n]:-$SHOP4, \"$SHOP6\"}" "$st" "${SNI_NAMES[$n]:-$n.example}"
	done)
	write_config "$TMP/gatekeeper.yaml" "$HOOK" \
		"sni: {unknown_name: ${1:-reject}, hold: ${2:-1s}, max_pending: ${3:-$MAX_PENDING}}" "" "$sites"
}

nft_backend() { in_ns "$NS_GW" nft list table inet gatekeeper >/dev/null 2>&1; }

# sni_damage HOW: removes shared-address rules behind the daemon's back.
#   flush  the whole nft table's rules / xt's mangle table, both families
#   chain  nft chain sni's rules / xt's IPv4 jump to GATEKEEPER_SNI only
#   clear  nft chain sni_clear / xt's IPv6 GATEKEEPER_SNI_CLEAR rules only
sni_damage() {
	local ipt ip6t
	ipt=iptables-$(xt_flavour) ip6t=ip6tables-$(xt_flavour)
	if nft_backend; then
		case $1 in
		flush) in_ns "$NS_GW" nft flush table inet gatekeeper ;;
		chain) in_ns "$NS_GW" nft flush chain inet gatekeeper sni ;;
		clear) in_ns "$NS_GW" nft delete chain inet gatekeeper sni_clear ;;
		esac
	else
		case $1 in
		flush) in_ns "$NS_GW" "$ipt" -w -t mangle -F && in_ns "$NS_GW" "$ip6t" -w -t mangle -F ;;
		chain) in_ns "$NS_GW" "$ipt" -w -t mangle -D FORWARD -p tcp -j GATEKEEPER_SNI ;;
		clear) in_ns "$NS_GW" "$ip6t" -w -t filter -F GATEKEEPER_SNI_CLEAR ;;
		esac
	fi
}

removed_count() { grep -c 'rules removed behind our back' "$DAEMON_LOG"; }

# sni_repaired HOW [WHY]: damage, then the watchdog's log says it noticed
# (the reason matching WHY) and reinstalled the rules.
sni_repaired() {
	local before
	before=$(grep -c 'rules reinstalled' "$DAEMON_LOG")
	sni_damage "$1" || { echo "could not damage: $1"; return 1; }
	wait_for eval "(( \$(grep -c 'rules reinstalled' $DAEMON_LOG) > $before ))" ||
		{ echo "not reinstalled"; tail -n 5 "$DAEMON_LOG"; return 1; }
	grep 'rules removed behind our back' "$DAEMON_LOG" | tail -n 1
	grep 'rules removed behind our back' "$DAEMON_LOG" | tail -n 1 | grep -q -- "${2:-.}"
}

# The rules watchdog and the shared addresses' rules: after each damage an
# offline name is decided again (no certificate), an online one served.
watchdog_checks() {
	local how
	for how in flush chain clear; do
		if [[ $how == flush ]]; then
			check "watchdog: $how of the rules noticed and repaired" sni_repaired "$how"
		else
			check "watchdog: $how of the SNI rules noticed (shared addresses) and repaired" \
				sni_repaired "$how" 'shared addresses\|sni'
		fi
		check "... $SHOP4 shop.example (offline) refused again" refused "$SHOP4" shop.example
		check "... $SHOP6 shop.example (offline) refused again" refused "$SHOP6" shop.example
		check "... $SHOP4 blog.example (online) still served" http_says "$SHOP4" blog.example blog
		check "... $SHOP6 blog.example (online) still served" http_says "$SHOP6" blog.example blog
	done
}

reload_ok() { ctl reload; }

# has_sni_rules: whether the gw holds SNI chains (either backend).
has_sni_rules() {
	ruleset "$NS_GW" | grep -qE 'chain sni |GATEKEEPER_SNI'
}

# wait_quiet_checks: two watchdog intervals pass and it found nothing to repair.
quiet_since() { # COUNT
	sleep 4.5
	echo "removed-behind-our-back lines: $(removed_count) (want $1)"
	[[ $(removed_count) == "$1" ]]
}

# Reloads that change the shared endpoints. Overrides on entry (and kept
# through every reload): shop offline (reject), blog online; wiki is
# offline (reject) by config.
reload_checks() {
	local removed
	removed=$(removed_count)

	# (d) server_names and (c) sni.unknown_name
	SNI_NAMES=([blog]="blog.example, wiki.example" [wiki]="wiki2.example")
	sni_config accept
	check "reload: wiki.example moved to blog, unknown_name accept" reload_ok
	check "... wiki.example now blog's (online): its certificate" says_cert wiki.example "$SHOP4" wiki.example
	check "... wiki2.example wiki's (offline, reject): refused" refused "$SHOP4" wiki2.example
	check "... another name now accepted (nginx's default server answers)" \
		says_cert shop.example "$SHOP4" other.example
	check "... shop.example still refused" refused "$SHOP4" shop.example
	SNI_NAMES=()

	# (b) a shared endpoint added: BLOG4:443, unmanaged until now
	check "before: $BLOG4 unmanaged, shop.example served there" says_cert shop.example "$BLOG4" shop.example
	SNI_ADDRS=([shop]="$SHOP4, \"$SHOP6\", $BLOG4" [blog]="$SHOP4, \"$SHOP6\", $BLOG4"
		[wiki]="$SHOP4, \"$SHOP6\", $BLOG4")
	sni_config
	check "reload: $BLOG4:443 shared by the three sites too" reload_ok
	check "... $BLOG4 shop.example (offline) refused" refused "$BLOG4" shop.example
	check "... $BLOG4 blog.example (online) served" http_says "$BLOG4" blog.example blog
	check "... $BLOG4 another name refused (unknown_name reject again)" refused "$BLOG4" other.example
	check "... $SHOP4 blog.example still served" http_says "$SHOP4" blog.example blog

	# (b) and removed again
	SNI_ADDRS=()
	sni_config
	check "reload: $BLOG4:443 no longer managed" reload_ok
	check "... $BLOG4 shop.example served again (unmanaged)" says_cert shop.example "$BLOG4" shop.example
	check "... $SHOP4 shop.example still refused" refused "$SHOP4" shop.example

	# (a) shared -> each site on its own address: no SNI rules left
	SNI_ADDRS=([blog]="$BLOG4, \"$BLOG6\"" [wiki]="$WIKI4, \"$WIKI6\"")
	sni_config
	check "reload: no address shared any more" reload_ok
	check "... no SNI rule left in the kernel" eval '! has_sni_rules'
	check "... $SHOP4 (shop's alone, offline): blog.example refused at the SYN" \
		refused "$SHOP4" blog.example
	check "... $BLOG4 blog.example (online) served" http_says "$BLOG4" blog.example blog
	check "... $WIKI4 wiki.example (offline, reject) refused" refused "$WIKI4" wiki.example

	# (a) and shared again (this daemon started with a shared address)
	SNI_ADDRS=()
	sni_config
	check "reload: the three sites share $SHOP4 again" reload_ok
	check "... the SNI rules are back" has_sni_rules
	check "... $SHOP4 blog.example served" http_says "$SHOP4" blog.example blog
	check "... $SHOP4 shop.example refused" refused "$SHOP4" shop.example
	check "... $SHOP6 wiki.example refused" refused "$SHOP6" wiki.example
	check "the watchdog found nothing to repair after the reloads" quiet_since "$removed"

	# (c) sni.hold: flows held from the reload on get the new one
	local before hold_pid
	sni_config reject 3s
	check "reload: sni.hold 1s -> 3s" reload_ok
	before=$(sni_figure timeout)
	half_hellos "$SHOP4" 1 6 >"$TMP/hold.log" 2>&1 &
	hold_pid=$!
	wait_for grep -q holding "$TMP/hold.log" || die "no half hello: $(cat "$TMP/hold.log")"
	sleep 1.8
	check "... a half-sent hello still held after 1.8 s (the old hold: 1 s)" \
		eval "echo timeout \$(sni_figure timeout), before $before; (( \$(sni_figure timeout) == $before ))"
	check "... and ended by the new hold" wait_for eval "(( \$(sni_figure timeout) > $before ))"
	wait "$hold_pid"

	# (c) sni.max_pending: refused, the running config stays
	sni_config reject 3s 30
	check "reload changing sni.max_pending: refused, says a restart is needed" \
		eval "! ctl reload >$TMP/reload.out 2>&1 && cat $TMP/reload.out &&
			grep -q \"changing 'sni.max_pending' needs a restart; the running config is kept\" $TMP/reload.out"
	check "... blog still served" http_says "$SHOP4" blog.example blog
	check "... shop still refused" refused "$SHOP4" shop.example
	sni_config
}

# A daemon that started with no address shared has no SNI worker: a reload
# that makes sites share one is refused and changes nothing.
unshared_start_checks() {
	SNI_ADDRS=([blog]="$BLOG4, \"$BLOG6\"" [wiki]="$WIKI4, \"$WIKI6\"")
	sni_config
	start_daemon "$NS_GW" "$TMP/gatekeeper.yaml"
	check "started with no address shared: no SNI rule" eval '! has_sni_rules'
	SNI_ADDRS=()
	sni_config
	check "reload making sites share an address: refused, says a restart is needed" \
		eval "! ctl reload >$TMP/reload.out 2>&1 && cat $TMP/reload.out &&
			grep -q 'sites now share an address.*a restart is needed; the running config is kept' $TMP/reload.out"
	check "... still no SNI rule" eval '! has_sni_rules'
	check "... $SHOP4 still shop's alone (offline): blog.example refused at the SYN" \
		refused "$SHOP4" blog.example
	check "... $BLOG4 blog.example still served" http_says "$BLOG4" blog.example blog
	check "SIGTERM: daemon exits 0" stop_daemon
	check "no rule of the daemon left" no_daemon_rules "$NS_GW"
}

main() {
	require_environment
	command -v nginx >/dev/null || die "needs nginx (Debian's nginx-light)"
	e2e_begin
	setup_topology
	start_nginx "${NAMES[@]}"
	check "before the daemon: blog's certificate" says_cert blog.example "$SHOP4" blog.example

	sni_config
	start_daemon "$NS_GW" "$TMP/gatekeeper.yaml"
	for a in "$SHOP4" "$SHOP6"; do
		check "$a shop.example (online): its certificate" says_cert shop.example "$a" shop.example
		check "$a shop.example: HTTP through curl" http_says "$a" shop.example shop
		check "$a blog.example (offline, drop): no certificate" says_cert none "$a" blog.example
		check "$a wiki.example (offline, reject): reset, no certificate" refused "$a" wiki.example
		check "$a no server name: reject (sni.unknown_name)" refused "$a" ""
		check "$a another name: reject" refused "$a" other.example
	done
	check "status lists each site's names" eval "ctl status | grep -q '^  names      blog.example$'"
	check "nginx never saw a request for blog or wiki" eval "nginx_never_saw blog && nginx_never_saw wiki"

	# one segment per packet (no GSO super-packet), MSS from MTU 1280: the
	# ~2 kB hello leaves the client as two packets, and the SNI queue must
	# see both (the handshake's ACK, then two data segments)
	ip -n "$NS_CLIENT" link set dev "c$$" gso_max_segs 1
	ip -n "$NS_CLIENT" route change default via "$GW_CLIENT4" mtu 1280
	local before after
	before=$(sni_packets)
	check "a ClientHello in two segments (MTU 1280) for shop: handshake" \
		eval "big_hello $SHOP4 shop.example | grep -q 'handshake ok'"
	after=$(sni_packets)
	check "... the SNI queue took its ACK and two data segments ($before -> $after)" \
		test "$((after - before))" -ge 3
	check "... and for blog: nothing" eval "! big_hello $SHOP4 blog.example | grep -q 'handshake ok'"

	# a flood of half-sent hellos: held up to sni.max_pending, the rest
	# counted; a client that sends its hello at once is still decided
	local flood_pid
	half_hellos "$SHOP4" "$FLOOD" 3 >"$TMP/flood.log" 2>&1 &
	flood_pid=$!
	wait_for grep -q holding "$TMP/flood.log" || die "the flood did not start: $(cat "$TMP/flood.log")"
	check "during a flood of $FLOOD half-sent hellos: shop's certificate" \
		says_cert shop.example "$SHOP4" shop.example
	# under TCG the flood's connects are slow enough that held flows time
	# out before the table fills: there, some counted is what is asked
	local want_full=$((FLOOD - MAX_PENDING))
	((WAIT_TIMEOUT > 10)) && want_full=1
	check "... the flows past sni.max_pending ($MAX_PENDING) were counted as full" \
		eval "(( \$(sni_figure full) >= $want_full ))"
	wait "$flood_pid"
	check "... the held ones ended by sni.hold (timeout >= $MAX_PENDING)" \
		wait_for eval "(( \$(sni_figure timeout) >= $MAX_PENDING ))"
	log "$(ctl stats | grep '^sni')"

	check "online blog" ctl online blog
	check "blog's certificate on the next connection" says_cert blog.example "$SHOP4" blog.example
	check "offline shop --action reject" ctl offline shop --action reject
	check "shop refused on the next connection" refused "$SHOP4" shop.example
	check "blog still served" http_says "$SHOP4" blog.example blog

	# no daemon: nobody can tell the names apart, and an offline name must
	# never get its certificate, so the guard drops undecided client data
	# to a shared address where any name is offline (fail closed)
	kill_daemon
	check "daemon killed: offline shop still gets no certificate" says_cert none "$SHOP4" shop.example
	check "... nor does online blog on the same address (fail closed)" \
		says_cert none "$SHOP4" blog.example
	start_daemon "$NS_GW" "$TMP/gatekeeper.yaml"
	check "restarted: blog served again" http_says "$SHOP4" blog.example blog
	check "... shop refused again" refused "$SHOP4" shop.example

	watchdog_checks
	reload_checks

	check "SIGTERM: daemon exits 0" stop_daemon
	check "no rule of the daemon left" no_daemon_rules "$NS_GW"
	unshared_start_checks
	finish
}

main "$@"
