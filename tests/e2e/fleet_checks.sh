#!/bin/bash
# fleet_checks.sh: `fleet.checks: all`: an auto site goes offline only when
# every live box that checks it sees it down (README "Fleet mode").
#
# Boxes A and B each check site api (their own address, port 8443, whose
# tls_server the test stops and starts) and publish the verdict on their
# lease:
#   - A's server down, B's up: A keeps api online (B still reaches it)
#   - both down: api offline on both
#   - B's up again: online on both; each box's status shows both verdicts
#   - B reloaded with api no longer checked: B withdraws its verdict, A
#     alone decides (offline); checked again: online
#   - B's daemon killed: its verdict goes with its lease; A alone decides
#     (offline, its own server being down)
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fleet_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fleet_lib.sh"

require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL

readonly API_PORT=$BOX_BLOG_PORT

# api_is NAME STATE: box NAME's site api (the second) is STATE.
api_is() {
	local v
	v=$(box_ctl "$1" status --json | json_field sites.1.state) || return 1
	[[ $v == "$2" ]]
}

# api_stays NAME STATE SECONDS: it holds STATE for that long.
api_stays() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		api_is "$1" "$2" || return 1
		sleep 0.1
	done
}

server_stop() { end_process "${TLS_SERVER_PID["$1:$API_PORT"]}" TERM; }
server_start() {
	local log pid
	log="$(box_dir "$1")/tls_server.$API_PORT.log"
	: >"$log"
	ip netns exec "$(box_ns "$1")" "$TLS_SERVER" "$API_PORT" "$TMP/cert.pem" "$TMP/key.pem" >"$log" 2>&1 &
	pid=$!
	TLS_SERVER_PID["$1:$API_PORT"]=$pid
	wait_for grep -qx listening "$log"
}

# sites_yaml NAME [unchecked]: shop, and api checked (state auto) or not
sites_yaml() {
	cat <<-EOF
		  - name: shop
		    addresses: [${BOX_ADDR[$1]}]
		    ports: [$SITE_PORT]
		    state: online
		  - name: api
		    addresses: [${BOX_ADDR[$1]}]
		    ports: [$API_PORT]
	EOF
	if [[ ${2:-} == unchecked ]]; then
		echo "    state: online"
		return
	fi
	cat <<-EOF
		    state: auto
		    check:
		      type: tls
		      interval: 300ms
		      timeout: 150ms
		      rise: 1
		      fall: 1
	EOF
}

# write_config NAME [unchecked]: box NAME's config, with checks: all
write_config() {
	FLEET_SECTION=0 box_config "$1" "" "$(box_fleet_yaml "$1")
  checks: all" "$(sites_yaml "$@")"
}

e2e_begin
fleet_setup
fleet_up
fleet_schema_put
for name in A B; do
	write_config "$name"
	box_start "$name"
done
check "A: api online" wait_for api_is A online
check "B: api online" wait_for api_is B online

server_stop A
check "A's own check is down (A's status: checks.A down)" wait_for status_is A sites.1.checks.A down
check "... and A has B's verdict: up" wait_for status_is A sites.1.checks.B up
check "... as B has A's: down, its own: up" \
	wait_for eval "status_is B sites.1.checks.A down && status_is B sites.1.checks.B up"
check "A's text status says why api is online" \
	eval "box_ctl A status | grep -qE '^  checks     (A \\(this box\\) down, B up|B up, A \\(this box\\) down); offline only when every live box says down\$'"
check "A keeps api online while B sees it up" api_stays A online 3
server_stop B
check "both down: A takes api offline" wait_for api_is A offline
check "both down: B takes api offline" wait_for api_is B offline
check "both down: A's status has both verdicts down" \
	eval "status_is A sites.1.checks.A down && status_is A sites.1.checks.B down"
server_start B
check "B's up again: A brings api online" wait_for api_is A online
check "B's up again: B online" wait_for api_is B online
# a reload that takes the check away withdraws B's verdict
write_config B unchecked
check "B reloaded with api no longer checked" box_ctl B reload
check "B's verdict withdrawn: A alone sees api down, offline" wait_for api_is A offline
check "... B's verdict gone from A's status" \
	eval "status_is A sites.1.name api && ! status_field A sites.1.checks.B"
write_config B
check "B reloaded with api checked again" box_ctl B reload
check "B publishes up again: A brings api online" wait_for api_is A online
box_kill B
check "B gone (lease ended): A alone sees api down, offline" wait_for api_is A offline
check "... and B's verdict is gone from A's status" \
	eval "status_is A sites.1.name api && ! status_field A sites.1.checks.B"

finish
