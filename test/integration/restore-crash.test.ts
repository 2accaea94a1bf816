import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decideUpdate } from '../../src/workflows/messages';
import type { RestoreVmResult } from '../../src/workflows/restore-vm';
import {
  backup,
  createVm,
  guestReads,
  guestWrite,
  MiB,
  removeVm,
  roots,
  tree_of,
  virsh,
} from '../support/harness';
import { startRestore, waitForStage } from '../support/restore';
import { WorkerProcess } from '../support/worker-process';

const NODE = 'vmbt-node-rk';
const VM = 'vmbt-restore-crash';
const A = { pattern: 0x1a, offset: 0, length: 2 * MiB };
let scratch: string;
let disk: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-'));
  const vm = await createVm({ name: VM, node: NODE, disks: 1 });
  disk = vm.disks[0]!.file;
  await guestWrite(VM, 0, A);
  const worker = await WorkerProcess.start(['node', '--node', NODE]);
  try {
    await backup(VM);
  } finally {
    await worker.stop();
  }
});

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
  await removeVm(VM).catch(() => undefined);
});

const POINTS = ['unretain-after-file', 'restore-after-stop', 'restore-after-disk', 'restore-after-start'];

describe('a node worker killed inside a restore activity', () => {
  it.each(POINTS.map((p, i) => [p, i] as const))(
    'at %s: the restarted worker finishes the restore and nothing is lost',
    async (point, round) => {
      const B = { pattern: 0x60 + round, offset: 4 * MiB, length: MiB };
      await guestWrite(VM, 0, B);
      const failpoints = path.join(scratch, point);
      await fs.mkdir(failpoints);
      const doomed = await WorkerProcess.start(['node', '--node', NODE], {
        VMBACKUP_FAILPOINTS: point,
        VMBACKUP_FAILPOINT_DIR: failpoints,
      });
      const handle = await startRestore(VM);
      const status = await waitForStage(handle, ['awaiting-decision']);
      await handle.executeUpdate(decideUpdate, {
        args: [Object.fromEntries(status.conflicts.map((c) => [c.id, 'backup' as const]))],
      });

      expect(await doomed.waitForExit()).toBe('SIGKILL');
      // While no worker runs, the VM's disk is somewhere: live, kept aside, or in the retain area.
      const retained = await tree_of(roots.retain);
      const aside = await fs.stat(`${disk}.pre-restore`).catch(() => undefined);
      const live = await fs.stat(disk).catch(() => undefined);
      expect(
        live !== undefined || aside !== undefined || retained.some((f) => f.includes(path.basename(disk))),
      ).toBe(true);
      expect(await virsh.state(VM)).toBeDefined();

      const worker = await WorkerProcess.start(['node', '--node', NODE]);
      try {
        const result = (await handle.result()) as RestoreVmResult;
        expect(result).toMatchObject({ outcome: 'restored', state: 'running' });
        expect(await virsh.state(VM)).toBe('running');
        expect(await guestReads(VM, 0, A)).toBe(true);
        expect(await guestReads(VM, 0, { pattern: 0, offset: B.offset, length: B.length })).toBe(true);
        expect(await fs.stat(`${disk}.pre-restore`).catch(() => undefined)).toBeUndefined();
        expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(VM));
      } finally {
        await worker.stop();
      }
    },
  );
});
