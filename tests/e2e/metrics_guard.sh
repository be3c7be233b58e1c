#!/bin/bash
# metrics_guard.sh: the optional metrics listener never takes the gate
# down, and a hostile scraper or checked server cannot break it (issue 13,
# items 2 and 5).
#
#   squatted port     a process in the daemon's namespace holds the metrics
#                     port before the daemon starts: the daemon runs anyway,
#                     offline sites stay dark and online ones reachable,
#                     status (text, JSON) and stats say the listener is down
#                     and why; once the port is free the metrics answer
#                     within the retry bound (METRICS_RETRY_MAX_MS + 1 s)
#   reload            a reload that moves metrics.listen to a taken port:
#                     the same, the verdicts never stop
#   slowloris         16 held connections from one peer (127.0.0.2), a byte
#                     a second, while another peer (127.0.0.1) scrapes 20
#                     times: all 20 answer 200, each within SCRAPE_MAX_MS;
#                     the hog never holds more than METRICS_MAX_PER_PEER
#                     connections and each ends by the request deadline
#   hostile subject   a checked server's certificate whose subject has C1
#                     controls, an ESC and a character cut at the 255th byte
#                     of the daemon's buffer: the scrape passes promtool,
#                     status and metrics carry no raw control byte, JSON
#                     stays valid with \u escapes
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly METRICS_PORT=9468 MOVED_PORT=9469
readonly RETRY_BOUND_MS=9000 # METRICS_RETRY_MAX_MS (8 s) + 1 s
readonly PER_PEER=4          # METRICS_MAX_PER_PEER
readonly REQUEST_DEADLINE_MS=3000
# a scrape answers in well under 200 ms here; slack for a loaded or TCG box
readonly SCRAPE_MAX_MS=$((${WAIT_TIMEOUT:-10} > 10 ? 2500 : 1000))
readonly HOSTILE_PORT=9444
readonly PROBE_MS=3000
readonly OK_LINE="handshake ok cn=$CERT_CN"
SQUAT_PID=""
HOG_PID=""

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }

# write_metrics_config FILE PORT: shop online (with a TLS check of the
# hostile server, which does not decide its state), blog offline drop,
# wiki offline reject; metrics on 127.0.0.1:PORT.
write_metrics_config() {
	local sites
	sites=$(
		site_yaml shop "$SHOP4" "$SHOP6" online
		cat <<-EOF
			    check:
			      type: tls
			      port: $HOSTILE_PORT
			      addresses: [$SHOP4]
			      interval: 500ms
			      timeout: 400ms
		EOF
		site_yaml blog "$BLOG4" "$BLOG6" offline drop
		site_yaml wiki "$WIKI4" "$WIKI6" offline reject
	)
	write_config "$1" forward $'metrics:\n  listen: 127.0.0.1:'"$2" "" "$sites"
}

# squat PORT: a listener of another process on 127.0.0.1:PORT in the gw.
squat() {
	ip netns exec "$NS_GW" python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", int(sys.argv[1])))
s.listen(1)
print("squatting", flush=True)
time.sleep(120)' "$1" >"$TMP/squat.log" 2>&1 &
	SQUAT_PID=$!
	wait_for grep -qx squatting "$TMP/squat.log" || die "the squatter did not start: $(cat "$TMP/squat.log")"
}

unsquat() {
	end_process "$SQUAT_PID" TERM
	SQUAT_PID=""
}

# port_held_by_squatter PORT: ss shows the squatter, and no one else, on it.
port_held_by_squatter() {
	in_ns "$NS_GW" ss -Hltnp "sport = :$1" | tee /dev/stderr | grep -q "pid=$SQUAT_PID," &&
		! in_ns "$NS_GW" ss -Hltnp "sport = :$1" | grep -q gatekeeperd
}

scrape_code() {
	in_ns "$NS_GW" curl -s --max-time 2 -o "$TMP/scrape.txt" -w '%{http_code}' \
		"http://127.0.0.1:$1/metrics"
}
scrape_ok() { [[ $(scrape_code "$1") == 200 ]]; }

verdicts_hold() {
	probe_says "$OK_LINE" "$SHOP4" "$SITE_PORT" "$PROBE_MS" &&
		probe_says refused "$WIKI4" "$SITE_PORT" "$PROBE_MS" &&
		probe_says timeout "$BLOG6" "$SITE_PORT" 1000
}

status_says_down() {
	local port=$1
	ctl status | tee /dev/stderr |
		grep -qE "^metrics +DOWN: cannot listen on 127\.0\.0\.1:$port: Address (already )?in use; down for [0-9]+ s" &&
		ctl stats | grep -qE "^metrics +DOWN: cannot listen on 127\.0\.0\.1:$port" &&
		ctl status --json | python3 -c '
import json, sys
m = json.load(sys.stdin)["metrics"]
print(m)
assert m["state"] == "down" and m["listen"] == "127.0.0.1:" + sys.argv[1], m
assert "in use" in m["error"] and m["down_since"] > 0 and m["bind_failures"] >= 1, m' "$port"
}

