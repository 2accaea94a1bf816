import {
  condition,
  setHandler,
  getExternalWorkflowHandle,
  upsertSearchAttributes,
  patched,
} from '@temporalio/workflow';
import type { SnapshotInput, SnapshotResult, VmRunInput } from '../activities/node/types';
import type { Timing } from '../config';
import { ErrorCode } from '../domain/errors';
import { assertRunDate, assertVmName, formatRunDate } from '../domain/names';
import {
  doneUpdate,
  executionTime,
  failedUpdate,
  goUpdate,
  refusedUpdate,
  runningUpdate,
  type BackupStep,
  type LeafUpdate,
} from '../domain/protocol';
import { expiredBackups } from '../domain/retention';
import { isBeingDeleted, isCompleteRun } from '../domain/runs';
import { directory, nodeActivities, patientDirectory } from './activities';
import { backupFailure, summarizeFailure } from './failures';
import {
  backupProgress,
  proceedToMerge,
  snapshotReported,
  type BackupProgress,
  type BackupStage,
} from './messages';
import { story, withOutcome, type Story } from './story';
import { NodeKey } from './search-attributes';

export interface BackupVmInput {
  vm: string;
  /** The planned time, `YYYYMMDDThhmmssZ`; defaults to the workflow's start. */
  runDate?: string | undefined;
  timing: Timing;
  /** Workflow ID of a multi-VM run that holds merges until every snapshot is done. */
  coordinator?: string | undefined;
  /** The multi-VM run's live group: its VMs on one node pause at one instant. */
  liveGroup?: { id: string; members: string[] } | undefined;
}

export interface BackupVmResult {
  /** What retention deleted after this backup (absent in runs from before retention existed). */
  retention?: RetentionOutcome | undefined;
  vm: string;
  node: string;
  runDate: string;
  downtimeMs: number;
  snapshotMs: number;
  wasRunning: boolean;
  /** How the snapshot was taken; absent in runs from before live mode (save). */
  mode?: 'live' | 'save' | undefined;
  /** Why the plan's live mode fell back to save mode. */
  fallback?: string | undefined;
  /** Live mode: when libvirt paused the VM for its last pages (epoch ms). */
  pausedAt?: number | undefined;
  /** Live mode: the copy was ended by pausing the VM (bound reached or the group's instant). */
  forcedPause?: boolean | undefined;
  backupDir: string;
  files: string[];
}

/**
 * Backs up one VM: snapshot → merge → retain on the VM's node, every transition written
 * to the run leaf for the portal. A failed snapshot leaves the VM running on its
 * original disks; the workflow then fails with the contract's error code.
 */
export async function backupVm(input: BackupVmInput): Promise<BackupVmResult> {
  const tale = story();
  return withOutcome(
    tale,
    () => backUp(input, tale),
    () => 'finished',
  );
}

