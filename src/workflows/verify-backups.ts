import { executeChild, setHandler, upsertSearchAttributes, workflowInfo } from '@temporalio/workflow';
import type { FleetRuns } from '../activities/directory';
import type { Timing } from '../config';
import { ErrorCode } from '../domain/errors';
import { assertRunDate, assertVmName } from '../domain/names';
import { isCompleteRun } from '../domain/runs';
import { formatMark, markOf, verificationDue, type VerifyReport } from '../domain/verification';
import { directory, nodeActivities } from './activities';
import { backupFailure, summarizeFailure } from './failures';
import { verifyProgress, type VerifyProgress } from './messages';
import { NodeKey } from './search-attributes';
import { story, withOutcome, type Story } from './story';

export interface VerifyBackupsInput {
  vm: string;
  /** Backups to verify by date; default the latest complete one. */
  backups?: string[] | undefined;
  /** Every complete backup of the VM. */
  all?: boolean | undefined;
  /**
   * Scheduled verification: every complete backup not verified within this many days (the
   * plan's `vmbackupVerifyDays` when it has one).
   */
  dueWithinDays?: number | undefined;
  timing: Timing;
}

export interface VerifyBackupsResult {
  vm: string;
  node: string;
  reports: VerifyReport[];
}

/** Workflow ID of a VM's verification: one at a time per VM, apart from its backups. */
export const verifyWorkflowId = (vm: string): string => `verify/${vm}`;

/**
 * Verifies backups of one VM on its node (read-only there) and marks each on its run leaf,
 * where `vmbackup backups`, retention and the scheduled verification read the outcome. A
 * backup that fails verification is a result, not a workflow failure.
 */
export async function verifyBackups(input: VerifyBackupsInput): Promise<VerifyBackupsResult> {
  const tale = story();
  return withOutcome(
    tale,
    () => verifyBackupsRun(input, tale),
    (r) => (r.reports.some((x) => x.outcome === 'failed') ? 'failed' : 'passed'),
  );
}

async function verifyBackupsRun(input: VerifyBackupsInput, tale: Story): Promise<VerifyBackupsResult> {
  try {
    assertVmName(input.vm);
    for (const d of input.backups ?? []) assertRunDate(d);
  } catch (err) {
    throw backupFailure((err as Error).message, ErrorCode.unsupportedConfigurationValue);
  }
  const vm = input.vm;
  const progress: VerifyProgress = { vm, done: [], stage: 'loading' };
  setHandler(verifyProgress, () => progress);
  let target;
  try {
    target = await directory.loadBackupTarget(vm);
  } catch (err) {
    const f = summarizeFailure(err);
    throw backupFailure(`cannot verify backups of ${vm}: ${f.message}`, f.code);
  }
  upsertSearchAttributes([{ key: NodeKey, value: [target.vm.node] }]);
  const runs = await directory.listRuns(vm);
  const complete = runs.filter(isCompleteRun);
  let chosen: typeof runs;
  if (input.backups?.length) {
    chosen = [];
    for (const d of input.backups) {
      const r = runs.find((x) => x.runDate === d);
      if (!r) throw backupFailure(`VM ${vm} has no backup ${d}`, ErrorCode.missingFiles);
      if (!isCompleteRun(r))
        throw backupFailure(
          `backup ${d} of ${vm} is incomplete (mode ${r.mode})`,
          ErrorCode.wrongStateInformation,
        );
      chosen.push(r);
    }
  } else if (input.all) chosen = complete;
  else if (input.dueWithinDays !== undefined) {
    const days = target.plan.verifyDays ?? input.dueWithinDays;
    const now = new Date(workflowInfo().runStartTime);
    chosen = complete.filter((r) => verificationDue(r.verification, now, days));
  } else chosen = complete.slice(-1);
  if (chosen.length === 0 && input.dueWithinDays === undefined)
    throw backupFailure(`VM ${vm} has no complete backup to verify`, ErrorCode.missingFiles);

  const { verify } = nodeActivities(target.vm.node, input.timing);
  const reports: VerifyReport[] = [];
  for (const r of chosen) {
    progress.stage = 'verifying';
    progress.current = r.runDate;
    tale.details(
      `Verification of ${vm} on ${target.vm.node}: backup ${r.runDate}, ${progress.done.length + 1} of ${chosen.length}`,
    );
    const report = await verify.verifyBackup({
      vm,
      runDate: r.runDate,
      disks: target.vm.disks,
      plan: target.plan,
      backupDir: r.backupDir,
    });
    // False when retention deleted the backup meanwhile: nothing left to mark.
    await directory.markVerification(vm, r.runDate, formatMark(markOf(report)));
    reports.push(report);
    progress.done.push({ runDate: r.runDate, outcome: report.outcome });
  }
  progress.stage = 'finished';
  delete progress.current;
  return { vm, node: target.vm.node, reports };
}

export interface VerifyFleetInput {
  /** Days within which every kept backup is verified again (a plan may set its own). */
  windowDays: number;
  timing: Timing;
}

export interface VerifyFleetResult {
  verified: Array<{ vm: string; runDate: string; outcome: VerifyReport['outcome'] }>;
  /** VMs whose verification could not run (node absent, VM busy with a manual verify, …). */
  errors: Array<{ vm: string; error: string }>;
}

/** VMs with complete backups, grouped by node: each node verifies one VM at a time. */
export function verificationQueues(fleet: readonly FleetRuns[]): Map<string, string[]> {
  const byNode = new Map<string, string[]>();
  for (const f of fleet) {
    if (!f.runs.some(isCompleteRun)) continue;
    byNode.set(f.node, [...(byNode.get(f.node) ?? []), f.vm]);
  }
  return byNode;
}

/**
 * Scheduled verification: every kept backup not verified within the window, one VM at a
 * time on each node (so each node's verification I/O is one sequential reader), the nodes
 * side by side. Each VM's verification is its own child run (`verify/<vm>`).
 */
export async function verifyFleet(input: VerifyFleetInput): Promise<VerifyFleetResult> {
  const fleet = await directory.listFleetRuns();
  const result: VerifyFleetResult = { verified: [], errors: [] };
  await Promise.all(
    [...verificationQueues(fleet)].map(async ([, vms]) => {
      for (const vm of vms) {
        try {
          const r = await executeChild(verifyBackups, {
            workflowId: verifyWorkflowId(vm),
            args: [{ vm, dueWithinDays: input.windowDays, timing: input.timing }],
            staticSummary: `Scheduled verification of ${vm}'s backups (due after ${input.windowDays} days)`,
          });
          for (const rep of r.reports)
            result.verified.push({ vm, runDate: rep.runDate, outcome: rep.outcome });
        } catch (err) {
          result.errors.push({ vm, error: summarizeFailure(err).message });
        }
      }
    }),
  );
  return result;
}
