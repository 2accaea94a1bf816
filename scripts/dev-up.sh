#!/usr/bin/env bash
# Starts the embedded development services, idempotently (what already runs is
# left alone), with their state under .dev/ in the repository:
#   - Temporal dev server   127.0.0.1:7233 (gRPC), http://127.0.0.1:8233 (UI)
#   - a private slapd       ldap://127.0.0.1:3389 (StartTLS) and ldaps://127.0.0.1:3636,
#                           suffix o=stepping-stone,c=ch, a private CA in .dev/ldap-tls/,
#                           the service identities vmbackup-control and vmbackup-node with
#                           the access rules of deploy/openldap/vmbackup-access.ldif
#   - libvirtd + virtlogd   qemu:///system (started only if not running)
# creates the directories QEMU must reach (images, retain, backup, RAM disk) in
# /var/lib/vmbackup-dev/<hash of the checkout's path>/, outside the repository,
# and writes .dev/env (shell-sourceable `export` lines) for the code and tests.
#
# Environment: LDAP_ADMIN_BIND_PASSWORD (default vmbackup-dev) sets the rootpw of the
# private slapd (cn=admin, for fixtures); the identities' passwords are made once.
# Usage: bash scripts/dev-up.sh
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

export PATH="$PATH:/usr/sbin:/sbin"

TEMPORAL_IP=127.0.0.1
TEMPORAL_PORT=7233
TEMPORAL_UI_PORT=8233
# Where the UI asks `vmbackup codec-server` (its default port) to decrypt payloads.
VMBACKUP_CODEC_ENDPOINT="http://127.0.0.1:8081"
TEMPORAL_NAMESPACE=default
TEMPORAL_PID="$VMBACKUP_DEV/temporal.pid"
TEMPORAL_LOG="$VMBACKUP_DEV/temporal.log"
TEMPORAL_DB="$VMBACKUP_DEV/temporal.db"

LDAP_HOST=127.0.0.1
LDAP_PORT=3389
LDAPS_PORT=3636
LDAP_URL="ldap://$LDAP_HOST:$LDAP_PORT"
LDAPS_URL="ldaps://$LDAP_HOST:$LDAPS_PORT"
LDAP_BASE_DN="o=stepping-stone,c=ch"
LDAP_ADMIN_BIND_DN="cn=admin,$LDAP_BASE_DN"
LDAP_ADMIN_BIND_PASSWORD="${LDAP_ADMIN_BIND_PASSWORD:-vmbackup-dev}"
LDAP_CONTROL_DN="cn=vmbackup-control,ou=vmbackup,ou=services,$LDAP_BASE_DN"
LDAP_NODE_DN="cn=vmbackup-node,ou=vmbackup,ou=services,$LDAP_BASE_DN"
LDAP_TLS_DIR="$VMBACKUP_DEV/ldap-tls"
LDAP_ACCESS_LDIF="$VMBACKUP_REPO/deploy/openldap/vmbackup-access.ldif"
LDAP_IDENTITIES_LDIF="$VMBACKUP_REPO/deploy/openldap/vmbackup-identities.ldif"
SLAPD_DIR="$VMBACKUP_DEV/slapd"
SLAPD_CONFIG="$SLAPD_DIR/config"
SLAPD_DATA="$SLAPD_DIR/data"
SLAPD_PID="$SLAPD_DIR/slapd.pid"
SLAPD_PWFILE="$SLAPD_DIR/bind-password"
SLAPD_STAMP="$SLAPD_DIR/config.stamp"
CONTROL_PWFILE="$SLAPD_DIR/control-password"
NODE_PWFILE="$SLAPD_DIR/node-password"
STONEY_SCHEMA="$VMBACKUP_REPO/ldap/schema/stoney.ldif"
# The project's own schema (vmbackupMode, ...), loaded after stoney.
VMBACKUP_SCHEMA="$VMBACKUP_REPO/ldap/schema/vmbackup.ldif"
SYSTEM_SCHEMA_DIR=/etc/ldap/schema

LIBVIRT_URI="qemu:///system"
STARTED_LIBVIRT="$VMBACKUP_DEV/started-libvirt"
CODEC_KEYS_FILE="$VMBACKUP_DEV/codec-keys"

