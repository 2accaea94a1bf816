#!/usr/bin/env bash
# Entry point of the vmbackup OpenLDAP image (deploy/openldap/Dockerfile): runs slapd in
# the foreground with the stoney and vmbackup schemas and one MDB database for LDAP_BASE_DN.
#
# At every start it generates cn=config afresh from the environment and the schema files
# (core, cosine, inetorgperson, stoney, vmbackup), so a new image with a changed stoney.ldif
# or vmbackup.ldif or a changed LDAP_ADMIN_PASSWORD takes effect on restart. The directory
# data lives in SLAPD_DATA_DIR (a volume) and is kept; at the first start, when it is empty,
# the base entry and the stoney cloud skeleton below it are created:
#   <base>
#   ou=services / ou=virtualization / ou=virtual machines, ou=virtual machine pools,
#   ou=configuration
# Changes made to cn=config at run time (ldapmodify on cn=config) do not survive a restart:
# change this script instead. The database's access rules start with those for the
# vmbackup service identities (vmbackup-access.ldif). The identities themselves
# (vmbackup-identities.ldif: ou=vmbackup,ou=services,<base> with cn=vmbackup-control and
# cn=vmbackup-node) are added at every start when missing; a password given for one
# (LDAP_CONTROL_PASSWORD, LDAP_NODE_PASSWORD) replaces its userPassword at every start,
# so it can be changed later, and without one the stored password is kept (until set,
# the file's placeholder, which matches no password).
#
# Environment:
#   LDAP_ADMIN_PASSWORD  (required) password of the root DN cn=admin,<base>
#   LDAP_CONTROL_PASSWORD, LDAP_NODE_PASSWORD
#                        optional: passwords of cn=vmbackup-control and cn=vmbackup-node
#                        (ou=vmbackup,ou=services,<base>), stored hashed ({SSHA})
#   LDAP_BASE_DN         suffix, default o=stepping-stone,c=ch (first RDN o= or dc=)
#   LDAP_LOG_LEVEL       slapd -d level, default 0 (start-up and errors only); "stats"
#                        logs every connection and operation
#   LDAP_TLS_CERT_FILE, LDAP_TLS_KEY_FILE
#                        the server's certificate (PEM, with any intermediates) and key,
#                        provided by the operator; both or neither. With them slapd also
#                        listens on ldaps:/// and offers StartTLS on ldap:///. They are
#                        copied for slapd's account at start, so the mounted key may be
#                        root-only.
#   LDAP_TLS_CA_FILE     optional: the CA certificates slapd sends along the chain
#   SLAPD_URLS           listeners, default "ldap:/// ldapi:///" (and ldaps:/// with TLS)
#   SLAPD_CONFIG_DIR, SLAPD_DATA_DIR, SLAPD_RUN_DIR, SLAPD_USER, SLAPD_GROUP,
#   STONEY_SCHEMA, VMBACKUP_SCHEMA, VMBACKUP_ACCESS, VMBACKUP_IDENTITIES, SYSTEM_SCHEMA_DIR
#                        paths and the account slapd runs as; the defaults fit the image
set -euo pipefail

LDAP_BASE_DN="${LDAP_BASE_DN:-o=stepping-stone,c=ch}"
LDAP_LOG_LEVEL="${LDAP_LOG_LEVEL:-0}"
LDAP_TLS_CERT_FILE="${LDAP_TLS_CERT_FILE:-}"
LDAP_TLS_KEY_FILE="${LDAP_TLS_KEY_FILE:-}"
LDAP_TLS_CA_FILE="${LDAP_TLS_CA_FILE:-}"
if [[ -n "$LDAP_TLS_CERT_FILE" ]]; then
  SLAPD_URLS="${SLAPD_URLS:-ldap:/// ldaps:/// ldapi:///}"
else
  SLAPD_URLS="${SLAPD_URLS:-ldap:/// ldapi:///}"
