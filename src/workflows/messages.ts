import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Conflict, Inconsistency } from '../domain/conflicts';

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

// ---- restore ----

export type RestoreStage =
  | 'loading'
  | 'unretaining-small-files'
  | 'awaiting-decision'
  | 'unretaining-large-files'
  | 'restoring'
  | 'finished'
  | 'aborted'
  | 'failed';

/** One difference between the backed-up and the live configuration (see domain/conflicts). */
export type RestoreConflict = Conflict;

export interface RestoreStatus {
  vm: string;
  backup?: string | undefined;
  node?: string | undefined;
  stage: RestoreStage;
  /** The VM comes back from its saved state (so the state's machine cannot change). */
  withState?: boolean | undefined;
  conflicts: RestoreConflict[];
  inconsistencies: Inconsistency[];
  decision?: Record<string, 'backup' | 'live'> | undefined;
  /** Why the last decision that arrived by signal was refused. */
  lastRejection?: string | undefined;
  /** When the restore aborts by itself without a decision (ISO time). */
  decisionDeadline?: string | undefined;
  message?: string | undefined;
}

export type RestoreDecision = Record<string, 'backup' | 'live'>;

export const restoreStatus = defineQuery<RestoreStatus>('restoreStatus');
/** The portal's way: accepted or rejected at once, with the reason. */
export const decideUpdate = defineUpdate<RestoreStatus, [RestoreDecision]>('decide');
/** For clients that can only signal; a refused decision shows in `lastRejection`. */
export const decideSignal = defineSignal<[RestoreDecision]>('decide');
export const abortUpdate = defineUpdate<RestoreStatus, [{ reason?: string }]>('abort');
export const abortSignal = defineSignal<[{ reason?: string }]>('abort');

export interface VerifyProgress {
  vm: string;
  stage: 'loading' | 'verifying' | 'finished';
  /** The backup being verified now. */
  current?: string | undefined;
  done: Array<{ runDate: string; outcome: string }>;
}

export const verifyProgress = defineQuery<VerifyProgress>('verifyProgress');
