/**
 * The provisioning protocol the portal watches on a run leaf. A "go" is written with
 * state 0, the "-ing" form marks work under way, the "-ed" form carries the return value
 * and the UTC time it finished.
 */
export const BackupSteps = ['snapshot', 'merge', 'retain'] as const;
export type BackupStep = (typeof BackupSteps)[number];

export const backupModes = {
  snapshot: { go: 'snapshot', running: 'snapshotting', done: 'snapshotted' },
  merge: { go: 'merge', running: 'merging', done: 'merged' },
  retain: { go: 'retain', running: 'retaining', done: 'retained' },
} as const satisfies Record<BackupStep, { go: string; running: string; done: string }>;

/** One write to a run leaf. `state: 'now'` is replaced by the UTC time when written. */
export interface LeafUpdate {
  mode: string;
  state: '0' | 'now';
  returnValue?: number | undefined;
  executionTimes?: string[] | undefined;
  /** Where the run's files went, recorded when retained so that retention deletes exactly them. */
  backupDir?: string | undefined;
}

export function goUpdate(step: BackupStep): LeafUpdate {
  return { mode: backupModes[step].go, state: '0' };
}
export function runningUpdate(step: BackupStep): LeafUpdate {
  return { mode: backupModes[step].running, state: '0' };
}
export function doneUpdate(step: BackupStep, executionTimes?: string[]): LeafUpdate {
  return { mode: backupModes[step].done, state: 'now', returnValue: 0, executionTimes };
}
/** On an error the return value is the error code and the state stays 0. */
export function failedUpdate(step: BackupStep, code: number): LeafUpdate {
  return { mode: backupModes[step].running, state: '0', returnValue: code };
}
/**
 * A failure before the node changed anything (node not reachable, a refused plan): the
 * leaf stays at the "go" mode with the error code, telling that no file was left behind.
 */
export function refusedUpdate(step: BackupStep, code: number): LeafUpdate {
  return { mode: backupModes[step].go, state: '0', returnValue: code };
}

/** `snapshot: N`, `downtime: N` in whole seconds, rounded up so that a short downtime never reads 0. */
export function executionTime(label: string, ms: number): string {
  return `${label}: ${Math.max(0, Math.ceil(ms / 1000))}`;
}
