#!/bin/bash
# fleet_cluster.sh: the fleet test bed itself (fleet_lib.sh), without the
# daemon's fleet mode. When this fails, the fleet scenarios say nothing
# about the daemon.
#
#   - 3 etcd members form a cluster over mTLS (clients) on one bridge
#   - box A's certificate puts through member 1's JSON gateway and box B's
#     reads it back through member 2's; etcdctl sees it too
#   - a certificate of another CA, and none, are refused
#   - the client reaches every box's tls_server (203.0.113.2X:443)
#   - the leader cut from its peers: a hasleader request to it fails within
#     a few seconds (measured), the two others elect a leader and write
#   - a stopped follower (SIGSTOP) is silent, the leader writes; SIGCONT
#     heals
#   - the leader killed (SIGKILL): writes go on after an election (the
#     outage is printed); restarted on its data, it catches up
#   - compaction: a read at a compacted revision is refused (code 11)
#   - box_link_down: a box is dark to the client and etcd is out of its
#     reach; box_link_up heals both
#   - lan_cut: box A cut from e2 only, and healed
#   - the box helpers with a config without the fleet section: box_start,
#     box_verdict, box_ctl, wait_verdict, box_stop; the fleet section they
#     write is validated with gatekeeperd --check
#   - etcd_rebuild: a new empty cluster, revisions restart
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fleet_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fleet_lib.sh"

readonly HASLEADER_MAX_MS=5000

# put_get ID_PUT N_PUT ID_GET N_GET KEY VALUE: a put through one member's
# gateway, then a range through another's returns VALUE.
put_get() {
	local key value reply got
	key=$(b64 "$5") value=$(b64 "$6")
	reply=$(etcd_gw "$1" "$2" /v3/kv/put "{\"key\":\"$key\",\"value\":\"$value\"}") || return 1
	echo "put via e$2 as $1: $reply"
	json_field header.revision <<<"$reply" >/dev/null || return 1
	reply=$(etcd_gw "$3" "$4" /v3/kv/range "{\"key\":\"$key\"}") || return 1
	echo "range via e$4 as $3: $reply"
	got=$(json_field kvs.0.value <<<"$reply") || return 1
	[[ $got == "$value" ]]
}

# refused ID N: the gateway of member N does not serve identity ID.
refused() {
	local reply status
	reply=$(etcd_gw "$1" "$2" /v3/kv/range "{\"key\":\"$(b64 x)\"}" 2>&1)
	status=$?
	echo "as $1 via e$2: curl status $status: $reply"
	((status != 0)) && ! grep -q '"header"' <<<"$reply"
}

# write_via N [LIMIT_S]: a put through member N's gateway (as box A) is
# committed, at once or (after a leader's loss) within LIMIT_S (default 1)
# seconds of retries; prints how long it took.
write_via() {
	local n=$1 limit=$((${2:-1} * 1000)) start reply i
	start=$(now_ms)
	for ((i = 1; i <= 50; i++)); do
		reply=$(ETCD_GW_MAX_TIME=0.5 etcd_gw A "$n" /v3/kv/put \
			"{\"key\":\"$(b64 "$(fleet_key probe/write)")\",\"value\":\"$(b64 "$n")\"}" 2>&1)
		if json_field header.revision <<<"$reply" >/dev/null 2>&1; then
			echo "put via e$n committed after $(($(now_ms) - start)) ms, attempt $i: $reply"
			return 0
		fi
		echo "attempt $i: $reply"
		(($(now_ms) - start < limit)) || break
		sleep 0.1
	done
	return 1
}

# hasleader_fails_fast N: after etcd_isolate N, polls a hasleader put to
# member N until it answers "no leader"; prints the time since the cut.
HASLEADER_MS=""
hasleader_fails_fast() {
	local n=$1 start reply i ms
	start=$(now_ms)
	etcd_isolate "$n" || return 1
	for ((i = 0; i < 100; i++)); do
		reply=$(ETCD_GW_MAX_TIME=0.5 etcd_gw A "$n" /v3/kv/put \
			"{\"key\":\"$(b64 "$(fleet_key probe/iso)")\",\"value\":\"$(b64 x)\"}" 2>&1)
		ms=$(($(now_ms) - start))
		if grep -q 'no leader' <<<"$reply"; then
			HASLEADER_MS=$ms
			echo "hasleader put to the cut-off member e$n failed after $ms ms: $reply"
			((ms < HASLEADER_MAX_MS))
			return
		fi
		((ms < 10000)) || break
		sleep 0.1
	done
	echo "still no 'no leader' after $ms ms; last reply: $reply"
	return 1
}

