#!/usr/bin/env bash
# End-to-end demonstration on the embedded services: starts them (idempotently),
# creates the sandbox VM demo-vm (two qcow2 disks, data in RAM) on node demo-node, runs a
# control and a node worker, backs the VM up through Temporal, verifies the backup,
# changes the guest and the directory, restores with a decision and shows what the guest
# sees after each step.
# Usage: bash scripts/demo.sh   (or npm run demo)
set -euo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname -- "${BASH_SOURCE[0]}")/lib.sh"

dev_services_env

exec npx --no-install tsx "$VMBACKUP_REPO/src/dev/demo.ts"
