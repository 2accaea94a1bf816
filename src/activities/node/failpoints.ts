import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BackupError, ErrorCode } from '../../domain/errors';

/**
 * Crash injection for the kill tests. VMBACKUP_FAILPOINTS names points (`snapshot:save-state:after`,
 * …); the worker kills itself (SIGKILL, no clean-up) the first time it reaches one. A marker
 * file in VMBACKUP_FAILPOINT_DIR makes each point fire once, so the restarted worker runs
 * through. `*` arms every point.
 */
function armed(variable: string, name: string): string | undefined {
  const points = process.env[variable];
  const dir = process.env['VMBACKUP_FAILPOINT_DIR'];
  if (!points || !dir) return undefined;
  const list = points.split(',');
  if (!list.includes(name) && !list.includes('*')) return undefined;
  const marker = path.join(dir, `${name.replace(/[^\w.-]+/g, '_')}.fired`);
  if (existsSync(marker)) return undefined;
  writeFileSync(marker, String(process.pid));
  return marker;
}

export function failpoint(name: string): void {
  if (armed('VMBACKUP_FAILPOINTS', name)) process.kill(process.pid, 'SIGKILL');
}

/** Kills the worker `VMBACKUP_FAILPOINT_DELAY_MS` (500) after an armed action started. */
export function failpointDuring(name: string): (() => void) | undefined {
  if (!armed('VMBACKUP_FAILPOINTS', name)) return undefined;
  const timer = setTimeout(
    () => process.kill(process.pid, 'SIGKILL'),
    Number(process.env['VMBACKUP_FAILPOINT_DELAY_MS'] ?? 500),
  );
  return () => clearTimeout(timer);
}

/**
 * Fault injection: VMBACKUP_FAULTS names actions that fail, every time, as a failing system
 * call would (a full disk does not heal by retrying either); `<action>@<vm>` fails it for
 * that VM only.
 */
export function injectedFault(name: string, vm?: string): void {
  const faults = process.env['VMBACKUP_FAULTS']?.split(',') ?? [];
  if (faults.includes(name) || (vm !== undefined && faults.includes(`${name}@${vm}`)))
    throw new BackupError(ErrorCode.undefinedError, `injected fault at ${name}`);
}

/**
 * A barrier for race tests: at a point named in VMBACKUP_PAUSEPOINTS the worker writes
 * `<point>.reached` into VMBACKUP_FAILPOINT_DIR and waits until the test writes `<point>.go`.
 */
export async function pausepoint(name: string): Promise<void> {
  const dir = process.env['VMBACKUP_FAILPOINT_DIR'];
  const marker = armed('VMBACKUP_PAUSEPOINTS', name);
  if (!marker || !dir) return;
  const base = path.join(dir, name.replace(/[^\w.-]+/g, '_'));
  writeFileSync(`${base}.reached`, String(process.pid));
  while (!existsSync(`${base}.go`)) await new Promise((r) => setTimeout(r, 100));
}
