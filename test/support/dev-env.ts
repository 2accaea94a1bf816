import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const repoRoot = fileURLToPath(new URL('../..', import.meta.url));

/**
 * The integration tests use the embedded services that `npm test` starts (scripts/dev-up.sh)
 * and read their addresses from the environment; when run by hand, from `.dev/env`.
 */
export function loadDevEnv(): void {
  if (process.env['TEMPORAL_ADDRESS']) return;
  const file = `${repoRoot}.dev/env`;
  if (!existsSync(file)) throw new Error('services are not up: run `npm run dev:up` (or `npm test`) first');
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^export ([A-Z_]+)='(.*)'$/.exec(line);
    if (m) process.env[m[1]!] = m[2]!.replace(/'\\''/g, "'");
  }
}
