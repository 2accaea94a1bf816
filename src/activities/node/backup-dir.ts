import { promises as fs } from 'node:fs';
import path from 'node:path';
import { isInside } from '../../domain/paths';
import { resolveRun, type NodeDeps } from './context';
import type { VmRunInput } from './types';

export interface BackupRef extends VmRunInput {
  /**
   * The backup directory the run recorded on its leaf when it was retained. Absent on
   * leaves from before the record: then today's plan and disks locate it.
   */
  backupDir?: string | undefined;
}

/** The directory a backup lives in: its run's record, else where today's plan puts it. */
export const recordedBackupDir = (deps: NodeDeps, input: BackupRef): string =>
  input.backupDir ?? resolveRun(deps, input).layout.backupDir;

/**
 * The real path of a backup's directory, or undefined when there is none. It must lie
 * inside a storage root after resolving symlinks, be named after the run date and sit in a
 * directory named after the VM: a record cannot point the node anywhere else.
 */
export async function realBackupDir(
  deps: NodeDeps,
  input: BackupRef,
  refuse: (why: string) => Error,
): Promise<string | undefined> {
  const dir = recordedBackupDir(deps, input);
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
  if (real === undefined) return undefined;
  const realRoots = await Promise.all(roots.map((r) => fs.realpath(r).catch(() => undefined)));
  if (!realRoots.some((r) => r !== undefined && r !== real && isInside(r, real)))
    throw refuse(`resolves to ${real}, outside the storage roots`);
  if (path.basename(real) !== input.runDate) throw refuse(`${real} is not named after the run date`);
  if (path.basename(path.dirname(real)) !== input.vm)
    throw refuse(`${real} is not in a directory named ${input.vm}`);
  if (!(await fs.lstat(real)).isDirectory()) throw refuse(`${real} is not a directory`);
  return real;
}
