#!/bin/bash
# health.sh: health checks (config "check:", state: auto) and the metrics,
# against real OpenSSL servers in namespaces.
#
#   the stopped-IIS case   shop (auto, https check expecting 200) answers 404:
#                          offline within fall x interval (+1 s), and new
#                          connections are refused before any TLS; 200 again:
#                          online within rise x interval (+1 s)
#   a hung server          blog's check goes to a server that accepts TCP and
#                          never speaks TLS: the check times out, and SYNs to
#                          the other sites keep getting their verdicts at once
#   manual beats auto      gatekeeperctl offline/online win over the check
#                          until reset, which hands the site back to it
#   metrics                gatekeeperctl metrics and GET /metrics pass
#                          `promtool check metrics`, and the verdict counters
#                          match the connections this test made
#   on the server itself   hook input: the checker's own connections (marked,
#                          SO_MARK) are not queued, so an auto site that went
#                          offline is seen coming back
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly INTERVAL_MS=500 RISE=2 FALL=2
readonly SLACK_MS=1000
readonly SILENT_PORT=9443
readonly METRICS_ADDR=127.0.0.1:9468
readonly PROBE_MS=3000
readonly FAST_MS=500 # a verdict for a SYN, whatever the checks are doing
readonly OK_LINE="handshake ok cn=$CERT_CN"
declare -A MADE=() # connections this test made, by "site verdict"

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }

serve_status() { echo "$1" >"$TMP/http-status"; }

# write_health_config FILE HOOK: shop auto (an https check), blog online
# (a tls check that hangs), wiki offline; the metrics endpoint on.
write_health_config() {
	local sites
	sites=$(
		site_yaml shop "$SHOP4" "$SHOP6" auto reject
		cat <<-EOF
			    check:
			      type: https
			      path: /health
			      host: $CERT_CN
			      expect_status: [200, 204]
			      interval: ${INTERVAL_MS}ms
			      timeout: 400ms
			      rise: $RISE
			      fall: $FALL
		EOF
		site_yaml blog "$BLOG4" "$BLOG6" online
		cat <<-EOF
			    check:
			      type: tls
			      port: $SILENT_PORT
			      addresses: [$BLOG4]
			      interval: ${INTERVAL_MS}ms
			      timeout: 300ms
		EOF
		site_yaml wiki "$WIKI4" "$WIKI6" offline reject
	)
	write_config "$1" "$2" $'metrics:\n  listen: '"$METRICS_ADDR" "" "$sites"
}

# counted SITE VERDICT WANT ADDR [MAX_MS]: a probe from the client that must
# say WANT; the connection is counted for the metrics check.
counted() {
	local site=$1 verdict=$2 want=$3 addr=$4 max=${5:-} retrans
	retrans=$(syn_retransmits)
	probe_says "$want" "$addr" "$SITE_PORT" "$PROBE_MS" $max || return 1
	# a SYN the client sent again (its answer took over a second, as under
	# a loaded TCG guest) is one more SYN decided
	retrans=$(($(syn_retransmits) - retrans))
	((retrans)) && echo "the client retransmitted $retrans SYN(s)"
	MADE["$site $verdict"]=$((${MADE["$site $verdict"]:-0} + 1 + retrans))
}

# The client namespace's count of retransmitted SYNs (TcpExt TCPSynRetrans).
syn_retransmits() {
	in_ns "$NS_CLIENT" awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == "TCPSynRetrans") c = i; n = 1 } else print $c }' /proc/net/netstat
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }

site_is() { ctl status | grep -q "^$1: $2, from $3"; }

# within_ms LIMIT SINCE_MS CMD...: polls CMD; passes if it held by SINCE+LIMIT.
within_ms() {
	local limit=$1 since=$2 took
	shift 2
	wait_for "$@" || return 1
	took=$(($(now_ms) - since))
	echo "took ${took} ms (limit ${limit} ms)"
	((took <= limit))
}

status_has() { ctl status | tee "$TMP/status.out" | grep -qE -- "$1" || { cat "$TMP/status.out"; return 1; }; }

