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
report="$VMBACKUP_DEV/vitest-report.json"
rm -f -- "$report"
status=0
npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
# A plain closing line for CI: "N passed, N failed".
if [[ -f "$report" ]]; then
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`);' "$report"
fi
exit "$status"
