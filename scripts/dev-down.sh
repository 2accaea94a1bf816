#!/usr/bin/env bash
# Stops what scripts/dev-up.sh started, idempotently:
#   - the Temporal dev server and the private slapd (by their pid files);
#   - test and demo VMs (libvirt domains named vmbt-* or demo-*): destroyed and
#     undefined, whether or not dev-up started libvirtd;
#   - libvirtd and virtlogd, only if dev-up started them (.dev/started-libvirt).
# State is kept: under .dev/ (Temporal DB, LDAP data) and in this checkout's data
# directory /var/lib/vmbackup-dev/<hash>/ (images, retained and backed-up files).
# With --purge the data directory goes too (deleting the checkout does not remove it),
# unless a VM that is left defined still uses a file in it.
# Usage: bash scripts/dev-down.sh [--purge]
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

export PATH="$PATH:/usr/sbin:/sbin"

LIBVIRT_URI="qemu:///system"
STARTED_LIBVIRT="$VMBACKUP_DEV/started-libvirt"

stop_by_pidfile() {
  local pidfile="$1" comm="$2" name="$3" pid
  if pid="$(pid_running "$pidfile" "$comm")"; then
    log "$name: stopping pid $pid"
    stop_pid "$pid" "$name"
  else
    log "$name: not running"
  fi
  rm -f -- "$pidfile"
}

remove_test_domains() {
  if ! command -v virsh >/dev/null 2>&1 || ! pgrep -x libvirtd >/dev/null; then
    return 0
  fi
  local -a names
  if ! mapfile -t names < <(timeout 20 virsh -c "$LIBVIRT_URI" list --all --name 2>/dev/null); then
    warn "libvirt: cannot list domains; test VMs left alone"
    return 0
  fi
  local name removed=0
  for name in "${names[@]}"; do
    case "$name" in
      vmbt-* | demo-*) ;;
      *) continue ;;
    esac
    if [[ "$(virsh -c "$LIBVIRT_URI" domstate "$name" 2>/dev/null || true)" != "shut off"* ]]; then
      virsh -c "$LIBVIRT_URI" destroy "$name" >/dev/null 2>&1 || true
    fi
    # Snapshot and checkpoint metadata and a managed save would block undefine.
    if ! virsh -c "$LIBVIRT_URI" undefine --managed-save --snapshots-metadata \
      --checkpoints-metadata --nvram "$name" >/dev/null 2>&1; then
      virsh -c "$LIBVIRT_URI" undefine "$name" >/dev/null 2>&1 ||
        warn "libvirt: could not undefine $name"
    fi
    removed=$((removed + 1))
    log "libvirt: removed test domain $name"
  done
  if ((removed == 0)); then
    log "libvirt: no vmbt-*/demo-* domains"
  fi
}

# stop_libvirt_daemon NAME: stops it when dev-up recorded starting it.
stop_libvirt_daemon() {
  local name="$1" pid
  if [[ ! -f "$STARTED_LIBVIRT" ]] || ! grep -qx -- "$name" "$STARTED_LIBVIRT"; then
    if pgrep -x "$name" >/dev/null; then
      log "$name: left running (not started by dev-up)"
    fi
    return 0
  fi
  if pid="$(pid_running "/run/$name.pid" "$name")"; then
    log "$name: stopping pid $pid (started by dev-up)"
    stop_pid "$pid" "$name"
  else
    log "$name: not running"
  fi
  local rest
  rest="$(grep -vx -- "$name" "$STARTED_LIBVIRT" || true)"
  if [[ -n "$rest" ]]; then
    printf '%s\n' "$rest" >"$STARTED_LIBVIRT"
  else
    rm -f -- "$STARTED_LIBVIRT"
  fi
}

# Prints the libvirt domains whose XML names a file in the data directory: asks
# libvirtd, or reads the persistent definitions when it does not run.
domains_using_data() {
  local name file
  if command -v virsh >/dev/null 2>&1 && pgrep -x libvirtd >/dev/null; then
    while IFS= read -r name; do
      [[ -n "$name" ]] || continue
      if virsh -c "$LIBVIRT_URI" dumpxml -- "$name" 2>/dev/null | grep -qF -- "$VMBACKUP_DATA/"; then
        printf '%s\n' "$name"
      fi
    done < <(timeout 20 virsh -c "$LIBVIRT_URI" list --all --name 2>/dev/null || true)
    return 0
  fi
  for file in /etc/libvirt/qemu/*.xml; do
    if [[ -f "$file" ]] && grep -qF -- "$VMBACKUP_DATA/" "$file"; then
      basename -- "$file" .xml
    fi
  done
}

# Removes this checkout's data directory, and the VM-visible directories that dev-up
# kept in .dev/ before they moved out of the repository.
purge_data() {
  local sub
  for sub in "${VMBACKUP_DATA_SUBDIRS[@]}"; do
    if [[ -d "$VMBACKUP_DEV/$sub" && ! -L "$VMBACKUP_DEV/$sub" ]]; then
      rm -rf -- "${VMBACKUP_DEV:?}/$sub"
      log "removed $VMBACKUP_DEV/$sub (old layout)"
    fi
  done
  if [[ ! -d "$VMBACKUP_DATA" ]]; then
    rm -f -- "$VMBACKUP_DEV/data"
    return 0
  fi
  local -a users
  mapfile -t users < <(domains_using_data)
  if ((${#users[@]} > 0)); then
    warn "$VMBACKUP_DATA kept: still used by ${users[*]}"
    return 0
  fi
  if mountpoint -q -- "$VMBACKUP_DATA/ramdisk"; then
    umount -- "$VMBACKUP_DATA/ramdisk" || warn "cannot unmount $VMBACKUP_DATA/ramdisk"
  fi
  rm -rf --one-file-system -- "$VMBACKUP_DATA"
  rm -f -- "$VMBACKUP_DEV/data"
  rmdir -- "$VMBACKUP_DATA_BASE" 2>/dev/null || true
  log "removed $VMBACKUP_DATA"
}

main() {
  local purge=0
  case "${1:-}" in
    "") ;;
    --purge) purge=1 ;;
    *) die "usage: bash scripts/dev-down.sh [--purge]" ;;
  esac
  require_root "dev-down"
  stop_by_pidfile "$VMBACKUP_DEV/temporal.pid" temporal Temporal
  stop_by_pidfile "$VMBACKUP_DEV/slapd/slapd.pid" slapd slapd
  remove_test_domains
  # Before libvirtd may stop: purge asks it which VMs still use the data directory.
  if ((purge)); then
    purge_data
  fi
  stop_libvirt_daemon libvirtd
  stop_libvirt_daemon virtlogd
  if ((purge)); then
    log "dev services down (state kept in .dev/)"
  else
    log "dev services down (state kept in .dev/ and $VMBACKUP_DATA; --purge removes the latter)"
  fi
}

main "$@"
