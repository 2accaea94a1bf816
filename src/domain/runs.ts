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
