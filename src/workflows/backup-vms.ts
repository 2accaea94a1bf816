import {
  condition,
  ParentClosePolicy,
  setHandler,
  startChild,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { Timing } from '../config';
import { assertRunDate, assertVmName, formatRunDate } from '../domain/names';
import { ErrorCode } from '../domain/errors';
import { backupVm, type BackupVmResult } from './backup-vm';
import { backupFailure, summarizeFailure } from './failures';
import { vmWorkflowId } from './ids';
import { proceedToMerge, snapshotReported } from './messages';
import { VmNameKey } from './search-attributes';

export interface BackupVmsInput {
  vms: string[];
  runDate?: string | undefined;
  timing: Timing;
}

export type VmOutcome =
  | ({ outcome: 'backed-up' } & BackupVmResult)
  | { vm: string; outcome: 'failed'; errorCode: number; message: string }
  | { vm: string; outcome: 'refused'; message: string };

export interface BackupVmsResult {
  runDate: string;
  results: VmOutcome[];
}

/**
 * Backs up several VMs (possibly on several nodes) so that their backup instants are
 * close: every VM's snapshot runs first, in parallel; only when all have finished (or
 * failed) do the merges and retains begin, and only for the VMs whose snapshot succeeded.
 * Each VM runs as its own `backupVm` child under the VM's workflow ID.
 */
export async function backupVms(input: BackupVmsInput): Promise<BackupVmsResult> {
  try {
    if (!Array.isArray(input.vms) || input.vms.length === 0) throw new Error('no VM to back up');
    input.vms.forEach((vm) => assertVmName(vm));
    if (new Set(input.vms).size !== input.vms.length) throw new Error('a VM is named twice');
    if (input.runDate !== undefined) assertRunDate(input.runDate);
  } catch (err) {
    throw backupFailure((err as Error).message, ErrorCode.unsupportedConfigurationValue);
  }
  const runDate = input.runDate ?? formatRunDate(new Date());
  const reported = new Set<string>();
  setHandler(snapshotReported, ({ vm }) => {
    reported.add(vm);
  });

  const outcomes = new Map<string, VmOutcome>();
  const children = new Map<string, ChildWorkflowHandle<typeof backupVm>>();
  await Promise.all(
    input.vms.map(async (vm) => {
      try {
        const child = await startChild(backupVm, {
          workflowId: vmWorkflowId(vm),
          args: [{ vm, runDate, timing: input.timing, coordinator: workflowInfo().workflowId }],
          // A VM half-way through its snapshot must finish even if this run is terminated.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          typedSearchAttributes: [{ key: VmNameKey, value: [vm] }],
        });
        children.set(vm, child);
        child.result().then(
          (result) => outcomes.set(vm, { outcome: 'backed-up', ...result }),
          (err: unknown) => {
            const f = summarizeFailure(err);
            outcomes.set(vm, { vm, outcome: 'failed', errorCode: f.code, message: f.message });
          },
        );
      } catch (err) {
        if (err instanceof WorkflowExecutionAlreadyStartedError) {
          outcomes.set(vm, {
            vm,
            outcome: 'refused',
            message: `a backup or restore of ${vm} is already running`,
          });
        } else {
          outcomes.set(vm, {
            vm,
            outcome: 'failed',
            errorCode: ErrorCode.undefinedError,
            message: (err as Error).message,
          });
        }
      }
    }),
  );

  // All snapshots first: each child reports its snapshot, or ends (failed before merging).
  await condition(() => [...children.keys()].every((vm) => reported.has(vm) || outcomes.has(vm)));
  await Promise.all(
    [...children.entries()]
      .filter(([vm]) => !outcomes.has(vm))
      .map(([, child]) => child.signal(proceedToMerge)),
  );
  await condition(() => input.vms.every((vm) => outcomes.has(vm)));
  return { runDate, results: input.vms.map((vm) => outcomes.get(vm)!) };
}
