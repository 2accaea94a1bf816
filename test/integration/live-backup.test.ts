import { existsSync, promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PLACEHOLDER_STATE } from '../../src/activities/node/snapshot';
import { run } from '../../src/hypervisor/run';
import { blankRamLoaders, blobRangeSha256, ensureRamBlob, removeRamBlob } from '../../src/dev/guest-ram';
import { SANDBOX_DISK_SIZE, type SandboxVm } from '../../src/dev/sandbox-vm';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import { decideUpdate } from '../../src/workflows/messages';
import type { RestoreVmResult } from '../../src/workflows/restore-vm';
import {
  backingFileOf,
  backup,
  createVm,
  expectedDisk,
  forgetVm,
  guestReads,
  guestWrite,
  leaves,
  MiB,
  roots,
  sameGuestContent,
  startBackup,
  tree_of,
  virsh,
  type GuestWrite,
} from '../support/harness';
import { startRestore, waitForStage } from '../support/restore';
import { modesIn, privateBackupModes } from '../support/modes';
import { WorkerProcess } from '../support/worker-process';

const NODE = 'vmbt-node-live';
const vms: string[] = [];
const blobs: string[] = [];
let scratch: string;

beforeAll(async () => {
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-live-'));
});
afterAll(async () => {
  for (const vm of vms) await forgetVm(vm);
  for (const b of blobs) await removeRamBlob(b).catch(() => undefined);
  await fs.rm(scratch, { recursive: true, force: true });
});

async function withWorker<T>(env: Record<string, string>, fn: () => Promise<T>): Promise<T> {
  const worker = await WorkerProcess.start(['node', '--node', NODE], env);
  try {
    return await fn();
  } finally {
    await worker.stop();
  }
}

