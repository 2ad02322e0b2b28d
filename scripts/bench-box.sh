#!/usr/bin/env bash
# Takes the figures of the box itself in one run (BENCHMARKS.md, "The box"):
# builds every board's image (written bytes), boots the amd64 image in qemu
# (TCG, OVMF, 1 vCPU, 512 MiB like a Pi Zero 2 W) and measures power on →
# STUN and → DERP TLS with the pinned certificate, the memory of the whole
# box at idle and with 100 DERP clients, a `board update` round trip and
# where its time goes, and a power-on with the clock unset. If
# scripts/bench-ddns.sh exists, its figures (test-output/ddns-bench.json) are
# taken first and merged in. Everything lands in test-output/box-bench.json,
# each figure with the load average it was taken at.
#
# Needs root (network namespaces) and the test packages; like ./test.sh it
# re-runs itself under sudo and installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	exec sudo env "PATH=$PATH" "HOME=$HOME" "GOPATH=$(go env GOPATH)" "GOCACHE=$(go env GOCACHE)" "$0" "$@"
fi
scripts/install-test-deps.sh
export HOMEDERP_TEST_ALL=1
export HOMEDERP_TEST_OUTPUT="$PWD/test-output"
mkdir -p "$HOMEDERP_TEST_OUTPUT"
if [ -x scripts/bench-ddns.sh ]; then
	scripts/bench-ddns.sh
	export HOMEDERP_DDNS_BENCH_JSON="$HOMEDERP_TEST_OUTPUT/ddns-bench.json"
fi
go test -count=1 -run '^$' -bench '^BenchmarkBox$' -benchtime 1x -timeout 40m ./board/image "$@"
