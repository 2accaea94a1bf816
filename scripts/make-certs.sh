#!/usr/bin/env bash
# Makes a private CA and the certificates a first install needs, with openssl:
#   <dir>/ca.pem, ca.key                      the private CA (keep ca.key offline)
#   <dir>/server.pem, server.key              for the Temporal server / slapd / TLS proxy
#   <dir>/client-<name>.pem, client-<name>.key one per client (each node, control, cli, ...)
# Keys are written 0600. An existing CA is reused, so clients can be added later.
#
# Usage: bash scripts/make-certs.sh <dir> --server-name NAME[,NAME...] [--client NAME]...
#        (server names may be DNS names or IP addresses; the first is the subject)
set -euo pipefail

die() { printf 'make-certs: %s\n' "$*" >&2; exit 1; }

dir="${1:-}"
[[ -n "$dir" && "$dir" != --* ]] || die "usage: make-certs.sh <dir> --server-name NAME[,NAME...] [--client NAME]..."
shift
server_names=""
clients=()
days="${VMBACKUP_CERT_DAYS:-825}"
while (($#)); do
  case "$1" in
    --server-name) server_names="${2:?--server-name needs a value}"; shift 2 ;;
    --client) clients+=("${2:?--client needs a value}"); shift 2 ;;
    *) die "unknown argument $1" ;;
  esac
done
for c in "${clients[@]}"; do
  [[ "$c" =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ ]] || die "client name $c: letters, digits, . _ - only"
done

umask 077
mkdir -p -- "$dir"
chmod 700 -- "$dir"

if [[ ! -s "$dir/ca.pem" || ! -s "$dir/ca.key" ]]; then
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/ca.key" -out "$dir/ca.pem" -days "$days" \
    -subj "/CN=vmbackup private CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
fi

# issue <name> <subject CN> <extensions file>
issue() {
  local name="$1" cn="$2" ext="$3"
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
    -keyout "$dir/$name.key" -out "$dir/$name.csr" -subj "/CN=$cn" 2>/dev/null
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" \
    -CAcreateserial -out "$dir/$name.pem" -days "$days" -extfile "$ext" 2>/dev/null
  rm -f -- "$dir/$name.csr"
  chmod 600 -- "$dir/$name.key"
  chmod 644 -- "$dir/$name.pem"
}

ext="$(mktemp)"
trap 'rm -f -- "$ext"' EXIT

if [[ -n "$server_names" ]]; then
  IFS=',' read -r -a names <<<"$server_names"
  san=""
  for n in "${names[@]}"; do
    if [[ "$n" =~ ^[0-9.]+$ || "$n" == *:* ]]; then san+="IP:$n,"; else san+="DNS:$n,"; fi
  done
  # clientAuth too: Temporal's services present the server certificate to one another.
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=%s\n' \
    "${san%,}" >"$ext"
  issue server "${names[0]}" "$ext"
fi

for c in "${clients[@]}"; do
  printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n' >"$ext"
  issue "client-$c" "$c" "$ext"
done
chmod 644 -- "$dir/ca.pem"
printf 'make-certs: certificates in %s\n' "$dir"