async function backUp(input: BackupVmInput, tale: Story): Promise<BackupVmResult> {
  try {
    assertVmName(input.vm);
    if (input.runDate !== undefined) assertRunDate(input.runDate);
  } catch (err) {
    throw backupFailure((err as Error).message, ErrorCode.cannotFindMachine);
  }
  const vm = input.vm;
  const runDate = input.runDate ?? formatRunDate(new Date());
  const progress: BackupProgress = { vm, runDate, stage: 'loading' };
  let mode = '';
  const stage = (s: BackupStage) => {
    progress.stage = s;
    tale.details(
      `Backup of ${vm}${progress.node ? ` on ${progress.node}` : ''}${mode}, run ${runDate}: ${s}`,
    );
  };
  tale.runDate(runDate);
  stage('loading');
  let proceed = !input.coordinator;
  setHandler(backupProgress, () => progress);
  setHandler(proceedToMerge, () => {
    proceed = true;
  });

  let target;
  try {
    target = await directory.loadBackupTarget(vm);
  } catch (err) {
    const f = summarizeFailure(err);
    stage('failed');
    if (f.code !== ErrorCode.cannotFindMachine) {
      // The VM exists but its configuration is unusable: tell the portal on the run leaf.
      await directory.initializeRun(vm, runDate);
      // Nothing was changed: the go mode with the error code does not hold the VM back.
      await directory.updateRun(vm, runDate, refusedUpdate('snapshot', f.code));
    }
    throw backupFailure(`cannot back up ${vm}: ${f.message}`, f.code);
  }
  progress.node = target.vm.node;
  mode = ` (${target.plan.mode} mode)`;
  upsertSearchAttributes([{ key: NodeKey, value: [target.vm.node] }]);
  const run: VmRunInput = { vm, runDate, disks: target.vm.disks, plan: target.plan };
  const { probe, work } = nodeActivities(target.vm.node, input.timing);

  await directory.initializeRun(vm, runDate);
  // From the first change on the node, leaf writes queue up and retry through any directory
  // outage while the node steps go on; the leaf catches up when the directory is back.
  const outageSafe = patched(LEAF_WRITES_OUTLAST_OUTAGES);
  let changing = false;
  let queue: Promise<void> = Promise.resolve();
  let leafError: string | undefined;
  const leaf = async (u: LeafUpdate): Promise<void> => {
    if (!outageSafe || !changing) return directory.updateRun(vm, runDate, u);
    queue = queue.then(() =>
      patientDirectory.updateRun(vm, runDate, u).catch((err: unknown) => {
        leafError ??= summarizeFailure(err).message;
      }),
    );
  };
  const fail = async (step: BackupStep, err: unknown): Promise<never> => {
    const f = summarizeFailure(err);
    const message = f.nodeUnreachable
      ? `node ${target.vm.node} not reachable: no node worker took the ${step} of ${vm} (${f.message}); nothing was changed`
      : `${step} of ${vm} failed: ${f.message}`;
    stage('failed');
    // Before the node changed anything the leaf stays at the go mode: the VM is not held back.
    await leaf(outageSafe && !changing ? refusedUpdate(step, f.code) : failedUpdate(step, f.code));
    await queue;
    throw backupFailure(message, f.code);
  };

  // --- snapshot ---
  stage('snapshot');
  await directory.updateRun(vm, runDate, goUpdate('snapshot'));
  let snap: SnapshotResult;
  let ldif: string | undefined;
  try {
    // Read before anything changes, so that a directory outage here changes nothing.
    if (outageSafe) ldif = await directory.exportVmEntry(vm);
    await probe.inspectForSnapshot(run);
  } catch (err) {
    return fail('snapshot', err);
  }
  await directory.updateRun(vm, runDate, runningUpdate('snapshot'));
  changing = true;
  try {
    ldif ??= await directory.exportVmEntry(vm);
    const snapInput: SnapshotInput = { ...run, ldif, ...(input.liveGroup && { liveGroup: input.liveGroup }) };
    snap = await work.snapshot(snapInput);
  } catch (err) {
    // Whatever the snapshot left half-done, put it back (or finish it if the VM already runs on the overlays).
    const outcome = await work
      .rollbackSnapshot(run)
      .catch((rollbackErr: unknown) => fail('snapshot', rollbackErr));
    if (outcome !== 'completed') return fail('snapshot', err);
    snap = await work.snapshot({ ...run, ldif: '' });
  }
  await leaf(
    doneUpdate('snapshot', [
      executionTime('snapshot', snap.snapshotMs),
      executionTime('downtime', snap.downtimeMs),
      // Which mode ran and its real pause (ms: a live pause is far below a second).
      ...(snap.mode ? [`mode: ${snap.mode}`, `pause-ms: ${Math.round(snap.downtimeMs)}`] : []),
    ]),
  );

  if (input.coordinator) {
    stage('waiting-for-other-snapshots');
    // Waiting only spares the other snapshots the merge's I/O: if the coordinating run is
    // gone (terminated), merge anyway rather than leave the VM on its overlay for good.
    if (patched('proceed-without-coordinator')) {
      try {
        await getExternalWorkflowHandle(input.coordinator).signal(snapshotReported, { vm });
        await condition(() => proceed, '6h');
      } catch {
        proceed = true; // the coordinator no longer exists
      }
    } else {
      await getExternalWorkflowHandle(input.coordinator).signal(snapshotReported, { vm });
      await condition(() => proceed);
    }
  }

  // --- merge ---
  stage('merge');
  await leaf(goUpdate('merge'));
  await leaf(runningUpdate('merge'));
  let merged;
  try {
    merged = await work.merge(run);
  } catch (err) {
    return fail('merge', err);
  }
  await leaf(doneUpdate('merge', [executionTime('merge', merged.mergeMs)]));

  // --- retain ---
  stage('retain');
  await leaf(goUpdate('retain'));
  await leaf(runningUpdate('retain'));
  let retained;
  try {
    retained = await work.retain(run);
  } catch (err) {
    return fail('retain', err);
  }
  // Recorded on the leaf so that retention later deletes what this run wrote, wherever
  // the plan then points.
  await leaf(
    patched(BACKUP_DIR_ON_LEAF)
      ? { ...doneUpdate('retain'), backupDir: retained.backupDir }
      : doneUpdate('retain'),
  );
  await leaf({ mode: 'finished', state: 'now', returnValue: 0 });
  await queue;
  if (leafError)
    throw backupFailure(
      `backup of ${vm} is complete in ${retained.backupDir}, but its run leaf could not be written: ${leafError}`,
      ErrorCode.directoryConnectionFailed,
    );
  stage('finished');
  // Added after the first release: runs recorded before it replay without it.
  const retention = patched('retention-after-backup') ? await applyRetention(vm, run, work) : undefined;
  return {
    vm,
    node: target.vm.node,
    runDate,
    downtimeMs: snap.downtimeMs,
    snapshotMs: snap.snapshotMs,
    wasRunning: snap.wasRunning,
    ...(snap.mode && { mode: snap.mode }),
    ...(snap.fallback !== undefined && { fallback: snap.fallback }),
    ...(snap.pausedAt !== undefined && { pausedAt: snap.pausedAt }),
    ...(snap.forcedPause && { forcedPause: true }),
    backupDir: retained.backupDir,
    files: retained.files,
    retention,
  };
}

