import type { Directory } from './connection';
import type { StoneyTree } from './dn';
import { readLeaves } from './run-leaf';
import { BackupError, ErrorCode } from '../domain/errors';
import type { ResolvedEntry } from '../domain/resolve';
import { isCompleteRun } from '../domain/runs';

/** The backup to restore: the named one, or the latest that finished cleanly. */
export async function chooseBackup(
  dir: Directory,
  tree: StoneyTree,
  vm: string,
  wanted: string | undefined,
): Promise<string> {
  const runs = await readLeaves(dir, tree, vm);
  if (wanted !== undefined) {
    const run = runs.find((r) => r.runDate === wanted);
    if (!run) throw new BackupError(ErrorCode.missingFiles, `VM ${vm} has no backup ${wanted}`);
    if (!isCompleteRun(run)) {
      throw new BackupError(
        ErrorCode.wrongStateInformation,
        `backup ${wanted} of ${vm} is incomplete (mode ${run.mode}, return value ${run.returnValue})`,
      );
    }
    return wanted;
  }
  const good = runs.filter(isCompleteRun);
  const latest = good.at(-1);
  if (!latest) throw new BackupError(ErrorCode.missingFiles, `VM ${vm} has no finished backup`);
  return latest.runDate;
}

/** Makes the VM's subtree (without run leaves) equal to the resolved entries. */
export async function writeVmEntries(
  dir: Directory,
  tree: StoneyTree,
  vm: string,
  resolved: ResolvedEntry[],
): Promise<void> {
  const vmDn = tree.vm(vm);
  const dnOf = (rdn: string) => (rdn === '.' ? vmDn : `${rdn},${vmDn}`);
  const live = (await dir.search(vmDn, 'sub', '(objectClass=*)')).filter(
    (e) => !(e.attributes['objectclass'] ?? []).some((c) => c.toLowerCase() === 'sstprovisioning'),
  );
  const liveByDn = new Map(live.map((e) => [e.dn.toLowerCase(), e]));
  const wanted = new Set(resolved.map((r) => dnOf(r.rdn).toLowerCase()));
  for (const r of resolved) {
    const dn = dnOf(r.rdn);
    const current = liveByDn.get(dn.toLowerCase());
    if (!current) {
      await dir.add(dn, r.attributes);
      continue;
    }
    const changes: Record<string, string[]> = {};
    for (const name of new Set([...Object.keys(current.attributes), ...Object.keys(r.attributes)])) {
      const a = [...(current.attributes[name] ?? [])].sort().join('\n');
      const b = [...(r.attributes[name] ?? [])].sort().join('\n');
      if (a !== b) changes[name] = r.attributes[name] ?? [];
    }
    if (Object.keys(changes).length) await dir.replace(dn, changes);
  }
  // Entries the resolution dropped go, deepest first; run leaves were never in the list.
  const stale = live
    .filter((e) => !wanted.has(e.dn.toLowerCase()))
    .sort((x, y) => y.dn.split(',').length - x.dn.split(',').length);
  for (const e of stale) {
    const hasChildren = (await dir.search(e.dn, 'one', '(objectClass=*)', ['1.1'])).length > 0;
    if (!hasChildren) await dir.del(e.dn);
  }
}
