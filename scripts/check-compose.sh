#!/usr/bin/env bash
# Validates docker-compose.yml without a Docker engine (deploy/lint/check_compose.py says
# how): the compose-spec JSON schema before and after interpolation, every variable
# documented in deploy/.env.example, and the cross-references `docker compose` would check
# (depends_on, volumes, bind mounts, build contexts, ports, pinned images). Then a self-test
# breaks the file in fifteen ways and fails unless each broken variant is rejected.
#
# Installs, idempotently and only into .tools/compose-venv, the PyPI package
# check-jsonschema, which vendors the official compose-spec schema.
#
# Usage: bash scripts/check-compose.sh             the repository's docker-compose.yml
#        bash scripts/check-compose.sh FILE...     other compose files (relative paths in them
#                                                  resolve against the repository root)
set -euo pipefail

CALLER_PWD="$PWD"
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

COMPOSE_VENV="$VMBACKUP_TOOLS/compose-venv"
CHECK_JSONSCHEMA_VERSION="0.39.0"

venv_ready() {
  [[ -x "$COMPOSE_VENV/bin/python" ]] &&
    "$COMPOSE_VENV/bin/python" - "$CHECK_JSONSCHEMA_VERSION" <<'EOF' >/dev/null 2>&1
import sys
from importlib import metadata, resources
assert metadata.version("check-jsonschema") == sys.argv[1]
assert resources.files("check_jsonschema.builtin_schemas.vendor").joinpath("compose-spec.json").is_file()
import jsonschema, ruamel.yaml  # noqa: E401,F401
EOF
}

create_venv() {
  command -v python3 >/dev/null 2>&1 || {
    is_debian || die "python3 is missing; install Python 3 with its venv module"
    apt_install python3 python3-venv
  }
  mkdir -p -- "$VMBACKUP_TOOLS"
  log "creating Python virtualenv $COMPOSE_VENV"
  if ! python3 -m venv -- "$COMPOSE_VENV"; then
    rm -rf -- "$COMPOSE_VENV"
    is_debian || die "python3 -m venv failed; install the Python venv/ensurepip module"
    local pyver
    pyver="$(python3 -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
    apt_install python3-venv "python${pyver}-venv"
    python3 -m venv -- "$COMPOSE_VENV"
  fi
}

ensure_tools() {
  venv_ready && return 0
  [[ -x "$COMPOSE_VENV/bin/pip" ]] || create_venv
  log "installing check-jsonschema==$CHECK_JSONSCHEMA_VERSION into $COMPOSE_VENV"
  "$COMPOSE_VENV/bin/pip" install --disable-pip-version-check --quiet \
    "check-jsonschema==$CHECK_JSONSCHEMA_VERSION"
  venv_ready || die "check-jsonschema $CHECK_JSONSCHEMA_VERSION in $COMPOSE_VENV lacks the compose-spec schema"
}

main() {
  ensure_tools
  local -a files=() extra=()
  local f
  if (($# == 0)); then
    files=("$VMBACKUP_REPO/docker-compose.yml")
    extra=(--self-test)
  else
    for f in "$@"; do
      [[ "$f" == /* ]] || f="$CALLER_PWD/$f"
      files+=("$f")
    done
  fi
  "$COMPOSE_VENV/bin/python" "$VMBACKUP_REPO/deploy/lint/check_compose.py" \
    --env-example "$VMBACKUP_REPO/deploy/.env.example" --project-dir "$VMBACKUP_REPO" \
    "${extra[@]}" "${files[@]}"
}

main "$@"
