#!/usr/bin/env bash
# Measure reproducing a lab: lock, lock --check, save (size), down, restore (up --from, incl. converge and
# smoke), lock --check of the restored lab, down. The lab must be up (labctl up -f LAB.yml) first.
# Usage: bench/reproduce.sh LAB.yml [ARCHIVE_DIR]   (the archive is removed at the end)
# A lab brought up with --no-provision: RESTORE_ARGS=--no-provision (its hosts have nothing to converge with).
# VMs (provider: qemu): the archive's size per VM is printed too, and up --from's time is to SSH ready.
# Prints one line per phase, in seconds, and the archive's size; full output in bench/.logs/.
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
grep -h "converge ok" "$logs/reproduce-restore.log" | sed 's/^/  /'
step restored-lock-check $labctl lock --check --name "$name"
step down-restored $labctl down --name "$name"
rm -f "$archive"
