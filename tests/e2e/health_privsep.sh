#!/bin/bash
# health_privsep.sh: the health checks run in their own unprivileged
# process (daemon/checker.c), issue 13 item 1.
#
#   the symptom first   a checked server offering only TLS 1.2 DHE with a
#                       9941-bit modulus (the Mersenne prime 2^9941-1: a
#                       huge DH group that takes no time to make, unlike
#                       `openssl dhparam 10000`) costs the client a large
#                       share of a second of CPU per handshake: measured
#                       with `openssl s_client`
#   costly servers      four such addresses checked every 5 s: the
#                       checker burns the CPU, the daemon's main thread
#                       does not; `gatekeeperctl status` answers in
#                       < 200 ms every time and SYNs get their verdicts
#   the checker's cage  started as root with `user: nobody`: the checker
#                       runs as nobody, CapEff/CapPrm/CapBnd/CapAmb 0,
#                       NoNewPrivs 1, Seccomp 2, an empty environment, and
#                       no netlink socket (no queue, no rules)
#   kill -9 it          it is restarted; meanwhile the sites keep their
#                       state; the checks resume
#   reload              the checks in flight are cancelled; the checker
#                       goes on (a late result is not taken for a lie)
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HARD_PORTS=(9441 9442 9443 9444)
readonly STATUS_MAX_MS=200
readonly FAST_MS=500
readonly CHECK_USER=nobody

ctl() { "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@"; }
now_ms() { echo $(($(date +%s%N) / 1000000)); }
site_is() { ctl status | grep -q "^$1: $2, from $3"; }

