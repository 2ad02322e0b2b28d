#!/usr/bin/env bash
# The long form of TestPowerCuts (BENCHMARKS.md, "Power cuts"): boots the
# amd64 image in qemu (TCG, OVMF, 1 vCPU, 512 MiB like a Pi Zero 2 W) and
# pulls the plug 50 times (SIGKILL to qemu) at random moments during a
# config save from the web UI, a tailscaled login to testcontrol, a
# `board update` and the first ACME DNS-01 certificate from Pebble (BIND
# in the VM's namespace answering the challenge), in turn, powering the
# box on again after each. Every boot
# must serve the relay with the same pin and key, one whole configuration
# generation, the old or the new build from its own root partition, and
# tailscaled logged in with the same node key; at the end /perm must pass
# e2fsck -fn from outside. Each cut is a line in the log; the run lands in
# test-output/powercut-figures.json.
#
# HOMEDERP_POWERCUT_CUTS sets the number of cuts (default 50);
# HOMEDERP_POWERCUT_SEED replays a run's moments (the log names its seed);
# HOMEDERP_POWERCUT_KINDS takes only some kinds in turn, e.g. "acme" or
# "config,acme" (of config, login, update, acme, and bootwrite: an update
# cut in the second after its root is confirmed, while the box writes its
# boot partition, MBR and switch, which uniform cuts rarely hit; it is
# taken only when named).
#
# Needs root (network namespaces) and the test packages; like ./test.sh it
# re-runs itself under sudo and installs them.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" != 0 ]; then
	exec sudo env "PATH=$PATH" "HOME=$HOME" "GOPATH=$(go env GOPATH)" "GOCACHE=$(go env GOCACHE)" \
		${HOMEDERP_POWERCUT_CUTS:+"HOMEDERP_POWERCUT_CUTS=$HOMEDERP_POWERCUT_CUTS"} \
		${HOMEDERP_POWERCUT_SEED:+"HOMEDERP_POWERCUT_SEED=$HOMEDERP_POWERCUT_SEED"} \
		${HOMEDERP_POWERCUT_KINDS:+"HOMEDERP_POWERCUT_KINDS=$HOMEDERP_POWERCUT_KINDS"} "$0" "$@"
fi
scripts/install-test-deps.sh
export HOMEDERP_TEST_ALL=1
export HOMEDERP_TEST_OUTPUT="$PWD/test-output"
export HOMEDERP_POWERCUT_CUTS="${HOMEDERP_POWERCUT_CUTS:-50}"
mkdir -p "$HOMEDERP_TEST_OUTPUT"
# About 1.5 minutes a cut on a 2-core machine: boots are 30–60 s under TCG.
go test -count=1 -run '^TestPowerCuts$' -v -timeout 150m ./board/image "$@" | tee "$HOMEDERP_TEST_OUTPUT/powercut.log"
