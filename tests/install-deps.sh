#!/bin/bash
# Installs what gatekeeper needs to build and test on Debian 12 (as root).
# README.md says why each package is there.
set -euo pipefail
packages=(
	# build
	gcc meson ninja-build pkg-config
	# libraries the daemon links
	libnetfilter-queue-dev libmnl-dev libyaml-dev libnftables-dev libssl-dev
	libsystemd-dev libcap-ng-dev
	# unit tests
	libcmocka-dev
	# fuzzing (tests/fuzz): clang's libFuzzer and its sanitizer runtimes
	clang libclang-rt-14-dev
	# kernel-side tools: iptables-nft/-legacy for the xt backend, nft and ip for tests
	nftables iptables iproute2
	# test certificates
	openssl
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
