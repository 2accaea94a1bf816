import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { nodeDeps } from '../../src/activities/node/context';
import { durableCopy, ensureDir, writeFileAtomic } from '../../src/activities/node/files';
import { merge } from '../../src/activities/node/merge';
import {
  cleanRestore,
  restoreMachine,
  unretainLargeFiles,
  unretainSmallFiles,
} from '../../src/activities/node/restore';
import { retain } from '../../src/activities/node/retain';
import { inspectForSnapshot, rollbackSnapshot, snapshot } from '../../src/activities/node/snapshot';
import { nodeConfig } from '../../src/config';
import { savePlan } from '../support/plans';
import { loadDevEnv } from '../support/dev-env';

loadDevEnv();
const config = nodeConfig();
const deps = nodeDeps(config);
const env = (name: string) => process.env[name]!;
const roots = {
  images: env('VMBACKUP_IMAGES_ROOT'),
  retain: env('VMBACKUP_RETAIN_ROOT'),
  backup: env('VMBACKUP_BACKUP_ROOT'),
  ramDisk: env('VMBACKUP_RAMDISK'),
};
const vm = 'vmbt-symlink';
const runDate = '20250101T010203Z';
const pool = 'vmbt-symlink-pool';
const disk = path.join(roots.images, 'vm-persistent', pool, `${vm}-vda.qcow2`);
const vmDir = (root: string) => path.join(root, 'vm-persistent', pool, vm);
const retainDir = path.join(vmDir(roots.retain), runDate);
const backupDir = path.join(vmDir(roots.backup), runDate);
const plan = savePlan('ou=backup,sstVirtualMachine=vmbt-symlink,o=test', roots);
const input = { vm, runDate, disks: [{ target: 'vda', sourceFile: disk }], plan };
const restoreInput = { ...input, xml: '<domain/>', withState: true, startAfter: false, shutdownSeconds: 1 };

let outside = '';
const PRECIOUS = 'not the node’s to touch\n';

/** The outside directory as it was planted: one file, unchanged. */
async function outsideUntouched(): Promise<void> {
  expect(await fs.readdir(outside)).toEqual(['precious']);
  expect(await fs.readFile(path.join(outside, 'precious'), 'utf8')).toBe(PRECIOUS);
}

async function plant(link: string, target: string): Promise<void> {
  await fs.mkdir(path.dirname(link), { recursive: true });
  await fs.symlink(target, link);
}

const refused = (why: RegExp) =>
  expect.objectContaining({ name: 'BackupError', code: 39, message: expect.stringMatching(why) });

beforeAll(async () => {
  outside = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-outside-'));
});
afterEach(async () => {
  for (const d of [vmDir(roots.retain), vmDir(roots.backup), path.join(roots.ramDisk, vm)])
    await fs.rm(d, { recursive: true, force: true });
  await fs.rm(path.dirname(disk), { recursive: true, force: true });
  await fs.rm(outside, { recursive: true, force: true });
  await fs.mkdir(outside);
  await fs.writeFile(path.join(outside, 'precious'), PRECIOUS);
});
afterAll(async () => {
  await fs.rm(outside, { recursive: true, force: true });
});

