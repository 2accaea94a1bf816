import { ErrorCode } from '../errors';
import { act, done, refuse, wait, type Decision } from './step';

/** The domain as libvirt reports it; `job` is a libvirt job still running on it (`Save`, …). */
export interface DomainView {
  state: 'running' | 'paused' | 'shut off' | 'other' | 'absent';
  reason: string;
  job?: string | undefined;
}

export const isActive = (d: DomainView): boolean => d.state === 'running' || d.state === 'paused';

export interface SnapshotDiskView {
  target: string;
  /** At the live path: the VM's own image, our overlay over the retained image, or nothing. */
  live: 'image' | 'overlay' | 'missing';
  /** The image moved into the retain directory. */
  retained: boolean;
  /** The overlay made ahead next to the live image, not yet renamed into place. */
  prepared: boolean;
  /** Which files the VM's QEMU process holds open (only while the VM is active). */
  held: { live: boolean; retained: boolean };
  /** The overlay at the live path holds writes of its own (looked at only when it matters). */
  overlayHasData: boolean;
}

export interface SnapshotJournalView {
  phase: 'prepared' | 'snapshotted' | 'merged';
  wasRunning: boolean;
  wasPaused: boolean;
}

export interface SnapshotWorld {
  vm: string;
  journal?: SnapshotJournalView | undefined;
  domain: DomainView;
  disks: SnapshotDiskView[];
  retainDirExists: boolean;
  xmlSaved: boolean;
  ldifSaved: boolean;
  /** This attempt was given the directory entry to save (a resumed one may not be). */
  ldifGiven: boolean;
  /** A state file where `virsh save` writes (RAM disk or retain directory). */
  stateSaved: boolean;
  /** The state file (or placeholder) in the retain directory. */
  stateRetained: boolean;
}

export const SNAPSHOT_ACTIONS = [
  'begin',
  'save-xml',
  'save-ldif',
  'prepare-overlay',
  'save-state',
  'move-disk',
  'place-overlay',
  'restore-vm',
  'retain-state',
  'write-placeholder',
  'finish',
] as const;
export type SnapshotActionKind = (typeof SNAPSHOT_ACTIONS)[number];
export interface SnapshotAction {
  kind: SnapshotActionKind;
  target?: string | undefined;
}

export const ROLLBACK_ACTIONS = [
  'discard-prepared',
  'discard-overlay',
  'move-back',
  'restore-original',
  'start-vm',
  'remove-state',
  'remove-retain-dir',
] as const;
export type RollbackActionKind = (typeof ROLLBACK_ACTIONS)[number];
export interface RollbackAction {
  kind: RollbackActionKind;
  target?: string | undefined;
}

const one = (kind: SnapshotActionKind, target?: string) => act<SnapshotAction>({ kind, target });
const undo = (kind: RollbackActionKind, target?: string) => act<RollbackAction>({ kind, target });

function isSnapshotted(w: SnapshotWorld): boolean {
  return w.journal?.phase === 'snapshotted' || w.journal?.phase === 'merged';
}

/** The VM runs on our overlays: every disk's live path is the overlay, and QEMU has it open. */
function runsOnOverlays(w: SnapshotWorld): boolean {
  return isActive(w.domain) && w.disks.every((d) => d.live === 'overlay' && d.retained && d.held.live);
}

/**
 * snapshot: save the state, move each disk into the retain directory, put an overlay backed
 * by it in its place, and bring the VM back — one action at a time, from whatever a crash
 * left behind. A refusal means the snapshot cannot go on: the caller rolls back.
 */
