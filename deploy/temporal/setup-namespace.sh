#!/bin/sh
# One-shot of the compose service `temporal-setup` (image temporalio/admin-tools): waits
# until the Temporal frontend answers, creates the namespace if it does not exist, and
# registers the custom search attributes the vmbackup workflows set:
#   VmName   KeywordList   the VM(s) of a backup or restore run
#   Node     KeywordList   the hypervisor node(s) it runs on
#   Outcome  Keyword       how the run ended: finished, failed, aborted, passed, ...
#   RunDate  Datetime      the run date a backup is named by
# Idempotent: whatever exists already is left alone, so it runs on every `docker compose up`.
# Environment: TEMPORAL_ADDRESS (host:port), TEMPORAL_NAMESPACE (default "default"),
# TEMPORAL_NAMESPACE_RETENTION (for a new namespace; default 30d), SETUP_WAIT_SECONDS
# (how long to wait for the server; default 300).
set -eu

ADDRESS="${TEMPORAL_ADDRESS:?TEMPORAL_ADDRESS is not set}"
NAMESPACE="${TEMPORAL_NAMESPACE:-default}"
RETENTION="${TEMPORAL_NAMESPACE_RETENTION:-30d}"
WAIT_SECONDS="${SETUP_WAIT_SECONDS:-300}"
# name:type pairs
SEARCH_ATTRIBUTES="VmName:KeywordList Node:KeywordList Outcome:Keyword RunDate:Datetime"

log() {
  printf '[temporal-setup] %s\n' "$*"
}

# retry DESCRIPTION COMMAND...: runs COMMAND every 3 s until it succeeds, at most WAIT_SECONDS.
retry() {
  what="$1"
  shift
  deadline=$(($(date +%s) + WAIT_SECONDS))
  until "$@"; do
    if [ "$(date +%s)" -ge "$deadline" ]; then
      log "giving up after ${WAIT_SECONDS} s: $what"
      return 1
    fi
    log "not yet: $what; retrying in 3 s"
    sleep 3
  done
}

server_healthy() {
  temporal operator cluster health --address "$ADDRESS" >/dev/null 2>&1
}

namespace_exists() {
  temporal operator namespace describe --address "$ADDRESS" --namespace "$NAMESPACE" >/dev/null 2>&1
}

# Creates the namespace unless it exists; a failed create (e.g. a race) is looked at again.
ensure_namespace() {
  namespace_exists && return 0
  temporal operator namespace create --address "$ADDRESS" --namespace "$NAMESPACE" \
    --retention "$RETENTION" >/dev/null 2>&1 || true
  namespace_exists
}

# The type of search attribute $1 in the namespace, or nothing.
attribute_type() {
  temporal operator search-attribute list --address "$ADDRESS" --namespace "$NAMESPACE" 2>/dev/null |
    awk -v name="$1" '$1 == name { print $2; exit }'
}

ensure_attribute() {
  name="$1"
  want="$2"
  sa_type="$(attribute_type "$name")"
  if [ -z "$sa_type" ]; then
    temporal operator search-attribute create --address "$ADDRESS" --namespace "$NAMESPACE" \
      --name "$name" --type "$want" >/dev/null 2>&1 || true
    sa_type="$(attribute_type "$name")"
  fi
  [ -n "$sa_type" ] || return 1
  if [ "$sa_type" != "$want" ]; then
    log "search attribute $name exists with type $sa_type, but vmbackup needs $want"
    log "remove it (temporal operator search-attribute remove --name $name) and rerun this service"
    exit 1
  fi
}

log "waiting for the Temporal server at $ADDRESS"
retry "cluster health of $ADDRESS" server_healthy
retry "namespace $NAMESPACE" ensure_namespace
log "namespace $NAMESPACE is registered"
for pair in $SEARCH_ATTRIBUTES; do
  name="${pair%%:*}"
  want="${pair#*:}"
  retry "search attribute $name ($want)" ensure_attribute "$name" "$want"
  log "search attribute $name ($want) is registered in $NAMESPACE"
done
log "done"