fi
SLAPD_CONFIG_DIR="${SLAPD_CONFIG_DIR:-/etc/ldap/slapd.d}"
SLAPD_DATA_DIR="${SLAPD_DATA_DIR:-/var/lib/ldap}"
SLAPD_RUN_DIR="${SLAPD_RUN_DIR:-/run/slapd}"
SLAPD_USER="${SLAPD_USER:-openldap}"
SLAPD_GROUP="${SLAPD_GROUP:-openldap}"
STONEY_SCHEMA="${STONEY_SCHEMA:-/usr/local/share/vmbackup/stoney.ldif}"
# The project's own schema (ldap/schema/vmbackup.ldif), loaded after stoney.
VMBACKUP_SCHEMA="${VMBACKUP_SCHEMA:-/usr/local/share/vmbackup/vmbackup.ldif}"
VMBACKUP_ACCESS="${VMBACKUP_ACCESS:-/usr/local/share/vmbackup/vmbackup-access.ldif}"
ACCESS_RULES="${ACCESS_RULES:-/usr/local/share/vmbackup/access-rules.sh}"
VMBACKUP_IDENTITIES="${VMBACKUP_IDENTITIES:-/usr/local/share/vmbackup/vmbackup-identities.ldif}"
# vmbackup-access.ldif and vmbackup-identities.ldif are written for this suffix.
EXAMPLE_BASE_DN='o=stepping-stone,c=ch'
SYSTEM_SCHEMA_DIR="${SYSTEM_SCHEMA_DIR:-/etc/ldap/schema}"
# Written into the data volume: the suffix the data belongs to.
SUFFIX_STAMP="$SLAPD_DATA_DIR/.vmbackup-suffix"
# Root over the local socket (docker compose exec openldap ldapadd -Y EXTERNAL -H ldapi:///).
PEERCRED_ROOT='gidNumber=0+uidNumber=0,cn=peercred,cn=external,cn=auth'

log() {
  printf '[openldap] %s\n' "$*" >&2
}

die() {
  printf '[openldap] ERROR: %s\n' "$*" >&2
  exit 1
}

# ldif_line ATTR VALUE: base64 when the value is not a plain SAFE-STRING (RFC 2849).
ldif_line() {
  local attr="$1" value="$2"
  if [[ "$value" =~ ^[\ :\<] || "$value" =~ \ $ || ! "$value" =~ ^[[:print:]]*$ || "$value" == *[![:ascii:]]* ]]; then
    printf '%s:: %s\n' "$attr" "$(printf '%s' "$value" | base64 -w0)"
  else
    printf '%s: %s\n' "$attr" "$value"
  fi
}

check_environment() {
  [[ -n "${LDAP_ADMIN_PASSWORD:-}" ]] || die "LDAP_ADMIN_PASSWORD is not set"
  [[ "$LDAP_BASE_DN" =~ ^(o|dc)=[^,=]+(,[A-Za-z]+=[^,=]+)*$ ]] ||
    die "LDAP_BASE_DN must look like o=name,c=ch or dc=example,dc=org, got '$LDAP_BASE_DN'"
  local f
  for f in core cosine inetorgperson; do
    [[ -r "$SYSTEM_SCHEMA_DIR/$f.ldif" ]] || die "missing $SYSTEM_SCHEMA_DIR/$f.ldif"
  done
  [[ -r "$STONEY_SCHEMA" ]] || die "missing the stoney schema $STONEY_SCHEMA"
  [[ -r "$VMBACKUP_SCHEMA" ]] || die "missing the vmbackup schema $VMBACKUP_SCHEMA"
  [[ -r "$VMBACKUP_ACCESS" ]] || die "missing the access rules $VMBACKUP_ACCESS"
  [[ -r "$VMBACKUP_IDENTITIES" ]] || die "missing the service identities $VMBACKUP_IDENTITIES"
  if [[ -n "$LDAP_TLS_CERT_FILE" || -n "$LDAP_TLS_KEY_FILE" ]]; then
    [[ -n "$LDAP_TLS_CERT_FILE" && -n "$LDAP_TLS_KEY_FILE" ]] ||
      die "LDAP_TLS_CERT_FILE and LDAP_TLS_KEY_FILE go together: a certificate needs its key"
    for f in "$LDAP_TLS_CERT_FILE" "$LDAP_TLS_KEY_FILE" ${LDAP_TLS_CA_FILE:+"$LDAP_TLS_CA_FILE"}; do
      [[ -r "$f" ]] || die "cannot read the TLS file $f"
    done
  fi
  local stored=""
  [[ -r "$SUFFIX_STAMP" ]] && stored="$(<"$SUFFIX_STAMP")"
  if [[ -n "$stored" && "$stored" != "$LDAP_BASE_DN" ]]; then
    die "the data in $SLAPD_DATA_DIR belongs to $stored, but LDAP_BASE_DN is $LDAP_BASE_DN"
  fi
}

