import { ErrorCode } from '../errors';
import { devicesOf, readDomainXml } from '../domain-xml';
import { isActive, type DomainView } from './snapshot';
import { act, done, refuse, wait, type Decision } from './step';

/**
 * Live mode: libvirt snapshots memory and disks while the guest runs (pausing it only for
 * its last dirty pages), the VM goes on on new overlays next to its images, the frozen
 * images are copied into the retain directory, and the merge commits each overlay back
 * into its image. The images never move, so a crash can never leave a VM whose disk or
 * backing file is somewhere else.
 */
export interface LiveDiskView {
  target: string;
  /** libvirt's source of the disk now: the VM's own image, our overlay, or anything else. */
  source: 'image' | 'overlay' | 'other';
  imageExists: boolean;
  overlayExists: boolean;
  /** The VM's QEMU process holds the overlay open. */
  overlayHeld: boolean;
  /** The copy of the frozen image is complete in the retain directory. */
  retained: boolean;
  /** The image is as it was when the backup of a shut-off VM began (nobody started it since). */
  imageUnchanged: boolean;
  /** The block job (a commit) running on the disk. */
  job?: { cur: number; end: number } | undefined;
  /** Commits this attempt has started on the disk. */
  commits: number;
}

export interface LiveJournalView {
  phase: 'prepared' | 'snapshotted' | 'merged';
  mode: 'live' | 'save';
  wasRunning: boolean;
  wasPaused: boolean;
  /** Live snapshots started; each may have been cut short by a crash. */
  liveAttempts: number;
  /** libvirt refused the live snapshot: the reason for falling back to save mode. */
  liveError?: string | undefined;
  /** We suspended the VM to end its memory copy; libvirt resumes it when its job ends. */
  pausedByUs: boolean;
  /** We started the (shut-off) VM paused for the commit, so it is ours to stop again. */
  mergeStartedVm: boolean;
  /** The VM's group (a multi-VM run) may have paused it. */
  groupMember?: boolean | undefined;
  /** A rollback of this snapshot has begun: a retried snapshot must not start over. */
  rollingBack?: boolean | undefined;
}

export interface LiveWorld {
  vm: string;
  journal?: LiveJournalView | undefined;
  domain: DomainView;
  disks: LiveDiskView[];
  retainDirExists: boolean;
  xmlSaved: boolean;
  ldifSaved: boolean;
  ldifGiven: boolean;
  /** The memory file where libvirt writes it (RAM disk or retain directory). */
  stateSaved: boolean;
  /** The memory file (or placeholder) in the retain directory. */
  stateRetained: boolean;
  /** The memory copy is to be ended by pausing now: its time bound passed, or the group's instant came. */
  pauseDue: boolean;
}

export const LIVE_SNAPSHOT_ACTIONS = [
  'begin',
  'save-xml',
  'save-ldif',
  'discard-overlay',
  'remove-state',
  'live-snapshot',
  'pause',
  'resume',
  'fall-back',
  'copy-disk',
  'retain-state',
  'write-placeholder',
  'finish',
] as const;
export type LiveSnapshotActionKind = (typeof LIVE_SNAPSHOT_ACTIONS)[number];

export const LIVE_MERGE_ACTIONS = [
  'start-paused',
  'start-commit',
  'pivot',
  'discard-overlay',
  'stop-vm',
  'finish',
] as const;
export type LiveMergeActionKind = (typeof LIVE_MERGE_ACTIONS)[number];

export const LIVE_ROLLBACK_ACTIONS = [
  'resume',
  'start-paused',
  'start-commit',
  'pivot',
  'discard-overlay',
  'stop-vm',
  'remove-retain-dir',
] as const;
export type LiveRollbackActionKind = (typeof LIVE_ROLLBACK_ACTIONS)[number];

export interface LiveAction<K extends string = string> {
  kind: K;
  target?: string | undefined;
}
export type LiveSnapshotAction = LiveAction<LiveSnapshotActionKind>;
export type LiveMergeAction = LiveAction<LiveMergeActionKind>;
export type LiveRollbackAction = LiveAction<LiveRollbackActionKind>;

/** Live snapshots started (a crash may cut one short) before falling back to save mode. */
export const MAX_LIVE_ATTEMPTS = 2;
/** A commit that keeps ending without the VM leaving its overlay is not retried for ever. */
export const MAX_COMMITS = 4;

const one = <K extends string>(kind: K, target?: string) => act<LiveAction<K>>({ kind, target });

