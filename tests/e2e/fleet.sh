#!/bin/bash
# fleet.sh: three gatekeeperd boxes share their sites' state through a real
# 3-member etcd cluster over mTLS (README "Fleet mode", daemon/FLEET-DESIGN.md).
# Every verdict is measured from the client: a real TLS handshake to each
# box's address (open), a RST (reset) or silence (dark).
#
#   - before `fleet init` a toggle is refused (exit 4); after it, a toggle on
#     A reaches B and C (--wait: applied on 3 of 3)
#   - two boxes toggling the same site at once end identical, as etcd's last
#     revision says
#   - a box cut off (link black-holed) during toggles converges when it heals
#   - history compacted while a box is away: it reads the fleet afresh
#   - the etcd member a box is connected to is cut off from its peers: the
#     box is stale no longer than the bound, and follows toggles again
#   - one member killed: toggles go on; the whole cluster killed: verdicts
#     stay, status says stale, toggles are refused (exit 4), --local pins
#     this box only; a box restarted meanwhile serves its last known state
#   - the cluster back: the pin stays until `reset --local`
#   - the schema key deleted, then the whole prefix at once (a rebuilt
#     etcd): nothing is reset; `fleet init` starts a new fleet, read afresh
#   - a box whose client certificate is from another CA is refused by etcd
#     and never changes a site
# shellcheck source=lib.sh
source "${SRCDIR:-$(dirname "$0")}/lib.sh"
# shellcheck source=fleet_lib.sh
source "${SRCDIR:-$(dirname "$0")}/fleet_lib.sh"

require_environment GATEKEEPERD TLS_SERVER TLS_PROBE GATEKEEPERCTL

# Lease 3 s, request timeout 1 s (fleet_lib.sh's defaults): a box notices a
# lost etcd within heartbeat (1 s) + request timeout, or when its member
# closes the watch on losing the leader (~5 s, FLEET-NOTES.md).
readonly STALE_BOUND_S=8
# A toggle's new verdict on the other boxes: well under a second; the
# bound here leaves room for a slow CI machine.
readonly FOLLOW_S=5

# exits_with RC CMD...: CMD exits with RC.
exits_with() {
	local want=$1 rc
	shift
	"$@"
	rc=$?
	echo "exit status $rc (want $want)"
	((rc == want))
}

# moved_off NAME ENDPOINT: box NAME is connected, to another endpoint.
moved_off() {
	local v
	v=$(status_field "$1" fleet.endpoint) || return 1
	[[ $v != "$2" ]] && status_is "$1" fleet.connection connected
}

# all_boxes_say PORT WANT: every running box gives verdict WANT on PORT.
all_boxes_say() {
	local name
	for name in A B C; do
		[[ $(box_verdict "$name" "$1") == "$2" ]] || return 1
	done
}

e2e_begin
fleet_setup
fleet_up
for name in A B C; do
	box_start "$name"
done
check "all boxes come up on etcd (not initialised yet)" \
	wait_for status_is C fleet.connection connected
check "a toggle before fleet init is refused (exit 4)" exits_with 4 box_ctl A offline shop
check "the refusal names fleet init" bash -c "'$GATEKEEPERCTL' -s '$(box_dir A)/control.sock' \
	offline shop 2>&1 | grep -q 'fleet init'"
check "fleet init" box_ctl A fleet init
check "fleet init again changes nothing" bash -c "'$GATEKEEPERCTL' -s '$(box_dir B)/control.sock' \
	fleet init | grep -q 'already initialised'"
check "every box sees the schema" wait_for status_is C fleet.initialised true
check "reset --wait of a site the fleet holds nothing for: nothing to wait for" \
	bash -c "'$GATEKEEPERCTL' -s '$(box_dir A)/control.sock' reset blog --wait | grep -q 'holds no override'"

# ---- a toggle on A reaches B and C
check "A: offline shop --action reject --wait (applied on 3 of 3)" \
	bash -c "'$GATEKEEPERCTL' -s '$(box_dir A)/control.sock' offline shop --action reject --wait \
	| tee /dev/stderr | grep -q 'applied on 3 of 3 live boxes'"
for name in A B C; do
	check "box $name: shop resets" wait_verdict "$name" reset "$FOLLOW_S"
	check "box $name: blog still open" wait_verdict "$name" open 2 "$BOX_BLOG_PORT"
