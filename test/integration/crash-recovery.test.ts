import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_DISK_SIZE, type SandboxVm } from '../../src/dev/sandbox-vm';
import {
  backingFileOf,
  createVm,
  expectedDisk,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  removeVm,
  roots,
  sameGuestContent,
  startBackup,
  tree_of,
  virsh,
  type GuestWrite,
} from '../support/harness';
import { WorkerProcess } from '../support/worker-process';
import type { BackupVmResult } from '../../src/workflows/backup-vm';

const NODE = 'vmbt-node-k';
const VM = 'vmbt-crash';
let scratch: string;
let vm: SandboxVm;
const written: GuestWrite[][] = [[], []];

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-'));
  vm = await createVm({ name: VM, node: NODE, disks: 2 });
});

afterAll(async () => {
  await fs.rm(scratch, { recursive: true, force: true });
  await removeVm(VM).catch(() => undefined);
});

// Every point where the node worker kills itself (SIGKILL) the first time it passes.
const POINTS = [
  'snapshot-after-prepare',
  'snapshot-after-save',
  'snapshot-after-move',
  'snapshot-after-swap',
  'snapshot-after-restore',
  'merge-before-pull',
  'merge-during-pull',
  'merge-after-pull',
  'retain-after-file',
];

describe('a node worker killed inside an activity', () => {
  it.each(POINTS.map((p, i) => [p, i] as const))(
    'at %s: the restarted worker finishes the backup and nothing is lost',
    async (point, round) => {
      for (const disk of [0, 1]) {
        await guestWrite(
          VM,
          disk,
          { pattern: 0x40 + round, offset: (round * 2 + disk) * MiB, length: MiB },
          written[disk],
        );
      }
      const failpoints = path.join(scratch, point);
      await fs.mkdir(failpoints);
      const doomed = await WorkerProcess.start(['node', '--node', NODE], {
        VMBACKUP_FAILPOINTS: point,
        VMBACKUP_FAILPOINT_DIR: failpoints,
      });
      const handle = await startBackup(VM);

      expect(await doomed.waitForExit()).toBe('SIGKILL');
      expect(await fs.readdir(failpoints)).toEqual([`${point}.fired`]);
      // While no worker runs, every disk of the VM is somewhere: live, or in the retain area.
      const retained = await tree_of(roots.retain);
      for (const d of vm.disks) {
        const live = await fs.stat(d.file).catch(() => undefined);
        expect(
          live !== undefined ||
            retained.some((f) => path.basename(f).startsWith(`${path.basename(d.file)}.`)),
        ).toBe(true);
      }

      const worker = await WorkerProcess.start(['node', '--node', NODE]);
      try {
        const result = (await handle.result()) as BackupVmResult;
        expect(await virsh.state(VM)).toBe('running');
        for (const [i, d] of vm.disks.entries()) {
          for (const w of written[i]!) expect(await guestReads(VM, i, w)).toBe(true);
          expect(await backingFileOf(d.file)).toBeUndefined();
          const expected = await expectedDisk(
            scratch,
            `${point}-${d.target}`,
            SANDBOX_DISK_SIZE,
            written[i]!,
          );
          expect(
            await sameGuestContent(
              expected,
              path.join(result.backupDir, `${path.basename(d.file)}.${result.runDate}`),
            ),
          ).toBe(true);
        }
        expect((await leaves(VM)).find((l) => l.runDate === result.runDate)).toMatchObject({
          mode: 'finished',
          returnValue: 0,
        });
        expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(VM));
      } finally {
        await worker.stop();
      }
    },
  );
});
