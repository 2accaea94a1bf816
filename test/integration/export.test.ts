import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SANDBOX_DISK_SIZE } from '../../src/dev/sandbox-vm';
import { imageInfo } from '../../src/hypervisor/qemu-img';
import type { BackupVmResult } from '../../src/workflows/backup-vm';
import { repoRoot } from '../support/dev-env';
import {
  backup,
  createVm,
  expectedDisk,
  guestReads,
  guestWrite,
  MiB,
  roots,
  sameGuestContent,
  virsh,
  type GuestWrite,
} from '../support/harness';
import { useTestNode } from '../support/lifecycle';

const NODE = 'vmbt-node-export';
const VM = 'vmbt-export';
const node = useTestNode(NODE);
node.vms.push(VM);
const exports = path.join(roots.backup, 'vmbt-exports');
const cli = (...args: string[]) =>
  execa(process.execPath, [`${repoRoot}bin/vmbackup.mjs`, ...args], { reject: false });

let result: BackupVmResult;
const atBackup: GuestWrite = { pattern: 0x3c, offset: 2 * MiB, length: 3 * MiB };
const after: GuestWrite = { pattern: 0x4d, offset: 2 * MiB, length: MiB };

beforeAll(async () => {
  await fs.rm(exports, { recursive: true, force: true });
  await fs.mkdir(exports, { recursive: true });
  await createVm({ name: VM, node: NODE, disks: 2 });
  await guestWrite(VM, 1, atBackup);
  result = await backup(VM);
  await guestWrite(VM, 1, after);
}, 120_000);
afterAll(() => fs.rm(exports, { recursive: true, force: true }));

describe('single-disk export', () => {
  it('writes one disk of a backup as a standalone, owner-only qcow2 equal to the backup image, while the VM runs on with its own data', async () => {
    const to = path.join(exports, 'vdb.qcow2');
    const r = await cli('export', VM, '--backup', result.runDate, '--disk', 'vdb', '--to', to);
    expect(r.exitCode, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain(`exported to ${to}`);
    const image = path.join(result.backupDir, `${VM}-disk1.qcow2.${result.runDate}`);
    expect(await sameGuestContent(image, to)).toBe(true);
    expect(
      await sameGuestContent(
        await expectedDisk(node.scratch(), 'export-vdb', SANDBOX_DISK_SIZE, [atBackup]),
        to,
      ),
    ).toBe(true);
    const info = await imageInfo(to);
    expect(info).toMatchObject({ format: 'qcow2', virtualSize: SANDBOX_DISK_SIZE });
    expect(info.backingFilename).toBeUndefined();
    expect((await fs.stat(to)).mode & 0o777).toBe(0o600);
    expect(await fs.readdir(exports)).toEqual(['vdb.qcow2']);
    // The VM was not touched: running, reading what it wrote after the backup.
    expect(await virsh.state(VM)).toBe('running');
    expect(await guestReads(VM, 1, after)).toBe(true);
  }, 120_000);

  it('refuses an existing file, a path outside the storage roots, a symlinked directory, an unknown disk and a missing backup, and writes nothing', async () => {
    const existing = path.join(exports, 'vdb.qcow2');
    const before = await fs.readFile(existing);
    const outside = await fs.mkdtemp('/tmp/vmbt-export-');
    const link = path.join(exports, 'link');
    await fs.symlink(outside, link);
    try {
      const cases: Array<[string[], RegExp]> = [
        [['--disk', 'vdb', '--to', existing], /already exists; it is never overwritten/],
        [['--disk', 'vdb', '--to', path.join(outside, 'x.qcow2')], /outside the configured roots/],
        [['--disk', 'vdb', '--to', path.join(link, 'x.qcow2')], /resolves to .*outside the configured roots/],
        [['--disk', 'vdz', '--to', path.join(exports, 'z.qcow2')], /has no disk vdz \(it has vda, vdb\)/],
        [
          ['--disk', 'vdb', '--to', path.join(exports, 'y.qcow2'), '--backup', '20000101T000000Z'],
          /no complete backup 20000101T000000Z/,
        ],
        [['--disk', 'v/../a', '--to', path.join(exports, 'w.qcow2')], /disk must be a target/],
      ];
      for (const [args, error] of cases) {
        const r = await cli('export', VM, ...args);
        expect(r.exitCode, args.join(' ')).toBe(2);
        expect(r.stdout + r.stderr, args.join(' ')).toMatch(error);
      }
      expect((await fs.readFile(existing)).equals(before)).toBe(true);
      expect((await fs.readdir(exports)).sort()).toEqual(['link', 'vdb.qcow2']);
      expect(await fs.readdir(outside)).toEqual([]);
    } finally {
      await fs.rm(link);
      await fs.rm(outside, { recursive: true, force: true });
    }
  }, 120_000);
});
