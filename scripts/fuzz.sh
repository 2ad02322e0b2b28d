#!/usr/bin/env bash
# Runs every native Go fuzz target of the module (each `func FuzzXxx` in a
# _test.go file) for a while, one after the other, with the committed seed
# corpora (testdata/fuzz/...) as the start. A failing input is written to
# the package's testdata/fuzz/FuzzXxx/ by `go test`, where it becomes a
# test case forever once committed.
#
#   scripts/fuzz.sh                  # 5s per target
#   scripts/fuzz.sh -time 5s -budget 2m     # as ./test.sh runs it
#   scripts/fuzz.sh -time 10m -parallel 2   # a real run, for the benchmark script
#   scripts/fuzz.sh -only FuzzForms -time 1m
#
# -budget bounds the whole run: no target starts once it is spent. A fuzz
# build instruments every package the target imports, so with empty Go
# caches (CI) the first target of a package costs about a minute of
# building; the run then starts at a different target each day, so that
# over a few runs each gets its turn. (go test replays every seed corpus
# in every run anyway.)
#
# Logs go to $HOMEDERP_TEST_OUTPUT/fuzz (default ./test-output/fuzz); the
# last line says how many targets passed and failed.
set -euo pipefail
cd "$(dirname "$0")/.."
time=5s
parallel=1
only=""
budget=0
while [ $# -gt 0 ]; do
	case "$1" in
	-time) time="$2"; shift 2 ;;
	-parallel) parallel="$2"; shift 2 ;;
	-only) only="$2"; shift 2 ;;
	-budget) budget="$2"; shift 2 ;;
	*) echo "usage: $0 [-time 5s] [-parallel 1] [-budget 2m] [-only FuzzName]" >&2; exit 2 ;;
	esac
done
out="${HOMEDERP_TEST_OUTPUT:-$PWD/test-output}/fuzz"
mkdir -p "$out"

# package directory and target name, one pair a line
targets=$(git ls-files '*_test.go' | xargs grep -H '^func Fuzz[A-Za-z0-9_]*(f \*testing.F)' |
	sed -E 's#^(.*)/[^/]*_test.go:func (Fuzz[A-Za-z0-9_]*)\(.*#\1 \2#' | sort -u)
budget_s=0
case "$budget" in
*m) budget_s=$((${budget%m} * 60)) ;;
*s) budget_s=${budget%s} ;;
0) ;;
*) echo "-budget $budget: want e.g. 120s or 2m" >&2; exit 2 ;;
esac
if [ "$budget_s" -gt 0 ]; then
	# rotate: today's first target is the (day of the year)th
	n=$(wc -l <<<"$targets")
	k=$((10#$(date +%j) % n))
	targets=$(tail -n +$((k + 1)) <<<"$targets"; head -n "$k" <<<"$targets")
fi
# deadline_race LOG NAME: whether go test failed only with go1.26's
# fuzz-coordinator race (golang/go#75804, fixed in go1.27): at the end of
# -fuzztime the coordinator sometimes reports its own deadline as the
# target's failure, "--- FAIL: FuzzX (5.02s)" followed by nothing but
# "    context deadline exceeded". A real failure looks different: go test
# names the failing input it wrote under testdata/fuzz/, which the caller
# also checks for.
deadline_race() {
	local log="$1" name="$2"
	grep -q "^--- FAIL: $name (" "$log" || return 1
	grep -q 'Failing input written to\|panic:\|fuzzing process hung' "$log" && return 1
	[ "$(grep -A1 "^--- FAIL: $name (" "$log" | tail -1)" = "    context deadline exceeded" ] || return 1
	# nothing else failed: the only FAIL lines are the target's own and go test's summary
	[ "$(grep -c '^\(--- \)\?FAIL' "$log")" -le 3 ]
}
began=$(date +%s)
left=0
passed=0
failed=0
summary="$out/summary.txt"
: >"$summary"
while read -r dir name; do
	[ -z "$name" ] && continue
	[ -n "$only" ] && [ "$name" != "$only" ] && continue
	if [ "$budget_s" -gt 0 ] && [ $(($(date +%s) - began)) -ge "$budget_s" ]; then
		echo "fuzz: $name ./$dir not fuzzed: the budget of $budget is spent (its seeds ran in go test)" | tee -a "$summary"
		left=$((left + 1))
		continue
	fi
	log="$out/$name.log"
	start=$(date +%s)
	corpus="$dir/testdata/fuzz/$name"
	before=$(git status --porcelain --untracked-files=all -- "$corpus")
	note=""
	if go test -run '^$' -fuzz "^${name}\$" -fuzztime "$time" -parallel "$parallel" "./$dir" >"$log" 2>&1; then
		result=ok
	elif deadline_race "$log" "$name" && [ "$(git status --porcelain --untracked-files=all -- "$corpus")" = "$before" ]; then
		result=ok
		note=", stopped by golang/go#75804 with no failing input"
	else
		result=FAIL
	fi
	if [ "$result" = ok ]; then
		passed=$((passed + 1))
	else
		failed=$((failed + 1))
	fi
	# the last progress line: "fuzz: elapsed: 5s, execs: 12345 (2469/sec), ..."
	# (none when the time went on replaying the corpus)
	execs=$(grep -o 'execs: [0-9]*' "$log" | tail -1 | cut -d' ' -f2 || true)
	line="$result $name ./$dir: ${execs:-0} execs in $time ($(($(date +%s) - start))s with the build$note)"
	echo "fuzz: $line" | tee -a "$summary"
	if [ "$result" = FAIL ]; then
		grep -v '^fuzz: elapsed' "$log" | tail -40
	fi
done <<<"$targets"
[ "$left" -gt 0 ] && echo "fuzz: $left targets left for another run"
echo "fuzz: $passed passed, $failed failed"
[ "$failed" = 0 ]
