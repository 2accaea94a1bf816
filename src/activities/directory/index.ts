import type { DirectoryConfig } from '../../config';
import { withDirectory } from '../../directory/connection';
import { StoneyTree } from '../../directory/dn';
import { initializeLeaf, readLeaves, updateLeaf, type LeafState } from '../../directory/run-leaf';
import { exportVmLdif, readPlan, readVm } from '../../directory/vm-directory';
import { assertRunDate, assertVmName } from '../../domain/names';
import type { BackupPlan } from '../../domain/plan';
import type { LeafUpdate } from '../../domain/protocol';
import type { VmRecord } from '../../domain/vm';
import { asFailure } from '../failure';

export interface BackupTarget {
  vm: VmRecord;
  plan: BackupPlan;
}

/** Directory activities: they run on the control queue, next to the workflows. */
export function createDirectoryActivities(config: DirectoryConfig) {
  const tree = new StoneyTree(config.baseDn);
  const directory = <T>(fn: Parameters<typeof withDirectory<T>>[1]) => withDirectory(config, fn);
  return {
    /** The VM, its disks, its node and the backup plan that applies to it. */
    loadBackupTarget: asFailure(async (vm: string): Promise<BackupTarget> => {
      assertVmName(vm);
      return directory(async (dir) => {
        const record = await readVm(dir, tree, vm);
        return { vm: record, plan: await readPlan(dir, tree, record) };
      });
    }),
    exportVmEntry: asFailure(async (vm: string): Promise<string> => {
      assertVmName(vm);
      return directory((dir) => exportVmLdif(dir, tree, vm));
    }),
    initializeRun: asFailure(async (vm: string, runDate: string): Promise<void> => {
      assertVmName(vm);
      assertRunDate(runDate);
      await directory(async (dir) => {
        await initializeLeaf(dir, tree, vm, runDate, new Date());
        await updateLeaf(dir, tree, vm, runDate, { mode: 'initialized', state: 'now' }, new Date());
      });
    }),
    updateRun: asFailure(async (vm: string, runDate: string, update: LeafUpdate): Promise<void> => {
      assertVmName(vm);
      assertRunDate(runDate);
      await directory((dir) => updateLeaf(dir, tree, vm, runDate, update, new Date()));
    }),
    listRuns: asFailure(async (vm: string): Promise<LeafState[]> => {
      assertVmName(vm);
      return directory((dir) => readLeaves(dir, tree, vm));
    }),
  };
}

export type DirectoryActivities = ReturnType<typeof createDirectoryActivities>;