# stopped_is_silent N: a request to a SIGSTOPped member gets no answer.
stopped_is_silent() {
	local reply status
	reply=$(ETCD_GW_MAX_TIME=1 etcd_gw A "$1" /v3/kv/range "{\"key\":\"$(b64 x)\"}" 2>&1)
	status=$?
	echo "range via stopped e$1: curl status $status: $reply"
	((status == 28)) # curl: operation timed out
}

# compacted_read_refused OLD_REV: a range at OLD_REV says compacted.
compacted_read_refused() {
	local reply
	reply=$(etcd_gw A 1 /v3/kv/range "{\"key\":\"$(b64 "$(fleet_key probe/c)")\",\"revision\":\"$1\"}")
	echo "range at revision $1: $reply"
	[[ $(json_field code <<<"$reply") == 11 ]] && grep -q compacted <<<"$reply"
}

# gw_put KEY VALUE: a put through member 1's gateway as box A; prints the
# revision it made.
gw_put() {
	etcd_gw A 1 /v3/kv/put "{\"key\":\"$(b64 "$1")\",\"value\":\"$(b64 "$2")\"}" |
		json_field header.revision
}

# compaction: three puts, compact, the first put's revision is gone.
compaction() {
	local first rev key
	key=$(fleet_key probe/c)
	first=$(gw_put "$key" v1) && gw_put "$key" v2 >/dev/null && gw_put "$key" v3 >/dev/null || return 1
	rev=$(etcd_compact) || return 1
	echo "compacted at revision $rev (first put at $first)"
	compacted_read_refused "$first" && etcd_key_is "$key" v3
}

# fleet_keys: the FLEET-DESIGN.md key helpers, against etcd alone (a
# box/NAME key as a box would write it, by hand).
fleet_keys() {
	fleet_schema_put 0123456789abcdef0123456789abcdef &&
		etcd_key_json "$(fleet_key schema)" | json_field id | grep -x 0123456789abcdef0123456789abcdef &&
		fleet_site_put shop offline reject &&
		etcd_key_json "$(fleet_key site/shop)" | json_field action | grep -x reject &&
		fleet_site_reset shop &&
		! etcd_key_json "$(fleet_key site/shop)" &&
		etcdctl_fleet put "$(fleet_key box/C)" '{"applied":"42","started":1,"pins":0}' &&
		box_applied_at_least C 42 && ! box_applied_at_least C 43 && ! box_applied_at_least B 1
}

box_unreachable_from_etcd() { # NAME [N]
	local reply status
	reply=$(ETCD_GW_MAX_TIME=1 etcd_gw "$1" "${2:-1}" /v3/kv/range "{\"key\":\"$(b64 x)\"}" 2>&1)
	status=$?
	echo "box $1 -> e${2:-1}: curl status $status: $reply"
	((status != 0))
}

revision_below() { # MAX
	local rev
	rev=$(etcd_revision) || return 1
	echo "revision $rev (want < $1)"
	((rev < $1))
}

verdict_is() { # NAME WANT [PORT]
	local got
	got=$(box_verdict "$1" "${3:-$SITE_PORT}")
	echo "box $1:${3:-$SITE_PORT} -> $got"
	[[ $got == "$2" ]]
}

# The fleet: section as the daemon reads it.
fleet_section_valid() {
	box_config B "$(box_dir B)/fleet.yaml"
	check "gatekeeperd --check accepts box_config's fleet section" \
		"$GATEKEEPERD" --check --quiet -c "$(box_dir B)/fleet.yaml"
}

# The box helpers on a daemon without fleet mode.
box_helpers() {
	FLEET_SECTION=0 box_config A
	check "box_config (no fleet section): gatekeeperd --check accepts it" \
		"$GATEKEEPERD" --check --quiet -c "${BOX_CONFIG[A]}"
	box_start A
	check "box A daemon: shop open" wait_verdict A open 5
	check "box A daemon: blog (8443) open" verdict_is A open "$BOX_BLOG_PORT"
	check "box_ctl A offline shop --action reject" box_ctl A offline shop --action reject
	check "box A: shop reset" wait_verdict A reset 5
	check "box_ctl A offline shop (drop)" box_ctl A offline shop --action drop
	check "box A: shop dark" wait_verdict A dark 5
	check "box A: blog still open" verdict_is A open "$BOX_BLOG_PORT"
	check "box_ctl A online shop" box_ctl A online shop
	check "box A: shop open again" wait_verdict A open 5
	check "box_stop A: exit 0" box_stop A
}

