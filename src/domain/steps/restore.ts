import { ErrorCode } from '../errors';
import { isActive, type DomainView } from './snapshot';
import { act, done, refuse, wait, type Decision } from './step';

export interface UnretainFileView {
  name: string;
  atBackup: boolean;
  atRetain: boolean;
}

export interface UnretainWorld {
  vm: string;
  /** A marker of an earlier restore of this backup that finished. */
  staleMarker: boolean;
  retainDirExists: boolean;
  files: UnretainFileView[];
}

export const UNRETAIN_ACTIONS = ['clear-marker', 'create-retain-dir', 'copy-file'] as const;
export type UnretainActionKind = (typeof UNRETAIN_ACTIONS)[number];
export interface UnretainAction {
  kind: UnretainActionKind;
  target?: string | undefined;
}

/**
 * unretain (small or large files): copy each of the backup's files into the retain
 * directory; an image is checked before it appears there under its name.
 */
export function decideUnretain(w: UnretainWorld): Decision<UnretainAction, 'unretained'> {
  if (w.staleMarker) return act({ kind: 'clear-marker' });
  for (const f of w.files)
    if (!f.atBackup && !f.atRetain) return refuse(ErrorCode.missingFiles, `backup file ${f.name} is missing`);
  if (!w.retainDirExists) return act({ kind: 'create-retain-dir' });
  const next = w.files.find((f) => !f.atRetain);
  if (next) return act({ kind: 'copy-file', target: next.name });
  return done('unretained');
}

export interface RestoreDiskView {
  target: string;
  /** The backed-up image waits in the retain directory. */
  retained: boolean;
  /** Something is at the live path. */
  live: boolean;
  /** The live image this restore put aside (`<image>.pre-restore-<token>`). */
  keptAside: boolean;
}

export interface RestoreWorld {
  vm: string;
  /** The restore's journal exists (it began). */
  begun: boolean;
  /** This restore finished: its marker is written. */
  finished: boolean;
  retainDirExists: boolean;
  domain: DomainView;
  disks: RestoreDiskView[];
  stateRetained: boolean;
  defined: boolean;
  withState: boolean;
  startAfter: boolean;
}

export const RESTORE_ACTIONS = [
  'begin',
  'stop-vm',
  'keep-aside',
  'place-image',
  'define',
  'restore-from-state',
  'start-vm',
  'finish',
] as const;
export type RestoreActionKind = (typeof RESTORE_ACTIONS)[number];
export interface RestoreAction {
  kind: RestoreActionKind;
  target?: string | undefined;
}

const one = (kind: RestoreActionKind, target?: string) => act<RestoreAction>({ kind, target });

/**
 * restore: stop the VM, keep each live image aside under a name of this restore's own,
 * put the backed-up images in place, define the resolved XML and bring the VM back from
 * its state (or start it, or leave it off). The domain is never undefined; kept-aside
 * images go only once the VM runs again.
 */
export function decideRestore(w: RestoreWorld): Decision<RestoreAction, 'restored'> {
  if (w.finished) return w.retainDirExists ? one('finish') : done('restored');
  if (!w.begun) {
    for (const d of w.disks)
      if (!d.retained && !d.live)
        return refuse(
          ErrorCode.missingFiles,
          `disk ${d.target}: neither the backed-up image nor the live one exists`,
        );
    if (w.withState && !w.stateRetained)
      return refuse(ErrorCode.missingFiles, `the state file of ${w.vm} is missing from the retain directory`);
    return one('begin');
  }
  if (w.domain.job) return wait(`libvirt is still running its ${w.domain.job} job on ${w.vm}`);
  const pending = w.disks.filter((d) => d.retained);
  if (pending.length) {
    // Nothing live is touched while the VM runs.
    if (isActive(w.domain)) return one('stop-vm');
    if (w.domain.state === 'other')
      return refuse(ErrorCode.wrongStateInformation, `VM ${w.vm} is neither running, paused nor shut off`);
    for (const d of pending) {
      if (d.live && d.keptAside)
        return refuse(
          ErrorCode.wrongStateInformation,
          `disk ${d.target}: a live image appeared after the old one was kept aside`,
        );
      return one(d.live ? 'keep-aside' : 'place-image', d.target);
    }
  }
  for (const d of w.disks)
    if (!d.live) return refuse(ErrorCode.missingFiles, `disk ${d.target}: the restored image is missing`);
  if (!w.defined) return one('define');
  if (!isActive(w.domain)) {
    if (w.withState) {
      if (!w.stateRetained)
        return refuse(
          ErrorCode.missingFiles,
          `the state file of ${w.vm} is missing from the retain directory`,
        );
      return one('restore-from-state');
    }
    if (w.startAfter) return one('start-vm');
  }
  return one('finish');
}
