import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { changedNothing } from '../../src/domain/runs';
import { run } from '../../src/hypervisor/run';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import {
  backingFileOf,
  createVm,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  removeVm,
  startBackup,
  virsh,
} from '../support/harness';
import { repoRoot } from '../support/dev-env';
import { WorkerProcess } from '../support/worker-process';

const NODE = 'vmbt-node-night';
// Longer than the 2.5 min after which directory activities used to give up; 300 s by hand.
const OUTAGE_MS = Number(process.env['VMBACKUP_TEST_OUTAGE_SECONDS'] ?? 180) * 1000;
const DATA = { pattern: 0x4e, offset: 2 * MiB, length: 2 * MiB };
let scratch: string;
const vms: string[] = [];

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-'));
});

afterAll(async () => {
  await bringServicesBack();
  for (const vm of vms) await removeVm(vm).catch(() => undefined);
  await fs.rm(scratch, { recursive: true, force: true });
});

/** Stops a dev service the way a crash would, by the pid its start recorded. */
async function kill(pidFile: string, signal: NodeJS.Signals): Promise<void> {
  const pid = Number((await fs.readFile(pidFile, 'utf8')).trim());
  process.kill(pid, signal);
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return;
    }
    await sleep(100);
  }
  throw new Error(`process ${pid} from ${pidFile} did not end`);
}

/** dev-up starts whatever of the dev services is not running, and reuses the rest. */
async function bringServicesBack(): Promise<void> {
  await run('bash', [path.join(repoRoot, 'scripts', 'dev-up.sh')]);
}

async function waitFor(file: string, ms: number): Promise<void> {
  for (let t = 0; t < ms; t += 200) {
    if (existsSync(file)) return;
    await sleep(200);
  }
  throw new Error(`${file} did not appear within ${ms} ms`);
}

async function expectBackedUp(vm: string, result: BackupVmResult) {
  expect(await virsh.state(vm)).toBe('running');
  expect(await guestReads(vm, 0, DATA)).toBe(true);
  const leaf = (await leaves(vm)).find((l) => l.runDate === result.runDate);
  expect(leaf).toMatchObject({ mode: 'finished', returnValue: 0 });
}

/**
 * A VM with guest data whose backup is held at the start of its merge (the snapshot done):
 * `release` lets the node go on. The worker must be stopped by the caller.
 */
async function backupHeldBeforeMerge(vm: string) {
  vms.push(vm);
  const created = await createVm({ name: vm, node: NODE });
  await guestWrite(vm, 0, DATA);
  const barrier = path.join(scratch, vm);
  await fs.mkdir(barrier);
  const worker = await WorkerProcess.start(['node', '--node', NODE], {
    VMBACKUP_PAUSEPOINTS: 'merge:start-pull:before',
    VMBACKUP_FAILPOINT_DIR: barrier,
  });
  const handle = await startBackup(vm);
  await waitFor(path.join(barrier, 'merge_start-pull_before.reached'), 120_000);
  const release = () => fs.writeFile(path.join(barrier, 'merge_start-pull_before.go'), '');
  return { disk: created.disks[0]!.file, worker, handle, release };
}

describe('a night with outages', () => {
  it(
    'a directory stopped for minutes right after the snapshot: merge and retain go on, the leaf catches up and ends finished',
    async () => {
      const vm = 'vmbt-night-ldap';
      // The worker stops before the merge until the directory is down.
      const { disk, worker, handle, release } = await backupHeldBeforeMerge(vm);
      try {
        await kill(path.join(repoRoot, '.dev', 'slapd', 'slapd.pid'), 'SIGKILL');
        const down = Date.now();
        await release();
        // With the directory away, the node still merges: the live image stops depending on the retain area.
        for (let i = 0; i < 600 && (await backingFileOf(disk)); i++) await sleep(500);
        expect(await backingFileOf(disk)).toBeUndefined();
        await sleep(Math.max(0, OUTAGE_MS - (Date.now() - down)));
        await bringServicesBack();
        const result = (await handle.result()) as BackupVmResult;
        await expectBackedUp(vm, result);
      } finally {
        await worker.stop();
        await bringServicesBack();
      }
    },
    OUTAGE_MS + 600_000,
  );

  it('the Temporal server killed and restarted in the middle of a backup: the backup finishes on its own', async () => {
    const vm = 'vmbt-night-temporal';
    const { worker, handle, release } = await backupHeldBeforeMerge(vm);
    try {
      await kill(path.join(repoRoot, '.dev', 'temporal.pid'), 'SIGKILL');
      await release();
      await sleep(5000);
      await bringServicesBack();
      const result = (await handle.result()) as BackupVmResult;
      await expectBackedUp(vm, result);
    } finally {
      await worker.stop();
    }
  }, 600_000);

  it('a run that failed before the node changed anything leaves a leaf that does not hold the VM back', async () => {
    const vm = 'vmbt-night-unreachable';
    vms.push(vm);
    // No worker polls this node's queue: the run fails after the bounded wait, having changed nothing.
    await createVm({ name: vm, node: 'vmbt-node-nobody' });
    const handle = await startBackup(vm);
    await expect(handle.result()).rejects.toThrow();
    const leaf = (await leaves(vm)).at(-1)!;
    expect(leaf.mode).toBe('snapshot');
    expect(leaf.returnValue).not.toBe(0);
    expect(changedNothing(leaf)).toBe(true);
  });
});
