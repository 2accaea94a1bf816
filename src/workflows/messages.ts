import { defineQuery, defineSignal } from '@temporalio/workflow';

/** Child → coordinator: this VM's snapshot is done (so all snapshots can finish before any merge). */
export const snapshotReported = defineSignal<[{ vm: string }]>('snapshotReported');
/** Coordinator → child: every snapshot of the run is done, go on with merge and retain. */
export const proceedToMerge = defineSignal('proceedToMerge');

export type BackupStage =
  'loading' | 'snapshot' | 'waiting-for-other-snapshots' | 'merge' | 'retain' | 'finished' | 'failed';

export interface BackupProgress {
  vm: string;
  runDate: string;
  node?: string | undefined;
  stage: BackupStage;
}

export const backupProgress = defineQuery<BackupProgress>('backupProgress');
