#!/usr/bin/env bash
# Benchmarks: (1) save-mode downtime on one sandbox VM (bench-vm): the seed's bare save/mv/create/restore
# sequence against the project's snapshot step, alternating, BENCH_ROUNDS rounds (default 5).
# Writes the figures to .dev/bench-downtime.json. (2) bench/live.ts: live mode against save
# mode and the seed, per VM size, by libvirt's lifecycle events, and six VMs in one run;
# .dev/bench-live.json (BENCH_SIZES, BENCH_GROUP_MIB; its own BENCH_ROUNDS default 3).
# (3) bench/verify.ts: verification throughput against sha256sum of the same backup files,
# page cache dropped before each, and the bytes a verification reads; .dev/bench-verify.json
# (BENCH_VERIFY_MIB, default 1536:1024).
# Usage: bash scripts/bench.sh   (or npm run bench; BENCH_ROUNDS=10 npm run bench)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

dev_services_env

npx --no-install tsx "$VMBACKUP_REPO/bench/downtime.ts"
npx --no-install tsx "$VMBACKUP_REPO/bench/live.ts"
exec npx --no-install tsx "$VMBACKUP_REPO/bench/verify.ts"
