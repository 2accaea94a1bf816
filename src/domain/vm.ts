import { BackupError, ErrorCode } from './errors';
import type { Attributes } from './plan';

/** What the directory says about one VM: enough to back it up. */
export interface VmRecord {
  name: string;
  dn: string;
  node: string;
  pool: string | undefined;
  disks: DiskRecord[];
}

export interface DiskRecord {
  /** Target device, `vda`, `vdb`, … */
  target: string;
  sourceFile: string;
}

function single(entry: Attributes, name: string): string | undefined {
  return entry[name.toLowerCase()]?.[0];
}

/** Disk entries below `ou=devices`: only file-backed disks are backed up (CD-ROMs are not). */
export function disksFromEntries(
  vm: string,
  entries: ReadonlyArray<{ dn: string; attributes: Attributes }>,
): DiskRecord[] {
  const disks: DiskRecord[] = [];
  for (const { dn, attributes } of entries) {
    const device = single(attributes, 'sstDevice') ?? 'disk';
    if (device !== 'disk') continue;
    const target = single(attributes, 'sstDisk');
    const sourceFile = single(attributes, 'sstSourceFile');
    if (!target || !/^[a-z]{2,3}[a-z]{1,2}$/.test(target)) {
      throw new BackupError(
        ErrorCode.unsupportedConfigurationValue,
        `${dn}: invalid sstDisk ${JSON.stringify(target)}`,
      );
    }
    if (!sourceFile) throw new BackupError(ErrorCode.missingConfigurationValue, `${dn}: no sstSourceFile`);
    disks.push({ target, sourceFile });
  }
  if (disks.length === 0)
    throw new BackupError(ErrorCode.missingConfigurationValue, `VM ${vm} has no disk in the directory`);
  return disks.sort((a, b) => a.target.localeCompare(b.target));
}
