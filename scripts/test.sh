#!/usr/bin/env bash
# The full check, as CI runs it: start the dev services, then typecheck, lint,
# format check and the vitest suite. Extra arguments go to vitest, e.g.
#   bash scripts/test.sh test/unit
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

log "compose file against the compose specification"
bash "$VMBACKUP_REPO/scripts/check-compose.sh"

dev_services_env

log "tsc --noEmit"
npx --no-install tsc --noEmit
log "eslint ."
npx --no-install eslint .
log "prettier --check ."
npx --no-install prettier --check .
log "vitest run $*"
npx --no-install vitest run "$@"
