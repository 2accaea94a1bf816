#!/bin/sh
# One-shot of the compose service `temporal-schema` (image temporalio/admin-tools): creates
# Temporal's two PostgreSQL databases and brings their schemas to the version of this
# admin-tools image (the same version as the server image). Idempotent: an existing database
# is kept and only missing schema versions are applied, so it runs on every
# `docker compose up` and upgrades the schema when the image versions are raised together.
# Environment (read by temporal-sql-tool itself): SQL_PLUGIN, SQL_HOST, SQL_PORT, SQL_USER,
# SQL_PASSWORD.
set -eu

: "${SQL_HOST:?SQL_HOST is not set}"
: "${SQL_PASSWORD:?SQL_PASSWORD is not set}"
SCHEMA_ROOT="${SCHEMA_ROOT:-/etc/temporal/schema/postgresql/v12}"

log() {
  printf '[temporal-schema] %s\n' "$*"
}

# database and schema directory: the history store and the visibility store.
for pair in temporal:temporal temporal_visibility:visibility; do
  db="${pair%%:*}"
  dir="$SCHEMA_ROOT/${pair#*:}/versioned"
  [ -d "$dir" ] || {
    log "missing schema directory $dir in this image"
    exit 1
  }
  log "database $db: create if missing, then update the schema from $dir"
  temporal-sql-tool --db "$db" create-database
  temporal-sql-tool --db "$db" setup-schema -v 0.0
  temporal-sql-tool --db "$db" update-schema -d "$dir"
done
log "done"
