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
	# the control-socket abuse test (tests/e2e/ctl_abuse.py)
	python3
	# test certificates
	openssl
	# the health/metrics e2e test: promtool (Debian ships it in prometheus,
	# ~19 MB download) validates the metrics, curl fetches /metrics
	prometheus curl
	# man pages (scdoc); systemd-analyze verify/security, sysusers, tmpfiles
	# for the install and unit tests (systemd); the probe test's modprobe
	# check (strace); man -l for the rendered pages (man-db)
	scdoc systemd strace man-db
	# the e2e suite on Debian's stock kernel in qemu (tests/qemu/); that
	# kernel package is downloaded and unpacked there, never installed
	qemu-system-x86 busybox-static kmod
)
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${packages[@]}"