const onOverlays = (w: LiveWorld): boolean => w.disks.every((d) => d.source === 'overlay');
const onImages = (w: LiveWorld): boolean => w.disks.every((d) => d.source === 'image');

function strangeDisk(w: LiveWorld): Decision<never, never> | undefined {
  const other = w.disks.find((d) => d.source === 'other');
  if (other)
    return refuse(
      ErrorCode.wrongStateInformation,
      `disk ${other.target}: libvirt uses a file that is neither its image nor the backup's overlay`,
    );
  const gone = w.disks.find((d) => !d.imageExists);
  if (gone) return refuse(ErrorCode.missingFiles, `disk ${gone.target}: its image is missing`);
  return undefined;
}

/**
 * live snapshot, from whatever a crash left behind: a libvirt job still running is waited
 * for (or ended by pausing once due), never started twice; a VM on its overlays has its
 * frozen images copied; a VM still on its images gets the snapshot (again) or, when libvirt
 * refused it, falls back to save mode. A VM that was shut off is copied as long as nobody
 * starts it.
 */
export function decideLiveSnapshot(w: LiveWorld): Decision<LiveSnapshotAction, 'snapshotted' | 'fell-back'> {
  const j = w.journal;
  if (j?.mode === 'save') return done('fell-back');
  if (j && j.phase !== 'prepared') return done('snapshotted');
  if (w.domain.state === 'absent')
    return refuse(ErrorCode.cannotFindMachine, `VM ${w.vm} is not defined on this node`);
  if (!j) {
    if (w.domain.job)
      return refuse(ErrorCode.wrongStateInformation, `libvirt runs a ${w.domain.job} job on VM ${w.vm}`);
    if (w.domain.state === 'other')
      return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm} is neither running, paused nor shut off`);
    return one('begin');
  }
  if (j.rollingBack)
    return refuse(ErrorCode.wrongStateInformation, `the snapshot of ${w.vm} is being rolled back`);
  if (w.domain.job) {
    if (w.domain.job === 'Snapshot' && w.domain.state === 'running' && w.pauseDue && !j.pausedByUs)
      return one('pause');
    return wait(`libvirt is still running its ${w.domain.job} job on ${w.vm}`);
  }
  if (!w.xmlSaved) return one('save-xml');
  if (!w.ldifSaved) {
    if (!w.ldifGiven)
      return refuse(ErrorCode.cannotSaveDirectoryEntry, `no directory entry of ${w.vm} to save`);
    return one('save-ldif');
  }
  const strange = strangeDisk(w);
  if (strange) return strange;

  if (!j.wasRunning) {
    // Shut off at the start: its images are frozen for as long as nobody starts it.
    if (isActive(w.domain) || !onImages(w))
      return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm} was started while its disks were copied`);
    const changed = w.disks.find((d) => !d.imageUnchanged);
    if (changed)
      return refuse(
        ErrorCode.wrongStateInformation,
        `disk ${changed.target} changed while it was copied: VM ${w.vm} was started meanwhile`,
      );
    for (const d of w.disks) if (!d.retained) return one('copy-disk', d.target);
    if (!w.stateRetained) return one('write-placeholder');
    return one('finish');
  }

  if (onOverlays(w)) {
    // The snapshot is taken: the VM runs on its overlays and its images are frozen.
    if (w.domain.state === 'paused' && !j.wasPaused) return one('resume');
    if (!w.stateSaved && !w.stateRetained)
      return refuse(ErrorCode.cannotSaveState, `VM ${w.vm}: the memory file of its live snapshot is gone`);
    for (const d of w.disks) if (!d.retained) return one('copy-disk', d.target);
    if (!w.stateRetained) return one('retain-state');
    return one('finish');
  }
  if (!onImages(w))
    return refuse(
      ErrorCode.wrongStateInformation,
      `VM ${w.vm} runs on the overlays of some disks only: an operator must commit them`,
    );
  // Not snapshotted (yet): clear what a failed or cut-short attempt left, then try (again).
  if (!isActive(w.domain))
    return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm} was shut down before its live snapshot`);
  if (w.domain.state === 'paused' && !j.wasPaused && (j.pausedByUs || j.groupMember)) return one('resume');
  for (const d of w.disks) {
    if (!d.overlayExists) continue;
    if (d.overlayHeld)
      return refuse(
        ErrorCode.wrongStateInformation,
        `disk ${d.target}: VM ${w.vm} holds the overlay open though libvirt does not use it`,
      );
    return one('discard-overlay', d.target);
  }
  if (w.stateSaved) return one('remove-state');
  if (j.liveError !== undefined || j.liveAttempts >= MAX_LIVE_ATTEMPTS) return one('fall-back');
  return one('live-snapshot');
}

/**
 * Commits every overlay back into its image, the VM staying on its original paths
 * (`blockcommit --active`, then the pivot); undefined once no disk is on an overlay.
 */
function commitBack<K extends 'start-paused' | 'start-commit' | 'pivot'>(
  w: LiveWorld,
): Decision<LiveAction<K>, never> | undefined {
  for (const d of w.disks) {
    if (d.source !== 'overlay') continue;
    if (w.domain.state === 'shut off') return one('start-paused' as K);
    if (!isActive(w.domain))
      return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm} is neither running, paused nor shut off`);
    if (d.job) {
      if (d.job.end > 0 && d.job.cur >= d.job.end) return one('pivot' as K, d.target);
      return wait(`commit of ${d.target} ${d.job.cur}/${d.job.end}`, {
        file: d.target,
        bytes: d.job.cur,
        total: d.job.end,
      });
    }
    if (d.commits >= MAX_COMMITS)
      return refuse(ErrorCode.mergeFailed, `commit of ${d.target} keeps ending without the pivot`);
    return one('start-commit' as K, d.target);
  }
  return undefined;
}

