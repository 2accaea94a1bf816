import type { Directory } from './connection';
import type { StoneyTree } from './dn';
import { formatRunDate } from '../domain/names';
import type { LeafUpdate } from '../domain/protocol';
import { BackupError, ErrorCode } from '../domain/errors';
import { parseMark, VERIFICATION_DESCRIPTION, type VerificationMark } from '../domain/verification';

/** Creates `ou=<date>,ou=backup,<vm>` (and `ou=backup` if missing) in mode `initialize`; idempotent. */
export async function initializeLeaf(
  dir: Directory,
  tree: StoneyTree,
  vm: string,
  runDate: string,
  now: Date,
): Promise<void> {
  if (!(await dir.read(tree.vm(vm), ['sstVirtualMachine']))) {
    throw new BackupError(ErrorCode.cannotFindMachine, `VM ${vm} not found in the directory`);
  }
  if (!(await dir.read(tree.vmBackup(vm), ['ou']))) {
    await dir.add(tree.vmBackup(vm), { objectClass: ['top', 'organizationalUnit'], ou: 'backup' });
  }
  const leaf = tree.runLeaf(vm, runDate);
  if (await dir.read(leaf, ['ou'])) return;
  await dir.add(leaf, {
    objectClass: ['top', 'organizationalUnit', 'sstProvisioning'],
    ou: runDate,
    sstProvisioningExecutionDate: '0',
    sstProvisioningMode: 'initialize',
    sstProvisioningReturnValue: '0',
    sstProvisioningState: formatRunDate(now),
  });
}

/**
 * The run's backup directory is kept in the leaf's `description` (a MAY attribute of
 * organizationalUnit; the portal reads only the sstProvisioning* attributes), marked so
 * that other descriptions are left alone.
 */
export const BACKUP_DIR_DESCRIPTION = 'vmbackup backup directory: ';

export async function updateLeaf(
  dir: Directory,
  tree: StoneyTree,
  vm: string,
  runDate: string,
  update: LeafUpdate,
  now: Date,
): Promise<void> {
  const values: Record<string, string | string[]> = {
    sstProvisioningMode: update.mode,
    sstProvisioningState: update.state === 'now' ? formatRunDate(now) : '0',
  };
  if (update.returnValue !== undefined) values['sstProvisioningReturnValue'] = String(update.returnValue);
  const times = update.executionTimes?.length ? update.executionTimes : undefined;
  const current =
    times || update.backupDir !== undefined
      ? ((await dir.read(tree.runLeaf(vm, runDate), ['sstProvisioningExecutionTime', 'description']))
          ?.attributes ?? {})
      : {};
  if (times) {
    // Keep the times of earlier steps: each step adds its own labels.
    const labels = new Set(times.map((t) => t.split(':')[0]));
    values['sstProvisioningExecutionTime'] = [
      ...(current['sstprovisioningexecutiontime'] ?? []).filter((t) => !labels.has(t.split(':')[0])),
      ...times,
    ];
  }
  if (update.backupDir !== undefined) {
    values['description'] = [
      ...(current['description'] ?? []).filter((d) => !d.startsWith(BACKUP_DIR_DESCRIPTION)),
      BACKUP_DIR_DESCRIPTION + update.backupDir,
    ];
  }
  await dir.replace(tree.runLeaf(vm, runDate), values);
}

export interface LeafState {
  runDate: string;
  mode: string;
  state: string;
  returnValue: number | undefined;
  executionTimes: string[];
  /** The backup directory the run recorded; undefined on leaves from before the record. */
  backupDir: string | undefined;
  /** The last verification of the backup; undefined when it was never verified. */
  verification?: VerificationMark | undefined;
}

/**
 * Marks a run's backup with its last verification (one `description` value, replacing the
 * previous one). False when the leaf is gone: retention deleted the backup meanwhile.
 */
export async function markLeafVerification(
  dir: Directory,
  tree: StoneyTree,
  vm: string,
  runDate: string,
  mark: string,
): Promise<boolean> {
  const leaf = tree.runLeaf(vm, runDate);
  const current = await dir.read(leaf, ['description']);
  if (!current) return false;
  await dir.replace(leaf, {
    description: [
      ...(current.attributes['description'] ?? []).filter((d) => !d.startsWith(VERIFICATION_DESCRIPTION)),
      mark,
    ],
  });
  return true;
}

export async function readLeaves(dir: Directory, tree: StoneyTree, vm: string): Promise<LeafState[]> {
  const entries = await dir.search(tree.vmBackup(vm), 'one', '(objectClass=sstProvisioning)');
  return entries
    .map(({ attributes: a }) => ({
      runDate: a['ou']?.[0] ?? '',
      mode: a['sstprovisioningmode']?.[0] ?? '',
      state: a['sstprovisioningstate']?.[0] ?? '',
      returnValue:
        a['sstprovisioningreturnvalue']?.[0] !== undefined
          ? Number(a['sstprovisioningreturnvalue'][0])
          : undefined,
      executionTimes: [...(a['sstprovisioningexecutiontime'] ?? [])],
      backupDir: a['description']
        ?.find((d) => d.startsWith(BACKUP_DIR_DESCRIPTION))
        ?.slice(BACKUP_DIR_DESCRIPTION.length),
      verification: a['description']?.map(parseMark).find((m) => m !== undefined),
    }))
    .sort((x, y) => x.runDate.localeCompare(y.runDate));
}
