import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/**
 * Crash injection for the kill tests: when VMBACKUP_FAILPOINTS names this point, the worker
 * process kills itself (SIGKILL, no clean-up) the first time it gets here. A marker file in
 * VMBACKUP_FAILPOINT_DIR makes each point fire once, so the restarted worker runs through.
 */
export function failpoint(name: string): void {
  const points = process.env['VMBACKUP_FAILPOINTS'];
  const dir = process.env['VMBACKUP_FAILPOINT_DIR'];
  if (!points || !dir || !points.split(',').includes(name)) return;
  const marker = path.join(dir, `${name}.fired`);
  if (existsSync(marker)) return;
  writeFileSync(marker, String(process.pid));
  process.kill(process.pid, 'SIGKILL');
}
