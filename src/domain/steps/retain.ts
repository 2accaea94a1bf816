import { ErrorCode, type ErrorCodeValue } from '../errors';
import { act, done, refuse, type Decision } from './step';

export interface RetainFileView {
  /** File name in the backup directory. */
  name: string;
  /** The contract's error code when this file cannot be retained. */
  code: ErrorCodeValue;
  atSource: boolean;
  atDestination: boolean;
}

export interface RetainWorld {
  vm: string;
  retainDirExists: boolean;
  backupRootExists: boolean;
  backupDirExists: boolean;
  /** Disks whose live image still reads from the retain directory. */
  blocking: string[];
  files: RetainFileView[];
  /** Files in the retain directory that are not the run's (nor our dot files). */
  strangers: string[];
}

export const RETAIN_ACTIONS = [
  'create-backup-dir',
  'move-file',
  'remove-source',
  'clear-retain-dir',
] as const;
export type RetainActionKind = (typeof RETAIN_ACTIONS)[number];
export interface RetainAction {
  kind: RetainActionKind;
  target?: string | undefined;
}

const one = (kind: RetainActionKind, target?: string) => act<RetainAction>({ kind, target });

/**
 * retain: every file of the run from the retain directory into the backup directory (a
 * rename on one filesystem, a durable copy otherwise), then the retain directory goes.
 */
export function decideRetain(w: RetainWorld): Decision<RetainAction, 'retained'> {
  if (!w.retainDirExists) {
    const missing = w.files.filter((f) => !f.atDestination);
    if (missing.length === 0) return done('retained');
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
  return one('clear-retain-dir');
}