# Bumped whenever the generated cn=config changes shape; forces a rebuild.
SLAPD_CONFIG_VERSION=2

# ---------------------------------------------------------------- Temporal ---

temporal_ready() {
  "$TEMPORAL_BIN" operator namespace describe "$TEMPORAL_NAMESPACE" \
    --address "$TEMPORAL_IP:$TEMPORAL_PORT" --command-timeout 3s >/dev/null 2>&1
}

start_temporal() {
  local pid
  if pid="$(pid_running "$TEMPORAL_PID" temporal)"; then
    if temporal_ready; then
      log "Temporal: already running (pid $pid)"
      ensure_search_attributes
      return 0
    fi
    log "Temporal: pid $pid runs, waiting until it answers"
  elif temporal_ready; then
    warn "Temporal: a server not started by dev-up already answers on $TEMPORAL_IP:$TEMPORAL_PORT; using it"
    return 0
  elif port_open "$TEMPORAL_IP" "$TEMPORAL_PORT"; then
    die "Temporal: port $TEMPORAL_PORT is in use by another program"
  else
    log "Temporal: starting dev server (log $TEMPORAL_LOG)"
    # setsid: own session, so the server survives the calling shell and its
    # terminal; not a process-group leader here, so the pid stays the same.
    setsid nohup "$TEMPORAL_BIN" server start-dev \
      --ip "$TEMPORAL_IP" --port "$TEMPORAL_PORT" --ui-port "$TEMPORAL_UI_PORT" \
      --db-filename "$TEMPORAL_DB" --namespace "$TEMPORAL_NAMESPACE" \
      --ui-codec-endpoint "$VMBACKUP_CODEC_ENDPOINT" \
      --search-attribute VmName=KeywordList --search-attribute Node=KeywordList \
      --search-attribute Outcome=Keyword --search-attribute RunDate=Datetime \
      --log-level warn \
      </dev/null >>"$TEMPORAL_LOG" 2>&1 &
    pid=$!
    printf '%s\n' "$pid" >"$TEMPORAL_PID"
  fi
  if ! wait_for 60 temporal_ready; then
    tail -n 30 -- "$TEMPORAL_LOG" >&2 || true
    die "Temporal: not ready on $TEMPORAL_IP:$TEMPORAL_PORT after 60 s (log $TEMPORAL_LOG)"
  fi
  if ! pid_running "$TEMPORAL_PID" temporal >/dev/null; then
    die "Temporal: answers, but pid file $TEMPORAL_PID does not name the server"
  fi
  ensure_search_attributes
  log "Temporal: ready (pid $pid)"
}

# A server started before an attribute was added gets it now (start-dev registers them
# only at its start).
ensure_search_attributes() {
  local pair name have
  have="$("$TEMPORAL_BIN" operator search-attribute list --address "$TEMPORAL_IP:$TEMPORAL_PORT" \
    --namespace "$TEMPORAL_NAMESPACE" 2>/dev/null | awk '{ print $1 }')"
  for pair in VmName:KeywordList Node:KeywordList Outcome:Keyword RunDate:Datetime; do
    name="${pair%%:*}"
    grep -qx -- "$name" <<<"$have" && continue
    log "Temporal: registering search attribute $name"
    "$TEMPORAL_BIN" operator search-attribute create --address "$TEMPORAL_IP:$TEMPORAL_PORT" \
      --namespace "$TEMPORAL_NAMESPACE" --name "$name" --type "${pair#*:}" >/dev/null
  done
}

# ------------------------------------------------------------------- slapd ---

# ldif_line ATTR VALUE: an LDIF attribute line, base64 when the value is not a
# plain SAFE-STRING (RFC 2849), so any repository path is written correctly.
ldif_line() {
  local attr="$1" value="$2"
  if [[ "$value" =~ ^[\ :\<] || "$value" =~ \ $ || ! "$value" =~ ^[[:print:]]*$ || "$value" == *[![:ascii:]]* ]]; then
    printf '%s:: %s\n' "$attr" "$(printf '%s' "$value" | base64 -w0)"
  else
    printf '%s: %s\n' "$attr" "$value"
  fi
}

