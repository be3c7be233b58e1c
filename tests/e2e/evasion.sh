#!/bin/bash
# evasion.sh HOOK: crafted SYNs must not reach an offline site (issue 12,
# "Dark stays dark"): IPv4 fragments of every first-fragment size and
# order, IP options, IPv6 extension-header chains (long, many, routing,
# atomic and real fragments), SYNs with data and extra flags, many TCP
# options. evasion_craft.py has the catalog (`evasion_craft.py list`).
#
# 1. Baseline, no gatekeeper: every case is sent to shop, blog and wiki
#    (the same server). A case the server's stack answers with a SYN-ACK on
#    all three is real; one it never answers is reported and excluded (not
#    counted as passing); a "core" case (plain SYN, ECN, options, data, ...)
#    must be real, else the test itself is broken.
# 2. gatekeeperd on HOOK (the gw for prerouting and forward, the server
#    itself for input), shop online, blog offline+drop, wiki offline+reject:
#    every real case again to all three. Per case and offline site: no
#    SYN-ACK reached the client and the server's own counters (nft, server
#    namespace) saw neither a SYN at input (after IPv4 reassembly, after
#    every other input chain) nor a SYN-ACK leave. The legitimate variants
#    (plain, data, TFO, ECN, options, one IPv6 extension header) must still
#    get a SYN-ACK from shop. A RST from gatekeeper for wiki is fine (it is
#    what reject means), a SYN-ACK never.
#
# Each case has its own source port, so every answer maps to one case.
# Only the namespaces and documentation addresses of lib.sh are used.
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"

readonly HOOK=${1:-}
readonly PYTHON=/usr/bin/python3 # Debian's, with python3-scapy
readonly CRAFT="${SRCDIR:-$(dirname "$0")}/evasion_craft.py"
readonly OBS_TABLE="e2e_evasion_$$"
readonly DESTS=(shop blog wiki)
readonly BASELINE_PORTS=20000 GATED_PORTS=30000

declare -A CASE_CORE=() CASE_LEGIT=() CASE_WHAT=()
declare -A ANSWER=() SPORT=() # "CASE DEST" -> the last craft run's answer / port
declare -A OBSERVED=()        # "SET PORT" -> packets the server counted
CASES=()
REAL=()
NOT_REAL=()
LEAKED=()

usage() {
	echo "usage: evasion.sh forward|prerouting|input" >&2
	exit 2
}

require_scapy() {
	"$PYTHON" -c 'import scapy' 2>/dev/null ||
		die "$PYTHON cannot import scapy (apt-get install python3-scapy, tests/packages.txt)"
}

