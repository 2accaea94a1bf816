import { ErrorCode } from '../errors';
import type { DomainView } from './snapshot';
import { act, done, refuse, wait, type Decision } from './step';

export interface MergeDiskView {
  target: string;
  /** The live image still reads from the retain directory. */
  dependsOnRetain: boolean;
  /** The block job running on the disk, if any. */
  job?: { cur: number; end: number } | undefined;
  /** Block pulls this attempt has started on the disk. */
  pulls: number;
}

export interface MergeWorld {
  vm: string;
  journal?: { phase: 'prepared' | 'snapshotted' | 'merged'; mergeStartedVm: boolean } | undefined;
  domain: DomainView;
  disks: MergeDiskView[];
}

export const MERGE_ACTIONS = ['start-paused', 'start-pull', 'stop-vm', 'finish'] as const;
export type MergeActionKind = (typeof MERGE_ACTIONS)[number];
export interface MergeAction {
  kind: MergeActionKind;
  target?: string | undefined;
}

/** A pull that keeps ending without removing the dependency is not retried for ever. */
export const MAX_PULLS = 4;

const one = (kind: MergeActionKind, target?: string) => act<MergeAction>({ kind, target });

/**
 * merge: stream every retained image into its live overlay (block pull) until no live image
 * depends on the retain directory; a shut-off VM is started paused for it and stopped again.
 */
export function decideMerge(w: MergeWorld): Decision<MergeAction, 'merged'> {
  const j = w.journal;
  if (!j || j.phase === 'prepared')
    return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm}: no finished snapshot to merge`);
  if (j.phase === 'merged') return done('merged');
  const pending = w.disks.filter((d) => d.dependsOnRetain);
  if (pending.length === 0) {
    // Only a VM we started for the merge is ours to stop.
    if (j.mergeStartedVm && w.domain.state === 'paused') return one('stop-vm');
    return one('finish');
  }
  if (w.domain.state === 'absent')
    return refuse(ErrorCode.cannotFindMachine, `VM ${w.vm} is not defined on this node`);
  if (w.domain.state === 'shut off') return one('start-paused');
  if (w.domain.state === 'other')
    return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm} is neither running, paused nor shut off`);
  for (const d of pending) {
    if (d.job) continue;
    if (d.pulls >= MAX_PULLS)
      return refuse(ErrorCode.mergeFailed, `block pull of ${d.target} keeps ending without finishing`);
    return one('start-pull', d.target);
  }
  // Progress over every disk still pulling, so one bar shows the whole merge.
  const jobs = pending.flatMap((d) => (d.job ? [d.job] : []));
  return wait(
    `block pull of ${pending.map((d) => `${d.target} ${d.job ? `${d.job.cur}/${d.job.end}` : ''}`).join(', ')}`,
    {
      file: pending.map((d) => d.target).join(','),
      bytes: jobs.reduce((n, j) => n + j.cur, 0),
      total: jobs.reduce((n, j) => n + j.end, 0),
    },
  );
}