# The cn=config LDIF for slapadd -n0; $1 is the hashed root password.
config_ldif() {
  local password_hash="$1" schema
  printf 'dn: cn=config\nobjectClass: olcGlobal\ncn: config\n'
  ldif_line olcPidFile "$SLAPD_RUN_DIR/slapd.pid"
  ldif_line olcArgsFile "$SLAPD_RUN_DIR/slapd.args"
  printf 'olcLogLevel: none\nolcToolThreads: 1\n'
  if [[ -n "$LDAP_TLS_CERT_FILE" ]]; then
    ldif_line olcTLSCertificateFile "$SLAPD_RUN_DIR/tls/server.pem"
    ldif_line olcTLSCertificateKeyFile "$SLAPD_RUN_DIR/tls/server.key"
    [[ -z "$LDAP_TLS_CA_FILE" ]] || ldif_line olcTLSCACertificateFile "$SLAPD_RUN_DIR/tls/ca.pem"
  fi
  printf '\n'

  printf 'dn: cn=module{0},cn=config\nobjectClass: olcModuleList\ncn: module{0}\n'
  printf 'olcModulePath: /usr/lib/ldap\nolcModuleLoad: back_mdb\n\n'

  printf 'dn: cn=schema,cn=config\nobjectClass: olcSchemaConfig\ncn: schema\n\n'
  for schema in "$SYSTEM_SCHEMA_DIR/core.ldif" "$SYSTEM_SCHEMA_DIR/cosine.ldif" \
    "$SYSTEM_SCHEMA_DIR/inetorgperson.ldif" "$STONEY_SCHEMA" "$VMBACKUP_SCHEMA"; do
    cat -- "$schema"
    printf '\n'
  done

  printf 'dn: olcDatabase={-1}frontend,cn=config\n'
  printf 'objectClass: olcDatabaseConfig\nobjectClass: olcFrontendConfig\n'
  printf 'olcDatabase: {-1}frontend\n\n'

  printf 'dn: olcDatabase={0}config,cn=config\nobjectClass: olcDatabaseConfig\n'
  printf 'olcDatabase: {0}config\n'
  printf 'olcAccess: {0}to * by dn.exact=%s manage by * break\n\n' "$PEERCRED_ROOT"

  printf 'dn: olcDatabase={1}mdb,cn=config\n'
  printf 'objectClass: olcDatabaseConfig\nobjectClass: olcMdbConfig\n'
  printf 'olcDatabase: {1}mdb\n'
  ldif_line olcDbDirectory "$SLAPD_DATA_DIR"
  ldif_line olcSuffix "$LDAP_BASE_DN"
  ldif_line olcRootDN "cn=admin,$LDAP_BASE_DN"
  ldif_line olcRootPW "$password_hash"
  printf 'olcDbMaxSize: 4294967296\n'
  printf 'olcDbIndex: objectClass eq\nolcDbIndex: ou eq\nolcDbIndex: sstNode eq\n'
  printf 'olcDbIndex: sstVirtualMachine eq\nolcDbIndex: sstVirtualMachinePool eq\n'
  printf 'olcLastMod: TRUE\n'
  printf 'olcLimits: users size=unlimited time=unlimited\n'
  bash "$ACCESS_RULES" "$VMBACKUP_ACCESS" "$LDAP_BASE_DN" \
    "to attrs=userPassword by dn.exact=$PEERCRED_ROOT manage by self write by anonymous auth by * none" \
    "to * by dn.exact=$PEERCRED_ROOT manage by users read by * none"
}

# The operator's certificate files, copied where slapd's account can read them.
install_tls() {
  [[ -n "$LDAP_TLS_CERT_FILE" ]] || return 0
  local dir="$SLAPD_RUN_DIR/tls"
  mkdir -p -- "$dir"
  install -m 644 -- "$LDAP_TLS_CERT_FILE" "$dir/server.pem"
  install -m 600 -- "$LDAP_TLS_KEY_FILE" "$dir/server.key"
  [[ -z "$LDAP_TLS_CA_FILE" ]] || install -m 644 -- "$LDAP_TLS_CA_FILE" "$dir/ca.pem"
  if [[ "$(id -u)" -eq 0 ]]; then
    chown -R "$SLAPD_USER:$SLAPD_GROUP" "$dir"
  fi
  chmod 700 -- "$dir"
}

