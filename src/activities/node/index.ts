import type { NodeConfig } from '../../config';
import { asFailure } from '../failure';
import { nodeDeps, resolveRun } from './context';
import { JOURNAL_FILE } from './journal';
import { journalIn, type PlacementCheck } from './placement';
import { heartbeating, oneAtATime } from './guard';
import { withVmFileLock } from './vm-lock';
import { deleteBackup } from './delete-backup';
import { describeBackups } from './describe-backups';
import { merge } from './merge';
import { retain } from './retain';
import { verifyBackup } from './verify';
import { exportDisk } from './export-disk';
import { drillBackup, type DrillInput } from './drill';
import { forgetRestoreAs, restoreAs, type RestoreAsInput } from './restore-as';
import { saveSpan } from './save-slots';
import { inspectForSnapshot, rollbackSnapshot, snapshot } from './snapshot';
import type { SnapshotInput, VmRunInput } from './types';
import {
  cleanRestore,
  restoreMachine,
  unretainLargeFiles,
  unretainSmallFiles,
  RESTORE_JOURNAL,
  type RestoreMachineInput,
} from './restore';

/**
 * The hypervisor activities a node worker runs on its own task queue. Each first checks in
 * the directory that the VM belongs to this node (`placement`).
 */
export function createNodeActivities(config: NodeConfig, placement: PlacementCheck) {
  const deps = nodeDeps(config);
  const runBegun = (input: VmRunInput) => async () => {
    try {
      return await journalIn(resolveRun(deps, input).layout.retainDir, [JOURNAL_FILE, RESTORE_JOURNAL]);
    } catch {
      return false;
    }
  };
  const guarded =
    <I extends VmRunInput, R>(fn: (d: typeof deps, input: I) => Promise<R>) =>
    (input: I) =>
      heartbeating(() =>
        oneAtATime(String(input?.vm), () =>
          withVmFileLock(String(input?.vm), async () => {
            await placement(String(input?.vm), runBegun(input));
            return fn(deps, input);
          }),
        ),
      );
  // Reads of a kept backup: placement checked, but not queued behind the VM's backup steps,
  // so that a long verification never delays the nightly snapshot.
  const placedRead =
    <I extends VmRunInput, R>(fn: (d: typeof deps, input: I) => Promise<R>) =>
    (input: I) =>
      heartbeating(async () => {
        await placement(String(input?.vm), async () => false);
        return fn(deps, input);
      });
  return {
    verifyBackup: asFailure(placedRead(verifyBackup)),
    exportDisk: asFailure(placedRead(exportDisk)),
    // A drill only reads the backup and has scratch files of its own: never queued behind the
    // VM's backup steps, but one drill of a VM at a time (its own lock).
    drill: asFailure((input: DrillInput) =>
      oneAtATime(`drill:${String(input?.vm)}`, () =>
        withVmFileLock(`${String(input?.vm)}.drill`, () => placedRead(drillBackup)(input)),
      ),
    ),
    // Changes only files and a domain of the new name: not queued behind the original's backup.
    restoreAs: asFailure((input: RestoreAsInput) =>
      oneAtATime(`as:${String(input?.as)}`, () =>
        withVmFileLock(`${String(input?.as)}.restore-as`, () => placedRead(restoreAs)(input)),
      ),
    ),
    forgetRestoreAs: asFailure(placedRead(forgetRestoreAs)),
    inspectForSnapshot: asFailure(guarded(inspectForSnapshot)),
    // Read-only and brief: not queued behind the VM's running step.
    saveSpan: asFailure((input: VmRunInput) => saveSpan(deps, input)),
    snapshot: asFailure(guarded((d, input: SnapshotInput) => snapshot(d, input))),
    rollbackSnapshot: asFailure(guarded((d, input: VmRunInput) => rollbackSnapshot(d, input))),
    merge: asFailure(guarded(merge)),
    retain: asFailure(guarded(retain)),
    unretainSmallFiles: asFailure(guarded(unretainSmallFiles)),
    unretainLargeFiles: asFailure(guarded(unretainLargeFiles)),
    restoreMachine: asFailure(guarded((d, input: RestoreMachineInput) => restoreMachine(d, input))),
    cleanRestore: asFailure(guarded(cleanRestore)),
    deleteBackup: asFailure(guarded(deleteBackup)),
    describeBackups: asFailure(
      guarded((d, input: VmRunInput & { runDates: string[] }) => describeBackups(d, input)),
    ),
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