# within_ms LIMIT SINCE_MS CMD...: polls CMD; passes if it held by SINCE+LIMIT.
within_ms() {
	local limit=$1 since=$2 took
	shift 2
	WAIT_TIMEOUT=$(((limit + 999) / 1000 + 2)) wait_for "$@" || return 1
	took=$(($(now_ms) - since))
	echo "took ${took} ms (limit ${limit} ms)"
	((took <= limit))
}

squatted_port() {
	local t0
	squat "$METRICS_PORT"
	check "the squat is real: another process listens on 127.0.0.1:$METRICS_PORT" \
		port_held_by_squatter "$METRICS_PORT"
	write_metrics_config "$TMP/gk.yaml" "$METRICS_PORT"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "the daemon logged the failure loudly, once" eval \
		"grep 'metrics.listen: cannot listen on 127.0.0.1:$METRICS_PORT' $DAEMON_LOG &&
		 [[ \$(grep -c 'metrics.listen' $DAEMON_LOG) == 1 ]]"
	check "verdicts: shop reachable, wiki refused, blog dark" verdicts_hold
	check "status, stats and status --json say the listener is down and why" \
		status_says_down "$METRICS_PORT"
	check "gatekeeperctl metrics: gatekeeper_metrics_listener_up 0" eval \
		"ctl metrics | grep -x 'gatekeeper_metrics_listener_up 0'"
	sleep 3
	check "still running after some retries, still deciding" eval \
		"pid_alive $DAEMON_PID && verdicts_hold"
	t0=$(now_ms)
	unsquat
	check "port freed: metrics answer within the retry bound" \
		within_ms "$RETRY_BOUND_MS" "$t0" scrape_ok "$METRICS_PORT"
	check "... a valid exposition that says the listener is up" eval \
		"promtool check metrics <$TMP/scrape.txt && grep -x 'gatekeeper_metrics_listener_up 1' $TMP/scrape.txt"
	check "status says listening" eval \
		"ctl status | grep -E '^metrics +listening on http://127.0.0.1:$METRICS_PORT/metrics'"
}

reload_to_taken_port() {
	local t0
	squat "$MOVED_PORT"
	check "the squat is real on $MOVED_PORT" port_held_by_squatter "$MOVED_PORT"
	write_metrics_config "$TMP/gk.yaml" "$MOVED_PORT"
	check "reload with metrics.listen on the taken port: accepted" ctl reload
	check "the old port is closed" eval "[[ \$(scrape_code $METRICS_PORT) == 000 ]]"
	check "verdicts hold after the reload" verdicts_hold
	check "status says the new address is down" status_says_down "$MOVED_PORT"
	t0=$(now_ms)
	unsquat
	check "freed: metrics on the new port within the retry bound" \
		within_ms "$RETRY_BOUND_MS" "$t0" scrape_ok "$MOVED_PORT"
	check "the daemon is the one that answers now" eval \
		"in_ns $NS_GW ss -Hltnp 'sport = :$MOVED_PORT' | grep -q gatekeeperd"
}

# 16 slow connections from 127.0.0.2 for 8 s; 20 scrapes from 127.0.0.1.
slowloris() {
	local i code ms t0 ok=0 slow=0 summary
	ip netns exec "$NS_GW" python3 "$SRCDIR/metrics_hog.py" 127.0.0.1 "$MOVED_PORT" 127.0.0.2 16 8 \
		>"$TMP/hog.log" 2>&1 &
	HOG_PID=$!
	check "the hog holds its connections" wait_for grep -qE '^holding [1-9]' "$TMP/hog.log"
	for ((i = 0; i < 20; i++)); do
		t0=$(now_ms)
		code=$(scrape_code "$MOVED_PORT")
		ms=$(($(now_ms) - t0))
		echo "scrape $i: $code in ${ms} ms"
		[[ $code == 200 ]] && ok=$((ok + 1))
		((ms > SCRAPE_MAX_MS)) && slow=$((slow + 1))
		sleep 0.2
	done >"$TMP/scrapes.log"
	check "while the hog holds on: 20 of 20 scrapes answer 200" eval \
		"cat $TMP/scrapes.log; ((ok == 20))"
	check "... each within $SCRAPE_MAX_MS ms" eval "((slow == 0))"
	wait "$HOG_PID"
	HOG_PID=""
	summary=$(tail -n 1 "$TMP/hog.log")
	check "the hog really pressed: connections refused and ended by the deadline" eval \
		"echo '$summary'; [[ '$summary' =~ refused\ ([0-9]+)\ ended\ ([0-9]+)\ held_max\ ([0-9]+)\ lifetime_max_ms\ ([0-9]+) ]] &&
		 (( BASH_REMATCH[1] > 0 && BASH_REMATCH[2] > 0 ))"
	check "... it never held more than $PER_PEER at once" eval \
		"grep -E '^holding' $TMP/hog.log | awk '{ if (\$2 > m) m = \$2 } END { print \"most held:\", m; exit !(m <= $PER_PEER) }'"
	check "... each of its connections ended by the request deadline (+1 s)" eval \
		"[[ '$summary' =~ lifetime_max_ms\ ([0-9]+) ]] && (( BASH_REMATCH[1] <= REQUEST_DEADLINE_MS + 1000 ))"
	check "the metrics count what was refused and expired" eval \
		"ctl metrics | grep -E 'gatekeeper_metrics_connections_ended_total\{reason=\"(per_peer|expired)\"\} [1-9]'"
}

