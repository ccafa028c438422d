#!/usr/bin/env bash
# Measure labctl's lifecycle on a lab file: image build (forced), cold up, warm up, smoke, down.
# Usage: bench/lifecycle.sh [LAB.yml] [--no-image]   Prints one line per phase, in seconds.
set -euo pipefail
cd "$(dirname "$0")/.."
lab=${1:-labs/default.yml}
labctl=.venv/bin/labctl
t() { local s; s=$(date +%s.%N); "$@" >/dev/null 2>&1; local rc=$?; echo "$(echo "$(date +%s.%N) - $s" | bc)"; return $rc; }
if [ "${2:-}" != "--no-image" ]; then
  printf 'image build (forced): %6.1f s\n' "$(t $labctl image build --force)"
fi
$labctl down -f "$lab" >/dev/null 2>&1 || true
printf 'cold up (no smoke):   %6.1f s\n' "$(t $labctl up -f "$lab" --no-smoke)"
printf 'warm up (no smoke):   %6.1f s\n' "$(t $labctl up -f "$lab" --no-smoke)"
printf 'smoke:                %6.1f s\n' "$(t $labctl smoke -f "$lab")"
printf 'down:                 %6.1f s\n' "$(t $labctl down -f "$lab")"
