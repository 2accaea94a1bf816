/**
 * Which backups of a VM retention deletes: keep the newest `iterations` complete backups;
 * older complete ones go, and so do runs whose deletion failed earlier. Other incomplete
 * runs are never touched (they need an operator), and
 * nothing is deleted unless the newest run is complete, so a failed night deletes nothing
 * and the last good backup always stays; nor is the newest backup that passed verification
 * while a kept one has not passed.
 */
export interface RunSummary {
  runDate: string;
  complete: boolean;
  /** Chosen for deletion by an earlier retention that did not finish it. */
  beingDeleted?: boolean | undefined;
  /** Outcome of the backup's last verification; undefined when never verified. */
  verified?: 'passed' | 'failed' | 'no-manifest' | undefined;
}

export function expiredBackups(runs: readonly RunSummary[], iterations: number): string[] {
  const sorted = [...runs].sort((a, b) => b.runDate.localeCompare(a.runDate));
  if (!sorted[0]?.complete) return [];
  // Anything but a positive count keeps one: the last good backup is never deleted.
  const keep = Number.isFinite(iterations) ? Math.max(1, Math.floor(iterations)) : 1;
  const complete = sorted.filter((r) => r.complete);
  // The newest backup proven good stays while any backup kept in its place is not proven:
  // a failed or unverified newer backup never pushes out the last one that passed.
  const newestPassed = complete.find((r) => r.verified === 'passed');
  const keptUnproven = complete.slice(0, keep).some((r) => r.verified !== 'passed');
  const expired = complete
    .slice(keep)
    .filter((r) => !(r === newestPassed && keptUnproven))
    .map((r) => r.runDate);
  // A deletion that failed before (its leaf stuck in delete/deleting) is tried again.
  const unfinished = sorted.filter((r) => r.beingDeleted && !r.complete).map((r) => r.runDate);
  return [...new Set([...expired, ...unfinished])].sort();
}
