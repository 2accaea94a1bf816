import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { deleteBackup } from '../../src/activities/node/delete-backup';
import { nodeDeps } from '../../src/activities/node/context';
import { withDirectory } from '../../src/directory/connection';
import { savePlan } from '../support/plans';
import { backup, createVm, directory, leaves, listFiles, node, roots, tree } from '../support/harness';
import { useTestNode } from '../support/lifecycle';

const NODE = 'vmbt-node-del';
const test = useTestNode(NODE);

const exists = (p: string) =>
  fs.lstat(p).then(
    () => true,
    () => false,
  );

describe('retention deletes what each run wrote, from the run leaf', () => {
  it('deletes the old backup after the plan moved to another backup root', async () => {
    const vm = 'vmbt-del-root';
    const altRoot = path.join(roots.backup, 'vmbt-del-alt');
    test.vms.push(vm);
    await fs.rm(altRoot, { recursive: true, force: true });
    await createVm({ name: vm, node: NODE, planOverrides: { sstBackupNumberOfIterations: '1' } });
    const first = await backup(vm);
    const recorded = (await leaves(vm))[0]?.backupDir;

    await fs.mkdir(altRoot, { recursive: true });
    await withDirectory(directory, (dir) =>
      dir.replace(tree.vmBackup(vm), { sstBackupRootDirectory: `file://${altRoot}` }),
    );
    const second = await backup(vm);
    try {
      expect(second.backupDir.startsWith(`${altRoot}/`)).toBe(true);
      expect(second.retention).toEqual({ deleted: [first.runDate] });
      expect(await exists(first.backupDir)).toBe(false);
      expect((await leaves(vm)).map((l) => [l.runDate, l.mode, l.backupDir])).toEqual([
        [second.runDate, 'finished', second.backupDir],
      ]);
      expect(await listFiles(second.backupDir)).toEqual(second.files.slice().sort());
      expect(recorded).toBe(first.backupDir);
    } finally {
      await fs.rm(altRoot, { recursive: true, force: true });
    }
  });

  it('keeps the leaf and reports the error when the old backup was moved away by hand', async () => {
    const vm = 'vmbt-del-moved';
    const aside = path.join(roots.backup, 'vmbt-del-moved-aside');
    test.vms.push(vm);
    await fs.rm(aside, { recursive: true, force: true });
    await createVm({ name: vm, node: NODE, planOverrides: { sstBackupNumberOfIterations: '1' } });
    const first = await backup(vm);
    await fs.rename(first.backupDir, aside);
    try {
      const second = await backup(vm);
      expect(second.retention?.deleted).toEqual([]);
      expect(second.retention?.error).toMatch(
        new RegExp(`backup ${first.runDate} of ${vm} not found: ${first.backupDir} does not exist`),
      );
      // The leaf stays for an operator, with the error code (37: missing files).
      expect((await leaves(vm)).map((l) => [l.runDate, l.mode, l.state, l.returnValue])).toEqual([
        [first.runDate, 'deleting', '0', 37],
        [second.runDate, 'finished', expect.stringMatching(/^\d{8}T\d{6}Z$/), 0],
      ]);
      expect(await listFiles(aside)).toEqual(first.files.slice().sort());
      expect(await listFiles(second.backupDir)).toEqual(second.files.slice().sort());
    } finally {
      await fs.rm(aside, { recursive: true, force: true });
    }
  });

  it('finds the backup of a leaf from before the record through the plan', async () => {
    const vm = 'vmbt-del-legacy';
    test.vms.push(vm);
    await createVm({ name: vm, node: NODE, planOverrides: { sstBackupNumberOfIterations: '1' } });
    const first = await backup(vm);
    await withDirectory(directory, (dir) =>
      dir.replace(tree.runLeaf(vm, first.runDate), { description: [] }),
    );
    expect((await leaves(vm))[0]?.backupDir).toBeUndefined();
    const second = await backup(vm);
    expect(second.retention).toEqual({ deleted: [first.runDate] });
    expect(await exists(first.backupDir)).toBe(false);
    expect((await leaves(vm)).map((l) => l.runDate)).toEqual([second.runDate]);
  });
});

describe('deleteBackup on the node', () => {
  const vm = 'vmbt-del-node';
  const runDate = '20240102T030405Z';
  const deps = nodeDeps(node);
  const vmDir = path.join(roots.backup, 'vmbt-del-node-pool', vm);
  const plan = savePlan(tree.vmBackup(vm), roots);
  const input = (backupDir: string, over: { vm?: string; runDate?: string } = {}) => ({
    vm,
    runDate,
    disks: [],
    plan,
    backupDir,
    ...over,
  });
  async function runDir(dir: string, names: string[]): Promise<string> {
    await fs.mkdir(dir, { recursive: true });
    for (const n of names) await fs.writeFile(path.join(dir, n), n);
    return dir;
  }

  it('deletes only a directory below a storage root named <vm>/<date> that holds only the run files', async () => {
    await fs.rm(vmDir, { recursive: true, force: true });
    const outside = path.join(test.scratch(), vm, runDate);
    try {
      const names = [`${vm}.xml.${runDate}`, `${vm}.state.${runDate}`, `disk.qcow2.${runDate}.part`];
      const good = await runDir(path.join(vmDir, runDate), names);
      expect(await deleteBackup(deps, input(good))).toEqual({
        deleted: true,
        backupDir: good,
        files: names.slice().sort(),
      });
      expect(await exists(good)).toBe(false);

      const refused = async (dir: string, why: RegExp, over?: { vm?: string; runDate?: string }) => {
        await expect(deleteBackup(deps, input(dir, over))).rejects.toThrow(why);
      };
      await runDir(outside, [`${vm}.xml.${runDate}`]);
      await refused(outside, /outside the storage roots/);
      await refused(`${vmDir}/../${vm}/${runDate}`, /not an absolute path/);
      // A symlink inside the roots that leads outside them.
      const link = path.join(vmDir, '20240102T030406Z');
      await fs.mkdir(vmDir, { recursive: true });
      await fs.symlink(outside, link);
      await refused(link, /resolves to .* outside the storage roots/, { runDate: '20240102T030406Z' });
      const wrongDate = await runDir(path.join(vmDir, '20240102T030407Z'), []);
      await refused(wrongDate, /not named after the run date/);
      const otherVm = await runDir(path.join(roots.backup, 'vmbt-del-node-pool', 'other', runDate), []);
      await refused(otherVm, /not in a directory named vmbt-del-node/);
      const foreign = await runDir(path.join(vmDir, runDate), [`${vm}.xml.${runDate}`, 'notes.txt']);
      await refused(foreign, /it holds notes\.txt, which this run did not write/);
      expect(await listFiles(foreign)).toEqual(['notes.txt', `${vm}.xml.${runDate}`]);
      expect(await listFiles(outside)).toEqual([`${vm}.xml.${runDate}`]);
    } finally {
      await fs.rm(path.join(roots.backup, 'vmbt-del-node-pool'), { recursive: true, force: true });
    }
  });
});
