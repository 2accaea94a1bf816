#!/usr/bin/env bash
# Stops what scripts/dev-up.sh started, idempotently:
#   - the Temporal dev server and the private slapd (by their pid files);
#   - test and demo VMs (libvirt domains named vmbt-* or demo-*): destroyed and
#     undefined, whether or not dev-up started libvirtd;
#   - libvirtd and virtlogd, only if dev-up started them (.dev/started-libvirt).
# State under .dev/ (Temporal DB, LDAP data, images) is kept.
# Usage: bash scripts/dev-down.sh
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

main() {
  require_root "dev-down"
  stop_by_pidfile "$VMBACKUP_DEV/temporal.pid" temporal Temporal
  stop_by_pidfile "$VMBACKUP_DEV/slapd/slapd.pid" slapd slapd
  remove_test_domains
  stop_libvirt_daemon libvirtd
  stop_libvirt_daemon virtlogd
  log "dev services down (state kept in .dev/)"
}

main "$@"
