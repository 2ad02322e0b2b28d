#!/usr/bin/env bash
# Measures how fast DNS follows the line's new public address (issue 12):
# seconds from the router's WAN address changing to the zone's
# authoritative server answering the new one, the provider calls that
# takes, and the calls and outside traffic of steady state, for RFC 2136
# (real BIND 9) and Cloudflare (the ddns/cloudflaretest fake), with the
# production schedule, in the NAT test bed of network namespaces.
#
# Writes test-output/ddns-bench.json (or $HOMEDERP_TEST_OUTPUT/...) and the
# log next to it. Needs root, BIND 9 and nftables (scripts/install-test-deps.sh);
# takes one to two minutes, most of it the two real-clock rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	# Network namespaces need root.
	exec sudo env "PATH=$PATH" "HOME=$HOME" "GOPATH=$(go env GOPATH)" "GOCACHE=$(go env GOCACHE)" "$0" "$@"
fi
out="${HOMEDERP_TEST_OUTPUT:-$PWD/test-output}"
mkdir -p "$out"
rm -f "$out/ddns-bench.json"
HOMEDERP_TEST_ALL=1 HOMEDERP_DDNS_BENCH_OUT="$out/ddns-bench.json" \
	go test -count=1 -run '^$' -bench '^BenchmarkNATBedReaction$' -benchtime 1x -timeout 20m ./ddns/ 2>&1 |
	tee "$out/ddns-bench.log" | grep -E '^(goos|goarch|cpu|Benchmark|PASS|FAIL|ok)|ddns (rfc2136|cloudflare),|--- FAIL|natbed_.*: '
test -s "$out/ddns-bench.json" || { echo "bench-ddns: no $out/ddns-bench.json; see $out/ddns-bench.log" >&2; exit 1; }
echo "wrote $out/ddns-bench.json"