/** Patch: leaf writes after the first change on the node outlast directory outages. */
const LEAF_WRITES_OUTLAST_OUTAGES = 'leaf-writes-outlast-outages';

/** Patch: the leaf records its backup directory, and retention deletes that one. */
const BACKUP_DIR_ON_LEAF = 'backup-dir-on-leaf';

export interface RetentionOutcome {
  deleted: string[];
  error?: string | undefined;
}

/**
 * Keeps the plan's number of complete backups, following the delete protocol on each
 * leaf (`delete` → `deleting` → `deleted`, then the leaf goes). A failure here does not
 * fail the backup that just finished: it is reported, and a backup that could not be
 * deleted keeps its leaf (`deleting`, with the error code) for an operator.
 */
async function applyRetention(
  vm: string,
  run: VmRunInput,
  work: ReturnType<typeof nodeActivities>['work'],
): Promise<RetentionOutcome> {
  const deleted: string[] = [];
  const fromRecord = patched(BACKUP_DIR_ON_LEAF);
  try {
    const runs = await directory.listRuns(vm);
    const expired = expiredBackups(
      // Recorded runs had no verification marks: the same decision replays.
      runs.map((r) => ({
        runDate: r.runDate,
        complete: isCompleteRun(r),
        beingDeleted: isBeingDeleted(r),
        verified: r.verification?.outcome,
      })),
      run.plan.iterations,
    );
    for (const date of expired) {
      await directory.updateRun(vm, date, { mode: 'delete', state: '0' });
      await directory.updateRun(vm, date, { mode: 'deleting', state: '0' });
      if (fromRecord) {
        const backupDir = runs.find((r) => r.runDate === date)?.backupDir;
        try {
          await work.deleteBackup({ ...run, runDate: date, backupDir });
        } catch (err) {
          // The leaf stays, carrying the error code, until an operator looks: removing it
          // would orphan a backup that could not be deleted.
          const code = summarizeFailure(err).code;
          await directory.updateRun(vm, date, { mode: 'deleting', state: '0', returnValue: code });
          throw err;
        }
      } else {
        await work.deleteBackup({ ...run, runDate: date });
      }
      await directory.updateRun(vm, date, { mode: 'deleted', state: 'now', returnValue: 0 });
      await directory.removeRun(vm, date);
      deleted.push(date);
    }
    return { deleted };
  } catch (err) {
    return { deleted, error: summarizeFailure(err).message };
  }
}
