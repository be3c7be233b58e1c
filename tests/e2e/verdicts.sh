#!/bin/bash
# verdicts.sh HOOK: the three verdicts end to end, over IPv4 and IPv6.
#
#   shop  online          -> TLS handshake completes (cn=shop.example)
#   blog  offline, drop   -> the client times out; no SYN reaches the server
#   wiki  offline, reject -> "connection refused" at once; no SYN reaches it
#
# HOOK forward or prerouting: the daemon runs on the gw, and nft counters in
# the server namespace tell whether a SYN got through. HOOK input: the daemon
# runs on the server itself, and the tls_server's accept log tells it.
# Then: an unmanaged port on a managed address is untouched, the daemon's
# rules are exactly what is expected, and SIGTERM leaves exit 0, the per-site
# counters and no rule behind.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=${1:-}
readonly PROBE_MS=3000     # generous: a handshake here takes a few ms
readonly DROP_PROBE_MS=1500
readonly REFUSED_MAX_MS=1000
ACCEPT_MARK=0

usage() {
	echo "usage: verdicts.sh forward|prerouting|input" >&2
	exit 2
}

# Forgets what the server saw before the daemon started.
mark_server_view() {
	syn_counters_reset
	ACCEPT_MARK=$(wc -l <"${TLS_SERVER_LOG[$SITE_PORT]}")
}

never_reached_server() { # ADDR
	local n
	if [[ $HOOK == input ]]; then
		n=$(tail -n "+$((ACCEPT_MARK + 1))" "${TLS_SERVER_LOG[$SITE_PORT]}" | grep -c "^accept $1 ")
		echo "tls_server accepted $n connection(s) on $1 since the daemon started"
	else
		n=$(syn_count "$1")
		echo "$n SYN(s) to $1:$SITE_PORT reached the server namespace"
	fi
	[[ $n == 0 ]]
}

baseline() {
	local a
	for a in "${SITE_ADDRS[@]}"; do
		check "before the daemon: handshake with $a" \
			probe_says "handshake ok cn=$CERT_CN" "$a" "$SITE_PORT" "$PROBE_MS"
	done
}

verdicts_for_family() { # NAME SHOP BLOG WIKI
	local fam=$1 shop=$2 blog=$3 wiki=$4
	check "$fam shop (online): handshake ok" \
		probe_says "handshake ok cn=$CERT_CN" "$shop" "$SITE_PORT" "$PROBE_MS"
	check "$fam blog (offline, drop): client times out" \
		probe_says timeout "$blog" "$SITE_PORT" "$DROP_PROBE_MS"
	check "$fam blog: no SYN reached the server" never_reached_server "$blog"
	check "$fam wiki (offline, reject): refused in < ${REFUSED_MAX_MS} ms" \
		probe_says refused "$wiki" "$SITE_PORT" "$PROBE_MS" "$REFUSED_MAX_MS"
	check "$fam wiki: no SYN reached the server" never_reached_server "$wiki"
	check "$fam blog port $OTHER_PORT (unmanaged): handshake ok" \
		probe_says "handshake ok cn=$CERT_CN" "$blog" "$OTHER_PORT" "$PROBE_MS"
	check "$fam wiki port $OTHER_PORT (unmanaged): handshake ok" \
		probe_says "handshake ok cn=$CERT_CN" "$wiki" "$OTHER_PORT" "$PROBE_MS"
	check "$fam wiki closed port $CLOSED_PORT (unmanaged): refused by the server" \
		probe_says refused "$wiki" "$CLOSED_PORT" "$PROBE_MS"
}

after_stop() {
	local ns=$1
	check "SIGTERM: daemon exits 0" stop_daemon
	check "counters: shop accepted >= 2" counter_at_least shop accepted 2
	check "counters: blog dropped >= 2" counter_at_least blog dropped 2
	check "counters: wiki rejected >= 2" counter_at_least wiki rejected 2
	check "no rule of the daemon left in $ns" no_daemon_rules "$ns"
	check "after the stop: blog reachable again" \
		probe_says "handshake ok cn=$CERT_CN" "$BLOG4" "$SITE_PORT" "$PROBE_MS"
	check "after the stop: wiki reachable again over IPv6" \
		probe_says "handshake ok cn=$CERT_CN" "$WIKI6" "$SITE_PORT" "$PROBE_MS"
}

main() {
	local ns
	[[ $HOOK == forward || $HOOK == prerouting || $HOOK == input ]] || usage
	ns=$(daemon_ns)
	require_environment
	e2e_begin
	setup_topology
	[[ $HOOK == input ]] || setup_syn_counters
	start_tls_server "$SITE_PORT"
	start_tls_server "$OTHER_PORT"
	baseline

	write_config "$TMP/gatekeeper.yaml" "$HOOK"
	mark_server_view
	start_daemon "$ns" "$TMP/gatekeeper.yaml"
	verdicts_for_family IPv4 "$SHOP4" "$BLOG4" "$WIKI4"
	verdicts_for_family IPv6 "$SHOP6" "$BLOG6" "$WIKI6"
	check "the daemon's rules in $ns are exactly the expected ones" rules_as_expected "$ns" "$HOOK"
	after_stop "$ns"
	finish
}

main "$@"
