#!/bin/bash
# The demo: installs what is needed, builds, and runs gatekeeperd with the
# shipped default config (conf/gatekeeper.yaml) in throwaway namespaces:
#
#   client 192.0.2.100 ── gatekeeper router ── web server 198.51.100.10
#                                              (TLS on [::]:443, like HTTP.sys)
#
# and shows, as the client sees it, the site online, then offline with
# drop, then offline with reject, then online again.
#
#   bash tests/demo.sh [--no-deps]     (as root)
set -u
cd "$(dirname "$0")/.."
root=$PWD

if [[ ${1:-} != --no-deps ]]; then
	echo "== installing packages (tests/install-deps.sh)"
	bash tests/install-deps.sh >/tmp/gatekeeper-demo-deps.$$.log 2>&1 ||
		{ cat /tmp/gatekeeper-demo-deps.$$.log; exit 1; }
	rm -f /tmp/gatekeeper-demo-deps.$$.log
fi
echo "== building into build-demo/"
[[ -d build-demo ]] || meson setup build-demo >/dev/null || exit 1
ninja -C build-demo >/dev/null || exit 1

export GATEKEEPERD=$root/build-demo/gatekeeperd
export GATEKEEPERCTL=$root/build-demo/gatekeeperctl
export TLS_SERVER=$root/build-demo/tests/e2e/tls_server
export TLS_PROBE=$root/build-demo/tests/e2e/tls_probe
export SRCDIR=$root/tests/e2e
# shellcheck source=e2e/lib.sh
source "$SRCDIR/lib.sh"

say() { printf '\n\033[1m%s\033[0m\n' "$*"; }
# What a person at the client would run: connect, handshake, show the cert.
client_connects() {
	local line
	line=$(probe "$SHOP4" 443 3000)
	printf '   client$ connect https://%s/  ->  %s\n' "$SHOP4" "$line"
	line=$(probe "$SHOP6" 443 3000)
	printf '   client$ connect https://[%s]/  ->  %s\n' "$SHOP6" "$line"
}
ctl() {
	printf '   admin$ gatekeeperctl %s\n' "$*"
	in_ns "$NS_GW" "$GATEKEEPERCTL" -s "$TMP/control.sock" "$@" | sed 's/^/      /'
}

require_environment GATEKEEPERD GATEKEEPERCTL TLS_SERVER TLS_PROBE
e2e_begin
say "Setting up namespaces $NS_CLIENT, $NS_GW, $NS_SERVER"
setup_topology
start_tls_server 443

# The shipped config, with the socket and state file moved into the
# throwaway directory (and no user/group switch: nothing here is installed).
sed -e "s|/run/gatekeeper/control.sock|$TMP/control.sock|" \
	-e "s|/var/lib/gatekeeper/state|$TMP/state|" \
	-e '/^user:/d' -e '/^  group:/d' conf/gatekeeper.yaml >"$TMP/gatekeeper.yaml"

say "1. No gatekeeper: the web server answers for site shop (it would, stopped or not)"
client_connects

say "2. gatekeeperd starts with conf/gatekeeper.yaml (site shop: online)"
"$GATEKEEPERD" --check -c "$TMP/gatekeeper.yaml" | sed 's/^/   /'
start_daemon "$NS_GW" "$TMP/gatekeeper.yaml"
client_connects

say "3. The operator stops the site: offline, action drop -> the client times out"
ctl offline shop --action drop
client_connects

say "4. Offline, action reject -> the client is refused at once (RST from gatekeeper)"
ctl offline shop --action reject
client_connects

say "5. Back online"
ctl online shop
client_connects
ctl status

say "6. gatekeeperd stops and removes its rules"
stop_daemon >/dev/null
sed 's/^/   /' "$DAEMON_LOG"
if no_daemon_rules "$NS_GW" >/dev/null; then
	echo "   no rule of gatekeeper is left in $NS_GW"
fi
