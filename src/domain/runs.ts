const RESTORE_MODES = new Set(
  [
    'unretainSmallFiles',
    'unretainingSmallFiles',
    'unretainedSmallFiles',
    'unretainLargeFiles',
    'unretainingLargeFiles',
    'unretainedLargeFiles',
    'restore',
    'restoring',
    'restored',
  ].map((m) => m.toLowerCase()),
);

/**
 * A backup is complete when its leaf ended `finished` with return value 0. Restores write
 * their protocol onto the same leaf (and a cancelled one ends `finished` with state 0), so
 * a leaf in a restore mode also belongs to a complete backup.
 */
export function isCompleteRun(leaf: { mode: string; returnValue: number | undefined }): boolean {
  const mode = leaf.mode.toLowerCase(); // sstProvisioningMode compares case-insensitively
  return (mode === 'finished' && (leaf.returnValue ?? 0) === 0) || RESTORE_MODES.has(mode);
}

/**
 * A run that ended before the node changed anything: its leaf never got past the
 * `snapshot` go mode (`snapshotting` is written before the node acts). It left no files,
 * so it must not keep the VM out of later backups.
 */
export function changedNothing(leaf: { mode: string }): boolean {
  return ['initialize', 'initialized', 'snapshot'].includes(leaf.mode.toLowerCase());
}

/** A run chosen for deletion earlier whose deletion did not finish: retention tries again. */
export function isBeingDeleted(leaf: { mode: string }): boolean {
  const mode = leaf.mode.toLowerCase();
  return mode === 'delete' || mode === 'deleting';
}
