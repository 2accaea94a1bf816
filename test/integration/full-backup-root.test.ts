import { existsSync, promises as fs } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SandboxVm } from '../../src/dev/sandbox-vm';
import { ErrorCode } from '../../src/domain/errors';
import { run } from '../../src/hypervisor/run';
import {
  backingFileOf,
  backup,
  createVm,
  guestReads,
  guestWrite,
  leaves,
  listFiles,
  MiB,
  nextRunDate,
  removeVm,
  roots,
  startBackup,
  tree_of,
  virsh,
  type GuestWrite,
} from '../support/harness';
import { failureOf } from '../support/failure';
import { useTestNode } from '../support/lifecycle';
import { WorkerProcess } from '../support/worker-process';

// Issue 8, defect 6: retain into a backup root without room for the run.
const NODE = 'vmbt-node-full';
const RACE_NODE = 'vmbt-node-full-race';
const POOL_PATH = path.join('vm-persistent', 'sandbox-pool');
const { vms, scratch } = useTestNode(NODE);
let mount: string;
let mounted = false;

const seconds = (since: number) => ((performance.now() - since) / 1000).toFixed(1);

beforeAll(async () => {
  // A backup root on a small filesystem of its own, below a storage root, so that retain copies.
  mount = path.join(roots.backup, 'vmbt-full-fs');
  await run('umount', [mount]).catch(() => undefined); // left over from an interrupted run
  await fs.mkdir(mount, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=128m,mode=0755', 'tmpfs', mount]);
  mounted = true;
});

afterAll(async () => {
  for (const vm of vms) await fs.rm(path.join(roots.retain, POOL_PATH, vm), { recursive: true, force: true });
  if (mounted) await run('umount', [mount]);
  await fs.rm(mount, { recursive: true, force: true });
});

const freeBytes = async (dir: string) => {
  const s = await fs.statfs(dir);
  return s.bavail * s.bsize;
};

/** Fills the tmpfs with a filler file until only `leave` bytes are free. */
async function fill(name: string, leave: number): Promise<string> {
  const filler = path.join(mount, name);
  const size = (await freeBytes(mount)) - leave;
  await run('fallocate', ['-l', String(size), filler]);
  return filler;
}

/** Name, size and mtime of every file in a directory. */
async function listing(dir: string): Promise<string[]> {
  const out = [];
  for (const f of await listFiles(dir)) {
    const s = await fs.stat(path.join(dir, f));
    out.push(`${f} ${s.size} ${s.mtimeMs}`);
  }
  return out;
}

async function newVm(name: string, node: string): Promise<SandboxVm> {
  vms.push(name);
  return createVm({ name, node, planOverrides: { sstBackupRootDirectory: `file://${mount}` } });
}

/** After a refused or failed retain: what the brief promises an operator finds. */
async function expectRetainUndone(vm: SandboxVm, runDate: string, written: GuestWrite[]) {
  // The merge has run: the VM runs on its own disks and reads what its guest wrote.
  expect(await virsh.state(vm.name)).toBe('running');
  for (const d of vm.disks) expect(await backingFileOf(d.file)).toBeUndefined();
  for (const w of written) expect(await guestReads(vm.name, 0, w), `guest reads ${w.pattern}`).toBe(true);
  // Every file of the run is still in the retain directory, so retain can be retried.
  const retainDir = path.join(roots.retain, POOL_PATH, vm.name, runDate);
  const expected = [
    `${vm.name}.state.${runDate}`,
    `${vm.name}.xml.${runDate}`,
    `${vm.name}.ldif.${runDate}`,
    ...vm.disks.map((d) => `${path.basename(d.file)}.${runDate}`),
  ];
  expect((await listFiles(retainDir)).filter((f) => !f.startsWith('.'))).toEqual(expected.sort());
  // No half-made copy anywhere on the backup root's filesystem.
  expect((await tree_of(mount)).filter((f) => f.endsWith('.part'))).toEqual([]);
  const leaf = (await leaves(vm.name)).find((l) => l.runDate === runDate);
  expect(leaf?.mode).not.toBe('finished');
  expect(leaf?.returnValue).toBe(ErrorCode.notEnoughDiskSpace);
}

describe('retain into a backup root without room for the run', () => {
  it('refuses (code 47, naming the space) before copying anything, and leaves the VM, the retain directory and the earlier backup as they were', async () => {
    const t = performance.now();
    const vm = await newVm('vmbt-full-refuse', NODE);
    const written: GuestWrite[] = [];
    await guestWrite(vm.name, 0, { pattern: 0x31, offset: 0, length: MiB }, written);
    const earlier = await backup(vm.name);
    expect(earlier.backupDir.startsWith(`${mount}/`)).toBe(true);
    const earlierFiles = await listing(earlier.backupDir);
    expect(earlierFiles).toHaveLength(5); // state, XML, LDIF, image, manifest
    console.log(`[1] earlier backup: ${seconds(t)} s, ${await freeBytes(mount)} bytes free afterwards`);

    await guestWrite(vm.name, 0, { pattern: 0x32, offset: 16 * MiB, length: 6 * MiB }, written);
    // Less room than the new disk image alone: today's copy fails midway, on ENOSPC.
    const filler = await fill('filler-refuse', 2 * MiB);
    try {
      const runDate = nextRunDate();
      const t2 = performance.now();
      const f = await failureOf(startBackup(vm.name, runDate).then((h) => h.result()));
      console.log(`[1] refused after ${seconds(t2)} s: code ${f.code}: ${f.message}`);
      expect(f.code).toBe(ErrorCode.notEnoughDiskSpace);
      expect(f.message).toContain(mount);
      expect(f.message).toMatch(/needs \d+ bytes/);
      expect(f.message).toMatch(/\d+ bytes are free/);

      await expectRetainUndone(vm, runDate, written);
      // Refused before the backup directory was even made; the earlier backup is untouched.
      expect(existsSync(path.join(path.dirname(earlier.backupDir), runDate))).toBe(false);
      expect(await listing(earlier.backupDir)).toEqual(earlierFiles);
    } finally {
      await fs.rm(filler, { force: true });
    }
    console.log(`[1] total: ${seconds(t)} s`);
  }, 300_000);

  it('fails with code 47 and leaves no .part when the disk fills up between the check and the copy', async () => {
    const t = performance.now();
    const failpoints = path.join(scratch(), 'failpoints');
    await fs.mkdir(failpoints, { recursive: true });
    // Paused after the room check passed, before the first copy: then something else fills the disk.
    const worker = await WorkerProcess.start(['node', '--node', RACE_NODE], {
      VMBACKUP_PAUSEPOINTS: 'retain:move-file:before',
      VMBACKUP_FAILPOINT_DIR: failpoints,
    });
    let filler: string | undefined;
    try {
      const vm = await newVm('vmbt-full-race', RACE_NODE);
      const written: GuestWrite[] = [];
      await guestWrite(vm.name, 0, { pattern: 0x41, offset: 4 * MiB, length: 4 * MiB }, written);
      const runDate = nextRunDate();
      const result = startBackup(vm.name, runDate).then((h) => h.result());
      result.catch(() => undefined);
      const reached = path.join(failpoints, 'retain_move-file_before.reached');
      const until = Date.now() + 120_000;
      while (!existsSync(reached)) {
        if (Date.now() > until) throw new Error(`${reached} did not appear:\n${worker.output}`);
        await sleep(100);
      }
      filler = await fill('filler-race', 0);
      await fs.writeFile(path.join(failpoints, 'retain_move-file_before.go'), '');

      const f = await failureOf(result);
      console.log(`[2] failed: code ${f.code}: ${f.message}`);
      expect(f.code).toBe(ErrorCode.notEnoughDiskSpace);
      expect(f.message).toContain(mount);
      expect(f.message).toMatch(/no space left on device/i);
      await expectRetainUndone(vm, runDate, written);
      // The backup directory was made before the pause, and holds nothing of the run.
      expect(await listFiles(path.join(mount, POOL_PATH, vm.name, runDate))).toEqual([]);
    } finally {
      if (filler) await fs.rm(filler, { force: true });
      await worker.stop();
      await removeVm('vmbt-full-race').catch(() => undefined);
    }
    console.log(`[2] total: ${seconds(t)} s`);
  }, 300_000);
});
