import type { BackupPlan } from '../../src/domain/plan';

/** A save-mode plan of one VM below the given roots, for node activities called directly. */
export function savePlan(dn: string, roots: { retain: string; backup: string }): BackupPlan {
  return {
    level: 'vm',
    dn,
    backupRoot: roots.backup,
    retainRoot: roots.retain,
    imageFormat: 'qcow2',
    imageOwner: 'root',
    imageGroup: 'root',
    imagePermission: 0o660,
    mergeBandwidth: 0,
    iterations: 1,
    excluded: false,
    forceStart: false,
    restoreWithoutState: false,
    mode: 'save',
  };
}
