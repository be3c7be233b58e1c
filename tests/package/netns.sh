# shellcheck shell=bash
# The package tests' network: three namespaces of the test's own, names
# with the PID, documentation addresses only (as tests/e2e/lib.sh):
#
#   client 192.0.2.100 2001:db8:1::100
#     | veth
#   gw     192.0.2.1 | 198.51.100.1   2001:db8:1::1 | 2001:db8:2::1  (routes)
#     | veth
#   server 198.51.100.10 2001:db8:2::10, netprobe.py listening on [::]:443
#
# 198.51.100.10 and 2001:db8:2::10 port 443 are the site "shop" of the
# shipped /etc/gatekeeper/gatekeeper.yaml (hook prerouting), so the
# installed config is used unchanged, with the daemon in the gw namespace.
# Needs ip (iproute2) and python3; the caller's EXIT trap deletes the
# namespaces in CREATED_NS (their processes killed first).

NS_C="gkp-$$-c"
NS_G="gkp-$$-g"
NS_S="gkp-$$-s"
SHOP4=198.51.100.10
SHOP6=2001:db8:2::10
NETPROBE=${NETPROBE:-$(dirname "${BASH_SOURCE[0]}")/netprobe.py}

# sysctl without procps: /proc/sys/net belongs to the namespace of the
# process that opens it.
ns_sysctl() { ip netns exec "$1" sh -c "echo $3 > /proc/sys/$2"; }

ns_new() {
	ip netns add "$1" || return 1
	CREATED_NS+=("$1")
	# before any address: no duplicate address detection to wait for
	ns_sysctl "$1" net/ipv6/conf/all/accept_dad 0
	ns_sysctl "$1" net/ipv6/conf/default/accept_dad 0
	ip -n "$1" link set lo up
}

topology_up() {
	local i
	ns_new "$NS_C" && ns_new "$NS_G" && ns_new "$NS_S" || return 1
	ip -n "$NS_C" link add c$$ type veth peer name gc$$ netns "$NS_G" || return 1
	ip -n "$NS_G" link add gs$$ type veth peer name s$$ netns "$NS_S" || return 1
	ip -n "$NS_C" link set c$$ up
	ip -n "$NS_G" link set gc$$ up
	ip -n "$NS_G" link set gs$$ up
	ip -n "$NS_S" link set s$$ up
	ip -n "$NS_C" addr add 192.0.2.100/24 dev c$$
	ip -n "$NS_C" addr add 2001:db8:1::100/64 dev c$$
	ip -n "$NS_C" route add default via 192.0.2.1
	ip -n "$NS_C" -6 route add default via 2001:db8:1::1
	ip -n "$NS_G" addr add 192.0.2.1/24 dev gc$$
	ip -n "$NS_G" addr add 2001:db8:1::1/64 dev gc$$
	ip -n "$NS_G" addr add 198.51.100.1/24 dev gs$$
	ip -n "$NS_G" addr add 2001:db8:2::1/64 dev gs$$
	ns_sysctl "$NS_G" net/ipv4/ip_forward 1
	ns_sysctl "$NS_G" net/ipv6/conf/all/forwarding 1
	ip -n "$NS_S" addr add "$SHOP4/24" dev s$$
	ip -n "$NS_S" addr add "$SHOP6/64" dev s$$
	ip -n "$NS_S" route add default via 198.51.100.1
	ip -n "$NS_S" -6 route add default via 2001:db8:2::1
	ip netns exec "$NS_S" python3 "$NETPROBE" listen 443 >"$1" 2>&1 &
	for ((i = 0; i < 100; i++)); do
		grep -qx listening "$1" && break
		sleep 0.1
	done
	# the first connects resolve the neighbours (bounded)
	for ((i = 0; i < 20; i++)); do
		[[ $(client_sees "$SHOP4") == connected && $(client_sees "$SHOP6") == connected ]] && return 0
		sleep 0.25
	done
	echo "the client cannot reach the server: $(client_sees "$SHOP4") / $(client_sees "$SHOP6")"
	return 1
}

# client_sees ADDR: connected | refused | timeout, for ADDR port 443.
client_sees() { ip netns exec "$NS_C" python3 "$NETPROBE" connect "$1" 443 1.5; }

# both_see WANT: the client gets WANT over IPv4 and IPv6.
both_see() {
	local a got status=0
	for a in "$SHOP4" "$SHOP6"; do
		got=$(client_sees "$a")
		echo "client -> $a port 443: $got"
		[[ $got == "$1" ]] || status=1
	done
	return "$status"
}

# The gw namespace's rules of gatekeeper (nft native, or xt through
# iptables-nft, which nft lists too); iptables-legacy is not looked at.
gk_rules() { ip netns exec "$NS_G" nft list ruleset | grep -E 'gatekeeper|GATEKEEPER|queue'; }
no_gk_rules() {
	local r
	r=$(gk_rules)
	[[ -z $r ]] && { echo "no gatekeeper rule in $NS_G"; return 0; }
	echo "left in $NS_G:"
	echo "$r"
	return 1
}

# One set of rules: the nft table once, or the xt queueing chain and the
# guard's entry chain each jumped to once per family (a restart that left
# the old rules would show two).
gk_rules_once() {
	local rs tables jumps guard_jumps
	rs=$(ip netns exec "$NS_G" nft list ruleset)
	tables=$(grep -c '^table inet gatekeeper' <<<"$rs")
	jumps=$(grep -c 'jump GATEKEEPER$' <<<"$rs")
	guard_jumps=$(grep -c 'jump GATEKEEPER_GUARD$' <<<"$rs")
	echo "table inet gatekeeper: $tables, jumps to GATEKEEPER: $jumps, to GATEKEEPER_GUARD: $guard_jumps"
	[[ $tables == 1 && $jumps == 0 && $guard_jumps == 0 ]] ||
		[[ $tables == 0 && $jumps == 2 && $guard_jumps == 2 ]]
}
