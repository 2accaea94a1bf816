import { promises as fs } from 'node:fs';
import path from 'node:path';
import { Context } from '@temporalio/activity';
import { BackupError, ErrorCode } from '../../domain/errors';
import { assertRunDate, assertVmName } from '../../domain/names';
import { isInside } from '../../domain/paths';
import { syncDir } from './files';
import { resolveRun, type NodeDeps } from './context';
import type { VmRunInput } from './types';

export interface DeleteBackupInput extends VmRunInput {
  /**
   * The backup directory the run recorded on its leaf when it was retained. Absent on
   * leaves from before the record: then today's plan and disks locate it.
   */
  backupDir?: string | undefined;
}

export interface DeleteBackupResult {
  deleted: boolean;
  backupDir: string;
  files: string[];
}

/** Names the project writes into a run's backup directory: `<name>.<date>`, and `.part` while copying. */
function writtenByRun(name: string, runDate: string): boolean {
  return name.endsWith(`.${runDate}`) || name.endsWith(`.${runDate}.part`);
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
  const dir = input.backupDir ?? resolveRun(deps, input).layout.backupDir;
  const refuse = (why: string) =>
    new BackupError(
      ErrorCode.cannotRemoveFile,
      `refusing to delete ${dir} (backup ${runDate} of ${vm}): ${why}`,
    );

  if (
    typeof dir !== 'string' ||
    !path.posix.isAbsolute(dir) ||
    dir.includes('\0') ||
    dir.split('/').includes('..')
  )
    throw refuse('not an absolute path');
  const roots = deps.config.storageRoots;
  if (!roots.some((root) => isInside(root, dir)))
    throw refuse(`outside the storage roots (${roots.join(', ')})`);

  const real = await fs.realpath(dir).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (real === undefined) {
    // A retry after a worker died between removing the directory and reporting it finds
    // nothing either; only a first attempt knows that someone else moved it.
    if (Context.current().info.attempt > 1) return { deleted: false, backupDir: dir, files: [] };
    throw new BackupError(
      ErrorCode.missingFiles,
      `backup ${runDate} of ${vm} not found: ${dir} does not exist (moved or deleted by hand?); its leaf is kept`,
    );
  }
  const realRoots = await Promise.all(roots.map((r) => fs.realpath(r).catch(() => undefined)));
  if (!realRoots.some((r) => r !== undefined && r !== real && isInside(r, real)))
    throw refuse(`resolves to ${real}, outside the storage roots`);
  if (path.basename(real) !== runDate) throw refuse(`${real} is not named after the run date`);
  if (path.basename(path.dirname(real)) !== vm) throw refuse(`${real} is not in a directory named ${vm}`);
  if (!(await fs.lstat(real)).isDirectory()) throw refuse(`${real} is not a directory`);

  const entries = await fs.readdir(real, { withFileTypes: true });
  const foreign = entries.filter((e) => !e.isFile() || !writtenByRun(e.name, runDate)).map((e) => e.name);
  if (foreign.length) throw refuse(`it holds ${foreign.sort().join(', ')}, which this run did not write`);
  const files = entries.map((e) => e.name).sort();
  for (const name of files) await fs.unlink(path.join(real, name));
  await fs.rmdir(real);
  await syncDir(path.dirname(real));
  return { deleted: true, backupDir: real, files };
}
