/**
 * Which backups of a VM retention deletes: keep the newest `iterations` complete backups;
 * older complete ones go, and so do runs whose deletion failed earlier. Other incomplete
 * runs are never touched (they need an operator), and
 * nothing is deleted unless the newest run is complete, so a failed night deletes nothing
 * and the last good backup always stays.
 */
export interface RunSummary {
  runDate: string;
  complete: boolean;
  /** Chosen for deletion by an earlier retention that did not finish it. */
  beingDeleted?: boolean | undefined;
}

export function expiredBackups(runs: readonly RunSummary[], iterations: number): string[] {
  const sorted = [...runs].sort((a, b) => b.runDate.localeCompare(a.runDate));
  if (!sorted[0]?.complete) return [];
  // Anything but a positive count keeps one: the last good backup is never deleted.
  const keep = Number.isFinite(iterations) ? Math.max(1, Math.floor(iterations)) : 1;
  const expired = sorted
    .filter((r) => r.complete)
    .slice(keep)
    .map((r) => r.runDate);
  // A deletion that failed before (its leaf stuck in delete/deleting) is tried again.
  const unfinished = sorted.filter((r) => r.beingDeleted && !r.complete).map((r) => r.runDate);
  return [...new Set([...expired, ...unfinished])].sort();
}
