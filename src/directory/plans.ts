import type { Directory, DirectoryEntry } from './connection';
import type { StoneyTree } from './dn';
import { readLeaves } from './run-leaf';
import { changedNothing, isCompleteRun } from '../domain/runs';
import { assertNodeName, assertVmName } from '../domain/names';
import type { NightlyCandidate } from '../domain/nightly';
import { parseBoolean, type Attributes, type PlanLevel } from '../domain/plan';
import type { PlanRef, PlanSchedule } from '../domain/schedules';

const CRON_CLASS = 'sstcronobjectclass';
const BACKUP_CLASS = 'sstvirtualizationbackupobjectclass';

function hasClass(a: Attributes | undefined, cls: string): boolean {
  return (a?.['objectclass'] ?? []).some((c) => c.toLowerCase() === cls);
}

/** The level and name of a plan entry from its DN, or undefined for entries elsewhere. */
function classify(dn: string, tree: StoneyTree): PlanRef | undefined {
  const d = dn.toLowerCase();
  if (d === tree.globalBackupPlan.toLowerCase()) return { level: 'global' };
  const pool = /^ou=backup,sstvirtualmachinepool=([^,]+),(.*)$/i.exec(dn);
  if (pool && pool[2]!.toLowerCase() === tree.pools.toLowerCase()) return { level: 'pool', name: pool[1] };
  const vm = /^ou=backup,sstvirtualmachine=([^,]+),(.*)$/i.exec(dn);
  if (vm && vm[2]!.toLowerCase() === tree.virtualMachines.toLowerCase()) return { level: 'vm', name: vm[1] };
  return undefined;
}

async function planEntries(
  dir: Directory,
  tree: StoneyTree,
): Promise<Array<DirectoryEntry & { ref: PlanRef }>> {
  const entries = await dir.search(
    tree.virtualization,
    'sub',
    '(objectClass=sstVirtualizationBackupObjectClass)',
  );
  const out: Array<DirectoryEntry & { ref: PlanRef }> = [];
  for (const e of entries) {
    const ref = classify(e.dn, tree);
    if (!ref) continue;
    try {
      if (ref.name !== undefined) assertVmName(ref.name);
    } catch {
      continue; // names that cannot become schedule IDs or file names are not planned
    }
    out.push({ ...e, ref });
  }
  return out;
}

/** Every plan that carries cron fields, at any level. */
export async function readPlanSchedules(dir: Directory, tree: StoneyTree): Promise<PlanSchedule[]> {
  const values = (a: Attributes, n: string) => a[n] ?? [];
  return (await planEntries(dir, tree))
    .filter((e) => hasClass(e.attributes, CRON_CLASS))
    .map((e) => ({
      level: e.ref.level,
      name: e.ref.name,
      dn: e.dn,
      cron: {
        minute: values(e.attributes, 'sstcronminute'),
        hour: values(e.attributes, 'sstcronhour'),
        day: values(e.attributes, 'sstcronday'),
        month: values(e.attributes, 'sstcronmonth'),
        dayOfWeek: values(e.attributes, 'sstcrondayofweek'),
      },
      active: parseBoolean(e.attributes['sstcronactive']?.[0], 'sstCronActive', true),
    }));
}

function same(a: PlanRef, b: PlanRef): boolean {
  return a.level === b.level && (a.name ?? '') === (b.name ?? '');
}

/** A VM as the nightly runs see it, with the plan whose schedule backs it up (none: never scheduled). */
export interface FleetCandidate extends NightlyCandidate {
  schedule?: PlanRef | undefined;
}

/**
 * Every VM of the directory with what the nightly run needs to decide about it, and the
 * nearest plan with cron fields (VM, then pool, then global) whose schedule backs it up.
 */
export async function fleetCandidates(dir: Directory, tree: StoneyTree): Promise<FleetCandidate[]> {
  const plans = await planEntries(dir, tree);
  const byKey = new Map(plans.map((p) => [`${p.ref.level}:${p.ref.name ?? ''}`, p]));
  const vms = await dir.search(tree.virtualMachines, 'one', '(objectClass=sstVirtualizationVirtualMachine)', [
    'sstVirtualMachine',
    'sstNode',
    'sstVirtualMachinePool',
  ]);
  const out: FleetCandidate[] = [];
  for (const vm of vms) {
    const name = vm.attributes['sstvirtualmachine']?.[0] ?? '';
    const pool = vm.attributes['sstvirtualmachinepool']?.[0];
    const own = byKey.get(`vm:${name}`);
    const chain: PlanRef[] = [
      { level: 'vm', name },
      ...(pool ? [{ level: 'pool' as PlanLevel, name: pool }] : []),
      { level: 'global' },
    ];
    const governing = chain.find((r) =>
      hasClass(byKey.get(`${r.level}:${r.name ?? ''}`)?.attributes, CRON_CLASS),
    );
    const candidate: FleetCandidate = {
      vm: name,
      node: vm.attributes['sstnode']?.[0] ?? '',
      excluded: false,
      ...(governing && { schedule: governing }),
    };
    try {
      assertVmName(name);
      assertNodeName(candidate.node);
      candidate.excluded =
        hasClass(own?.attributes, BACKUP_CLASS) &&
        parseBoolean(own?.attributes['sstbackupexcludefrombackup']?.[0], 'sstBackupExcludeFromBackup', false);
      const leaves = await readLeaves(dir, tree, name);
      const last = leaves.at(-1);
      const newestComplete = leaves.filter(isCompleteRun).at(-1);
      if (newestComplete?.verification?.outcome === 'failed')
        candidate.failedVerification = {
          runDate: newestComplete.runDate,
          checkedAt: newestComplete.verification.checkedAt,
          summary: newestComplete.verification.summary,
        };
      if (last)
        candidate.lastRun = {
          runDate: last.runDate,
          mode: last.mode,
          returnValue: last.returnValue,
          complete: isCompleteRun(last),
          changedNothing: changedNothing(last),
        };
    } catch (err) {
      candidate.problem = `cannot be backed up: ${(err as Error).message}`;
    }
    out.push(candidate);
  }
  return out;
}

/** The VMs a plan's schedule backs up, with what the nightly run needs to decide about each. */
export async function nightlyCandidates(
  dir: Directory,
  tree: StoneyTree,
  plan: PlanRef,
): Promise<NightlyCandidate[]> {
  return (await fleetCandidates(dir, tree))
    .filter((c) => c.schedule && same(c.schedule, plan))
    .map(({ schedule: _, ...c }) => c);
}

export async function removeLeaf(
  dir: Directory,
  tree: StoneyTree,
  vm: string,
  runDate: string,
): Promise<void> {
  const dn = tree.runLeaf(vm, runDate);
  if (await dir.read(dn, ['ou'])) await dir.del(dn);
}