done
check "C's status: shop from fleet, set on A" bash -c "[[ \$('$GATEKEEPERCTL' -s \
	'$(box_dir C)/control.sock' status --json | $FLEET_PYTHON -c 'import json,sys; \
s=json.load(sys.stdin)[\"sites\"][0]; print(s[\"source\"], s[\"fleet\"][\"box\"])') == 'fleet A' ]]"
check "B: online shop" box_ctl B online shop
for name in A B C; do
	check "box $name: shop open again" wait_verdict "$name" open "$FOLLOW_S"
done

# ---- two boxes toggle the same site at once
box_ctl B offline blog --action drop >"$TMP/race-b.out" 2>&1 &
race_b=$!
box_ctl C offline blog --action reject >"$TMP/race-c.out" 2>&1 &
race_c=$!
wait "$race_b" "$race_c"
last=$(etcd_key_json "$(fleet_key site/blog)" | json_field action)
log "etcd's last write for blog: $last"
want=$([[ $last == reject ]] && echo reset || echo dark)
for name in A B C; do
	check "box $name: blog $want as etcd's last revision says" \
		wait_verdict "$name" "$want" "$FOLLOW_S" "$BOX_BLOG_PORT"
done
check "the three boxes agree on blog's action" bash -c "for b in A B C; do '$GATEKEEPERCTL' -s \
	'$TMP/box-'\$b/control.sock status --json | $FLEET_PYTHON -c 'import json,sys; \
print(json.load(sys.stdin)[\"sites\"][1][\"action\"])'; done | sort -u | wc -l | grep -qx 1"

# ---- a partitioned box converges when it heals
box_link_down C
check "A: reset blog (C cut off)" box_ctl A reset blog
check "A: offline shop --action drop (C cut off)" box_ctl A offline shop --action drop
check "box B: blog open" wait_verdict B open "$FOLLOW_S" "$BOX_BLOG_PORT"
check "box B: shop dark" wait_verdict B dark "$FOLLOW_S"
check "C notices it is stale" within $STALE_BOUND_S is_stale C
start=$(now_ms)
box_link_up C
check "box C: blog open after the heal" wait_verdict C open "$FOLLOW_S" "$BOX_BLOG_PORT"
check "box C: shop dark after the heal" wait_verdict C dark "$FOLLOW_S"
log "catch-up after the partition healed: $(($(now_ms) - start)) ms"

# ---- compaction while a box is away
box_link_down B
check "B notices it is stale" within $STALE_BOUND_S is_stale B
check "A: online shop (B away)" box_ctl A online shop
check "A: offline blog reject (B away)" box_ctl A offline blog --action reject
log "compacted at revision $(etcd_compact)"
box_link_up B
check "box B: shop open after compaction" wait_verdict B open "$FOLLOW_S"
check "box B: blog reset after compaction" wait_verdict B reset "$FOLLOW_S" "$BOX_BLOG_PORT"
check "B read the fleet afresh" wait_for grep -q "compacted" "${BOX_LOG[B]}"

