import {
  condition,
  ParentClosePolicy,
  patched,
  proxyActivities,
  setHandler,
  startChild,
  workflowInfo,
  type ChildWorkflowHandle,
} from '@temporalio/workflow';
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { NodeActivities } from '../activities/node';
import type { Timing } from '../config';
import { assertRunDate, assertVmName, formatRunDate, nodeTaskQueue } from '../domain/names';
import { ErrorCode } from '../domain/errors';
import { pauseSpreadMs } from '../domain/live-group';
import { groupSaves, type SaveGrouping, type SaveSpan } from '../domain/save-room';
import { directory } from './activities';
import { backupVm, type BackupVmResult } from './backup-vm';
import { backupFailure, summarizeFailure } from './failures';
import { vmWorkflowId } from './ids';
import { proceedToMerge, snapshotReported } from './messages';
import { VmNameKey } from './search-attributes';
import { partOutcome, story, withOutcome, type Story } from './story';

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
  /** How the nodes' save limits grouped the saves (absent in runs from before it existed). */
  saves?:
    | (SaveGrouping & {
        spans: SaveSpan[];
        /** How far apart the VMs' pauses began (their backup instants), in ms. */
        pauseSpreadMs?: number | undefined;
      })
    | undefined;
}

/** Patch: the run reads each save's span from its node and reports how they were grouped. */
const SAVE_GROUPS = 'save-groups';

/** Patch: the children's live snapshots on one node share their pause instant. */
const LIVE_GROUPS = 'live-groups';

/**
 * When each snapshotted VM's save began and its downtime ended, read from its journal before
 * the merges start (the retain removes it). Only a report: a VM whose span cannot be read
 * within seconds is left out, and never holds up the merges for long.
 */
async function readSaveSpans(vms: string[], runDate: string): Promise<SaveSpan[]> {
  const spans = await Promise.all(
    vms.map(async (vm): Promise<SaveSpan | undefined> => {
      try {
        const target = await directory.loadBackupTarget(vm);
        const node = proxyActivities<NodeActivities>({
          taskQueue: nodeTaskQueue(target.vm.node),
          scheduleToCloseTimeout: '20s',
          startToCloseTimeout: '10s',
          retry: { maximumAttempts: 2 },
        });
        const s = await node.saveSpan({ vm, runDate, disks: target.vm.disks, plan: target.plan });
        if (s.saveStartedAt === undefined || s.restoredAt === undefined) return undefined; // was off
        return { vm, startedAt: s.saveStartedAt, endedAt: s.restoredAt };
      } catch {
        return undefined;
      }
    }),
  );
  return spans.filter((s): s is SaveSpan => s !== undefined);
}

/**
 * Backs up several VMs (possibly on several nodes) so that their backup instants are
 * close: every VM's snapshot runs first, in parallel as far as each node's save limits
 * allow (the result says how the saves were grouped); only when all have finished (or
 * failed) do the merges and retains begin, and only for the VMs whose snapshot succeeded.
 * Each VM runs as its own `backupVm` child under the VM's workflow ID.
 */
export async function backupVms(input: BackupVmsInput): Promise<BackupVmsResult> {
  const tale = story();
  return withOutcome(
    tale,
    () => backupVmsRun(input, tale),
    (r) => partOutcome(r.results.filter((x) => x.outcome === 'backed-up').length, r.results.length),
  );
}

async function backupVmsRun(input: BackupVmsInput, tale: Story): Promise<BackupVmsResult> {
  try {
    if (!Array.isArray(input.vms) || input.vms.length === 0) throw new Error('no VM to back up');
    input.vms.forEach((vm) => assertVmName(vm));
    if (new Set(input.vms).size !== input.vms.length) throw new Error('a VM is named twice');
    if (input.runDate !== undefined) assertRunDate(input.runDate);
  } catch (err) {
    throw backupFailure((err as Error).message, ErrorCode.unsupportedConfigurationValue);
  }
  const runDate = input.runDate ?? formatRunDate(new Date());
  tale.runDate(runDate);
  tale.details(`Backup of ${input.vms.join(', ')}, run ${runDate}: snapshots first, together, then merges`);
  const reported = new Set<string>();
  setHandler(snapshotReported, ({ vm }) => {
    reported.add(vm);
  });

  const liveGroups = patched(LIVE_GROUPS);
  const outcomes = new Map<string, VmOutcome>();
  const children = new Map<string, ChildWorkflowHandle<typeof backupVm>>();
  await Promise.all(
    input.vms.map(async (vm) => {
      try {
        const coordinator = workflowInfo().workflowId;
        const child = await startChild(backupVm, {
          workflowId: vmWorkflowId(vm),
          args: [
            {
              vm,
              runDate,
              timing: input.timing,
              coordinator,
              // Live snapshots of one node share their pause instant.
              ...(liveGroups && { liveGroup: { id: `${coordinator}/${runDate}`, members: input.vms } }),
            },
          ],
          // A VM half-way through its snapshot must finish even if this run is terminated.
          parentClosePolicy: ParentClosePolicy.ABANDON,
          typedSearchAttributes: [{ key: VmNameKey, value: [vm] }],
          staticSummary: `Backup of ${vm}, run ${runDate}, with ${input.vms.length - 1} other VM(s)`,
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
  let saves: BackupVmsResult['saves'];
  if (patched(SAVE_GROUPS)) {
    const snapshotted = [...children.keys()].filter((vm) => !outcomes.has(vm));
    const spans = await readSaveSpans(snapshotted, runDate);
    saves = { ...groupSaves(spans), spans, pauseSpreadMs: pauseSpreadMs(spans.map((sp) => sp.startedAt)) };
  }
  await Promise.all(
    [...children.entries()]
      .filter(([vm]) => !outcomes.has(vm))
      .map(([, child]) => child.signal(proceedToMerge)),
  );
  await condition(() => input.vms.every((vm) => outcomes.has(vm)));
  return { runDate, results: input.vms.map((vm) => outcomes.get(vm)!), ...(saves && { saves }) };
}
