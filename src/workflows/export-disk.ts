import { upsertSearchAttributes } from '@temporalio/workflow';
import type { ExportDiskResult } from '../activities/node/export-disk';
import type { Timing } from '../config';
import { ErrorCode } from '../domain/errors';
import { assertRunDate, assertVmName } from '../domain/names';
import { isCompleteRun } from '../domain/runs';
import { directory, nodeActivities } from './activities';
import { backupFailure, summarizeFailure } from './failures';
import { NodeKey } from './search-attributes';

export interface ExportDiskWorkflowInput {
  vm: string;
  /** The backup's date; default the latest complete one. */
  backup?: string | undefined;
  disk: string;
  to: string;
  timing: Timing;
}

export const exportWorkflowId = (vm: string): string => `export/${vm}`;

/** One disk of a backup as a standalone qcow2 on the VM's node; the VM is not touched. */
export async function exportDisk(
  input: ExportDiskWorkflowInput,
): Promise<ExportDiskResult & { runDate: string }> {
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
    throw backupFailure(`cannot export from ${vm}: ${f.message}`, f.code);
  }
  upsertSearchAttributes([{ key: NodeKey, value: [target.vm.node] }]);
  const complete = (await directory.listRuns(vm)).filter(isCompleteRun);
  const run = input.backup ? complete.find((r) => r.runDate === input.backup) : complete.at(-1);
  if (!run)
    throw backupFailure(
      input.backup ? `VM ${vm} has no complete backup ${input.backup}` : `VM ${vm} has no complete backup`,
      ErrorCode.missingFiles,
    );
  const { verify } = nodeActivities(target.vm.node, input.timing);
  try {
    const r = await verify.exportDisk({
      vm,
      runDate: run.runDate,
      disks: target.vm.disks,
      plan: target.plan,
      backupDir: run.backupDir,
      disk: input.disk,
      to: input.to,
    });
    return { ...r, runDate: run.runDate };
  } catch (err) {
    const f = summarizeFailure(err);
    throw backupFailure(
      `export of ${input.disk} from backup ${run.runDate} of ${vm} failed: ${f.message}`,
      f.code,
    );
  }
}
