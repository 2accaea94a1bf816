import type { DirectoryConfig } from '../../config';
import { withDirectory } from '../../directory/connection';
import { StoneyTree } from '../../directory/dn';
import {
  initializeLeaf,
  markLeafVerification,
  readLeaves,
  updateLeaf,
  type LeafState,
} from '../../directory/run-leaf';
import { exportVmLdif, readPlan, readVm } from '../../directory/vm-directory';
import { BackupError, ErrorCode } from '../../domain/errors';
import { assertNodeName, assertRunDate, assertVmName } from '../../domain/names';
import type { BackupPlan } from '../../domain/plan';
import type { LeafUpdate } from '../../domain/protocol';
import type { VmRecord } from '../../domain/vm';
import { asFailure } from '../failure';
import { fleetCandidates, nightlyCandidates, readPlanSchedules, removeLeaf } from '../../directory/plans';
import { selectForNightly, type NightlySelection } from '../../domain/nightly';
import type { PlanRef, PlanSchedule } from '../../domain/schedules';
import { parseLdif } from '../../directory/ldif-parse';
import { VERIFICATION_DESCRIPTION } from '../../domain/verification';
import { scheduleId } from '../../domain/schedules';
import { isCompleteRun } from '../../domain/runs';
import type { VmFacts } from '../../domain/status';
import { chooseBackup, writeVmEntries } from '../../directory/restore-directory';
import { addEntries, copyVmEntries, type VmCopy } from '../../directory/vm-copy';
import {
  findConflicts,
  inconsistencies,
  type Conflict,
  type Decision,
  type Inconsistency,
} from '../../domain/conflicts';
import { resolveEntries, resolveXml, type ResolvedEntry } from '../../domain/resolve';

export interface ConfigTexts {
  vm: string;
  backupLdif: string;
  backupXml: string;
  liveLdif: string | null;
  liveXml: string | null;
}

export interface RestoreTarget extends BackupTarget {
  backupDate: string;
}

export interface BackupTarget {
  vm: VmRecord;
  plan: BackupPlan;
}

