import type { ExportDiskResult } from '../activities/node/export-disk';
import type { Timing } from '../config';
import { nodeActivities } from './activities';
import { keptBackup } from './kept-backup';
import { backupFailure, summarizeFailure } from './failures';
import { story, withOutcome, type Story } from './story';

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
  const tale = story();
  return withOutcome(
    tale,
    () => exportDiskRun(input, tale),
    () => 'finished',
  );
}

async function exportDiskRun(
  input: ExportDiskWorkflowInput,
  tale: Story,
): Promise<ExportDiskResult & { runDate: string }> {
  const { target, run } = await keptBackup(input, 'export from');
  const vm = input.vm;
  tale.runDate(run.runDate);
  tale.details(`Export of disk ${input.disk} of backup ${run.runDate} of ${vm} on ${target.vm.node}`);
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
