import { executeChild, workflowInfo } from '@temporalio/workflow';
import type { DrillReport } from '../activities/node/drill';
import type { Timing } from '../config';
import { directory, nodeActivities } from './activities';
import { keptBackup } from './kept-backup';
import { backupFailure, summarizeFailure } from './failures';
import { verificationQueues } from './verify-backups';
import { story, withOutcome, type Story } from './story';

export interface DrillBackupInput {
  vm: string;
  /** The backup's date; default the latest complete one. */
  backup?: string | undefined;
  timing: Timing;
}

/** One drill of a VM at a time, apart from its backups (`vm/<vm>`): a drill never delays a backup. */
export const drillWorkflowId = (vm: string): string => `drill/${vm}`;

/**
 * Restore drill: the node brings the backup up as a scratch VM, checks it and removes it
 * again; the report (also in the backup directory as `<vm>.drill.<date>`) says whether it
 * passed and what failed. A failed drill is a result, not a workflow failure.
 */
export async function drillBackup(input: DrillBackupInput): Promise<DrillReport> {
  const tale = story();
  return withOutcome(
    tale,
    () => drillBackupRun(input, tale),
    (r) => r.outcome,
  );
}

async function drillBackupRun(input: DrillBackupInput, tale: Story): Promise<DrillReport> {
  const { target, run } = await keptBackup(input, 'drill a backup of');
  const vm = input.vm;
  tale.runDate(run.runDate);
  tale.details(`Restore drill of backup ${run.runDate} of ${vm} on ${target.vm.node}`);
  // Once scratch files exist only the node can remove them: retried like backup steps.
  const { work } = nodeActivities(target.vm.node, input.timing);
  try {
    return await work.drill({
      vm,
      runDate: run.runDate,
      disks: target.vm.disks,
      plan: target.plan,
      backupDir: run.backupDir,
      drillId: workflowInfo().runId,
    });
  } catch (err) {
    const f = summarizeFailure(err);
    throw backupFailure(`drill of backup ${run.runDate} of ${vm} failed: ${f.message}`, f.code);
  }
}

export interface DrillFleetResult {
  drilled: Array<{ vm: string; runDate: string; outcome: DrillReport['outcome']; durationMs: number }>;
  errors: Array<{ vm: string; error: string }>;
}

/** Scheduled drills: each VM's latest backup, one VM at a time per node, the nodes side by side. */
export async function drillFleet(input: { timing: Timing }): Promise<DrillFleetResult> {
  const fleet = await directory.listFleetRuns();
  const result: DrillFleetResult = { drilled: [], errors: [] };
  await Promise.all(
    [...verificationQueues(fleet)].map(async ([, vms]) => {
      for (const vm of vms) {
        try {
          const r = await executeChild(drillBackup, {
            workflowId: drillWorkflowId(vm),
            args: [{ vm, timing: input.timing }],
            staticSummary: `Monthly restore drill of ${vm}`,
          });
          result.drilled.push({ vm, runDate: r.runDate, outcome: r.outcome, durationMs: r.durationMs });
        } catch (err) {
          result.errors.push({ vm, error: summarizeFailure(err).message });
        }
      }
    }),
  );
  return result;
}
