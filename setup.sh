#!/usr/bin/env bash
# Install what labctl needs on a Debian 12 machine (as root): system packages, the venv, the base image.
# Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")"

PACKAGES=(podman runc debootstrap netavark aardvark-dns uidmap openssh-client iptables python3-venv git ca-certificates graphviz bash-completion apt-cacher-ng)
missing=()
for pkg in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
# The qemu provider (VMs): qemu without its recommends (no GUI, no firmware for other machines).
VM_PACKAGES=(qemu-system-x86 qemu-utils e2fsprogs iproute2)
vm_missing=()
for pkg in "${VM_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || vm_missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ] || [ ${#vm_missing[@]} -gt 0 ]; then
  echo "» apt-get install ${missing[*]} ${vm_missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if [ ${#missing[@]} -gt 0 ]; then apt-get install -y -qq "${missing[@]}" >/dev/null; fi
  if [ ${#vm_missing[@]} -gt 0 ]; then apt-get install -y -qq --no-install-recommends "${vm_missing[@]}" >/dev/null; fi
fi

# Every systemd container holds inotify instances of root's: Debian's 128 lasts for about 16 hosts.
# `labctl up` raises the limit itself when a lab needs more; this keeps a larger one across reboots.
SYSCTL_FILE=/etc/sysctl.d/60-labctl.conf
if [ -d /etc/sysctl.d ] && [ ! -f "$SYSCTL_FILE" ]; then
  echo "» $SYSCTL_FILE: fs.inotify.max_user_instances=1024, fs.inotify.max_user_watches=524288"
  printf '%s\n' "# labctl: room for labs of many systemd containers" \
    "fs.inotify.max_user_instances = 1024" "fs.inotify.max_user_watches = 524288" >"$SYSCTL_FILE"
fi
for setting in fs.inotify.max_user_instances=1024 fs.inotify.max_user_watches=524288; do
  key=${setting%%=*} want=${setting#*=}
  have=$(sysctl -n "$key" 2>/dev/null || echo 0)
  if [ "$have" -lt "$want" ]; then
    sysctl -q -w "$setting" || echo "» could not set $setting (labctl up raises it when a lab needs it)"
  fi
done

if [ ! -x .venv/bin/labctl ]; then
  echo "» creating .venv and installing labctl"
  python3 -m venv .venv
  .venv/bin/pip install -q --upgrade pip >/dev/null
fi
.venv/bin/pip install -q -e '.[test]'

# bash completion for labctl (verbs, lab names, host names): argcomplete's hook, loaded by bash-completion
mkdir -p /etc/bash_completion.d
.venv/bin/register-python-argcomplete labctl > /etc/bash_completion.d/labctl.tmp
mv /etc/bash_completion.d/labctl.tmp /etc/bash_completion.d/labctl

.venv/bin/labctl image build
