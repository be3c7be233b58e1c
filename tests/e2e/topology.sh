#!/bin/bash
# The test bed itself, without the daemon: namespaces, routes, both TLS
# servers, handshakes to every site address over IPv4 and IPv6, and the SYN
# counters. When this fails, the other e2e results say nothing about the
# daemon.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

handshake_everywhere() {
	local a port
	for port in "$SITE_PORT" "$OTHER_PORT"; do
		for a in "${SITE_ADDRS[@]}"; do
			check "handshake $a:$port" probe_says "handshake ok cn=$CERT_CN" "$a" "$port" 3000
		done
	done
}

syn_counted_once() { # ADDR
	local n
	n=$(syn_count "$1")
	echo "SYN counter $1 = $n"
	[[ $n == 1 ]]
}

accepted_once() { # ADDR
	local n
	n=$(accept_count "$1")
	echo "tls_server accepts on $1 = $n"
	[[ $n == 1 ]]
}

# The probe's timeout path, with the gw dropping SYNs to one port for a while.
probe_times_out_when_dropped() {
	local table="e2e_drop_$$" status
	in_ns "$NS_GW" nft -f - <<-EOF || return 1
		table inet $table {
		  chain drop_some {
		    type filter hook forward priority 0; policy accept;
		    ip daddr $BLOG4 tcp dport $OTHER_PORT drop
		  }
		}
	EOF
	probe_says timeout "$BLOG4" "$OTHER_PORT" 500
	status=$?
	in_ns "$NS_GW" nft delete table inet "$table"
	return "$status"
}

main() {
	require_environment TLS_SERVER TLS_PROBE
	e2e_begin
	setup_topology
	setup_syn_counters
	start_tls_server "$SITE_PORT"
	start_tls_server "$OTHER_PORT"
	syn_counters_reset

	handshake_everywhere
	local a
	for a in "${SITE_ADDRS[@]}"; do
		check "one SYN to $a:$SITE_PORT counted" syn_counted_once "$a"
		check "one accept logged for $a:$SITE_PORT" accepted_once "$a"
	done
	check "closed port refused quickly" probe_says refused "$SHOP4" "$CLOSED_PORT" 1000 500
	check "a SYN dropped on the way times out" probe_times_out_when_dropped
	check "nothing but our counter table in the server ns" \
		eval "[[ \$(in_ns $NS_SERVER nft list tables) == 'table inet $SYN_TABLE' ]]"
	finish
}

main "$@"