export function decideSnapshot(w: SnapshotWorld): Decision<SnapshotAction, 'snapshotted'> {
  if (isSnapshotted(w)) return done('snapshotted');
  const j = w.journal;
  if (w.domain.state === 'absent')
    return refuse(ErrorCode.cannotFindMachine, `VM ${w.vm} is not defined on this node`);
  if (!j) {
    if (w.domain.job)
      return refuse(ErrorCode.wrongStateInformation, `libvirt runs a ${w.domain.job} job on VM ${w.vm}`);
    if (w.domain.state === 'other')
      return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm} is neither running, paused nor shut off`);
    return one('begin');
  }
  // A save we started (and were killed during) goes on inside libvirtd: wait for it, never save twice.
  if (w.domain.job) return wait(`libvirt is still running its ${w.domain.job} job on ${w.vm}`);
  if (!w.xmlSaved) return one('save-xml');
  if (!w.ldifSaved) {
    if (!w.ldifGiven)
      return refuse(ErrorCode.cannotSaveDirectoryEntry, `no directory entry of ${w.vm} to save`);
    return one('save-ldif');
  }
  if (isActive(w.domain)) {
    if (runsOnOverlays(w)) {
      if (j.wasRunning && !w.stateRetained) {
        if (w.stateSaved) return one('retain-state');
        return refuse(
          ErrorCode.cannotSaveState,
          `VM ${w.vm} runs on its overlays but its saved state is gone`,
        );
      }
      if (!j.wasRunning && !w.stateRetained) return one('write-placeholder');
      return one('finish');
    }
    const untouched = w.disks.every((d) => d.live === 'image' && !d.retained);
    if (untouched && j.wasRunning) {
      // Overlays first, so that the downtime window holds only renames.
      for (const d of w.disks) if (!d.prepared) return one('prepare-overlay', d.target);
      return one('save-state');
    }
    return refuse(
      ErrorCode.wrongStateInformation,
      `VM ${w.vm} was started while its disks were being swapped`,
    );
  }
  if (w.domain.state !== 'shut off')
    return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm} is neither running, paused nor shut off`);
  if (j.wasRunning && !w.stateSaved && !w.stateRetained)
    return refuse(ErrorCode.cannotSaveState, `VM ${w.vm} is shut off but its saved state is missing`);
  for (const d of w.disks) {
    if (d.live === 'missing' && !d.retained)
      return refuse(
        ErrorCode.missingFiles,
        `disk ${d.target}: neither the live nor the retained image exists`,
      );
    if (d.live === 'image' && d.retained)
      return refuse(
        ErrorCode.wrongStateInformation,
        `disk ${d.target}: both the live and the retained image exist and the live one is not our overlay`,
      );
    if (d.live === 'overlay' && !d.retained)
      return refuse(ErrorCode.missingFiles, `disk ${d.target}: the overlay's backing file is missing`);
    if (d.live !== 'overlay' && !d.prepared) return one('prepare-overlay', d.target);
  }
  for (const d of w.disks) {
    if (d.live === 'image') return one('move-disk', d.target);
    if (d.live === 'missing') return one('place-overlay', d.target);
  }
  if (j.wasRunning) return one('restore-vm');
  if (!w.stateRetained) return one('write-placeholder');
  return one('finish');
}

/**
 * Rollback of a snapshot that cannot finish: every disk back at its live path, the VM
 * back as it was, the retain directory gone. A VM that already runs on its overlays keeps
 * them (its new writes are there): the snapshot is completed instead.
 */
export function decideRollback(w: SnapshotWorld): Decision<RollbackAction, 'rolled-back' | 'completed'> {
  if (isSnapshotted(w)) return done('completed');
  const j = w.journal;
  if (j && w.domain.state === 'absent')
    return refuse(ErrorCode.cannotFindMachine, `VM ${w.vm} is no longer defined on this node`);
  if (w.domain.job) return wait(`libvirt is still running its ${w.domain.job} job on ${w.vm}`);
  if (j && runsOnOverlays(w) && (!j.wasRunning || w.stateSaved || w.stateRetained)) return done('completed');
  for (const d of w.disks) {
    // A prepared overlay was never put in place, so no VM ever wrote to it.
    if (d.prepared) return undo('discard-prepared', d.target);
    if (d.live === 'overlay') {
      if (!d.retained)
        return refuse(ErrorCode.missingFiles, `disk ${d.target}: the overlay's backing file is missing`);
      if (isActive(w.domain) && d.held.live)
        return refuse(
          ErrorCode.cannotMoveImageBack,
          `disk ${d.target}: VM ${w.vm} writes to its overlay; an operator must merge it`,
        );
      if (d.overlayHasData)
        return refuse(
          ErrorCode.cannotMoveImageBack,
          `disk ${d.target}: the overlay holds guest data; an operator must merge it`,
        );
      return undo('discard-overlay', d.target);
    }
    if (d.live === 'missing') {
      if (!d.retained)
        return refuse(
          ErrorCode.missingFiles,
          `disk ${d.target}: neither the live nor the retained image exists`,
        );
      return undo('move-back', d.target);
    }
    if (d.retained)
      return refuse(
        ErrorCode.wrongStateInformation,
        `disk ${d.target}: both the live and the retained image exist`,
      );
  }
  if (j?.wasRunning) {
    if (w.domain.state === 'shut off')
      return undo(w.stateSaved || w.stateRetained ? 'restore-original' : 'start-vm');
    if (isActive(w.domain) && (w.stateSaved || w.stateRetained)) return undo('remove-state');
  }
  if (w.retainDirExists || w.stateSaved) return undo('remove-retain-dir');
  return done('rolled-back');
}