main() {
	local start n leader other
	require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL
	for n in etcd etcdctl curl openssl python3; do
		command -v "$n" >/dev/null || { echo "# SKIP: $n is not installed (tests/packages.txt)"; exit 77; }
	done
	start=$(now_ms)
	e2e_begin
	fleet_setup
	log "topology and certificates ready after $(($(now_ms) - start)) ms"
	check "3 members form a cluster over mTLS, one leader (fleet_up)" fleet_up
	log "cluster up after $(($(now_ms) - start)) ms, leader e$(etcd_leader)"

	for n in "${BOXES[@]}"; do
		check "client -> box $n ${BOX_ADDR[$n]}:$SITE_PORT: handshake" \
			probe_says "handshake ok cn=$CERT_CN" "${BOX_ADDR[$n]}" "$SITE_PORT" 3000
	done
	check "client -> box A:$BOX_BLOG_PORT: handshake" verdict_is A open "$BOX_BLOG_PORT"
	check "gateway: box A puts via e1, box B reads it via e2" \
		put_get A 1 B 2 "$(fleet_key probe/hello)" hello
	check "etcdctl_fleet / etcd_key_json see it" etcd_key_is "$(fleet_key probe/hello)" hello
	check "a client certificate of another CA is refused" refused foreign 1
	check "no client certificate is refused" refused nocert 2

	leader=$(etcd_leader) || die "no leader"
	other=$((leader % 3 + 1))
	check "leader e$leader cut from its peers: hasleader fails within $HASLEADER_MAX_MS ms" \
		hasleader_fails_fast "$leader"
	check "the two others elect a leader" etcd_cluster_up "$other" "$((other % 3 + 1))"
	check "writes via e$other go on" write_via "$other"
	etcd_rejoin "$leader"
	check "e$leader rejoins" etcd_cluster_up 1 2 3

	leader=$(etcd_leader) || die "no leader"
	other=$((leader % 3 + 1))
	etcd_stop "$other"
	check "SIGSTOPped follower e$other is silent" stopped_is_silent "$other"
	check "writes via the leader e$leader go on while e$other is stopped" write_via "$leader"
	etcd_cont "$other"
	check "SIGCONT: e$other healthy again" etcd_cluster_up 1 2 3

	leader=$(etcd_leader) || die "no leader"
	other=$((leader % 3 + 1))
	etcd_kill "$leader"
	check "leader e$leader killed: writes via e$other go on within 5 s" write_via "$other" 5
	check "leader e$leader killed: etcdctl_fleet writes" \
		etcdctl_fleet put "$(fleet_key probe/k)" after-kill
	etcd_start "$leader"
	check "e$leader restarted on its data: cluster of 3 again" etcd_cluster_up 1 2 3
	check "e$leader caught up" eval "etcdctl_member $leader get $(fleet_key probe/k) --print-value-only | grep -qx after-kill"

	check "compaction at the current revision" compaction
	check "fleet key helpers: schema, site toggle, reset, box applied" fleet_keys

	box_link_down A
	check "box_link_down A: the client sees A dark" verdict_is A dark
	check "box_link_down A: etcd out of A's reach" box_unreachable_from_etcd A
	check "box_link_down A: B still reached" verdict_is B open
	box_link_up A
	check "box_link_up A: open again" wait_verdict A open 5
	check "box_link_up A: A writes via e1 again" put_get A 1 A 3 "$(fleet_key probe/up)" up

	lan_cut A e2
	check "lan_cut A e2: A cannot reach e2" box_unreachable_from_etcd A 2
	check "lan_cut A e2: A still reaches e1" write_via 1
	lan_heal A e2
	check "lan_heal A e2: A reaches e2 again" put_get A 2 A 2 "$(fleet_key probe/heal)" healed

	box_helpers
	fleet_section_valid

	check "etcd_rebuild: a new, empty cluster" etcd_rebuild
	check "etcd_rebuild: the old keys are gone" negate etcd_key_json "$(fleet_key probe/hello)"
	check "etcd_rebuild: revisions restart" revision_below 5
	log "fleet_cluster took $(($(now_ms) - start)) ms; hasleader failure after ${HASLEADER_MS:-?} ms"
	finish
}

main "$@"