/** Both configurations as entries relative to the VM's DN, ready to compare. */
function snapshots(texts: ConfigTexts, tree?: StoneyTree) {
  const vmDn = (tree ?? new StoneyTree('')).vm(texts.vm);
  const entriesOf = (ldif: string | null) => (ldif ? parseLdif(ldif) : []);
  const base = (entries: ReturnType<typeof parseLdif>) => entries[0]?.dn ?? vmDn;
  const backupEntries = entriesOf(texts.backupLdif);
  const liveEntries = entriesOf(texts.liveLdif);
  return {
    backup: { vmDn: base(backupEntries), entries: backupEntries, xml: texts.backupXml },
    live: { vmDn: base(liveEntries), entries: liveEntries, xml: texts.liveXml ?? '' },
  };
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
      const dir: unknown = update.backupDir;
      if (dir !== undefined && (typeof dir !== 'string' || !dir.startsWith('/') || /[\0\n\r]/.test(dir))) {
        throw new BackupError(
          ErrorCode.unsupportedConfigurationValue,
          `backup directory ${JSON.stringify(dir)} is not an absolute path`,
        );
      }
      await directory((dir) => updateLeaf(dir, tree, vm, runDate, update, new Date()));
    }),
    loadRestoreTarget: asFailure(async (vm: string, backup: string | undefined): Promise<RestoreTarget> => {
      assertVmName(vm);
      if (backup !== undefined) assertRunDate(backup);
      return directory(async (dir) => {
        const record = await readVm(dir, tree, vm);
        return {
          vm: record,
          plan: await readPlan(dir, tree, record),
          backupDate: await chooseBackup(dir, tree, vm, backup),
        };
      });
    }),
    /** Live LDIF of the VM, or null when its entry is gone. */
    exportLiveEntry: asFailure(async (vm: string): Promise<string | null> => {
      assertVmName(vm);
      return directory(async (dir) =>
        (await dir.read(tree.vm(vm), ['1.1'])) ? exportVmLdif(dir, tree, vm) : null,
      );
    }),
    computeConflicts: asFailure(
      async (texts: ConfigTexts): Promise<{ conflicts: Conflict[]; inconsistencies: Inconsistency[] }> => {
        const { backup, live } = snapshots(texts);
        return {
          conflicts: findConflicts(backup, live),
          inconsistencies: [
            ...inconsistencies('backup', backup),
            ...(texts.liveXml ? inconsistencies('live', live) : []),
          ],
        };
      },
    ),
    resolveRestore: asFailure(
      async (
        texts: ConfigTexts,
        conflicts: Conflict[],
        decision: Decision,
      ): Promise<{ entries: ResolvedEntry[]; xml: string }> => {
        const { backup, live } = snapshots(texts);
        return {
          entries: resolveEntries(backup, live, conflicts, decision),
          xml: resolveXml(texts.backupXml, conflicts, decision),
        };
      },
    ),
    writeVmEntries: asFailure(async (vm: string, entries: ResolvedEntry[]): Promise<void> => {
      assertVmName(vm);
      await directory((dir) => writeVmEntries(dir, tree, vm, entries));
    }),
    listPlanSchedules: asFailure(async (): Promise<PlanSchedule[]> =>
      directory((dir) => readPlanSchedules(dir, tree)),
    ),
    /** The VMs a plan's nightly run backs up, per node, and those it skips with the reason. */
    selectNightly: asFailure(async (plan: PlanRef): Promise<NightlySelection> => {
      if (plan.name !== undefined) assertVmName(plan.name);
      return directory(async (dir) =>
        selectForNightly(await nightlyCandidates(dir, tree, plan), (vm) => tree.vm(vm)),
      );
    }),
    removeRun: asFailure(async (vm: string, runDate: string): Promise<void> => {
      assertVmName(vm);
      assertRunDate(runDate);
      await directory((dir) => removeLeaf(dir, tree, vm, runDate));
    }),
    /** True when the directory has an entry for the VM (restore `--as` refuses a taken name). */
    vmEntryExists: asFailure(async (vm: string): Promise<boolean> => {
      assertVmName(vm);
      return directory(async (dir) => !!(await dir.read(tree.vm(vm), ['1.1'])));
    }),
    /** The new VM's entries of a restore `--as`: the original's backed-up subtree, renamed. */
    addRestoredVm: asFailure(async (ldif: string, copy: VmCopy): Promise<void> => {
      assertVmName(copy.vm);
      assertVmName(copy.as);
      await directory((dir) => addEntries(dir, copyVmEntries(ldif, tree, copy)));
    }),
    listRuns: asFailure(async (vm: string): Promise<LeafState[]> => {
      assertVmName(vm);
      return directory((dir) => readLeaves(dir, tree, vm));
    }),
    /** The verification mark of one backup (see domain/verification); false when its leaf is gone. */
    markVerification: asFailure(async (vm: string, runDate: string, mark: string): Promise<boolean> => {
      assertVmName(vm);
      assertRunDate(runDate);
      if (!mark.startsWith(VERIFICATION_DESCRIPTION) || mark.includes('\n'))
        throw new BackupError(ErrorCode.unsupportedConfigurationValue, 'not a verification mark');
      return directory((dir) => markLeafVerification(dir, tree, vm, runDate, mark));
    }),
    /** What `vmbackup status` shows of each VM (of one node, if given), as the directory has it. */
    fleetStatus: asFailure(async (node?: string): Promise<VmFacts[]> => {
      if (node !== undefined) assertNodeName(node);
      return directory(async (dir) => {
        const out: VmFacts[] = [];
        for (const c of await fleetCandidates(dir, tree)) {
          if (node !== undefined && c.node !== node) continue;
          const { schedule, ...candidate } = c;
          const facts: VmFacts = {
            ...candidate,
            ...(schedule && { scheduleId: scheduleId(schedule) }),
            runs: [],
          };
          if (!c.problem) {
            facts.runs = (await readLeaves(dir, tree, c.vm)).map((r) => ({
              runDate: r.runDate,
              mode: r.mode,
              returnValue: r.returnValue,
              complete: isCompleteRun(r),
              ...(r.verification && { verification: r.verification }),
            }));
            try {
              const plan = await readPlan(dir, tree, await readVm(dir, tree, c.vm));
              facts.plan = { level: plan.level, mode: plan.mode };
            } catch (err) {
              facts.problem = `its backup plan is unusable: ${(err as Error).message}`;
            }
          }
          out.push(facts);
        }
        return out;
      });
    }),
    /** Every VM of the directory with its node and its runs: what scheduled verification looks at. */
    listFleetRuns: asFailure(async (): Promise<FleetRuns[]> =>
      directory(async (dir) => {
        const vms = await dir.search(
          tree.virtualMachines,
          'one',
          '(objectClass=sstVirtualizationVirtualMachine)',
          ['sstVirtualMachine', 'sstNode'],
        );
        const out: FleetRuns[] = [];
        for (const v of vms) {
          const vm = v.attributes['sstvirtualmachine']?.[0];
          const node = v.attributes['sstnode']?.[0];
          if (!vm || !node) continue;
          try {
            assertVmName(vm);
          } catch {
            continue; // a name the node would refuse: never verified through here
          }
          out.push({ vm, node, runs: await readLeaves(dir, tree, vm) });
        }
        return out.sort((a, b) => a.vm.localeCompare(b.vm));
      }),
    ),
  };
}

export interface FleetRuns {
  vm: string;
  node: string;
  runs: LeafState[];
}

export type DirectoryActivities = ReturnType<typeof createDirectoryActivities>;
