#!/usr/bin/env bash
# The long forms of the soak tests (issue 13), for the benchmark run; the
# short forms run in ./test.sh. Figures go to $HOMEDERP_TEST_OUTPUT/soak
# (default ./test-output/soak): floods.csv (a sample a second) and
# floods.json from TestFloods, acme-renewal.json from
# TestRenewalAfterOutage, and fuzz/summary.txt from the fuzz targets.
#
#   scripts/bench-soak.sh                      # 60s floods, 3 renewals, 10m a fuzz target
#   SOAK_PHASE=5m SOAK_FUZZ=1h scripts/bench-soak.sh
#
# It needs what ./test.sh installs (BIND 9 for the ACME test) and runs
# as root for the same reasons.
set -euo pipefail
cd "$(dirname "$0")/.."
export HOMEDERP_TEST_ALL=1
export HOMEDERP_TEST_OUTPUT="${HOMEDERP_TEST_OUTPUT:-$PWD/test-output}"
mkdir -p "$HOMEDERP_TEST_OUTPUT/soak"
phase="${SOAK_PHASE:-60s}"
cycles="${SOAK_ACME_CYCLES:-3}"
fuzz="${SOAK_FUZZ:-10m}"

echo "floods: $phase a phase"
HOMEDERP_SOAK_PHASE="$phase" go test -count=1 -timeout 2h -run '^TestFloods$' -v ./appliance/ >"$HOMEDERP_TEST_OUTPUT/soak/floods.log" 2>&1 ||
	{ grep -E 'flood_test|^(---|FAIL|ok)' "$HOMEDERP_TEST_OUTPUT/soak/floods.log"; exit 1; }
grep -E 'flood_test.go:[0-9]+: (derp|half|stun|webui|whole)' "$HOMEDERP_TEST_OUTPUT/soak/floods.log"

echo "ACME renewal across $cycles CA outages"
HOMEDERP_SOAK_ACME_CYCLES="$cycles" go test -count=1 -timeout 2h -run '^TestRenewalAfterOutage$' -v ./relay/acmedns/ >"$HOMEDERP_TEST_OUTPUT/soak/acme-renewal.log" 2>&1 ||
	{ grep -E 'renewal_test|^(---|FAIL|ok)' "$HOMEDERP_TEST_OUTPUT/soak/acme-renewal.log"; exit 1; }
grep -E 'renewal_test.go:[0-9]+: cycle' "$HOMEDERP_TEST_OUTPUT/soak/acme-renewal.log"

echo "fuzzing: $fuzz a target"
scripts/fuzz.sh -time "$fuzz" -parallel "$(nproc)"