# The inputs of the generated cn=config; a change rebuilds it.
slapd_config_stamp() {
  {
    printf 'version=%s\nrepo=%s\npassword=%s\n' "$SLAPD_CONFIG_VERSION" "$VMBACKUP_REPO" "$LDAP_ADMIN_BIND_PASSWORD"
    cat -- "$SYSTEM_SCHEMA_DIR/core.ldif" "$SYSTEM_SCHEMA_DIR/cosine.ldif" \
      "$SYSTEM_SCHEMA_DIR/inetorgperson.ldif" "$STONEY_SCHEMA" "$VMBACKUP_SCHEMA" "$LDAP_ACCESS_LDIF"
  } | sha256sum | cut -d' ' -f1
}

# Writes the slapd.ldif for slapadd -n0 to stdout.
generate_slapd_ldif() {
  local password_hash="$1" schema
  printf '# Generated by scripts/dev-up.sh; do not edit.\n'
  printf 'dn: cn=config\nobjectClass: olcGlobal\ncn: config\n'
  ldif_line olcPidFile "$SLAPD_PID"
  ldif_line olcArgsFile "$SLAPD_DIR/slapd.args"
  printf 'olcLogLevel: none\n'
  ldif_line olcTLSCACertificateFile "$LDAP_TLS_DIR/ca.pem"
  ldif_line olcTLSCertificateFile "$LDAP_TLS_DIR/server.pem"
  ldif_line olcTLSCertificateKeyFile "$LDAP_TLS_DIR/server.key"
  printf 'olcToolThreads: 1\n\n'

  printf 'dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n'
  printf 'olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n'

  printf 'dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n'
  # The schema entries are inlined rather than include:d so that no file URL
  # (with a possibly odd repository path) has to be encoded.
  for schema in "$SYSTEM_SCHEMA_DIR/core.ldif" "$SYSTEM_SCHEMA_DIR/cosine.ldif" \
    "$SYSTEM_SCHEMA_DIR/inetorgperson.ldif" "$STONEY_SCHEMA" "$VMBACKUP_SCHEMA"; do
    cat -- "$schema"
    printf '\n'
  done

  printf 'dn: olcDatabase={-1}frontend,cn=config\n'
  printf 'objectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\n'
  printf 'olcDatabase: {-1}frontend\nolcSizeLimit: 5000\n\n'

  printf 'dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\n'
  printf 'olcDatabase: {0}config\nolcRootDN: cn=admin,cn=config\n'
  ldif_line olcRootPW "$password_hash"
  printf '\n'

  printf 'dn: olcDatabase={1}mdb,cn=config\n'
  printf 'objectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n'
  printf 'olcDatabase: {1}mdb\n'
  ldif_line olcDbDirectory "$SLAPD_DATA"
  ldif_line olcSuffix "$LDAP_BASE_DN"
  ldif_line olcRootDN "$LDAP_ADMIN_BIND_DN"
  ldif_line olcRootPW "$password_hash"
  printf 'olcDbMaxSize: 1073741824\n'
  printf 'olcDbIndex: objectClass eq\nolcDbIndex: sstNode eq\nolcDbIndex: sstVirtualMachine eq\n'
  printf 'olcLastMod: TRUE\n'
  # The service identities' rules first; then the dev directory's own, open ones, which
  # those rules keep from granting the identities anything more.
  bash "$VMBACKUP_REPO/deploy/openldap/access-rules.sh" "$LDAP_ACCESS_LDIF" "$LDAP_BASE_DN" \
    'to attrs=userPassword by self write by anonymous auth by * none' \
    'to * by * read'
}

slapd_ready() {
  ldapwhoami -x -H "$LDAP_URL" -D "$LDAP_ADMIN_BIND_DN" -y "$SLAPD_PWFILE" -o nettimeout=2 >/dev/null 2>&1
}

stop_our_slapd() {
  local pid
  if pid="$(pid_running "$SLAPD_PID" slapd)"; then
    log "slapd: stopping pid $pid to rebuild its configuration"
    stop_pid "$pid" slapd
  fi
}