async function waitForFile(file: string, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!existsSync(file)) {
    if (Date.now() > until) throw new Error(`${file} did not appear within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/** Files next to the VM's images that carry an image's name (overlays, `.part`, …). */
async function siblingsOf(vm: SandboxVm): Promise<string[]> {
  const out: string[] = [];
  for (const d of vm.disks) {
    const base = path.basename(d.file);
    for (const f of await fs.readdir(path.dirname(d.file))) if (f.startsWith(`${base}.`)) out.push(f);
  }
  return out;
}

/** The VM runs on its own images again, nothing of the run is left, and the backup is the instant's. */
async function expectLiveBackup(vm: SandboxVm, atInstant: GuestWrite[][], result: BackupVmResult) {
  expect(result.mode).toBe('live');
  expect(await virsh.diskSources(vm.name)).toEqual(new Map(vm.disks.map((d) => [d.target, d.file])));
  for (const d of vm.disks) expect(await backingFileOf(d.file)).toBeUndefined();
  expect(await siblingsOf(vm), 'no overlay or partial copy next to the images').toEqual([]);
  expect((await tree_of(roots.retain)).filter((f) => f.includes(vm.name))).toEqual([]);
  expect((await tree_of(roots.ramDisk)).filter((f) => f.includes(vm.name))).toEqual([]);
  for (const [i, d] of vm.disks.entries()) {
    const expected = await expectedDisk(scratch, `${vm.name}-${d.target}`, SANDBOX_DISK_SIZE, atInstant[i]!);
    const saved = path.join(result.backupDir, `${path.basename(d.file)}.${result.runDate}`);
    expect(await backingFileOf(saved)).toBeUndefined();
    expect(await sameGuestContent(expected, saved), `backup of ${d.target} is the disk at the instant`).toBe(
      true,
    );
  }
  expect(await modesIn(result.backupDir)).toEqual(
    privateBackupModes(
      vm.name,
      result.runDate,
      vm.disks.map((d) => d.file),
    ),
  );
  const leaf = (await leaves(vm.name)).find((l) => l.runDate === result.runDate);
  expect(leaf).toMatchObject({ mode: 'finished', returnValue: 0 });
  expect(leaf!.executionTimes).toEqual(
    expect.arrayContaining(['mode: live', expect.stringMatching(/^pause-ms: \d+$/)]),
  );
}

describe('live mode', () => {
  it(
    'backs up a running VM whose RAM holds data without stopping it: a short pause, writes during the copy stay live and out of the backup, and the backup restores RAM and disk',
    async () => {
      const blob = await ensureRamBlob('vmbt-live-192m', 192 * MiB);
      blobs.push(blob.name);
      const vm = await createVm({
        name: 'vmbt-live1',
        node: NODE,
        disks: 1,
        memoryMiB: 256,
        ramData: blob,
        mode: 'unset',
      });
      vms.push(vm.name);
      const a: GuestWrite = { pattern: 0xa1, offset: 0, length: 4 * MiB };
      const during: GuestWrite = { pattern: 0xd2, offset: 8 * MiB, length: 2 * MiB };
      await guestWrite(vm.name, 0, a);
      const barrier = path.join(scratch, 'barrier1');
      await fs.mkdir(barrier);

      const result = await withWorker(
        { VMBACKUP_PAUSEPOINTS: 'snapshot:copy-disk:before', VMBACKUP_FAILPOINT_DIR: barrier },
        async () => {
          const handle = await startBackup(vm.name);
          await waitForFile(path.join(barrier, 'snapshot_copy-disk_before.reached'), 120_000);
          // The snapshot is taken; the guest runs on its overlay and writes while the image is copied.
          expect(await virsh.state(vm.name)).toBe('running');
          expect((await virsh.diskSources(vm.name)).get('vda')).toBe(`${vm.disks[0]!.file}.vmbackup-live`);
          await guestWrite(vm.name, 0, during);
          await fs.writeFile(path.join(barrier, 'snapshot_copy-disk_before.go'), '');
          return (await handle.result()) as BackupVmResult;
        },
      );
      console.log(
        `live backup of ${vm.name}: pause ${result.downtimeMs} ms, snapshot ${result.snapshotMs} ms`,
      );

      expect(await virsh.state(vm.name)).toBe('running');
      expect(result.wasRunning).toBe(true);
      expect(result.downtimeMs).toBeGreaterThan(0);
      expect(result.downtimeMs).toBeLessThan(1000);
      expect(await blobRangeSha256(virsh, vm.name, blob)).toBe(blob.sha256);
      expect(await guestReads(vm.name, 0, a)).toBe(true);
      expect(await guestReads(vm.name, 0, during), 'the write during the backup is in the live disk').toBe(
        true,
      );
      await expectLiveBackup(vm, [[a]], result);
      const stateXml = await virsh.saveImageXml(
        path.join(result.backupDir, `${vm.name}.state.${result.runDate}`),
      );
      expect(stateXml).toContain(`<source file='${vm.disks[0]!.file}'`);

      // Restore of the live backup: RAM can only come from its memory file.
      await blankRamLoaders(vm.name, blob);
      await withWorker({}, async () => {
        const handle = await startRestore(vm.name);
        const status = await waitForStage(handle, ['awaiting-decision', 'failed']);
        expect(status, status.message).toMatchObject({ stage: 'awaiting-decision', withState: true });
        await handle.executeUpdate(decideUpdate, {
          args: [Object.fromEntries(status.conflicts.map((c) => [c.id, 'backup' as const]))],
        });
        expect((await handle.result()) as RestoreVmResult).toMatchObject({
          outcome: 'restored',
          state: 'running',
        });
      });
      expect(await blobRangeSha256(virsh, vm.name, blob)).toBe(blob.sha256);
      expect(await guestReads(vm.name, 0, a)).toBe(true);
      expect(await guestReads(vm.name, 0, during), 'the restored disk is the one of the instant').toBe(false);
    },
    10 * 60_000,
  );

  it('backs up a running two-disk VM live: both disks of one instant, the VM back on its images', async () => {
    const vm = await createVm({ name: 'vmbt-live2', node: NODE, disks: 2, mode: 'live' });
    vms.push(vm.name);
    const a: GuestWrite = { pattern: 0x3a, offset: 0, length: 3 * MiB };
    const b: GuestWrite = { pattern: 0x4b, offset: 5 * MiB, length: 2 * MiB };
    await guestWrite(vm.name, 0, a);
    await guestWrite(vm.name, 1, b);
    const result = await withWorker({}, () => backup(vm.name));
    expect(await virsh.state(vm.name)).toBe('running');
    expect(await guestReads(vm.name, 0, a)).toBe(true);
    expect(await guestReads(vm.name, 1, b)).toBe(true);
    await expectLiveBackup(vm, [[a], [b]], result);
  });

  it('backs up a shut-down VM live by copying its images: it stays off and its images are not written', async () => {
    const vm = await createVm({ name: 'vmbt-live-off', node: NODE, disks: 1, mode: 'live' });
    vms.push(vm.name);
    const a: GuestWrite = { pattern: 0x6c, offset: MiB, length: 2 * MiB };
    await guestWrite(vm.name, 0, a);
    await virsh.destroy(vm.name);
    const before = await fs.stat(vm.disks[0]!.file);
    const result = await withWorker({}, () => backup(vm.name));
    expect(await virsh.state(vm.name)).toBe('shut off');
    expect(result.downtimeMs).toBe(0);
    const after = await fs.stat(vm.disks[0]!.file);
    expect([after.ino, after.mtimeMs, after.size]).toEqual([before.ino, before.mtimeMs, before.size]);
    expect(await fs.readFile(path.join(result.backupDir, `${vm.name}.state.${result.runDate}`), 'utf8')).toBe(
      PLACEHOLDER_STATE,
    );
    await expectLiveBackup(vm, [[a]], result);
  });

  it('a resume of a VM libvirt resumed meanwhile (its live snapshot ended between our look and our call) succeeds and leaves it running; a shut-off VM still cannot be resumed', async () => {
    const vm = await createVm({ name: 'vmbt-live-resume', node: NODE, disks: 1, mode: 'live' });
    vms.push(vm.name);
    const a: GuestWrite = { pattern: 0x5e, offset: 0, length: MiB };
    await guestWrite(vm.name, 0, a);
    await virsh.suspend(vm.name);
    await virsh.resume(vm.name);
    expect(await virsh.state(vm.name)).toBe('running');
    await virsh.resume(vm.name);
    expect(await virsh.state(vm.name)).toBe('running');
    expect(await guestReads(vm.name, 0, a)).toBe(true);
    await virsh.destroy(vm.name);
    await expect(virsh.resume(vm.name)).rejects.toThrow(/not running/);
    expect(await virsh.state(vm.name)).toBe('shut off');
  });

  it('backs up live into a retain directory on another filesystem (save mode refuses one): the frozen image is copied once', async () => {
    const otherFs = path.join(roots.backup, 'live-other-fs');
    await fs.mkdir(otherFs, { recursive: true });
    await run('mount', ['-t', 'tmpfs', '-o', 'size=512m', 'tmpfs', otherFs]);
    try {
      const vm = await createVm({
        name: 'vmbt-live-xfs',
        node: NODE,
        disks: 1,
        mode: 'live',
        planOverrides: {
          sstBackupRetainDirectory: `file://${otherFs}/retain`,
          sstBackupRootDirectory: `file://${otherFs}/backup`,
        },
      });
      vms.push(vm.name);
      await fs.mkdir(path.join(otherFs, 'retain'));
      await fs.mkdir(path.join(otherFs, 'backup'));
      const a: GuestWrite = { pattern: 0x2f, offset: 3 * MiB, length: 2 * MiB };
      await guestWrite(vm.name, 0, a);
      const result = await withWorker({}, () => backup(vm.name));
      expect(result.backupDir.startsWith(`${otherFs}/backup/`)).toBe(true);
      await expectLiveBackup(vm, [[a]], result);
      expect(await guestReads(vm.name, 0, a)).toBe(true);
    } finally {
      await forgetVm('vmbt-live-xfs');
      await run('umount', [otherFs]).catch(() => undefined);
    }
  });

  it('falls back to save mode, saying why, when libvirt refuses the live snapshot', async () => {
    const vm = await createVm({ name: 'vmbt-live-fb', node: NODE, disks: 1, mode: 'live' });
    vms.push(vm.name);
    const a: GuestWrite = { pattern: 0x7e, offset: 0, length: MiB };
    await guestWrite(vm.name, 0, a);
    const result = await withWorker({ VMBACKUP_FAULTS: 'snapshot:live-snapshot:libvirt' }, () =>
      backup(vm.name),
    );
    expect(result.mode).toBe('save');
    expect(result.fallback).toContain('injected fault at snapshot:live-snapshot:libvirt');
    expect(await virsh.state(vm.name)).toBe('running');
    expect(await guestReads(vm.name, 0, a)).toBe(true);
    expect(await backingFileOf(vm.disks[0]!.file)).toBeUndefined();
    const expected = await expectedDisk(scratch, 'fb-vda', SANDBOX_DISK_SIZE, [a]);
    expect(
      await sameGuestContent(
        expected,
        path.join(result.backupDir, `${path.basename(vm.disks[0]!.file)}.${result.runDate}`),
      ),
    ).toBe(true);
    const leaf = (await leaves(vm.name)).find((l) => l.runDate === result.runDate);
    expect(leaf!.executionTimes).toContain('mode: save');
  });

  it('ends a memory copy that runs past its bound by pausing the VM, and says so', async () => {
    const blob = await ensureRamBlob('vmbt-live-192m', 192 * MiB);
    const vm = await createVm({
      name: 'vmbt-live-slow',
      node: NODE,
      disks: 1,
      memoryMiB: 256,
      ramData: blob,
      mode: 'live',
    });
    vms.push(vm.name);
    const result = await withWorker({ VMBACKUP_LIVE_MAX_COPY_SECONDS: '0.01' }, () => backup(vm.name));
    expect(result.mode).toBe('live');
    expect(result.forcedPause).toBe(true);
    expect(await virsh.state(vm.name)).toBe('running');
    expect(await blobRangeSha256(virsh, vm.name, blob)).toBe(blob.sha256);
    await expectLiveBackup(vm, [[]], result);
  });
});
