import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import { removeVm } from './harness';
import { WorkerProcess } from './worker-process';

/**
 * A test file's surroundings: a node worker for `node` running for the whole file, a
 * scratch directory, and the sandbox VMs the tests create (pushed onto `vms`), removed
 * at the end.
 */
export function useTestNode(
  node: string,
  env: NodeJS.ProcessEnv = {},
): { vms: string[]; scratch: () => string } {
  const vms: string[] = [];
  let worker: WorkerProcess | undefined;
  let scratch = '';
  beforeAll(async () => {
    worker = await WorkerProcess.start(['node', '--node', node], env);
    scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-'));
  });
  afterAll(async () => {
    await worker?.stop();
    await fs.rm(scratch, { recursive: true, force: true });
    for (const vm of vms) await removeVm(vm).catch(() => undefined);
  });
  return { vms, scratch: () => scratch };
}
