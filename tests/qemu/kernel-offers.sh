#!/bin/bash
# What the running kernel offers for queueing SYNs, found with the stock
# tools in a throwaway network namespace, independently of gatekeeperd's own
# probe (which the e2e suite checks against this).
#
#   tests/qemu/kernel-offers.sh FLAVOUR   exit 0 if the kernel takes a queue
#                                         rule of FLAVOUR (nft, xt-nft, xt-legacy)
#   tests/qemu/kernel-offers.sh --auto    prints the flavour `backend: auto`
#                                         must pick: the first one offered
# Needs root.
set -u

ns="gk-offers-$$"
cleanup() { ip netns del "$ns" 2>/dev/null; }
trap cleanup EXIT
ip netns add "$ns" || exit 2

offers() {
	case $1 in
	nft)
		ip netns exec "$ns" nft -f - >/dev/null 2>&1 <<-EOF
			table inet gk_offers {
			  chain c {
			    type filter hook prerouting priority -300;
			    tcp dport 443 queue num 0 bypass
			  }
			}
		EOF
		;;
	xt-nft | xt-legacy)
		# iptables-nft needs nf_tables, and gatekeeperd only uses it then
		[[ $1 == xt-legacy ]] || ip netns exec "$ns" nft list tables >/dev/null 2>&1 || return 1
		local tool
		for tool in "iptables-${1#xt-}" "ip6tables-${1#xt-}"; do
			ip netns exec "$ns" "$tool" -w -t raw -A PREROUTING -p tcp --dport 443 \
				-j NFQUEUE --queue-num 0 --queue-bypass >/dev/null 2>&1 || return 1
		done
		;;
	*)
		echo "unknown flavour '$1': nft, xt-nft or xt-legacy" >&2
		exit 2
		;;
	esac
}

if [[ ${1:-} == --auto ]]; then
	for flavour in nft xt-nft xt-legacy; do
		offers "$flavour" && { echo "$flavour"; exit 0; }
	done
	echo none
	exit 1
fi
[[ $# == 1 ]] || { echo "usage: $0 FLAVOUR | --auto" >&2; exit 2; }
offers "$1"
