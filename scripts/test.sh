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
status=0
reports=()
# vitest <report name> <vitest arguments...>
vitest() {
  local report="$VMBACKUP_DEV/vitest-$1.json"
  shift
  log "vitest run $*"
  rm -f -- "$report"
  npx --no-install vitest run --reporter=default --reporter=json --outputFile.json="$report" "$@" || status=$?
  [[ ! -f "$report" ]] || reports+=("$report")
}
if (($#)); then
  vitest report "$@"
else
  # The unit tests share no service: two at a time. The others share one libvirtd, slapd and
  # Temporal server and run one file at a time (vitest.config.ts).
  vitest unit --fileParallelism --maxWorkers=2 test/unit
  vitest integration test/integration test/replay
fi
# A plain closing line for CI: "N passed, N failed".
if ((${#reports[@]})); then
  # shellcheck disable=SC2016 # JavaScript, not shell
  node -e 'let p = 0, f = 0; for (const file of process.argv.slice(1)) { const r = JSON.parse(require("fs").readFileSync(file, "utf8")); p += r.numPassedTests; f += r.numFailedTests; } console.log(`${p} passed, ${f} failed`);' "${reports[@]}"
fi
exit "$status"