build_slapd_config() {
  local stamp
  stamp="$(slapd_config_stamp)"
  if [[ -d "$SLAPD_CONFIG" && -f "$SLAPD_STAMP" && "$(cat -- "$SLAPD_STAMP")" == "$stamp" ]]; then
    return 0
  fi
  if [[ -d "$SLAPD_CONFIG" ]]; then
    log "slapd: schema, password or location changed; rebuilding $SLAPD_CONFIG (data is kept)"
    stop_our_slapd
    rm -rf -- "$SLAPD_CONFIG"
  else
    log "slapd: building configuration in $SLAPD_CONFIG"
  fi
  mkdir -p -- "$SLAPD_CONFIG" "$SLAPD_DATA"
  chmod 700 -- "$SLAPD_DIR"
  local hash ldif="$SLAPD_DIR/slapd.ldif"
  hash="$(slappasswd -h '{SSHA}' -T "$SLAPD_PWFILE")"
  generate_slapd_ldif "$hash" >"$ldif"
  chmod 600 -- "$ldif"
  if ! slapadd -n0 -F "$SLAPD_CONFIG" -l "$ldif" >"$SLAPD_DIR/slapadd.log" 2>&1; then
    cat -- "$SLAPD_DIR/slapadd.log" >&2
    rm -rf -- "$SLAPD_CONFIG"
    die "slapd: slapadd -n0 failed for $ldif"
  fi
  printf '%s\n' "$stamp" >"$SLAPD_STAMP"
}

# Entries of the base skeleton: DN, then LDIF body lines.
skeleton_entry() {
  local dn="$1"
  ldif_line dn "$dn"
  case "$dn" in
    "$LDAP_BASE_DN")
      printf 'objectClass: top\nobjectClass: organization\no: stepping-stone\n'
      ;;
    *)
      printf 'objectClass: top\nobjectClass: organizationalUnit\n'
      local rdn="${dn%%,*}"
      ldif_line ou "${rdn#ou=}"
      ;;
  esac
}

ensure_ldap_skeleton() {
  local dn added=0
  local -a dns=(
    "$LDAP_BASE_DN"
    "ou=services,$LDAP_BASE_DN"
    "ou=virtualization,ou=services,$LDAP_BASE_DN"
    "ou=virtual machines,ou=virtualization,ou=services,$LDAP_BASE_DN"
    "ou=virtual machine pools,ou=virtualization,ou=services,$LDAP_BASE_DN"
    "ou=configuration,ou=virtualization,ou=services,$LDAP_BASE_DN"
  )
  for dn in "${dns[@]}"; do
    if ldapsearch -x -LLL -H "$LDAP_URL" -D "$LDAP_ADMIN_BIND_DN" -y "$SLAPD_PWFILE" \
      -b "$dn" -s base 1.1 >/dev/null 2>&1; then
      continue
    fi
    skeleton_entry "$dn" | ldapadd -x -H "$LDAP_URL" -D "$LDAP_ADMIN_BIND_DN" -y "$SLAPD_PWFILE" >/dev/null
    added=$((added + 1))
    log "slapd: added $dn"
  done
  if ((added == 0)); then
    log "slapd: base skeleton present"
  fi
}

# The private CA and slapd's certificate (for localhost and 127.0.0.1), made once.
ensure_ldap_tls() {
  if [[ ! -s "$LDAP_TLS_DIR/server.pem" || ! -s "$LDAP_TLS_DIR/server.key" ]]; then
    bash "$VMBACKUP_REPO/scripts/make-certs.sh" "$LDAP_TLS_DIR" --server-name localhost,127.0.0.1 >/dev/null
    log "slapd: made a private CA and server certificate in $LDAP_TLS_DIR"
  fi
  chmod 700 -- "$LDAP_TLS_DIR"
}

# ensure_password FILE: a random password, made once, owner-only.
ensure_password() {
  if [[ ! -s "$1" ]]; then
    (umask 077 && head -c 18 /dev/urandom | base64 -w0 >"$1")
  fi
  chmod 600 -- "$1"
}