# The base entry and the stoney cloud skeleton, for slapadd into an empty database.
skeleton_ldif() {
  local rdn="${LDAP_BASE_DN%%,*}" value dn ou
  value="${rdn#*=}"
  ldif_line dn "$LDAP_BASE_DN"
  if [[ "$rdn" == o=* ]]; then
    printf 'objectClass: top\nobjectClass: organization\n'
    ldif_line o "$value"
  else
    printf 'objectClass: top\nobjectClass: dcObject\nobjectClass: organization\n'
    ldif_line dc "$value"
    ldif_line o "$value"
  fi
  printf '\n'
  for dn in \
    "ou=services,$LDAP_BASE_DN" \
    "ou=virtualization,ou=services,$LDAP_BASE_DN" \
    "ou=virtual machines,ou=virtualization,ou=services,$LDAP_BASE_DN" \
    "ou=virtual machine pools,ou=virtualization,ou=services,$LDAP_BASE_DN" \
    "ou=configuration,ou=virtualization,ou=services,$LDAP_BASE_DN"; do
    ou="${dn%%,*}"
    ldif_line dn "$dn"
    printf 'objectClass: top\nobjectClass: organizationalUnit\n'
    ldif_line ou "${ou#ou=}"
    printf '\n'
  done
}

# hash_password DIR PASSWORD: the {SSHA} hash. The password reaches slappasswd through a
# private file in DIR (removed again), never a command line.
hash_password() {
  local dir="$1" password="$2" hash
  (umask 077 && printf '%s' "$password" >"$dir/password")
  if ! hash="$(slappasswd -h '{SSHA}' -T "$dir/password")"; then
    rm -f -- "$dir/password"
    die "slappasswd could not hash a password"
  fi
  rm -f -- "$dir/password"
  printf '%s' "$hash"
}

build_config() {
  local work hash
  work="$(mktemp -d)"
  hash="$(hash_password "$work" "$LDAP_ADMIN_PASSWORD")"
  config_ldif "$hash" >"$work/config.ldif"
  rm -rf -- "$SLAPD_CONFIG_DIR"
  # slapadd checks that olcDbDirectory exists.
  mkdir -p -- "$SLAPD_CONFIG_DIR" "$SLAPD_DATA_DIR" "$SLAPD_RUN_DIR"
  if ! slapadd -n0 -F "$SLAPD_CONFIG_DIR" -l "$work/config.ldif" >"$work/slapadd.log" 2>&1; then
    cat -- "$work/slapadd.log" >&2
    rm -rf -- "$work"
    die "slapadd -n0 could not build cn=config (schema: $STONEY_SCHEMA, $VMBACKUP_SCHEMA)"
  fi
  rm -rf -- "$work"
  log "cn=config generated: core, cosine, inetorgperson, stoney, vmbackup; suffix $LDAP_BASE_DN"
}

# The password given for a service identity, by the RDN of its DN (empty: none given).
identity_password() {
  case "$1" in
    cn=vmbackup-control) printf '%s' "${LDAP_CONTROL_PASSWORD:-}" ;;
    cn=vmbackup-node) printf '%s' "${LDAP_NODE_PASSWORD:-}" ;;
  esac
}

# entry_exists DN: whether the (stopped) database holds the entry. (slapcat -s DN aborts
# in bookworm's 2.5.13, hence a filter on entryDN, the DN escaped for it: RFC 4515.)
entry_exists() {
  local output value="$1"
  value="${value//\\/\\5c}"
  value="${value//\*/\\2a}"
  value="${value//\(/\\28}"
  value="${value//\)/\\29}"
  if ! output="$(slapcat -F "$SLAPD_CONFIG_DIR" -b "$LDAP_BASE_DN" -a "(entryDN=$value)" 2>&1)"; then
    printf '%s\n' "$output" >&2
    die "slapcat could not look up $1"
  fi
  [[ "$output" == dn:* || "$output" == *$'\n'dn:* ]]
}

