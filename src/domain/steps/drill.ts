import { ErrorCode } from '../errors';
import { isActive, type DomainView } from './snapshot';
import { act, done, refuse, wait, type Decision } from './step';

/**
 * A restore drill: the backup brought up as a scratch domain of its own (new name, UUID,
 * directory), checked, destroyed and removed. Every fact a re-run needs is in the world
 * or in the drill's journal in the scratch directory; the journal names its drill, so a
 * later drill of the same backup never takes an older one's leftovers for its own.
 */
export interface DrillWorld {
  vm: string;
  scratch: string;
  /** `ours`: this drill's journal; `stale`: one of an earlier drill that never finished. */
  journal: 'none' | 'ours' | 'stale';
  scratchDirExists: boolean;
  /** The domain named `scratch`, as libvirt shows it. */
  domain: DomainView;
  /** Its UUID is the one the journal (ours or stale) gave the scratch domain. */
  domainOurs: boolean;
  disks: Array<{ target: string; copied: boolean }>;
  withState: boolean;
  stateCopied: boolean;
  /** The copies were compared with the backup's images (whatever the outcome). */
  compared: boolean;
  /** Something failed; the drill goes straight to its result and clean-up. */
  failed: boolean;
  /** The isolated network is needed (a saved state with interfaces) and is active. */
  needsNetwork: boolean;
  networkReady: boolean;
  /** The scratch domain was started (the journal says so). */
  started: boolean;
  /** Whether it ran was checked (the journal holds the answer). */
  checked: boolean;
  /** This drill's result file is in the backup directory. */
  resultWritten: boolean;
}

export const DRILL_ACTIONS = [
  'begin',
  'copy-disk',
  'copy-state',
  'compare-disks',
  'ensure-network',
  'start-scratch',
  'check-running',
  'destroy-scratch',
  'write-result',
  'remove-scratch',
] as const;
export type DrillActionKind = (typeof DRILL_ACTIONS)[number];
export interface DrillAction {
  kind: DrillActionKind;
  target?: string | undefined;
}

const one = (kind: DrillActionKind, target?: string) => act<DrillAction>({ kind, target });

/** Destroy our scratch domain, then remove the scratch directory: the way out of every state. */
function cleanUp(w: DrillWorld): Decision<DrillAction, 'drilled'> | undefined {
  if (w.domain.job) return wait(`libvirt is still running its ${w.domain.job} job on ${w.scratch}`);
  if (w.domain.state !== 'absent' && w.domainOurs) return one('destroy-scratch');
  if (w.scratchDirExists) return one('remove-scratch');
  return undefined;
}

export function decideDrill(w: DrillWorld): Decision<DrillAction, 'drilled'> {
  // A domain of that name we did not make is never touched, not even destroyed.
  if (w.domain.state !== 'absent' && !w.domainOurs)
    return refuse(
      ErrorCode.wrongStateInformation,
      `a domain named ${w.scratch} exists that no drill of ${w.vm} made; remove or rename it`,
    );
  if (w.journal === 'stale') return cleanUp(w) ?? one('remove-scratch');
  if (w.resultWritten) return cleanUp(w) ?? done('drilled');
  if (w.journal === 'none') {
    // A directory without a journal is one a killed `begin` made, or one removed halfway.
    return one('begin');
  }
  if (w.failed) {
    if (w.domain.job) return wait(`libvirt is still running its ${w.domain.job} job on ${w.scratch}`);
    if (isActive(w.domain)) return one('destroy-scratch');
    return one('write-result');
  }
  const missing = w.disks.find((d) => !d.copied);
  if (missing) return one('copy-disk', missing.target);
  if (w.withState && !w.stateCopied) return one('copy-state');
  if (!w.compared) return one('compare-disks');
  if (w.needsNetwork && !w.networkReady) return one('ensure-network');
  if (w.domain.job) return wait(`libvirt is still running its ${w.domain.job} job on ${w.scratch}`);
  if (!w.started && !isActive(w.domain)) return one('start-scratch');
  if (!w.checked) return one('check-running');
  if (isActive(w.domain)) return one('destroy-scratch');
  return one('write-result');
}