# The entries of deploy/openldap/vmbackup-identities.ldif (those missing), then each
# identity's password from .dev when a TLS bind with it fails.
ensure_service_identities() {
  local block="" line dn
  local -a blocks=()
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" == \#* ]] && continue
    if [[ -z "$line" ]]; then
      [[ -n "$block" ]] && blocks+=("$block")
      block=""
    else
      block+="${line//"o=stepping-stone,c=ch"/"$LDAP_BASE_DN"}"$'\n'
    fi
  done <"$LDAP_IDENTITIES_LDIF"
  [[ -n "$block" ]] && blocks+=("$block")
  for block in "${blocks[@]}"; do
    dn="$(sed -n 's/^dn: //p' <<<"$block")"
    if ! ldapsearch -x -LLL -H "$LDAP_URL" -D "$LDAP_ADMIN_BIND_DN" -y "$SLAPD_PWFILE" \
      -b "$dn" -s base 1.1 >/dev/null 2>&1; then
      printf '%s' "$block" | ldapadd -x -H "$LDAP_URL" -D "$LDAP_ADMIN_BIND_DN" -y "$SLAPD_PWFILE" >/dev/null
      log "slapd: added $dn"
    fi
  done
  local pair pwfile
  for pair in "$LDAP_CONTROL_DN|$CONTROL_PWFILE" "$LDAP_NODE_DN|$NODE_PWFILE"; do
    dn="${pair%%|*}" pwfile="${pair#*|}"
    ensure_password "$pwfile"
    if ! LDAPTLS_CACERT="$LDAP_TLS_DIR/ca.pem" ldapwhoami -x -H "$LDAPS_URL" -D "$dn" -y "$pwfile" \
      -o nettimeout=5 >/dev/null 2>&1; then
      ldappasswd -x -H "$LDAP_URL" -D "$LDAP_ADMIN_BIND_DN" -y "$SLAPD_PWFILE" -T "$pwfile" "$dn" >/dev/null
      log "slapd: set the password of $dn"
    fi
  done
}

start_slapd() {
  mkdir -p -- "$SLAPD_DIR"
  chmod 700 -- "$SLAPD_DIR"
  (umask 077 && printf '%s' "$LDAP_ADMIN_BIND_PASSWORD" >"$SLAPD_PWFILE")
  ensure_ldap_tls
  build_slapd_config
  local pid
  if pid="$(pid_running "$SLAPD_PID" slapd)"; then
    log "slapd: already running (pid $pid)"
  elif slapd_ready; then
    # Another checkout's dev slapd (same suffix and credentials): share it, as with Temporal.
    warn "slapd: a server not started by this checkout's dev-up already answers on $LDAP_URL; using it"
    ensure_ldap_skeleton
    ensure_service_identities
    return 0
  elif port_open "$LDAP_HOST" "$LDAP_PORT" || port_open "$LDAP_HOST" "$LDAPS_PORT"; then
    die "slapd: port $LDAP_PORT or $LDAPS_PORT is in use by another program"
  else
    log "slapd: starting on $LDAP_URL and $LDAPS_URL"
    rm -f -- "$SLAPD_PID"
    # Runs as root (no -u), so it reads the owner-only key; daemonizes; olcPidFile is $SLAPD_PID.
    slapd -h "$LDAP_URL/ $LDAPS_URL/" -F "$SLAPD_CONFIG"
  fi
  if ! wait_for 30 slapd_ready; then
    die "slapd: no successful bind as $LDAP_ADMIN_BIND_DN on $LDAP_URL after 30 s"
  fi
  pid="$(pid_running "$SLAPD_PID" slapd)" || die "slapd: answers, but $SLAPD_PID does not name it"
  log "slapd: ready (pid $pid)"
  ensure_ldap_skeleton
  ensure_service_identities
}

# ----------------------------------------------------------------- libvirt ---

record_started() {
  local name="$1"
  touch -- "$STARTED_LIBVIRT"
  if ! grep -qx -- "$name" "$STARTED_LIBVIRT"; then
    printf '%s\n' "$name" >>"$STARTED_LIBVIRT"
  fi
}