describe('a node refuses paths that symlinks lead outside its roots, and changes nothing', () => {
  it('a run directory that is a symlink: every activity refuses it before acting', async () => {
    await fs.writeFile(path.join(outside, 'precious'), PRECIOUS);
    await plant(retainDir, outside);
    const calls: Array<[string, () => Promise<unknown>]> = [
      ['inspectForSnapshot', () => inspectForSnapshot(deps, input)],
      ['snapshot', () => snapshot(deps, { ...input, ldif: 'dn: x\n' })],
      ['rollbackSnapshot', () => rollbackSnapshot(deps, input)],
      ['merge', () => merge(deps, input)],
      ['retain', () => retain(deps, input)],
      ['unretainSmallFiles', () => unretainSmallFiles(deps, input)],
      ['unretainLargeFiles', () => unretainLargeFiles(deps, input)],
      ['restoreMachine', () => restoreMachine(deps, restoreInput)],
      ['cleanRestore', () => cleanRestore(deps, input)],
    ];
    for (const [name, call] of calls)
      await expect(call(), name).rejects.toEqual(refused(/retain directory.*is a symlink/));
    expect((await fs.lstat(retainDir)).isSymbolicLink()).toBe(true);
    await outsideUntouched();
  });

  it('a symlink above the run directory, the backup directory, the RAM disk directory or a live image', async () => {
    await fs.writeFile(path.join(outside, 'precious'), PRECIOUS);
    await plant(vmDir(roots.retain), outside);
    await expect(snapshot(deps, { ...input, ldif: '' })).rejects.toEqual(
      refused(new RegExp(`resolves to ${outside}/${runDate}, outside the configured roots`)),
    );
    await fs.rm(vmDir(roots.retain));

    await fs.mkdir(retainDir, { recursive: true });
    await plant(backupDir, outside);
    await expect(retain(deps, input)).rejects.toEqual(refused(/backup directory.*is a symlink/));
    await fs.rm(backupDir);

    await plant(path.join(roots.ramDisk, vm), outside);
    await expect(
      snapshot(deps, { ...input, ldif: '', plan: { ...plan, ramDisk: roots.ramDisk } }),
    ).rejects.toEqual(refused(/state file directory.*is a symlink/));

    await plant(disk, path.join(outside, 'precious'));
    await expect(inspectForSnapshot(deps, input)).rejects.toEqual(
      refused(/disk vda.*resolves to .*precious/),
    );
    expect(await fs.readdir(retainDir)).toEqual([]);
    await outsideUntouched();
  });

  it('a file name the node will write, planted as a symlink in a real run directory', async () => {
    await fs.writeFile(path.join(outside, 'precious'), PRECIOUS);
    await fs.mkdir(retainDir, { recursive: true });
    for (const name of [`${vm}.xml.${runDate}`, `${vm}.state.${runDate}`, `${vm}-vda.qcow2.${runDate}`]) {
      const link = path.join(retainDir, name);
      await plant(link, path.join(outside, 'precious'));
      await expect(snapshot(deps, { ...input, ldif: '' }), name).rejects.toEqual(refused(/is a symlink/));
      await expect(retain(deps, input), name).rejects.toEqual(refused(/is a symlink/));
      await fs.unlink(link);
    }
    await outsideUntouched();
  });
});

describe('the node creates its files afresh, never through a symlink', () => {
  it('writeFileAtomic and durableCopy replace a symlink at their temporary or final name instead of writing through it', async () => {
    await fs.writeFile(path.join(outside, 'precious'), PRECIOUS);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-writes-'));
    try {
      const target = path.join(outside, 'precious');
      await fs.symlink(target, path.join(dir, 'journal.tmp'));
      await fs.symlink(target, path.join(dir, 'journal'));
      await writeFileAtomic(path.join(dir, 'journal'), '{}\n');
      const journal = await fs.lstat(path.join(dir, 'journal'));
      expect(journal.isFile()).toBe(true);
      expect((journal.mode & 0o777).toString(8)).toBe('600');

      await fs.writeFile(path.join(dir, 'src'), 'image');
      await fs.symlink(target, path.join(dir, 'copy.part'));
      await durableCopy(path.join(dir, 'src'), path.join(dir, 'copy'));
      expect(await fs.readFile(path.join(dir, 'copy'), 'utf8')).toBe('image');
      expect(await fs.readdir(dir)).toEqual(['copy', 'journal', 'src']);
      await outsideUntouched();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });

  it('ensureDir refuses a symlink where a directory should be', async () => {
    await fs.writeFile(path.join(outside, 'precious'), PRECIOUS);
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'vmbt-dirs-'));
    try {
      await fs.symlink(outside, path.join(dir, 'run'));
      await expect(ensureDir(path.join(dir, 'run'), { mode: 0o750 })).rejects.toThrow(/not a directory/);
      await ensureDir(path.join(dir, 'a', 'b'), { mode: 0o750 });
      for (const d of ['a', 'a/b'])
        expect(((await fs.lstat(path.join(dir, d))).mode & 0o777).toString(8)).toBe('750');
      await outsideUntouched();
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
