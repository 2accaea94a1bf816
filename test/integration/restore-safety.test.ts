import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { nodeDeps } from '../../src/activities/node/context';
import { restoreMachine } from '../../src/activities/node/restore';
import { savePlan } from '../support/plans';
import { run } from '../../src/hypervisor/run';
import { decideUpdate } from '../../src/workflows/messages';
import type { RestoreVmResult } from '../../src/workflows/restore-vm';
import {
  backup,
  createVm,
  guestReads,
  guestWrite,
  MiB,
  node,
  tree,
  tree_of,
  roots,
  virsh,
} from '../support/harness';
import { useTestNode } from '../support/lifecycle';
import { startRestore, waitForStage } from '../support/restore';

const NODE = 'vmbt-node-rs';
const testNode = useTestNode(NODE);
const names = testNode.vms;
const A = { pattern: 0xa1, offset: 0, length: 2 * MiB };
const B = { pattern: 0xb2, offset: 0, length: 2 * MiB };

async function restoreAllFromBackup(vm: string, backupDate: string): Promise<RestoreVmResult> {
  const handle = await startRestore(vm, { backup: backupDate });
  const status = await waitForStage(handle, ['awaiting-decision']);
  await handle.executeUpdate(decideUpdate, {
    args: [Object.fromEntries(status.conflicts.map((c) => [c.id, 'backup' as const]))],
  });
  return (await handle.result()) as RestoreVmResult;
}

/** What an image shows a guest at A's range, read offline through its chain. */
async function offlineReads(
  file: string,
  w: { pattern: number; offset: number; length: number },
): Promise<boolean> {
  try {
    const out = await run('qemu-io', [
      '-r',
      '-U',
      '-c',
      `read -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`,
      file,
    ]);
    return !/Pattern verification failed/.test(out);
  } catch (err) {
    if (/Pattern verification failed/.test(String(err))) return false;
    throw err;
  }
}

async function offlineWrite(
  file: string,
  w: { pattern: number; offset: number; length: number },
): Promise<void> {
  await run('qemu-io', [
    '-f',
    'qcow2',
    '-c',
    `write -P 0x${w.pattern.toString(16)} ${w.offset} ${w.length}`,
    file,
  ]);
}

describe('restore keeps what it replaces safe', () => {
  it('leaves the kept-aside files of an earlier failed restore alone and still keeps the live image aside until the VM runs', async () => {
    const name = 'vmbt-rsafe-stale';
    names.push(name);
    const vm = await createVm({ name, node: NODE, disks: 1 });
    const disk = vm.disks[0]!.file;
    await guestWrite(name, 0, A);
    const taken = await backup(name);
    await guestWrite(name, 0, B);
    // Left by an earlier restore that failed: possibly the only copy of some live data.
    const stale = [`${disk}.pre-restore`, `${disk}.pre-restore-1`];
    for (const f of stale) await fs.writeFile(f, `kept by an earlier restore: ${f}\n`);

    const result = await restoreAllFromBackup(name, taken.runDate);

    expect(result).toMatchObject({ outcome: 'restored', state: 'running' });
    expect(result.keptAside).toBeUndefined();
    expect(await guestReads(name, 0, A)).toBe(true);
    for (const f of stale) expect(await fs.readFile(f, 'utf8')).toBe(`kept by an earlier restore: ${f}\n`);
    // The image this restore put aside went once the VM ran again; the stale ones stay.
    const aside = (await fs.readdir(path.dirname(disk))).filter((f) =>
      f.startsWith(`${path.basename(disk)}.`),
    );
    expect(aside.sort()).toEqual(stale.map((f) => path.basename(f)).sort());
    expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(name));
  });

  it('keeps the images it replaced when the VM is left off, and names them in its result', async () => {
    const name = 'vmbt-rsafe-off';
    names.push(name);
    const vm = await createVm({ name, node: NODE, disks: 1, running: false });
    const disk = vm.disks[0]!.file;
    await offlineWrite(disk, A);
    const taken = await backup(name);
    await offlineWrite(disk, B);

    const result = await restoreAllFromBackup(name, taken.runDate);

    expect(result.outcome).toBe('restored');
    expect(await virsh.state(name)).toBe('shut off');
    expect(await offlineReads(disk, A)).toBe(true);
    expect(result.keptAside).toHaveLength(1);
    const kept = result.keptAside![0]!;
    expect(path.dirname(kept)).toBe(path.dirname(disk));
    expect(await offlineReads(kept, B)).toBe(true);
  });

  it('refuses, on the node, a restore XML that adds a QEMU command line, swaps the emulator or points a disk outside the images root, and changes nothing', async () => {
    const name = 'vmbt-rsafe-xml';
    names.push(name);
    const vm = await createVm({ name, node: NODE, disks: 1 });
    const disk = vm.disks[0]!;
    await guestWrite(name, 0, A);
    const taken = await backup(name);
    await guestWrite(name, 0, B);
    const backedUp = await fs.readFile(path.join(taken.backupDir, `${name}.xml.${taken.runDate}`), 'utf8');
    expect(backedUp).toContain(`'${disk.file}'`);
    const defined = await virsh.dumpInactiveXml(name);
    const inode = (await fs.stat(disk.file)).ino;
    // A name below the images root that leads outside it.
    const outside = path.join(testNode.scratch(), 'outside.qcow2');
    await fs.writeFile(outside, 'not an image of this VM\n');
    const link = path.join(path.dirname(disk.file), `${name}-link.qcow2`);
    await fs.symlink(outside, link);
    const plan = savePlan(tree.vmBackup(name), roots);
    const hostile = {
      'qemu:commandline': backedUp
        .replace(/<domain\b[^>]*/, (d) => `${d} xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'`)
        .replace('</domain>', "<qemu:commandline><qemu:arg value='-S'/></qemu:commandline></domain>"),
      emulator: backedUp.replace(/<emulator>[^<]*<\/emulator>/, '<emulator>/tmp/qemu</emulator>'),
      'disk outside the root': backedUp.replace(`'${disk.file}'`, "'/etc/hostname'"),
      'disk through a symlink': backedUp.replace(`'${disk.file}'`, `'${link}'`),
    };
    try {
      for (const [what, xml] of Object.entries(hostile)) {
        expect(xml, what).not.toBe(backedUp);
        await expect(
          restoreMachine(nodeDeps(node), {
            vm: name,
            runDate: taken.runDate,
            disks: [{ target: disk.target, sourceFile: disk.file }],
            plan,
            xml,
            withState: true,
            startAfter: false,
            shutdownSeconds: 2,
          }),
          what,
        ).rejects.toMatchObject({
          name: 'BackupError',
          code: 39,
          message: expect.stringMatching(/restore XML/),
        });
      }
    } finally {
      await fs.unlink(link);
    }
    // The VM runs on as it was, with its data after the backup; libvirt's definition and the image are the same.
    expect(await virsh.state(name)).toBe('running');
    expect(await guestReads(name, 0, B)).toBe(true);
    expect(await virsh.dumpInactiveXml(name)).toBe(defined);
    expect((await fs.stat(disk.file)).ino).toBe(inode);
    expect(await fs.readFile(outside, 'utf8')).toBe('not an image of this VM\n');
    expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(name));
  });
});
