import { promises as fs } from 'node:fs';
import path from 'node:path';
import { BackupError, ErrorCode } from '../../domain/errors';
import { isInside } from '../../domain/paths';
import { exists } from './files';
import { resolveRun, type NodeDeps } from './context';
import type { VmRunInput } from './types';

/**
 * Deletes one backup's directory `<backup root>/<pool path>/<vm>/<date>` and nothing else:
 * the path is built from validated names and confined to the plan's backup root.
 */
export async function deleteBackup(
  deps: NodeDeps,
  input: VmRunInput,
): Promise<{ deleted: boolean; backupDir: string }> {
  const paths = resolveRun(deps, input);
  const dir = paths.layout.backupDir;
  const vmDir = path.dirname(dir);
  if (
    !isInside(input.plan.backupRoot, dir) ||
    path.basename(dir) !== input.runDate ||
    path.basename(vmDir) !== input.vm
  ) {
    throw new BackupError(
      ErrorCode.cannotRemoveFile,
      `refusing to delete ${dir}: not a backup directory of ${input.vm}`,
    );
  }
  if (!(await exists(dir))) return { deleted: false, backupDir: dir };
  await fs.rm(dir, { recursive: true, force: true });
  return { deleted: true, backupDir: dir };
}
