/** What a nightly run does with each VM its plan covers. */
export interface NightlyCandidate {
  vm: string;
  node: string;
  excluded: boolean;
  /** The newest run leaf, if any. */
  lastRun?:
    | {
        runDate: string;
        mode: string;
        returnValue: number | undefined;
        complete: boolean;
        changedNothing?: boolean;
      }
    | undefined;
  /** Set when the VM's directory data could not be read or is invalid. */
  problem?: string | undefined;
  /** The newest complete backup failed its last verification. */
  failedVerification?: { runDate: string; checkedAt: string; summary?: string | undefined } | undefined;
}

export interface NightlySelection {
  byNode: Record<string, string[]>;
  skipped: Array<{ vm: string; reason: string }>;
  /** Included although their last run failed: it failed before anything was changed. */
  retried?: Array<{ vm: string; reason: string }> | undefined;
  /** VMs whose newest complete backup failed verification: tonight's backup replaces it. */
  unproven?: Array<{ vm: string; reason: string }> | undefined;
}

/**
 * Drops excluded VMs, and VMs whose last backup did not finish cleanly: their retain area
 * may still hold files of that run, so an operator has to look before the next one. A
 * last run that failed before the node changed anything left nothing: the VM is retried.
 */
export function selectForNightly(
  candidates: readonly NightlyCandidate[],
  vmDnOf: (vm: string) => string,
): NightlySelection {
  const byNode: Record<string, string[]> = {};
  const skipped: NightlySelection['skipped'] = [];
  const retried: NonNullable<NightlySelection['retried']> = [];
  const unproven: NonNullable<NightlySelection['unproven']> = [];
  for (const c of [...candidates].sort((a, b) => a.vm.localeCompare(b.vm))) {
    if (c.problem) skipped.push({ vm: c.vm, reason: c.problem });
    else if (c.excluded)
      skipped.push({ vm: c.vm, reason: 'excluded from backup (sstBackupExcludeFromBackup: TRUE)' });
    else if (c.lastRun && !c.lastRun.complete && c.lastRun.changedNothing) {
      retried.push({
        vm: c.vm,
        reason: `last backup ${c.lastRun.runDate} failed before anything was changed (return value ${c.lastRun.returnValue ?? '-'}): trying again`,
      });
      (byNode[c.node] ??= []).push(c.vm);
    } else if (c.lastRun && !c.lastRun.complete) {
      skipped.push({
        vm: c.vm,
        reason:
          `last backup ${c.lastRun.runDate} did not finish cleanly (mode ${c.lastRun.mode}, return value ${c.lastRun.returnValue ?? '-'}): ` +
          `check the VM and its retain directory, then delete the leaf ou=${c.lastRun.runDate},ou=backup,${vmDnOf(c.vm)} to include it again`,
      });
    } else (byNode[c.node] ??= []).push(c.vm);
    const f = c.failedVerification;
    if (f)
      unproven.push({
        vm: c.vm,
        reason: `newest backup ${f.runDate} FAILED verification at ${f.checkedAt}${f.summary ? ` (${f.summary})` : ''}`,
      });
  }
  return {
    byNode,
    skipped,
    ...(retried.length && { retried }),
    ...(unproven.length && { unproven }),
  };
}
