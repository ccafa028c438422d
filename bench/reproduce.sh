#!/usr/bin/env bash
# Measure reproducing a lab: lock, lock --check, save (size), down, restore (up --from: load the hosts, converge
# offline, smoke green), lock --check and a second converge (labctl provision: 0 changes) of the restored lab,
# down. The lab must be up (labctl up -f LAB.yml) first; the restored lab keeps its name.
# Usage: bench/reproduce.sh LAB.yml [ARCHIVE_DIR]   (the archive is removed at the end)
# A lab brought up with --no-provision: RESTORE_ARGS=--no-provision (its hosts have nothing to converge with;
# the second converge is then skipped too).
# VMs (provider: qemu): the archive's size per VM is printed too, and up --from's time is to SSH ready.
# Prints one line per phase, in seconds, the archive's size, both converges' change counts and the machine's
# load; full output in bench/.logs/. The default lab's figures: a copy of labs/default.yml with your own name
# and subnets, so no other lab's subnets are in the way.
set -uo pipefail
cd "$(dirname "$0")/.."
lab=${1:?usage: bench/reproduce.sh LAB.yml [ARCHIVE_DIR]}
dir=${2:-/var/tmp}
labctl=.venv/bin/labctl
logs=bench/.logs
mkdir -p "$logs"
name=$(python3 -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['name'])" "$lab")
archive="$dir/labctl-bench-$name.tar"
step() {  # step NAME CMD... : run, print elapsed seconds and the exit code
  local step_name=$1; shift
  local start=$EPOCHREALTIME
  "$@" >"$logs/reproduce-$step_name.log" 2>&1
  local rc=$?
  printf '%-22s %7.1f s  (exit %d)\n' "$step_name" "$(python3 -c "print($EPOCHREALTIME - $start)")" "$rc"
}
printf '%-22s %s (%s cores)\n' "load before" "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
step lock $labctl lock -f "$lab"
step lock-check $labctl lock --check -f "$lab"
step save $labctl save -f "$lab" -o "$archive"
printf '%-22s %7.0f MiB (%d hosts)\n' "archive" "$(($(stat -c %s "$archive") / 1048576))" \
  "$(python3 -c "import sys, yaml; print(len(yaml.safe_load(open(sys.argv[1]))['hosts']))" "$lab")"
python3 - "$archive" <<'PY'
import sys, tarfile
sizes = {}
with tarfile.open(sys.argv[1]) as tar:
    for m in tar.getmembers():
        parts = m.name.split("/")
        if len(parts) == 3 and parts[0] == "hosts" and parts[1].startswith("vm-") and m.isfile():
            sizes[parts[1][3:]] = sizes.get(parts[1][3:], 0) + m.size
for host, size in sizes.items():
    print(f"{'archive, VM ' + host:<22} {size / 1048576:7.0f} MiB (flattened disk, kernel and initrd once)")
PY
step down $labctl down -f "$lab"
# shellcheck disable=SC2086
step restore $labctl up --from "$archive" ${RESTORE_ARGS:-}
grep -h "converge ok\|smoke: " "$logs/reproduce-restore.log" | sed 's/^/  /'
step restored-lock-check $labctl lock --check --name "$name"
if [ -z "${RESTORE_ARGS:-}" ]; then
  step restored-provision $labctl provision --name "$name"
  grep -h "converge ok" "$logs/reproduce-restored-provision.log" | sed 's/^/  /'
fi
printf '%-22s %s\n' "load after" "$(cut -d' ' -f1-3 /proc/loadavg)"
step down-restored $labctl down --name "$name"
rm -f "$archive"