# The change records (for slapmodify) that bring the service identities of
# VMBACKUP_IDENTITIES into the database: each entry it lacks is added as in the file (for
# LDAP_BASE_DN), and an identity whose password is given gets that password's hash as
# its userPassword. $1: a private directory for the hashes' password files.
identities_ldif() {
  local work="$1" line dn="" attr value password hash
  local -a attrs=() values=()
  # identity_record: the change record of the entry read so far.
  identity_record() {
    [[ -n "$dn" ]] || return 0
    local i
    password="$(identity_password "${dn%%,*}")"
    hash=""
    [[ -z "$password" ]] || hash="$(hash_password "$work" "$password")"
    if ! entry_exists "$dn"; then
      ldif_line dn "$dn"
      printf 'changetype: add\n'
      for i in "${!attrs[@]}"; do
        if [[ "${attrs[i],,}" == userpassword && -n "$hash" ]]; then
          ldif_line userPassword "$hash"
        else
          ldif_line "${attrs[i]}" "${values[i]}"
        fi
      done
      printf '\n'
      log "added $dn${hash:+ with its password}"
    elif [[ -n "$hash" ]]; then
      ldif_line dn "$dn"
      printf 'changetype: modify\nreplace: userPassword\n'
      ldif_line userPassword "$hash"
      printf -- '-\n\n'
      log "password of $dn set"
    fi
    dn="" attrs=() values=()
  }
  while IFS= read -r line || [[ -n "$line" ]]; do
    [[ "$line" == '#'* ]] && continue
    if [[ -z "$line" ]]; then
      identity_record
      continue
    fi
    # The file is plain: no folded lines, no base64 values (the suffix is put in here).
    [[ "$line" =~ ^([A-Za-z][A-Za-z0-9-]*):\ (.*)$ ]] ||
      die "$VMBACKUP_IDENTITIES: cannot read the line '$line'"
    attr="${BASH_REMATCH[1]}"
    value="${BASH_REMATCH[2]//"$EXAMPLE_BASE_DN"/"$LDAP_BASE_DN"}"
    if [[ "${attr,,}" == dn ]]; then
      identity_record
      dn="$value"
    else
      [[ -n "$dn" ]] || die "$VMBACKUP_IDENTITIES: '$attr' before the first dn"
      attrs+=("$attr")
      values+=("$value")
    fi
  done <"$VMBACKUP_IDENTITIES"
  identity_record
}

# The service identities, added or given their passwords with slapmodify before slapd
# starts (only the hashes are stored).
apply_identities() {
  local work
  work="$(mktemp -d)"
  # The hashes are in the LDIF: removed also when a step below dies.
  trap 'rm -rf -- "$work"' EXIT
  identities_ldif "$work" >"$work/identities.ldif"
  if [[ -s "$work/identities.ldif" ]] &&
    ! slapmodify -b "$LDAP_BASE_DN" -F "$SLAPD_CONFIG_DIR" -l "$work/identities.ldif" >"$work/slapmodify.log" 2>&1; then
    cat -- "$work/slapmodify.log" >&2
    die "slapmodify could not add the service identities or set their passwords"
  fi
  rm -rf -- "$work"
  trap - EXIT
}

prepare_data() {
  if [[ ! -e "$SLAPD_DATA_DIR/data.mdb" ]]; then
    local work
    work="$(mktemp -d)"
    skeleton_ldif >"$work/skeleton.ldif"
    if ! slapadd -b "$LDAP_BASE_DN" -F "$SLAPD_CONFIG_DIR" -l "$work/skeleton.ldif" >"$work/slapadd.log" 2>&1; then
      cat -- "$work/slapadd.log" >&2
      rm -rf -- "$work"
      die "slapadd could not create the base entries"
    fi
    rm -rf -- "$work"
    printf '%s\n' "$LDAP_BASE_DN" >"$SUFFIX_STAMP"
    log "new directory: created $LDAP_BASE_DN and the stoney cloud skeleton below it"
  else
    # Indexes may have changed with a new image: rebuilding them is quick for a directory
    # of this size and makes every olcDbIndex above valid for the existing data.
    local output
    if ! output="$(slapindex -q -b "$LDAP_BASE_DN" -F "$SLAPD_CONFIG_DIR" 2>&1)"; then
      printf '%s\n' "$output" >&2
      die "slapindex failed on the data in $SLAPD_DATA_DIR"
    fi
    log "existing directory for $LDAP_BASE_DN (indexes rebuilt)"
  fi
  apply_identities
  if [[ "$(id -u)" -eq 0 ]]; then
    chown -R "$SLAPD_USER:$SLAPD_GROUP" "$SLAPD_CONFIG_DIR" "$SLAPD_DATA_DIR" "$SLAPD_RUN_DIR"
  fi
}

main() {
  check_environment
  install_tls
  build_config
  prepare_data
  local -a run_as=()
  if [[ "$(id -u)" -eq 0 ]]; then
    run_as=(-u "$SLAPD_USER" -g "$SLAPD_GROUP")
  fi
  unset LDAP_ADMIN_PASSWORD LDAP_CONTROL_PASSWORD LDAP_NODE_PASSWORD
  log "starting slapd on $SLAPD_URLS"
  # -d keeps slapd in the foreground (PID 1 of the container) and logs to stderr.
  exec slapd -h "$SLAPD_URLS" -F "$SLAPD_CONFIG_DIR" "${run_as[@]}" -d "$LDAP_LOG_LEVEL"
}

main "$@"
