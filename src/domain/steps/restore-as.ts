import { ErrorCode } from '../errors';
import { isActive, type DomainView } from './snapshot';
import { act, done, refuse, wait, type Decision } from './step';

/**
 * restore `--as`: a backup brought up as a new VM — copies of its images next to the
 * original's under the new name, a new UUID and MACs — while the original is never touched.
 * The journal (in a work directory of the new name) holds the identity given at `begin`.
 */
export interface RestoreAsWorld {
  vm: string;
  as: string;
  journal: boolean;
  /** The new VM is up (or defined, off) and the state copy gone: nothing left to do here. */
  finished: boolean;
  /** The domain named `as`. */
  domain: DomainView;
  /** Its UUID is the one the journal gave the new VM. */
  domainOurs: boolean;
  images: Array<{ target: string; exists: boolean }>;
  withState: boolean;
  stateCopied: boolean;
  startAfter: boolean;
}

export const RESTORE_AS_ACTIONS = [
  'begin',
  'copy-disk',
  'copy-state',
  'define',
  'restore-from-state',
  'start-vm',
  'finish',
] as const;
export type RestoreAsActionKind = (typeof RESTORE_AS_ACTIONS)[number];
export interface RestoreAsAction {
  kind: RestoreAsActionKind;
  target?: string | undefined;
}

const one = (kind: RestoreAsActionKind, target?: string) => act<RestoreAsAction>({ kind, target });

export function decideRestoreAs(w: RestoreAsWorld): Decision<RestoreAsAction, 'restored'> {
  if (w.journal && w.finished) return done('restored');
  // A domain of that name we did not make: the name is taken, nothing is changed.
  if (w.domain.state !== 'absent' && !w.domainOurs)
    return refuse(ErrorCode.wrongStateInformation, `a domain named ${w.as} exists already`);
  if (!w.journal) {
    const taken = w.images.find((i) => i.exists);
    if (taken)
      return refuse(
        ErrorCode.wrongStateInformation,
        `an image for disk ${taken.target} of ${w.as} exists already; it is never overwritten`,
      );
    return one('begin');
  }
  if (w.domain.job) return wait(`libvirt is still running its ${w.domain.job} job on ${w.as}`);
  const missing = w.images.find((i) => !i.exists);
  if (missing) return one('copy-disk', missing.target);
  if (w.withState && !w.stateCopied && !isActive(w.domain)) return one('copy-state');
  if (w.domain.state === 'absent') return one('define');
  if (!isActive(w.domain)) {
    if (w.withState) return one('restore-from-state');
    if (w.startAfter) return one('start-vm');
  }
  return one('finish');
}
