import path from 'node:path';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blankRamLoaders, blobRangeSha256, ensureRamBlob } from '../../src/dev/guest-ram';
import { SANDBOX_DISK_SIZE } from '../../src/dev/sandbox-vm';
import { pauseSpreadMs } from '../../src/domain/live-group';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import {
  backingFileOf,
  backupMany,
  createVm,
  expectedDisk,
  forgetVm,
  guestReads,
  guestWrite,
  MiB,
  sameGuestContent,
  virsh,
  type GuestWrite,
} from '../support/harness';
import { WorkerProcess } from '../support/worker-process';

const NODE = 'vmbt-node-lgroup';
const VMS = ['vmbt-lg1', 'vmbt-lg2', 'vmbt-lg3', 'vmbt-lg4', 'vmbt-lg5', 'vmbt-lg6'];
let scratch: string;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-lgroup-'));
  // Room for all six memory copies at once.
  worker = await WorkerProcess.start(['node', '--node', NODE], { VMBACKUP_MAX_PARALLEL_SAVES: '8' });
});
afterAll(async () => {
  await worker?.stop();
  for (const vm of VMS) await forgetVm(vm);
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('a multi-VM live run', () => {
  it(
    'pauses the six VMs of a node together: their copies start at once and the group suspends them, each VM runs on with its RAM, and every backup is its own disk at its instant',
    async () => {
      const blob = await ensureRamBlob('vmbt-live-192m', 192 * MiB);
      const writes: GuestWrite[] = [];
      for (const [i, name] of VMS.entries()) {
        await createVm({ name, node: NODE, disks: 1, memoryMiB: 256, ramData: blob, mode: 'live' });
        await blankRamLoaders(name, blob);
        expect(await blobRangeSha256(virsh, name, blob), `${name}'s RAM before the backup`).toBe(blob.sha256);
        writes.push({ pattern: 0x40 + i, offset: i * MiB, length: MiB });
        await guestWrite(name, 0, writes[i]!);
      }

      const run = await backupMany(VMS);

      expect(run.results.map((r) => r.outcome)).toEqual(VMS.map(() => 'backed-up'));
      const spans = run.saves!.spans;
      expect(spans.map((s) => s.vm).sort()).toEqual([...VMS].sort());
      // How close the instants are is a figure for the bench (bench/live.ts), not a timed test.
      expect(run.saves!.pauseSpreadMs).toBe(pauseSpreadMs(spans.map((s) => s.startedAt)));
      console.log(
        `pause spread ${run.saves!.pauseSpreadMs} ms; pauses ${spans.map((s) => `${s.vm} ${s.endedAt - s.startedAt} ms`).join(', ')}`,
      );
      // The group suspended them: all, or all but those whose copies ended first on their own.
      expect(
        run.results.filter((r) => r.outcome === 'backed-up' && r.forcedPause).length,
      ).toBeGreaterThanOrEqual(VMS.length / 2);
      for (const [i, name] of VMS.entries()) {
        const r = run.results[i] as { outcome: 'backed-up' } & BackupVmResult;
        expect(r.mode).toBe('live');
        expect(await virsh.state(name)).toBe('running');
        expect(
          await blobRangeSha256(virsh, name, blob),
          `${name}'s RAM (${JSON.stringify(await virsh.stateWithReason(name))}, ${JSON.stringify(r)})`,
        ).toBe(blob.sha256);
        expect(await guestReads(name, 0, writes[i]!)).toBe(true);
        const file = (await virsh.diskSources(name)).get('vda')!;
        expect(await backingFileOf(file)).toBeUndefined();
        const expected = await expectedDisk(scratch, name, SANDBOX_DISK_SIZE, [writes[i]!]);
        expect(
          await sameGuestContent(expected, path.join(r.backupDir, `${path.basename(file)}.${r.runDate}`)),
        ).toBe(true);
      }
    },
    15 * 60_000,
  );
});
