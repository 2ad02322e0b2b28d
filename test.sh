#!/usr/bin/env bash
# Runs every homederp test, including the ones that need root, BIND 9,
# Chromium or qemu: it installs their Debian packages first and fails if any
# test is skipped. Test logs and artifacts (screenshots) go to ./test-output.
set -euo pipefail
cd "$(dirname "$0")"
if [ "$(id -u)" != 0 ]; then
	# Network namespaces and installing packages need root.
	exec sudo env "PATH=$PATH" "HOME=$HOME" "GOPATH=$(go env GOPATH)" "GOCACHE=$(go env GOCACHE)" "$0" "$@"
fi
scripts/install-test-deps.sh
export HOMEDERP_TEST_ALL=1
export HOMEDERP_TEST_OUTPUT="$PWD/test-output"
mkdir -p "$HOMEDERP_TEST_OUTPUT"
test -z "$(gofmt -l $(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $(git ls-files '*.go'); exit 1; }
go vet ./...
go build -o "$HOMEDERP_TEST_OUTPUT/testreport" ./internal/cmd/testreport
go test -count=1 -json -timeout 25m ./... "$@" | "$HOMEDERP_TEST_OUTPUT/testreport" -log "$HOMEDERP_TEST_OUTPUT/test.log"
# Every fuzz target a few seconds beyond its seed corpus (which the run
# above already replayed), unless only some tests were asked for;
# scripts/bench-soak.sh fuzzes for longer.
if [ $# -eq 0 ]; then
	scripts/fuzz.sh -time 5s -budget 2m
fi
