import { upsertSearchAttributes } from '@temporalio/workflow';
import type { BackupTarget } from '../activities/directory';
import type { LeafState } from '../directory/run-leaf';
import { ErrorCode } from '../domain/errors';
import { assertRunDate, assertVmName } from '../domain/names';
import { isCompleteRun } from '../domain/runs';
import { directory } from './activities';
import { backupFailure, summarizeFailure } from './failures';
import { NodeKey } from './search-attributes';

/**
 * The start of every run that works on one kept backup without touching the VM (export,
 * drill): the names checked, the VM and its plan loaded, its node recorded for searches,
 * and the backup chosen — the given date or the latest complete one, never an incomplete one.
 */
export async function keptBackup(
  input: { vm: string; backup?: string | undefined },
  what: string,
): Promise<{ target: BackupTarget; run: LeafState }> {
  try {
    assertVmName(input.vm);
    if (input.backup !== undefined) assertRunDate(input.backup);
  } catch (err) {
    throw backupFailure((err as Error).message, ErrorCode.unsupportedConfigurationValue);
  }
  const vm = input.vm;
  let target;
  try {
    target = await directory.loadBackupTarget(vm);
  } catch (err) {
    const f = summarizeFailure(err);
    throw backupFailure(`cannot ${what} ${vm}: ${f.message}`, f.code);
  }
  upsertSearchAttributes([{ key: NodeKey, value: [target.vm.node] }]);
  const complete = (await directory.listRuns(vm)).filter(isCompleteRun);
  const run = input.backup ? complete.find((r) => r.runDate === input.backup) : complete.at(-1);
  if (!run)
    throw backupFailure(
      input.backup ? `VM ${vm} has no complete backup ${input.backup}` : `VM ${vm} has no complete backup`,
      ErrorCode.missingFiles,
    );
  return { target, run };
}