# ---- the member a box uses is cut off from its peers
endpoint=$(status_field A fleet.endpoint)
member=${endpoint#https://203.0.113.1}
member=${member%%:*}
log "box A is on member $member ($endpoint)"
start=$(now_ms)
etcd_isolate "$member"
check "box A leaves the cut-off member within ${STALE_BOUND_S}s" \
	within $STALE_BOUND_S moved_off A "$endpoint"
log "box A moved off member $member after $(($(now_ms) - start)) ms"
check "B: reset shop (B may need a new member too)" \
	wait_for box_ctl B reset shop
check "box A follows B again" wait_verdict A open "$FOLLOW_S"
etcd_rejoin "$member"
check "the cluster is whole again" etcd_cluster_up

# ---- etcd members die
etcd_kill 1
check "one member killed: A: offline shop reject" wait_for box_ctl A offline shop --action reject
check "box C follows with 2 of 3 members" wait_verdict C reset "$FOLLOW_S"
etcd_kill 2
etcd_kill 3
check "the whole cluster down: A is stale within ${STALE_BOUND_S}s" \
	within $STALE_BOUND_S is_stale A
check "verdicts stay: A shop reset" wait_verdict A reset 2
check "verdicts stay: C blog reset" wait_verdict C reset 2 "$BOX_BLOG_PORT"
check "a fleet toggle is refused (exit 4)" exits_with 4 box_ctl A online shop
check "the status says stale since" bash -c "'$GATEKEEPERCTL' -s '$(box_dir A)/control.sock' status \
	| grep -q 'stale since'"
check "--local pins shop online on A" box_ctl A online shop --local
check "box A: shop open (pinned)" wait_verdict A open 2
check "box B: shop still reset" wait_verdict B reset 2
box_stop B
box_start B
check "B restarted with etcd down: shop reset from its cache" wait_verdict B reset "$FOLLOW_S"
check "B restarted with etcd down: blog reset from its cache" wait_verdict B reset 2 "$BOX_BLOG_PORT"
# the cache is of one fleet: a box configured into another ignores it
box_stop B
box_config B "$(box_dir B)/other.yaml"
sed -i "s/^  name: $FLEET_NAME\$/  name: other/" "$(box_dir B)/other.yaml"
grep -q "^  name: other$" "$(box_dir B)/other.yaml" || die "no fleet name to change in $(box_dir B)/other.yaml"
box_start B
check "B restarted into another fleet (etcd down): the cache ignored, shop open" \
	wait_verdict B open "$FOLLOW_S"
check "... and blog open" wait_verdict B open 2 "$BOX_BLOG_PORT"
check "... the log says why" grep -q "cache .* ignored: it holds the fleet under $FLEET_PREFIX/$FLEET_NAME/" \
	"${BOX_LOG[B]}"
box_stop B
box_config B
box_start B
check "B back in its fleet: shop reset from its cache again" wait_verdict B reset "$FOLLOW_S"

# ---- the cluster comes back
for n in 1 2 3; do
	etcd_start "$n"
done
check "the cluster is up again" etcd_cluster_up
check "box B reconnects" wait_for status_is B fleet.connection connected
check "box A reconnects" wait_for status_is A fleet.connection connected
check "B, restarted meanwhile, counts every live box for --wait" \
	bash -c "'$GATEKEEPERCTL' -s '$(box_dir B)/control.sock' offline blog --action reject --wait \
	| tee /dev/stderr | grep -q 'applied on 3 of 3 live boxes'"
check "A's pin holds after the reconnect" wait_verdict A open 2
check "A's status shows the pin" status_is A sites.0.pinned true
check "A: reset shop --local ends the pin" box_ctl A reset shop --local
check "box A: the fleet's state (reset) again" wait_verdict A reset "$FOLLOW_S"

# ---- the schema key deleted: nothing is reset
etcdctl_fleet del "$(fleet_key schema)" >/dev/null
check "C sees the schema gone" wait_for status_is C fleet.initialised false
check "box C: shop still reset" wait_verdict C reset 2
check "box C: blog still reset" wait_verdict C reset 2 "$BOX_BLOG_PORT"
check "a toggle is refused without the schema (exit 4)" exits_with 4 box_ctl C online blog
etcdctl_fleet del --prefix "$(fleet_key '')" >/dev/null
check "the whole prefix wiped at once: box A: shop still reset" wait_verdict A reset 2
check "the whole prefix wiped at once: box B: blog still reset" wait_verdict B reset 2 "$BOX_BLOG_PORT"
check "the boxes write their presence again" wait_for etcd_key_json "$(fleet_key box/A)"
check "fleet init again" box_ctl C fleet init
check "a new fleet holds no override: box A: shop open again" wait_verdict A open "$FOLLOW_S"
check "a new fleet holds no override: box B: blog open again" \
	wait_verdict B open "$FOLLOW_S" "$BOX_BLOG_PORT"
check "C: offline shop --action reject" wait_for box_ctl C offline shop --action reject
check "box A: shop reset" wait_verdict A reset "$FOLLOW_S"
check "box C: shop reset" wait_verdict C reset "$FOLLOW_S"

# ---- mTLS: a certificate of another CA is refused
box_stop C
cp "$PKI/foreign.pem" "$PKI/box-C.pem"
cp "$PKI/foreign.key" "$PKI/box-C.key"
box_start C
sleep 3
check "box C with a foreign certificate stays unconnected" negate status_is C fleet.connection connected
check "its status says why" bash -c "'$GATEKEEPERCTL' -s '$(box_dir C)/control.sock' status | \
	grep -qi 'stale since.*\\(certificate\\|ssl\\|tls\\|alert\\|curl\\)'"
check "box C keeps its cached verdict: shop reset" wait_verdict C reset 2
check "C cannot toggle (exit 4)" exits_with 4 box_ctl C online shop

finish
