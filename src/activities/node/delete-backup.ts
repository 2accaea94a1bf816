import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { BackupError, ErrorCode } from '../../domain/errors';
import { assertRunDate, assertVmName } from '../../domain/names';
import { syncDir } from './files';
import type { NodeDeps } from './context';
import { realBackupDir, recordedBackupDir, type BackupRef } from './backup-dir';

export type DeleteBackupInput = BackupRef;

export interface DeleteBackupResult {
  deleted: boolean;
  backupDir: string;
  files: string[];
}

/**
 * Names the project writes into a run's backup directory: `<name>.<date>`, `.part` while
 * copying, `.tmp` while writing a small file (manifest, verification, drill result).
 */
function writtenByRun(name: string, runDate: string): boolean {
  return [`.${runDate}`, `.${runDate}.part`, `.${runDate}.tmp`].some((end) => name.endsWith(end));
}

/**
 * Deletes one backup: the files of that run in its directory
 * `<backup root>/<pool path>/<vm>/<date>`, then the directory. The directory comes from
 * the run's own record, since today's plan (pool, backup root) may point elsewhere; it
 * must lie inside a storage root after resolving symlinks, be named after the run date
 * and sit in a directory named after the VM, and hold nothing but the run's files.
 * Otherwise nothing is deleted and the error says why. A missing directory is an error
 * too: retention then keeps the leaf instead of orphaning a backup moved elsewhere.
 */
export async function deleteBackup(deps: NodeDeps, input: DeleteBackupInput): Promise<DeleteBackupResult> {
  assertVmName(input.vm);
  assertRunDate(input.runDate);
  const { vm, runDate } = input;
  const dir = recordedBackupDir(deps, input);
  const refuse = (why: string) =>
    new BackupError(
      ErrorCode.cannotRemoveFile,
      `refusing to delete ${dir} (backup ${runDate} of ${vm}): ${why}`,
    );

  const real = await realBackupDir(deps, input, refuse);
  if (real === undefined) {
    // A retry after a worker died between removing the directory and reporting it finds
    // nothing either; only a first attempt knows that someone else moved it.
    if (Context.current().info.attempt > 1) return { deleted: false, backupDir: dir, files: [] };
    throw new BackupError(
      ErrorCode.missingFiles,
      `backup ${runDate} of ${vm} not found: ${dir} does not exist (moved or deleted by hand?); its leaf is kept`,
    );
  }

  const entries = await fs.readdir(real, { withFileTypes: true });
  const foreign = entries.filter((e) => !e.isFile() || !writtenByRun(e.name, runDate)).map((e) => e.name);
  if (foreign.length) throw refuse(`it holds ${foreign.sort().join(', ')}, which this run did not write`);
  const files = entries.map((e) => e.name).sort();
  for (const name of files) await fs.unlink(path.join(real, name));
  await fs.rmdir(real);
  await syncDir(path.dirname(real));
  return { deleted: true, backupDir: real, files };
}