# Without udev, /dev/kvm may be root-only. libvirt then caches QEMU capabilities probed
# with KVM but finds KVM unusable for the qemu user on every start, and re-probes (about
# 7 s per start or restore). Debian's udev rule gives it to group kvm, mode 660: do the same.
fix_kvm_node() {
  if [[ -c /dev/kvm ]] && getent group kvm >/dev/null && [[ "$(stat -c '%G %a' /dev/kvm)" != "kvm 660" ]]; then
    chgrp kvm /dev/kvm && chmod 660 /dev/kvm && log "libvirt: /dev/kvm set to group kvm, mode 660 (as udev would)"
  fi
}

start_libvirt() {
  mkdir -p /run/libvirt
  fix_kvm_node
  if pgrep -x virtlogd >/dev/null; then
    log "virtlogd: already running"
  else
    log "virtlogd: starting"
    virtlogd -d
    record_started virtlogd
  fi
  if pgrep -x libvirtd >/dev/null; then
    log "libvirtd: already running"
  else
    log "libvirtd: starting"
    libvirtd -d
    record_started libvirtd
  fi
  if ! wait_for 30 virsh -c "$LIBVIRT_URI" version; then
    virsh -c "$LIBVIRT_URI" version >&2 || true
    die "libvirt: virsh -c $LIBVIRT_URI version fails after 30 s"
  fi
  log "libvirt: $LIBVIRT_URI ready"
}

# ------------------------------------------------------- VM-visible files ---

# The user QEMU runs as under qemu:///system (Debian: libvirt-qemu, Fedora: qemu).
qemu_user() {
  local user
  for user in libvirt-qemu qemu; do
    if id -u -- "$user" >/dev/null 2>&1; then
      printf '%s' "$user"
      return 0
    fi
  done
  return 1
}

# Creates the per-checkout data directory and its roots. Every directory from / down
# to the roots must be traversable by QEMU's user, or libvirt fails with "Cannot access
# storage file ... Permission denied"; the repository and the home it lies in are left
# as they are.
prepare_data_dir() {
  local sub user dir
  local -a dirs=("$VMBACKUP_DATA_BASE" "$VMBACKUP_DATA")
  for sub in "${VMBACKUP_DATA_SUBDIRS[@]}"; do
    dirs+=("$VMBACKUP_DATA/$sub")
  done
  mkdir -p -- "${dirs[@]}"
  # The RAM disk is RAM, as on a node: a memory file written to a real disk makes a live
  # snapshot's pause grow with the disk's lag behind QEMU.
  if ! mountpoint -q -- "$VMBACKUP_DATA/ramdisk"; then
    mount -t tmpfs -o "size=${VMBACKUP_DEV_RAMDISK_SIZE:-8g},mode=0755" vmbackup-ramdisk "$VMBACKUP_DATA/ramdisk" ||
      warn "cannot mount a tmpfs on $VMBACKUP_DATA/ramdisk; it stays a directory on disk"
  fi
  chmod 0755 -- "${dirs[@]}"
  # Which checkout a data directory belongs to, for whoever finds it later.
  printf '%s\n' "$VMBACKUP_REPO" >"$VMBACKUP_DATA/checkout"
  ln -sfn -- "$VMBACKUP_DATA" "$VMBACKUP_DEV/data"
  if ! user="$(qemu_user)"; then
    warn "no libvirt-qemu or qemu user; not checking that QEMU can reach $VMBACKUP_DATA"
    return 0
  fi
  for dir in "${dirs[@]}"; do
    if ! runuser -u "$user" -- test -x "$dir"; then
      die "QEMU's user $user cannot traverse to $dir; make every directory above it searchable (o+x)"
    fi
  done
}

# ------------------------------------------------------------ codec key ---

# The payload codec's key (AES-256, see src/codec/keys.ts), made once and kept: histories
# written with it stay readable across runs. Owner-only, or the codec refuses it.
ensure_codec_key() {
  if [[ ! -s "$CODEC_KEYS_FILE" ]]; then
    (umask 077 && printf 'dev-1 %s\n' "$(head -c 32 /dev/urandom | base64 -w0)" >"$CODEC_KEYS_FILE.tmp")
    mv -f -- "$CODEC_KEYS_FILE.tmp" "$CODEC_KEYS_FILE"
    log "codec: created the dev payload key $CODEC_KEYS_FILE"
  fi
  chmod 600 -- "$CODEC_KEYS_FILE"
}

