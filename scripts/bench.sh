#!/usr/bin/env bash
# Downtime benchmark on one sandbox VM (bench-vm): the seed's bare save/mv/create/restore
# sequence against the project's snapshot step, alternating, BENCH_ROUNDS rounds (default 5).
# Writes the figures to .dev/bench-downtime.json.
# Usage: bash scripts/bench.sh   (or npm run bench; BENCH_ROUNDS=10 npm run bench)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

dev_services_env

exec npx --no-install tsx "$VMBACKUP_REPO/bench/downtime.ts"