# shop_addresses_are STATE: every shop address's own check result. The site
# goes online as soon as ANY address is up (health.c range_state), so
# "site online" says nothing yet of the other address, whose check may be
# one interval behind (it lagged under a parallel `meson test`).
shop_addresses_are() {
	local status
	status=$(ctl status) || return 1
	grep -qE "^    $SHOP4 port $SITE_PORT: $1" <<<"$status" &&
		grep -qE "^    $SHOP6 port $SITE_PORT: $1" <<<"$status"
}

stopped_iis() {
	local t0
	check "shop's check sees the server up: online, from check" \
		wait_for site_is shop online check
	check "shop: a client completes the handshake" counted shop accept "$OK_LINE" "$SHOP4"
	t0=$(now_ms)
	serve_status 404
	check "404 (the site stopped behind HTTP.sys): offline within fall x interval + 1 s" \
		within_ms $((FALL * INTERVAL_MS + SLACK_MS)) "$t0" site_is shop offline check
	check "... new connections are refused before any TLS (IPv4)" \
		counted shop reject refused "$SHOP4" "$FAST_MS"
	check "... and IPv6" counted shop reject refused "$SHOP6" "$FAST_MS"
	check "status shows the check's reason and the certificate" \
		status_has "HTTP 404.*[0-9]+ ms"
	check "status shows the subject and the days left" \
		status_has "certificate CN=$CERT_CN, issuer CN=$CERT_CN, expires in [01] days"
	check "the daemon logged the change" grep -q 'site shop: offline (reject), from its check' "$DAEMON_LOG"
	t0=$(now_ms)
	serve_status 200
	check "200 again: online within rise x interval + 1 s" \
		within_ms $((RISE * INTERVAL_MS + SLACK_MS)) "$t0" site_is shop online check
	check "... and a client completes the handshake again" \
		counted shop accept "$OK_LINE" "$SHOP6"
}

hung_server() {
	local i
	check "blog's check times out against the silent server" \
		wait_for status_has "$BLOG4 port $SILENT_PORT: down, last failed: timeout during the TLS handshake"
	check "the silent server really got the checker's connections" \
		eval "(( \$(grep -c '^accept' ${TLS_SERVER_LOG[$SILENT_PORT]}) >= 2 ))"
	for ((i = 0; i < 5; i++)); do
		check "while blog's checks hang: blog's SYN accepted at once ($i)" \
			counted blog accept "$OK_LINE" "$BLOG4" "$FAST_MS"
		check "... wiki's refused at once ($i)" counted wiki reject refused "$WIKI6" "$FAST_MS"
	done
	check "blog is not auto: still online, from config" site_is blog online config
}

manual_beats_auto() {
	check "offline shop by hand: refused though the check is up" \
		eval "ctl offline shop && counted shop reject refused $SHOP4 $FAST_MS"
	sleep $(((3 * INTERVAL_MS) / 1000)).$(((3 * INTERVAL_MS) % 1000))
	check "... still offline after several passing checks" site_is shop offline runtime
	check "... and status says config: auto" status_has "shop: offline, from runtime \\(config: auto, reject\\)"
	check "reset shop: back to the check (online) at once" \
		eval "ctl reset shop && counted shop accept '$OK_LINE' $SHOP4"
	serve_status 404
	check "404: offline from the check" wait_for site_is shop offline check
	check "online shop by hand: a handshake though the check is down" \
		eval "ctl online shop && counted shop accept '$OK_LINE' $SHOP6"
	check "reset shop: offline again at once (the check still says down)" \
		eval "ctl reset shop && counted shop reject refused $SHOP6 $FAST_MS"
	serve_status 200
	check "200: online from the check" wait_for site_is shop online check
	check "... and each of its addresses up (the metrics assert both)" \
		wait_for shop_addresses_are up
}

# metric_is FILE NAME_AND_LABELS VALUE
metric_is() {
	local got
	got=$(grep -F "$2 " "$1" | awk '{ print $NF }')
	echo "$2 = ${got:-<absent>} (want $3)"
	[[ $got == "$3" ]]
}

promtool_ok() { echo "promtool:"; promtool check metrics <"$1"; }

