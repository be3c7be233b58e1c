#!/bin/bash
# Installs what gatekeeper needs to build and test on Debian 12 (as root):
# the packages listed in tests/packages.txt (README.md says why each is there).
set -euo pipefail
mapfile -t packages < <(sed -e 's/#.*//' "$(dirname "$0")/packages.txt" | tr -s ' \t' '\n' | grep .)
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
