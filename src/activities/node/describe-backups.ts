import { promises as fs } from 'node:fs';
import path from 'node:path';
import { assertRunDate } from '../../domain/names';
import { resolveRun, type NodeDeps } from './context';
import type { VmRunInput } from './types';

export interface BackupFiles {
  runDate: string;
  backupDir: string;
  files: Array<{ name: string; bytes: number }>;
  /** Bytes allocated on disk (sparse images count only their data). */
  bytes: number;
}

/** What each named backup directory of a VM holds. */
export async function describeBackups(
  deps: NodeDeps,
  input: VmRunInput & { runDates: string[] },
): Promise<BackupFiles[]> {
  const out: BackupFiles[] = [];
  for (const runDate of input.runDates) {
    assertRunDate(runDate);
    const dir = resolveRun(deps, { ...input, runDate }).layout.backupDir;
    const names = await fs.readdir(dir).catch(() => [] as string[]);
    const files = [];
    let bytes = 0;
    for (const name of names.sort()) {
      const s = await fs.stat(path.join(dir, name));
      files.push({ name, bytes: s.size });
      bytes += s.blocks * 512;
    }
    out.push({ runDate, backupDir: dir, files, bytes });
  }
  return out;
}