# The DH group: p = 2^9941 - 1 (a Mersenne prime), g = 3, as PEM.
make_dh_params() {
	python3 - "$TMP/dh.pem" <<-'EOF'
		import base64, sys
		def length(n):
		    if n < 128:
		        return bytes([n])
		    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
		    return bytes([0x80 | len(b)]) + b
		def integer(n):
		    b = n.to_bytes((n.bit_length() + 8) // 8, "big")
		    return b"\x02" + length(len(b)) + b
		body = integer(2**9941 - 1) + integer(3)
		der = base64.b64encode(b"\x30" + length(len(body)) + body).decode()
		with open(sys.argv[1], "w") as f:
		    f.write("-----BEGIN DH PARAMETERS-----\n")
		    f.write("".join(der[i:i + 64] + "\n" for i in range(0, len(der), 64)))
		    f.write("-----END DH PARAMETERS-----\n")
	EOF
}

# The costly servers: openssl s_server, DHE only, TLS 1.2 only, an RSA
# certificate (DHE-RSA), in the server namespace (removed by the trap).
start_hard_servers() {
	local port
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=hard.example -days 2 \
		-keyout "$TMP/rsa-key.pem" -out "$TMP/rsa-cert.pem" >"$TMP/rsa.log" 2>&1 ||
		die "openssl req (RSA) failed: $(cat "$TMP/rsa.log")"
	for port in "${HARD_PORTS[@]}"; do
		# nice: they stand for servers elsewhere, not for load on this box
		ip netns exec "$NS_SERVER" nice -n 19 openssl s_server -accept "$port" -www -quiet \
			-cert "$TMP/rsa-cert.pem" -key "$TMP/rsa-key.pem" -dhparam "$TMP/dh.pem" \
			-no_tls1_3 -cipher DHE-RSA-AES128-GCM-SHA256 \
			</dev/null >"$TMP/s_server.$port.log" 2>&1 &
	done
	for port in "${HARD_PORTS[@]}"; do
		wait_for listening "$port" || die "s_server on $port did not start: $(cat "$TMP/s_server.$port.log")"
	done
}

listening() { in_ns "$NS_SERVER" ss -Htln "sport = :$1" | grep -q .; }

# handshake_ms: one `openssl s_client` handshake with a costly server,
# from the gw (where the daemon will run), in ms of wall time; also its
# CPU time.
handshake_ms() {
	local t0 t1
	t0=$(now_ms)
	in_ns "$NS_GW" bash -c "time (openssl s_client -connect $BLOG4:${HARD_PORTS[0]} \
		-no_tls1_3 -cipher DHE-RSA-AES128-GCM-SHA256 </dev/null >$TMP/s_client.log 2>&1)" \
		2>"$TMP/s_client.time"
	t1=$(now_ms)
	grep -q 'Server Temp Key: DH, 9941 bits' "$TMP/s_client.log" ||
		{ cat "$TMP/s_client.log"; return 1; }
	echo "$((t1 - t0))"
}

symptom() {
	local ms cpu
	ms=$(handshake_ms) || die "no DHE handshake with the costly server"
	cpu=$(awk '/^(user|sys)/ { split($2, a, "m"); s += a[1] * 60 + a[2] } END { printf "%d", s * 1000 }' \
		"$TMP/s_client.time")
	log "one handshake with the DHE-9941 server: ${ms} ms wall, ${cpu} ms CPU in the client"
	check "the symptom: one handshake with such a server is costly (>= 150 ms of client CPU)" \
		test "$cpu" -ge 150
}

write_privsep_config() {
	local sites port n=0
	sites=$(
		site_yaml shop "$SHOP4" "$SHOP6" auto reject
		cat <<-EOF
			    check:
			      type: https
			      path: /health
			      host: $CERT_CN
			      interval: 3s
			      timeout: 2500ms
			      fall: 3
		EOF
		site_yaml wiki "$WIKI4" "$WIKI6" offline reject
		for port in "${HARD_PORTS[@]}"; do
			n=$((n + 1))
			site_yaml "hard$n" "$BLOG4" "$BLOG6" online "" "$port"
			cat <<-EOF
				    check:
				      type: tls
				      addresses: [$BLOG4]
				      interval: 5s
				      timeout: 4s
			EOF
		done
	)
	write_config "$1" forward "user: $CHECK_USER" "" "$sites"
}

# checker_pid: the daemon's child running `gatekeeperd --checker`.
checker_pid() {
	local pid
	for pid in $(cat /proc/"$DAEMON_PID"/task/*/children 2>/dev/null); do
		if tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- '--checker'; then
			echo "$pid"
			return 0
		fi
	done
	return 1
}

# cpu_ticks FILE: utime + stime of a /proc stat file.
cpu_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "$1"; }

# passed_count SITE / results_count SITE: the "N passed" / N passed + M
# failed of SITE's first checked address in status.
site_check_line() {
	ctl status | sed -n "/^$1: /,/^[a-z0-9]*: /p" | grep -m1 -E ' port [0-9]+: .*passed, [0-9]+ failed\)$'
}
passed_count() { site_check_line "$1" | sed -E 's/.*\(([0-9]+) passed, [0-9]+ failed\)$/\1/'; }
results_count() {
	site_check_line "$1" | sed -E 's/.*\(([0-9]+) passed, ([0-9]+) failed\)$/\1 \2/' |
		awk '{ print $1 + $2 }'
}

status_fast() {
	local i t0 took max=0 slow=0
	for ((i = 0; i < 20; i++)); do
		t0=$(date +%s%N)
		ctl status >/dev/null || { echo "status failed"; return 1; }
		took=$((($(date +%s%N) - t0) / 1000000))
		((took > max)) && max=$took
		((took >= STATUS_MAX_MS)) && slow=$((slow + 1))
		sleep 0.1
	done
	echo "20 status requests during the costly checks: slowest ${max} ms, $slow at or over ${STATUS_MAX_MS} ms"
	((slow == 0))
}

# SYN verdicts while the checker is busy: wiki's RST is the verdict alone
# (FAST_MS); shop's line includes a whole TLS handshake with a server on a
# box whose CPUs the costly handshakes keep busy, so it only has to succeed.
verdicts_fast() {
	local i
	for ((i = 0; i < 5; i++)); do
		probe_says refused "$WIKI4" "$SITE_PORT" 3000 "$FAST_MS" || return 1
		probe_says "handshake ok" "$SHOP4" "$SITE_PORT" 3000 || return 1
	done
}

costly_servers() {
	local checker ticks0 main0 ticks1 main1 hz results0 results1
	hz=$(getconf CLK_TCK)
	checker=$(checker_pid) || die "no checker process"
	WAIT_TIMEOUT=20 wait_for eval '[[ -n $(results_count hard1) ]]' ||
		{ ctl status; die "no result for hard1"; }
	results0=$(results_count hard1)
	ticks0=$(cpu_ticks "/proc/$checker/stat")
	main0=$(cpu_ticks "/proc/$DAEMON_PID/task/$DAEMON_PID/stat")
	check "gatekeeperctl status answers in < ${STATUS_MAX_MS} ms while four costly servers are checked" \
		status_fast
	check "SYNs keep getting their verdicts (wiki refused in < ${FAST_MS} ms, shop accepted), 5 rounds" \
		verdicts_fast
	ticks1=$(cpu_ticks "/proc/$checker/stat")
	main1=$(cpu_ticks "/proc/$DAEMON_PID/task/$DAEMON_PID/stat")
	results1=$(results_count hard1)
	log "meanwhile: checker $(((ticks1 - ticks0) * 1000 / hz)) ms of CPU, the daemon's main thread $(((main1 - main0) * 1000 / hz)) ms; hard1 results $results0 -> $results1"
	# a costly check takes up to its timeout (4 s) and the window above is
	# ~3 s: on a loaded box the next result may come just after it
	check "the costly checks go on (hard1 gets new results)" \
		wait_for eval '(($(results_count hard1) > results0))'
	check "the CPU went to the checker, not to the daemon's main thread" \
		test $((ticks1 - ticks0)) -gt $((4 * (main1 - main0) + 10))
	ctl status | sed -n '/^hard1:/,/^[a-z0-9]*: /p' | sed 's/^/# /' | head -8
}

proc_field() { awk -v k="$2:" '$1 == k { print $2; exit }' "/proc/$1/status"; }

the_cage() {
	local pid uid
	pid=$(checker_pid) || die "no checker process"
	uid=$(id -u "$CHECK_USER")
	log "checker pid $pid: $(grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs|Seccomp):' "/proc/$pid/status" | tr '\t\n' ' ')"
	check "the checker runs at nice 10" test "$(ps -o ni= -p "$pid" | tr -d ' ')" = 10
	check "the checker runs as $CHECK_USER" \
		eval "[[ \$(proc_field $pid Uid) == $uid ]] && grep -qE '^Uid:\s+$uid\s+$uid\s+$uid\s+$uid$' /proc/$pid/status"
	check "... with no group of root's" grep -qE '^Gid:\s+[1-9][0-9]*\s' "/proc/$pid/status"
	check "CapEff, CapPrm, CapBnd, CapAmb, CapInh all 0" \
		eval "! grep -E '^Cap(Eff|Prm|Bnd|Amb|Inh):' /proc/$pid/status | grep -vq '0000000000000000'"
	check "NoNewPrivs 1" test "$(proc_field "$pid" NoNewPrivs)" = 1
	check "Seccomp 2 (a filter)" test "$(proc_field "$pid" Seccomp)" = 2
	check "an empty environment" test "$(wc -c <"/proc/$pid/environ")" = 0
	check "no netlink socket (no queue, no rules) among its fds" \
		eval "! ls -l /proc/$pid/fd | grep -q netlink && ls -l /proc/$pid/fd"
	check "the daemon itself still has CAP_NET_ADMIN (bit 12)" \
		eval "(( 0x\$(proc_field $DAEMON_PID CapEff) & (1 << 12) ))"
}

kill_the_checker() {
	local old new passed0 results0 t0 starts0
	wait_for site_is shop online check || die "shop never online from its check"
	old=$(checker_pid) || die "no checker process"
	passed0=$(passed_count shop)
	starts0=$(ctl stats | sed -n 's/^checker .*started \([0-9]*\) time.*/\1/p')
	check "stats shows the running checker ($old, started ${starts0:-?} times)" \
		eval "ctl stats | grep -qE '^checker +running \(pid $old\)' && [[ -n '$starts0' ]]"
	# the last result itself may be a failure (the costly checks before
	# this keep the CPUs busy and one of shop's may time out; rise/fall
	# keep it up): what must survive the kill is the state and the results
	# already counted
	results0=$(results_count shop)
	t0=$(now_ms)
	kill -KILL "$old"
	check "right after the kill, shop keeps its state (online, from check) and its last result (${results0:-?} so far)" \
		eval "site_is shop online check && ctl status | grep -qE '^    $SHOP4 port $SITE_PORT: up, last (passed|failed)' && (( \$(results_count shop) >= ${results0:-1} ))"
	check "the daemon restarts the checker" wait_for eval 'new=$(checker_pid) && [[ $new != '"$old"' ]]'
	new=$(checker_pid)
	log "checker $old killed, $new started $(($(now_ms) - t0)) ms later"
	check "stats shows the new checker and one more start" \
		eval "ctl stats | grep -qE '^checker +running \(pid $new\), started $((starts0 + 1)) times'"
	check "the daemon logged the death and the restart" \
		eval "grep -q 'health checker (pid $old): exited (killed by signal 9' '$DAEMON_LOG' && grep -q 'health checker: restarted (pid $new' '$DAEMON_LOG'"
	check "the checks resume (shop's passed count grows past $passed0)" \
		wait_for eval '(( $(passed_count shop) > '"$passed0"' ))'
	check "shop is still online, from check" site_is shop online check
	check "the new checker is caged too (Seccomp 2, CapEff 0)" \
		eval "[[ \$(proc_field $new Seccomp) == 2 && \$(proc_field $new CapEff) == 0000000000000000 ]]"
}

# A reload cancels the checks in flight (CANCEL records); a result the
# checker had already sent for one is dropped, not taken for a lie.
reload_keeps_checker() {
	local pid passed0
	pid=$(checker_pid) || die "no checker process"
	passed0=$(passed_count shop)
	sed -i 's/interval: 3s/interval: 4s/' "$TMP/gk.yaml"
	check "reload with a changed check" ctl reload
	check "the checks go on after the reload (shop's passed count grows past $passed0)" \
		wait_for eval '(( $(passed_count shop) > '"$passed0"' ))'
	check "... with the same checker (pid $pid): no result was taken for a lie" \
		eval "[[ \$(checker_pid) == $pid ]] && ! grep -q 'result for no check' '$DAEMON_LOG'"
}

main() {
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	id -u "$CHECK_USER" >/dev/null 2>&1 || die "no user $CHECK_USER"
	e2e_begin
	setup_topology
	start_tls_server "$SITE_PORT" "$NS_SERVER" --status-file "$TMP/http-status"
	echo 200 >"$TMP/http-status"
	make_dh_params
	start_hard_servers
	symptom
	write_privsep_config "$TMP/gk.yaml"
	# nobody must reach the config to reload it; the rest is root's
	chmod 0755 "$TMP"
	chmod 0644 "$TMP/gk.yaml"
	start_daemon "$NS_GW" "$TMP/gk.yaml"
	check "the daemon dropped to $CHECK_USER" grep -q "running as user $CHECK_USER" "$DAEMON_LOG"
	wait_for checker_pid || die "the daemon started no checker"
	check "shop online from its check (through the checker)" wait_for site_is shop online check
	the_cage
	costly_servers
	kill_the_checker
	reload_keeps_checker
	check "no seccomp kill in the daemon log" eval "! grep -q SIGSYS '$DAEMON_LOG'"
	check "the daemon stops cleanly, its checker with it" stop_daemon
	finish
}

main "$@"