/** Overlays no VM uses any more: their writes are in the images (pivoted) or never were. */
function spentOverlay(w: LiveWorld): string | undefined {
  return w.disks.find((d) => d.source === 'image' && d.overlayExists && !d.overlayHeld)?.target;
}

/** live merge: each overlay committed back into its image, the overlays removed. */
export function decideLiveMerge(w: LiveWorld): Decision<LiveMergeAction, 'merged'> {
  const j = w.journal;
  if (!j || j.phase === 'prepared')
    return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm}: no finished snapshot to merge`);
  if (j.phase === 'merged') return done('merged');
  if (w.domain.state === 'absent')
    return refuse(ErrorCode.cannotFindMachine, `VM ${w.vm} is not defined on this node`);
  const strange = strangeDisk(w);
  if (strange) return strange;
  const commit = commitBack<'start-paused' | 'start-commit' | 'pivot'>(w);
  if (commit) return commit;
  const spent = spentOverlay(w);
  if (spent) return one('discard-overlay', spent);
  // Only a VM we started for the commit is ours to stop.
  if (j.mergeStartedVm && w.domain.state === 'paused') return one('stop-vm');
  return one('finish');
}

/**
 * Rollback of a live snapshot that cannot finish: a VM on its overlays is committed back
 * (its writes since the snapshot are kept), leftovers go, and the retain directory with
 * them. A snapshot that has everything it needs is completed instead.
 */
export function decideLiveRollback(w: LiveWorld): Decision<LiveRollbackAction, 'rolled-back' | 'completed'> {
  const j = w.journal;
  if (j && j.phase !== 'prepared') return done('completed');
  if (w.domain.job) return wait(`libvirt is still running its ${w.domain.job} job on ${w.vm}`);
  if (j && w.domain.state === 'absent')
    return refuse(ErrorCode.cannotFindMachine, `VM ${w.vm} is no longer defined on this node`);
  if (
    j?.wasRunning &&
    w.domain.state === 'paused' &&
    !j.wasPaused &&
    (onOverlays(w) || j.pausedByUs || j.groupMember)
  )
    return one('resume');
  if (j?.wasRunning && onOverlays(w) && w.disks.every((d) => d.retained) && (w.stateSaved || w.stateRetained))
    return done('completed');
  if (w.disks.some((d) => d.source === 'other' || !d.imageExists)) {
    const strange = strangeDisk(w);
    if (strange) return strange;
  }
  const commit = commitBack<'start-paused' | 'start-commit' | 'pivot'>(w);
  if (commit) return commit;
  const spent = spentOverlay(w);
  if (spent) return one('discard-overlay', spent);
  if (j?.mergeStartedVm && w.domain.state === 'paused') return one('stop-vm');
  if (w.retainDirExists || w.stateSaved) return one('remove-retain-dir');
  return done('rolled-back');
}

/**
 * Why live mode cannot work for this VM, read from its domain XML, or undefined. Devices
 * that pin a guest to its host (passthrough) block the memory copy.
 */
export function liveObstacle(xml: string): string | undefined {
  if (devicesOf(readDomainXml(xml).root, 'hostdev').length)
    return 'a host device is passed through, which blocks a live memory copy';
  return undefined;
}
