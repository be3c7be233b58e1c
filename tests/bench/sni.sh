#!/bin/bash
# What deciding by server name costs (issue 14): the added connect +
# handshake latency of an online site on a shared address, and the daemon's
# CPU per connection it decides by name.
#
#   tests/bench/sni.sh [COUNT] [BUILDDIR]     (root; COUNT handshakes per run, default 300)
#
# The e2e topology (tests/e2e/lib.sh: client, gw, server namespaces,
# documentation addresses), Debian's nginx on the server's wildcard address
# with three server_name blocks; a Python client (OpenSSL) makes COUNT
# sequential TLS handshakes to shop.example, each on a new connection,
# first with no daemon, then with gatekeeperd on the gw (hook forward, the
# three sites on one address: every connection goes through the SNI queue).
# Prints p50 / p99 / max of connect + handshake for both, and the daemon's
# CPU time (all threads) per connection. Bounded: COUNT <= 5000, 5 s per
# handshake; everything is removed by lib.sh's trap.
set -u
COUNT=${1:-300}
BUILD=${2:-$(cd "$(dirname "$0")/../.." && pwd)/build}
((COUNT > 0 && COUNT <= 5000)) || { echo "COUNT: 1..5000" >&2; exit 2; }
export GATEKEEPERD=$BUILD/gatekeeperd GATEKEEPERCTL=$BUILD/gatekeeperctl
export TLS_SERVER=$BUILD/tests/e2e/tls_server TLS_PROBE=$BUILD/tests/e2e/tls_probe
export SRCDIR
SRCDIR=$(cd "$(dirname "$0")/../e2e" && pwd)
# shellcheck source=../e2e/lib.sh
source "$SRCDIR/lib.sh"

handshakes() { # ADDR NAME COUNT -> "p50_ms p99_ms max_ms failed"
	ip netns exec "$NS_CLIENT" python3 -c '
import socket, ssl, sys, time
addr, name, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
times, failed = [], 0
for _ in range(n):
    t0 = time.perf_counter()
    try:
        s = socket.create_connection((addr, 443), timeout=5)
        t = ctx.wrap_socket(s, server_hostname=name)
        times.append((time.perf_counter() - t0) * 1000)
        t.close()
    except OSError:
        failed += 1
times.sort()
pick = lambda q: times[min(len(times) - 1, int(q * len(times)))] if times else float("nan")
print("%.3f %.3f %.3f %d" % (pick(0.5), pick(0.99), times[-1] if times else float("nan"), failed))
' "$1" "$2" "$3"
}

cpu_ms() { # PID: user + system time of all its threads, in ms
	awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 } END { print int(t * 1000 / hz) }' \
		/proc/"$1"/task/*/stat
}

main() {
	local base with c0 c1 sites
	require_environment GATEKEEPERD GATEKEEPERCTL
	command -v nginx >/dev/null || die "needs nginx (Debian's nginx-light)"
	e2e_begin
	setup_topology
	start_nginx shop blog wiki
	handshakes "$SHOP4" shop.example 20 >/dev/null # warm up
	read -r -a base <<<"$(handshakes "$SHOP4" shop.example "$COUNT")"

	sites=$(for n in shop blog wiki; do
		printf '  - name: %s\n    addresses: [%s]\n    ports: [443]\n    server_names: [%s.example]\n' \
			"$n" "$SHOP4" "$n"
	done)
	write_config "$TMP/gatekeeper.yaml" forward "" "" "$sites"
	start_daemon "$NS_GW" "$TMP/gatekeeper.yaml"
	handshakes "$SHOP4" shop.example 20 >/dev/null
	c0=$(cpu_ms "$DAEMON_PID")
	read -r -a with <<<"$(handshakes "$SHOP4" shop.example "$COUNT")"
	c1=$(cpu_ms "$DAEMON_PID")

	printf '%-28s %10s %10s %10s %8s\n' "connect + TLS handshake" "p50 ms" "p99 ms" "max ms" "failed"
	printf '%-28s %10s %10s %10s %8s\n' "no daemon" "${base[@]}"
	printf '%-28s %10s %10s %10s %8s\n' "gatekeeperd, by name" "${with[@]}"
	echo "daemon CPU: $((c1 - c0)) ms for $COUNT connections ($(awk -v c=$((c1 - c0)) -v n="$COUNT" \
		'BEGIN { printf "%.1f", c * 1000 / n }') us each; 10 ms clock ticks)"
	echo "sni line of stats: $("$GATEKEEPERCTL" -s "$TMP/control.sock" stats | grep '^sni')"
	stop_daemon >/dev/null
}

main "$@"
