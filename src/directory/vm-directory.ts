import type { StoneyTree } from './dn';
import type { Directory, DirectoryEntry } from './connection';
import { BackupError, ErrorCode } from '../domain/errors';
import { choosePlanEntry, parsePlan, type BackupPlan, type PlanLevel } from '../domain/plan';
import { disksFromEntries, type VmRecord } from '../domain/vm';
import { assertNodeName } from '../domain/names';
import { toLdif } from './ldif';

export async function readVm(dir: Directory, tree: StoneyTree, name: string): Promise<VmRecord> {
  const dn = tree.vm(name);
  const entry = await dir.read(dn);
  if (!entry)
    throw new BackupError(ErrorCode.cannotFindMachine, `VM ${name} not found in the directory (${dn})`);
  const node = entry.attributes['sstnode']?.[0];
  if (!node) throw new BackupError(ErrorCode.missingConfigurationValue, `${dn} has no sstNode`);
  assertNodeName(node);
  const diskEntries = await dir.search(
    tree.devices(name),
    'one',
    '(objectClass=sstVirtualizationVirtualMachineDisk)',
  );
  return {
    name,
    dn,
    node,
    pool: entry.attributes['sstvirtualmachinepool']?.[0],
    disks: disksFromEntries(name, diskEntries),
  };
}

export async function readPlan(dir: Directory, tree: StoneyTree, vm: VmRecord): Promise<BackupPlan> {
  const candidates: Array<{ level: PlanLevel; dn: string }> = [
    { level: 'vm', dn: tree.vmBackup(vm.name) },
    ...(vm.pool ? [{ level: 'pool' as const, dn: tree.poolBackup(vm.pool) }] : []),
    { level: 'global', dn: tree.globalBackupPlan },
  ];
  const withEntries = await Promise.all(
    candidates.map(async (c) => ({ ...c, entry: (await dir.read(c.dn))?.attributes })),
  );
  const chosen = choosePlanEntry(withEntries);
  return parsePlan(chosen.level, chosen.dn, chosen.entry);
}

function isRunLeaf(entry: DirectoryEntry): boolean {
  return (entry.attributes['objectclass'] ?? []).some((c) => c.toLowerCase() === 'sstprovisioning');
}

/** The VM's subtree as LDIF, without the run leaves (they describe backups, not the VM). */
export async function exportVmLdif(dir: Directory, tree: StoneyTree, name: string): Promise<string> {
  const entries = await dir.search(tree.vm(name), 'sub', '(objectClass=*)');
  if (entries.length === 0)
    throw new BackupError(ErrorCode.cannotFindMachine, `VM ${name} not found in the directory`);
  return toLdif(entries.filter((e) => !isRunLeaf(e)));
}
