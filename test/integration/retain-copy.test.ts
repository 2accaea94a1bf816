import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_DISK_SIZE } from '../../src/dev/sandbox-vm';
import { run } from '../../src/hypervisor/run';
import {
  backup,
  createVm,
  expectedDisk,
  guestWrite,
  MiB,
  removeVm,
  roots,
  sameGuestContent,
} from '../support/harness';
import { expectManifestOfBackup } from '../support/manifest';
import { WorkerProcess } from '../support/worker-process';

const NODE = 'vmbt-node-c';
const VM = 'vmbt-copy';
let worker: WorkerProcess;
let otherFs: string;
let scratch: string;

beforeAll(async () => {
  // A backup root on another filesystem than the retain directory: retain must copy.
  otherFs = path.join(roots.backup, 'other-fs');
  await fs.mkdir(otherFs, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=256m', 'tmpfs', otherFs]);
  scratch = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-'));
  worker = await WorkerProcess.start(['node', '--node', NODE]);
});

afterAll(async () => {
  await worker?.stop();
  await removeVm(VM).catch(() => undefined);
  await run('umount', [otherFs]).catch(() => undefined);
  await fs.rm(scratch, { recursive: true, force: true });
});

describe('retain onto another filesystem', () => {
  it('copies to another filesystem: the backup holds the guest data byte for byte, does not grow on the way, and its manifest has the digests of what was copied', async () => {
    await createVm({ name: VM, node: NODE, planOverrides: { sstBackupRootDirectory: `file://${otherFs}` } });
    const data = { pattern: 0x99, offset: 8 * MiB, length: 2 * MiB };
    await guestWrite(VM, 0, data);
    const result = await backup(VM);

    expect(result.backupDir.startsWith(`${otherFs}/`)).toBe(true);
    const image = path.join(result.backupDir, `${VM}-disk0.qcow2.${result.runDate}`);
    expect(
      await sameGuestContent(await expectedDisk(scratch, 'copy', SANDBOX_DISK_SIZE, [data]), image),
    ).toBe(true);
    const stat = await fs.stat(image);
    // The qcow2 holds ~2 MiB of guest data: the copy allocates no more than its apparent size.
    expect(stat.blocks * 512).toBeLessThanOrEqual(stat.size + 4096);
    expect(stat.blocks * 512).toBeLessThan(8 * MiB);
    expect((await fs.readdir(result.backupDir)).filter((f) => f.endsWith('.part'))).toEqual([]);
    expect((await run('stat', ['-f', '-c', '%T', result.backupDir])).trim()).toBe('tmpfs');
    await expectManifestOfBackup(result.backupDir, VM, result.runDate);
  });
});
