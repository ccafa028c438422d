#!/usr/bin/env bash
# Measure labctl's lifecycle on a lab file: image build (forced), cold up, warm up, smoke, down.
# Usage: bench/lifecycle.sh [LAB.yml] [--no-image]
# Prints one line per phase, in seconds; the full output of each step goes to bench/.logs/.
set -uo pipefail
cd "$(dirname "$0")/.."
lab=${1:-labs/default.yml}
labctl=.venv/bin/labctl
logs=bench/.logs
mkdir -p "$logs"
step() {  # step NAME CMD... : run, print elapsed seconds and the exit code
  local name=$1; shift
  local start=$EPOCHREALTIME
  "$@" >"$logs/$name.log" 2>&1
  local rc=$?
  printf '%-22s %7.1f s  (exit %d)\n' "$name" "$(python3 -c "print($EPOCHREALTIME - $start)")" "$rc"
}
$labctl down -f "$lab" >/dev/null 2>&1
if [ "${2:-}" != "--no-image" ]; then
  step image-build-forced $labctl image build --force
fi
step cold-up-no-smoke $labctl up -f "$lab" --no-smoke
step warm-up-no-smoke $labctl up -f "$lab" --no-smoke
step smoke $labctl smoke -f "$lab"
step down $labctl down -f "$lab"
