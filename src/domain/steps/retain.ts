import { ErrorCode, type ErrorCodeValue } from '../errors';
import { act, done, refuse, type Decision } from './step';

export interface RetainFileView {
  /** File name in the backup directory. */
  name: string;
  /** The contract's error code when this file cannot be retained. */
  code: ErrorCodeValue;
  atSource: boolean;
  atDestination: boolean;
  /**
   * Bytes a copy of this file allocates on the backup root's filesystem (its allocated
   * bytes: the copy is sparse-aware); 0 when it moves by a rename.
   */
  copyBytes: number;
  /** Bytes held by a `.part` a killed copy left behind: the next copy removes it first. */
  partBytes: number;
}

/** Free space on the backup root's filesystem. */
export interface BackupSpace {
  /** The backup directory's nearest existing ancestor, where the figures were read. */
  path: string;
  /** `bavail * bsize`; undefined when it cannot be read. */
  free: number | undefined;
  error?: string | undefined;
}

export interface RetainWorld {
  vm: string;
  retainDirExists: boolean;
  /** The plan's backup root, named in refusals. */
  backupRoot: string;
  backupRootExists: boolean;
  backupDirExists: boolean;
  backupSpace: BackupSpace;
  /** Disks whose live image still reads from the retain directory. */
  blocking: string[];
  files: RetainFileView[];
  /** Files in the retain directory that are not the run's (nor our dot files). */
  strangers: string[];
  /** The backup's manifest (sizes and SHA-256 of its files) is in the backup directory. */
  manifestExists: boolean;
}

export const RETAIN_ACTIONS = [
  'create-backup-dir',
  'move-file',
  'remove-source',
  'write-manifest',
  'clear-retain-dir',
] as const;
export type RetainActionKind = (typeof RETAIN_ACTIONS)[number];
export interface RetainAction {
  kind: RetainActionKind;
  target?: string | undefined;
}

const MiB = 1024 * 1024;

/**
 * Room the rest of the run needs on the backup root's filesystem: what is still to be
 * copied, plus a margin for the filesystem's own blocks and for rounding.
 */
export function roomNeeded(files: RetainFileView[]): { copy: number; needed: number } {
  const copy = files.filter((f) => f.atSource && !f.atDestination).reduce((sum, f) => sum + f.copyBytes, 0);
  return { copy, needed: copy === 0 ? 0 : Math.ceil(copy * 1.01) + 16 * MiB };
}

const one = (kind: RetainActionKind, target?: string) => act<RetainAction>({ kind, target });

/**
 * retain: every file of the run from the retain directory into the backup directory (a
 * rename on one filesystem, a durable copy otherwise), hashing each as it goes; then the
 * manifest of their sizes and digests is written, and the retain directory goes.
 */
export function decideRetain(w: RetainWorld): Decision<RetainAction, 'retained'> {
  if (!w.retainDirExists) {
    const missing = w.files.filter((f) => !f.atDestination);
    // A backup is complete with its manifest: written from the files where they now are.
    if (missing.length === 0) return w.manifestExists ? done('retained') : one('write-manifest');
    return refuse(
      ErrorCode.missingFiles,
      `${missing.map((f) => f.name).join(', ')} missing from the backup of ${w.vm}`,
    );
  }
  if (w.blocking.length)
    return refuse(
      ErrorCode.wrongStateInformation,
      `disks ${w.blocking.join(', ')} still depend on the retain directory: merge first`,
    );
  if (!w.backupRootExists) return refuse(ErrorCode.backupRootMissing, `the backup root does not exist`);
  // Before anything is copied: a full disk midway would leave a half backup. Refused, the
  // run's files stay in the retain directory, so the step can be retried once there is room.
  // Asked again before every copy, it still holds as the copies use the room it counted.
  const { copy, needed } = roomNeeded(w.files);
  if (needed > 0) {
    const reclaimable = w.files
      .filter((f) => f.atSource && !f.atDestination)
      .reduce((sum, f) => sum + f.partBytes, 0);
    if (w.backupSpace.free === undefined)
      return refuse(
        ErrorCode.noDiskSpaceInformation,
        `cannot read the free space of ${w.backupSpace.path} for the backup root ${w.backupRoot}${
          w.backupSpace.error ? `: ${w.backupSpace.error}` : ''
        }`,
      );
    const free = w.backupSpace.free + reclaimable;
    if (free < needed)
      return refuse(
        ErrorCode.notEnoughDiskSpace,
        `not enough disk space in the backup root ${w.backupRoot} for the backup of ${w.vm}: ` +
          `it needs ${needed} bytes (${copy} to copy plus a margin), ${free} bytes are free`,
      );
  }
  if (!w.backupDirExists) return one('create-backup-dir');
  for (const f of w.files) {
    if (!f.atSource && !f.atDestination) return refuse(ErrorCode.missingFiles, `${f.name} is missing`);
    if (!f.atDestination) return one('move-file', f.name);
    // Copied and in place: only the source is left to remove.
    if (f.atSource) return one('remove-source', f.name);
  }
  if (w.strangers.length)
    return refuse(
      ErrorCode.retainNotFullyDeleted,
      `the retain directory still holds ${w.strangers.join(', ')}`,
    );
  // Before the retain directory goes: the digests taken while moving are kept there.
  if (!w.manifestExists) return one('write-manifest');
  return one('clear-retain-dir');
}