metrics() {
	local m="$TMP/metrics.txt" h="$TMP/metrics.http" key site verdict
	check "gatekeeperctl metrics" eval "ctl metrics >$m"
	check "promtool check metrics accepts gatekeeperctl metrics" promtool_ok "$m"
	for site in shop blog wiki; do
		for verdict in accept drop reject; do
			key="$site $verdict"
			check "syn_verdicts_total{$site,$verdict} = the test's connections" metric_is "$m" \
				"gatekeeper_syn_verdicts_total{site=\"$site\",verdict=\"$verdict\"}" \
				"${MADE[$key]:-0}"
		done
	done
	check "site_online / state_source" eval \
		"metric_is $m 'gatekeeper_site_online{site=\"shop\"}' 1 &&
		 metric_is $m 'gatekeeper_site_state_source{site=\"shop\",source=\"check\"}' 1 &&
		 metric_is $m 'gatekeeper_site_online{site=\"wiki\"}' 0"
	check "check results: blog down, shop up" eval \
		"metric_is $m 'gatekeeper_check_up{site=\"blog\",address=\"$BLOG4\"}' 0 &&
		 metric_is $m 'gatekeeper_check_up{site=\"shop\",address=\"$SHOP6\"}' 1"
	check "cert expiry of the 2-day certificate: between 1 and 2 days" eval \
		"v=\$(grep -F 'gatekeeper_cert_expiry_seconds{site=\"shop\",address=\"$SHOP4\"}' $m |
		 awk '{print \$2}'); echo \$v; (( v > 86400 && v <= 172800 ))"
	check "the kernel queue figures are there" grep -E '^gatekeeper_queue_kernel_dropped_total\{queue="0"\} [0-9]+$' "$m"
	check "GET /metrics over HTTP" eval \
		"in_ns $NS_GW curl -sS --max-time 5 -o $h -w '%{http_code} %{content_type}\n' http://$METRICS_ADDR/metrics |
		 tee /dev/stderr | grep -qx '200 text/plain; version=0.0.4; charset=utf-8'"
	check "promtool check metrics accepts the HTTP body" promtool_ok "$h"
	check "the HTTP body has the same verdict counters" eval \
		"diff <(grep ^gatekeeper_syn_verdicts_total $m) <(grep ^gatekeeper_syn_verdicts_total $h)"
	check "any other path: 404" eval \
		"[[ \$(in_ns $NS_GW curl -s --max-time 5 -o /dev/null -w '%{http_code}' http://$METRICS_ADDR/) == 404 ]]"
	check "a reload is counted" eval \
		"ctl reload && ctl metrics | grep -qx 'gatekeeper_reloads_total{result=\"success\"} 1'"
}

# The daemon on the server itself, hook input: without the mark the checks
# of an offline site would be queued and refused, and it would never come
# back.
on_the_server() {
	local t0
	check "SIGTERM the gw daemon: exit 0" stop_daemon
	write_health_config "$TMP/gk-input.yaml" input
	start_daemon "$NS_SERVER" "$TMP/gk-input.yaml"
	check "hook input: shop online from its check" wait_for site_is shop online check
	check "the installed rules skip the checker's mark" \
		eval "in_ns $NS_SERVER nft list ruleset | grep -q 'meta mark != 0x0000676b'"
	serve_status 404
	check "hook input: 404 -> offline" wait_for site_is shop offline check
	check "hook input: a client is refused" probe_says refused "$SHOP4" "$SITE_PORT" "$PROBE_MS" "$FAST_MS"
	t0=$(now_ms)
	serve_status 200
	check "hook input: the checks still reach the offline site: online within rise x interval + 1 s" \
		within_ms $((RISE * INTERVAL_MS + SLACK_MS)) "$t0" site_is shop online check
	check "hook input: a client completes the handshake" \
		probe_says "$OK_LINE" "$SHOP4" "$SITE_PORT" "$PROBE_MS"
	check "SIGTERM: exit 0" stop_daemon
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	command -v promtool >/dev/null || die "promtool not found (apt-get install prometheus)"
	command -v curl >/dev/null || die "curl not found (apt-get install curl)"
	e2e_begin
	setup_topology
	serve_status 200
	start_tls_server "$SITE_PORT" "$NS_SERVER" --status-file "$TMP/http-status"
	start_tls_server "$SILENT_PORT" "$NS_SERVER" --silent
	write_health_config "$TMP/gk.yaml" forward
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	stopped_iis
	hung_server
	manual_beats_auto
	metrics
	on_the_server
	finish
}

main "$@"