# --------------------------------------------------------------- env file ---

write_env() {
  local file="$VMBACKUP_DEV/env" tmp
  tmp="$(mktemp -- "$VMBACKUP_DEV/env.XXXXXX")"
  {
    printf '# Written by scripts/dev-up.sh; source it: set -a; . .dev/env; set +a\n'
    local pair name
    for pair in \
      "TEMPORAL_ADDRESS=$TEMPORAL_IP:$TEMPORAL_PORT" \
      "TEMPORAL_NAMESPACE=$TEMPORAL_NAMESPACE" \
      "TEMPORAL_UI_URL=http://$TEMPORAL_IP:$TEMPORAL_UI_PORT" \
      "TEMPORAL_CLI=$TEMPORAL_BIN" \
      "PROMTOOL=$PROMTOOL_BIN" \
      "VMBACKUP_CODEC_ENDPOINT=$VMBACKUP_CODEC_ENDPOINT" \
      "VMBACKUP_CODEC_KEYS_FILE=$CODEC_KEYS_FILE" \
      "LDAP_URL=$LDAPS_URL" \
      "LDAP_CA_FILE=$LDAP_TLS_DIR/ca.pem" \
      "LDAP_BIND_DN=$LDAP_CONTROL_DN" \
      "LDAP_BIND_PASSWORD=$(<"$CONTROL_PWFILE")" \
      "LDAP_NODE_BIND_DN=$LDAP_NODE_DN" \
      "LDAP_NODE_BIND_PASSWORD=$(<"$NODE_PWFILE")" \
      "LDAP_ADMIN_BIND_DN=$LDAP_ADMIN_BIND_DN" \
      "LDAP_ADMIN_BIND_PASSWORD=$LDAP_ADMIN_BIND_PASSWORD" \
      "LDAP_PLAIN_URL=$LDAP_URL" \
      "LDAP_BASE_DN=$LDAP_BASE_DN" \
      "LIBVIRT_URI=$LIBVIRT_URI" \
      "VMBACKUP_IMAGES_ROOT=$VMBACKUP_DATA/virtualization" \
      "VMBACKUP_RETAIN_ROOT=$VMBACKUP_DATA/retain" \
      "VMBACKUP_BACKUP_ROOT=$VMBACKUP_DATA/backup" \
      "VMBACKUP_RAMDISK=$VMBACKUP_DATA/ramdisk" \
      "VMBACKUP_STORAGE_ROOTS=$VMBACKUP_DATA/retain:$VMBACKUP_DATA/backup:$VMBACKUP_DATA/ramdisk"; do
      name="${pair%%=*}"
      printf 'export %s=%s\n' "$name" "$(shell_quote "${pair#*=}")"
    done
  } >"$tmp"
  chmod 600 -- "$tmp"
  mv -f -- "$tmp" "$file"
}

main() {
  local started=$SECONDS
  bash "$VMBACKUP_REPO/scripts/setup.sh"
  require_root "dev-up"
  mkdir -p -- "$VMBACKUP_DEV"
  prepare_data_dir
  start_temporal
  start_slapd
  start_libvirt
  ensure_codec_key
  write_env
  log "dev services up in $((SECONDS - started)) s:"
  log "  Temporal   $TEMPORAL_IP:$TEMPORAL_PORT namespace $TEMPORAL_NAMESPACE, UI http://$TEMPORAL_IP:$TEMPORAL_UI_PORT (log .dev/temporal.log)"
  log "  LDAP       $LDAPS_URL (and $LDAP_URL) base $LDAP_BASE_DN bind $LDAP_CONTROL_DN"
  log "  libvirt    $LIBVIRT_URI"
  log "  files      $VMBACKUP_DATA/{virtualization,retain,backup,ramdisk} (.dev/data)"
  log "  env        $VMBACKUP_DEV/env  (set -a; . .dev/env; set +a)"
}

main "$@"