load_catalog() {
	local name _family core legit what
	while read -r name _family core legit what; do
		CASES+=("$name")
		CASE_CORE[$name]=$core
		CASE_LEGIT[$name]=$legit
		CASE_WHAT[$name]=$what
	done < <("$PYTHON" "$CRAFT" list)
	((${#CASES[@]} > 0)) || die "evasion_craft.py list gave no case"
}

# The server's own view, in its namespace: SYNs that passed every input
# chain (IPv4 arrives reassembled there; IPv6 fragments do not, the SYN-ACK
# counters cover those) and SYN-ACKs its TCP sent, per source port of the
# client (sets) and in all for the offline addresses (counters, whatever
# the port). Counting only, accept policy.
setup_observer() {
	in_ns "$NS_SERVER" nft -f - <<-EOF || die "cannot install the server's counters"
		table inet $OBS_TABLE {
		  set syn_in { type inet_service; size 65535; flags dynamic; counter; }
		  set synack_out { type inet_service; size 65535; flags dynamic; counter; }
		  counter offline_syn { }
		  counter offline_synack { }
		  chain in {
		    type filter hook input priority 1000; policy accept;
		    tcp dport $SITE_PORT tcp flags & (syn | ack) == syn update @syn_in { tcp sport }
		    ip daddr { $BLOG4, $WIKI4 } tcp dport $SITE_PORT tcp flags & (syn | ack) == syn counter name offline_syn
		    ip6 daddr { $BLOG6, $WIKI6 } tcp dport $SITE_PORT tcp flags & (syn | ack) == syn counter name offline_syn
		  }
		  chain out {
		    type filter hook output priority 1000; policy accept;
		    tcp sport $SITE_PORT tcp flags & (syn | ack) == (syn | ack) update @synack_out { tcp dport }
		    ip saddr { $BLOG4, $WIKI4 } tcp sport $SITE_PORT tcp flags & (syn | ack) == (syn | ack) counter name offline_synack
		    ip6 saddr { $BLOG6, $WIKI6 } tcp sport $SITE_PORT tcp flags & (syn | ack) == (syn | ack) counter name offline_synack
		  }
		}
	EOF
}

observer_reset() {
	in_ns "$NS_SERVER" nft flush set inet "$OBS_TABLE" syn_in
	in_ns "$NS_SERVER" nft flush set inet "$OBS_TABLE" synack_out
	in_ns "$NS_SERVER" nft reset counters table inet "$OBS_TABLE" >/dev/null
}

# offline_total NAME: the counter's packets since observer_reset.
offline_total() {
	in_ns "$NS_SERVER" nft list counter inet "$OBS_TABLE" "$1" | awk '/packets/ { print $2; exit }'
}

offline_sites_silent() {
	local syn synack
	syn=$(offline_total offline_syn)
	synack=$(offline_total offline_synack)
	echo "since the daemon started, the server counted $syn SYN(s) to blog and wiki:$SITE_PORT" \
		"at input and sent $synack SYN-ACK(s) from them"
	[[ $syn == 0 && $synack == 0 ]]
}

# observed SET PORT: packets the server counted in SET for the client's
# PORT, as of the last observer_snapshot.
observed() { echo "${OBSERVED["$1 $2"]:-0}"; }

observer_snapshot() {
	local set port packets
	OBSERVED=()
	for set in syn_in synack_out; do
		in_ns "$NS_SERVER" nft list set inet "$OBS_TABLE" "$set" >"$TMP/obs.$set" ||
			die "cannot read the server's counters ($set)"
		# elements = { 30002 counter packets 1 bytes 60, ... }
		while read -r port packets; do
			OBSERVED["$set $port"]=$packets
		done < <(grep -oE '[0-9]+ counter packets [0-9]+' "$TMP/obs.$set" |
			awk '{ print $1, $4 }')
	done
}

# craft PHASE PORT_BASE [OPTION...] <LINES: sends the lines ("CASE DEST
# [retry]") from the client namespace, with evasion_craft.py's OPTIONs;
# fills ANSWER and SPORT (so never in a pipeline).
craft() {
	local phase=$1 base=$2 gw_mac word name dest port answer tries
	shift 2
	gw_mac=$(ip -n "$NS_GW" -o link show dev "gc$$" | grep -o 'link/ether [^ ]*' | cut -d' ' -f2)
	[[ -n $gw_mac ]] || die "no MAC address on the gw's client side"
	ANSWER=()
	SPORT=()
	in_ns "$NS_CLIENT" "$PYTHON" "$CRAFT" send --iface "c$$" --gw-mac "$gw_mac" \
		--src4 "$CLIENT4" --src6 "$CLIENT6" \
		--dest "shop=$SHOP4,$SHOP6" --dest "blog=$BLOG4,$BLOG6" --dest "wiki=$WIKI4,$WIKI6" \
		--port-base "$base" "$@" >"$TMP/$phase.results" 2>"$TMP/$phase.err" ||
		die "evasion_craft.py ($phase) failed: $(cat "$TMP/$phase.err")"
	while read -r word name dest port answer tries; do
		[[ $word == result ]] || continue
		ANSWER["$name $dest"]=$answer
		SPORT["$name $dest"]=$port
	done <"$TMP/$phase.results"
	observer_snapshot
}

# ---------------------------------------------------------------- baseline

baseline_answered() { # CASE: SYN-ACKs from all three, or says which not
	local name=$1 dest status=0
	for dest in "${DESTS[@]}"; do
		echo "$dest: ${ANSWER["$name $dest"]:-<not sent>}, server sent" \
			"$(observed synack_out "${SPORT["$name $dest"]:-0}") SYN-ACK(s)"
		[[ ${ANSWER["$name $dest"]:-} == synack ]] || status=1
	done
	return "$status"
}

baseline_silent() { # CASE: no destination answered it
	local name=$1 dest
	for dest in "${DESTS[@]}"; do
		[[ ${ANSWER["$name $dest"]:-} != synack ]] || return 1
	done
}

baseline() {
	local name dest
	for name in "${CASES[@]}"; do
		for dest in "${DESTS[@]}"; do
			echo "$name $dest retry"
		done
	done >"$TMP/baseline.send"
	craft baseline "$BASELINE_PORTS" <"$TMP/baseline.send"
	for name in "${CASES[@]}"; do
		if baseline_silent "$name" && [[ ${CASE_CORE[$name]} == 0 ]]; then
			NOT_REAL+=("$name")
			log "not a real case, excluded: $name (${CASE_WHAT[$name]}): without gatekeeper the" \
				"server's stack answers it with no SYN-ACK ($(for dest in "${DESTS[@]}"; do
					printf '%s %s ' "$dest" "${ANSWER["$name $dest"]}"
				done))"
			continue
		fi
		if check "baseline, no gatekeeper: $name (${CASE_WHAT[$name]}) gets a SYN-ACK" \
			baseline_answered "$name"; then
			REAL+=("$name")
		fi
	done
	log "real cases: ${#REAL[@]}: ${REAL[*]}"
	log "not real: ${#NOT_REAL[@]}: ${NOT_REAL[*]}"
}

# ---------------------------------------------------------------- gated

stays_dark() { # CASE DEST
	local name=$1 dest=$2 port syn synack status=0
	[[ -n ${SPORT["$name $dest"]:-} ]] || { echo "not sent"; return 1; }
	port=${SPORT["$name $dest"]}
	syn=$(observed syn_in "$port")
	synack=$(observed synack_out "$port")
	echo "client port $port: the client saw ${ANSWER["$name $dest"]};" \
		"server counted $syn SYN(s) at input, sent $synack SYN-ACK(s)"
	[[ ${ANSWER["$name $dest"]} != synack ]] || { echo "a SYN-ACK reached the client"; status=1; }
	((syn == 0)) || { echo "the SYN reached the server's input"; status=1; }
	((synack == 0)) || { echo "the server's TCP answered SYN-ACK"; status=1; }
	return "$status"
}

answered() { # CASE DEST
	local port=${SPORT["$1 $2"]}
	echo "client port $port: the client saw ${ANSWER["$1 $2"]}," \
		"server sent $(observed synack_out "$port") SYN-ACK(s)"
	[[ ${ANSWER["$1 $2"]} == synack ]]
}

rejected() { # CASE: wiki's answer is gatekeeper's RST
	echo "client port ${SPORT["$1 wiki"]}: the client saw ${ANSWER["$1 wiki"]}"
	[[ ${ANSWER["$1 wiki"]} == rst ]]
}

gated() {
	local name
	for name in "${REAL[@]}"; do
		echo "$name blog"
		echo "$name wiki"
		if [[ ${CASE_LEGIT[$name]} == 1 ]]; then
			echo "$name shop retry"
		else
			echo "$name shop"
		fi
	done >"$TMP/gated.send"
	# a leaked SYN is answered within milliseconds; a second of listening
	# after the last packet (times E2E_TIMEOUT_MULTIPLIER) is plenty
	craft gated "$GATED_PORTS" --quiet 1 <"$TMP/gated.send"
	for name in "${REAL[@]}"; do
		check "$HOOK: $name -> blog (offline, drop): no SYN-ACK, no SYN at the server" \
			stays_dark "$name" blog || LEAKED+=("$name->blog")
		check "$HOOK: $name -> wiki (offline, reject): no SYN-ACK, no SYN at the server" \
			stays_dark "$name" wiki || LEAKED+=("$name->wiki")
		if [[ ${CASE_LEGIT[$name]} == 1 ]]; then
			check "$HOOK: $name -> shop (online): SYN-ACK" answered "$name" shop
		else
			log "$name -> shop (online; not asserted): ${ANSWER["$name shop"]}"
		fi
	done
	check "$HOOK: v4-plain -> wiki: gatekeeper's RST" rejected v4-plain
	check "$HOOK: v6-plain -> wiki: gatekeeper's RST" rejected v6-plain
	check "$HOOK: no SYN of any case reached blog or wiki, none answered" offline_sites_silent
	((${#LEAKED[@]} == 0)) || log "reached an offline site: ${LEAKED[*]}"
}

main() {
	local ns start=$SECONDS
	[[ $HOOK == forward || $HOOK == prerouting || $HOOK == input ]] || usage
	ns=$(daemon_ns)
	require_environment
	require_scapy
	e2e_begin
	load_catalog
	setup_topology
	setup_observer
	start_tls_server "$SITE_PORT"

	baseline
	((${#REAL[@]} > 0)) || die "no real case in the baseline"

	write_config "$TMP/gatekeeper.yaml" "$HOOK"
	observer_reset
	start_daemon "$ns" "$TMP/gatekeeper.yaml"
	gated
	check "the daemon survived the crafted packets" pid_alive "$DAEMON_PID"
	check "SIGTERM: daemon exits 0" stop_daemon
	check "counters: blog dropped >= 2 (the plain SYNs)" counter_at_least blog dropped 2
	check "counters: wiki rejected >= 2 (the plain SYNs)" counter_at_least wiki rejected 2
	log "hook $HOOK: ${#REAL[@]} real cases, ${#NOT_REAL[@]} excluded, $((SECONDS - start)) s"
	finish
}

main "$@"
