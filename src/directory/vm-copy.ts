import type { Directory } from './connection';
import type { StoneyTree } from './dn';
import { parseLdif, type LdifEntry } from './ldif-parse';
import { BackupError, ErrorCode } from '../domain/errors';

export interface VmCopy {
  vm: string;
  as: string;
  /** The new VM's node: the original's. */
  node: string;
  /** Old → new disk image paths, old → new MAC addresses. */
  files: ReadonlyArray<{ from: string; to: string }>;
  macs: ReadonlyArray<{ from: string; to: string }>;
}

const lower = (s: string) => s.toLowerCase();

/**
 * The backed-up subtree of `vm` (its LDIF) as the new VM's: every DN moved below the new
 * VM's DN (built escaped by the tree), the VM's name, disk files and MACs swapped, the node
 * the original's. Run leaves are never in a backup's LDIF.
 */
export function copyVmEntries(ldif: string, tree: StoneyTree, copy: VmCopy): LdifEntry[] {
  const entries = parseLdif(ldif);
  const top = entries[0];
  if (!top) throw new BackupError(ErrorCode.missingFiles, `the backed-up LDIF of ${copy.vm} is empty`);
  const oldDn = top.dn;
  const newDn = tree.vm(copy.as);
  const fileOf = new Map(copy.files.map((f) => [f.from, f.to]));
  const macOf = new Map(copy.macs.map((m) => [lower(m.from), m.to]));
  return entries.map((e) => {
    if (lower(e.dn) !== lower(oldDn) && !lower(e.dn).endsWith(`,${lower(oldDn)}`))
      throw new BackupError(ErrorCode.directoryXmlInconsistency, `LDIF entry ${e.dn} is not below ${oldDn}`);
    const dn = `${e.dn.slice(0, e.dn.length - oldDn.length)}${newDn}`;
    const attributes: Record<string, string[]> = {};
    for (const [name, values] of Object.entries(e.attributes)) {
      if (name === 'sstvirtualmachine' && e === top) attributes[name] = [copy.as];
      else if (name === 'sstnode') attributes[name] = [copy.node];
      else if (name === 'sstsourcefile') attributes[name] = values.map((v) => fileOf.get(v) ?? v);
      else if (name === 'sstmacaddress') attributes[name] = values.map((v) => macOf.get(lower(v)) ?? v);
      else attributes[name] = [...values];
    }
    for (const v of e.attributes['sstsourcefile'] ?? [])
      if (!fileOf.has(v))
        throw new BackupError(
          ErrorCode.directoryXmlInconsistency,
          `disk file ${v} of ${copy.vm} has no copy`,
        );
    return { dn, attributes };
  });
}

/** Adds the entries, parents first; one there already (a retried add) is left as it is. */
export async function addEntries(dir: Directory, entries: readonly LdifEntry[]): Promise<void> {
  const sorted = [...entries].sort((a, b) => a.dn.split(',').length - b.dn.split(',').length);
  for (const e of sorted)
    if (!(await dir.read(e.dn, ['1.1'])))
      await dir.add(e.dn, Object.fromEntries(Object.entries(e.attributes).map(([k, v]) => [k, [...v]])));
}
