import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Where node workers on one host keep their per-VM lock files. */
export function lockDir(env: NodeJS.ProcessEnv = process.env): string {
  return env['VMBACKUP_LOCK_DIR'] || path.join(os.tmpdir(), 'vmbackup-locks');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Holds `<dir>/<vm>.lock` (with this process's pid) while `fn` runs, so that two worker
 * processes on one host never act on the same VM at once (a misconfigured second worker,
 * or a restarted one while the old still finishes a step). A lock whose process is gone
 * is taken over: a killed worker never blocks the retry.
 */
export async function withVmFileLock<T>(
  vm: string,
  fn: () => Promise<T>,
  dir = lockDir(),
  pollMs = 500,
): Promise<T> {
  await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  const file = path.join(dir, `${vm}.lock`);
  for (;;) {
    try {
      await fs.writeFile(file, String(process.pid), { flag: 'wx', mode: 0o600 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = Number((await fs.readFile(file, 'utf8').catch(() => '')).trim());
      // Our own pid can only be a leftover: in this process, calls are already serialized.
      if (!Number.isInteger(holder) || holder <= 0 || holder === process.pid || !alive(holder)) {
        await fs.rm(file, { force: true });
        continue;
      }
      await sleep(pollMs);
    }
  }
  try {
    return await fn();
  } finally {
    const holder = await fs.readFile(file, 'utf8').catch(() => '');
    if (holder.trim() === String(process.pid)) await fs.rm(file, { force: true });
  }
}