# make_hostile_cert: CN=shop.example; L= starts with C1 CSIs (U+009B), an
# ESC and then 64 euro signs (3 bytes each), padded so that the daemon's
# 255-byte copy of the RFC 2253 text ends inside a euro sign.
make_hostile_cert() {
	local euros c1=$'\xc2\x9b' pad="" subject
	euros=$(printf '\xe2\x82\xac%.0s' $(seq 1 64))
	for pad in "" x xx; do
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -utf8 -days 2 \
			-subj "/CN=$CERT_CN/OU=$euros/L=evil${c1}[2J${c1}]0;x"$'\x1b'"y$pad$euros" \
			-keyout "$TMP/hostile-key.pem" -out "$TMP/hostile.pem" >"$TMP/openssl.log" 2>&1 ||
			die "openssl req failed: $(cat "$TMP/openssl.log")"
		subject=$(openssl x509 -in "$TMP/hostile.pem" -noout -subject -nameopt RFC2253,-esc_msb)
		printf '%s' "${subject#subject=}" >"$TMP/hostile-subject"
		python3 -c '
import sys
raw = open(sys.argv[1], "rb").read()
try:
    raw[:255].decode("utf-8")
    sys.exit(1)
except UnicodeDecodeError:
    pass' "$TMP/hostile-subject" && return 0
	done
	die "no padding cuts the subject mid-character"
}

# The bytes a terminal must never get: C0 but newline, DEL, C1 (as UTF-8),
# and invalid UTF-8.
no_raw_controls() {
	python3 -c '
import sys
data = sys.stdin.buffer.read()
text = data.decode("utf-8")  # raises on invalid UTF-8
bad = [hex(ord(c)) for c in text if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f]
print(len(data), "bytes, controls:", bad)
sys.exit(1 if bad else 0)'
}

hostile_subject() {
	make_hostile_cert
	check "the attack is real: the subject has C1 bytes, and 255 bytes cut a character" eval \
		"grep -c \$'\\xc2\\x9b' $TMP/hostile-subject && (( \$(wc -c <$TMP/hostile-subject) > 255 ))"
	ip netns exec "$NS_SERVER" "$TLS_SERVER" "$HOSTILE_PORT" "$TMP/hostile.pem" "$TMP/hostile-key.pem" \
		>"$TMP/hostile-server.log" 2>&1 &
	TLS_SERVER_PID[$HOSTILE_PORT]=$!
	wait_for grep -qx listening "$TMP/hostile-server.log" || die "hostile tls_server did not start"
	check "the check recorded the hostile certificate" \
		wait_for eval "ctl status | grep -q 'certificate L=evil'"
	check "status text: no raw control byte, valid UTF-8" eval "ctl status | no_raw_controls"
	check "... the controls shown escaped" eval "ctl status | tee /dev/stderr | grep -F 'certificate L=evil\\x9b[2J\\x9b]0'"
	# the checker sends the subject's controls as the visible \xHH (its
	# records carry no control character); JSON escapes that backslash
	check "status --json: valid JSON, no raw control, C1 as \\\\x9b" eval \
		"ctl status --json | tee $TMP/status.json | no_raw_controls &&
		 grep -qF 'evil\\\\x9b[2J' $TMP/status.json &&
		 python3 -c 'import json,sys; json.load(open(sys.argv[1]))' $TMP/status.json"
	check "scrape: promtool accepts it" eval \
		"scrape_ok $MOVED_PORT && promtool check metrics <$TMP/scrape.txt"
	check "... the subject label is there, escaped, cut at a character" eval \
		"grep '^gatekeeper_cert_info' $TMP/scrape.txt | tee /dev/stderr |
		 grep -qF 'subject=\"L=evil\\\\x9b[2J\\\\x9b]0'"
	check "... and the scrape carries no raw control byte" eval "no_raw_controls <$TMP/scrape.txt"
	check "gatekeeperctl metrics: no raw control byte either" eval "ctl metrics | no_raw_controls"
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	command -v promtool >/dev/null || die "promtool not found (apt-get install prometheus)"
	command -v curl >/dev/null || die "curl not found (apt-get install curl)"
	command -v ss >/dev/null || die "ss not found (apt-get install iproute2)"
	e2e_begin
	setup_topology
	start_tls_server "$SITE_PORT" "$NS_SERVER"
	squatted_port
	reload_to_taken_port
	slowloris
	hostile_subject
	check "SIGTERM: exit 0" stop_daemon
	finish
}

main "$@"
