import { promises as fs } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/hypervisor/run';
import { PLACEHOLDER_STATE } from '../../src/activities/node/snapshot';
import { SANDBOX_DISK_SIZE } from '../../src/dev/sandbox-vm';
import { useTestNode } from '../support/lifecycle';
import { modesIn, privateBackupModes } from '../support/modes';
import { expectManifestOfBackup } from '../support/manifest';
import {
  backingFileOf,
  backup,
  createVm,
  expectedDisk,
  guestReads,
  guestWrite,
  leaves,
  listFiles,
  MiB,
  roots,
  sameGuestContent,
  tree_of,
  virsh,
} from '../support/harness';

const NODE = 'vmbt-node-b';
const node = useTestNode(NODE);
node.vms.push('vmbt-run2', 'vmbt-off');

describe('backupVm', () => {
  it('backs up a running VM with two disks: the guest keeps running and reading its data, and the backup holds exactly what it had at the snapshot, with a manifest of its digests', async () => {
    const vm = await createVm({ name: 'vmbt-run2', node: NODE, disks: 2 });
    const a = { pattern: 0xa1, offset: 0, length: 4 * MiB };
    const b = { pattern: 0xb2, offset: MiB, length: 2 * MiB };
    await guestWrite(vm.name, 0, a);
    await guestWrite(vm.name, 1, b);
    const expected = [
      await expectedDisk(node.scratch(), 'run2-vda', SANDBOX_DISK_SIZE, [a]),
      await expectedDisk(node.scratch(), 'run2-vdb', SANDBOX_DISK_SIZE, [b]),
    ];

    const result = await backup(vm.name);

    // The VM runs again, from its saved state, and sees what it had.
    expect(await virsh.state(vm.name)).toBe('running');
    expect(result.wasRunning).toBe(true);
    expect(await guestReads(vm.name, 0, a)).toBe(true);
    expect(await guestReads(vm.name, 1, b)).toBe(true);
    // It keeps writing to its live disks; those writes do not reach the backup.
    const c = { pattern: 0xc3, offset: 8 * MiB, length: MiB };
    await guestWrite(vm.name, 0, c);
    expect(await guestReads(vm.name, 0, c)).toBe(true);
    expect(await guestReads(vm.name, 0, a)).toBe(true);
    // No live image depends on anything any more.
    for (const d of vm.disks) expect(await backingFileOf(d.file)).toBeUndefined();
    expect(await virsh.diskSources(vm.name)).toEqual(new Map(vm.disks.map((d) => [d.target, d.file])));

    // The backup directory holds state, XML, LDIF and every disk, named as the contract says.
    const date = result.runDate;
    expect(result.backupDir).toBe(path.join(roots.backup, 'vm-persistent', 'sandbox-pool', vm.name, date));
    expect(await listFiles(result.backupDir)).toEqual(
      [
        `${vm.name}.ldif.${date}`,
        `${vm.name}.manifest.${date}`,
        `${vm.name}.state.${date}`,
        `${vm.name}.xml.${date}`,
        ...vm.disks.map((d) => `${path.basename(d.file)}.${date}`),
      ].sort(),
    );
    for (const [i, d] of vm.disks.entries()) {
      const saved = path.join(result.backupDir, `${path.basename(d.file)}.${date}`);
      expect(await backingFileOf(saved)).toBeUndefined();
      expect(await sameGuestContent(expected[i]!, saved)).toBe(true);
    }
    // The state file is a real libvirt saved state of this VM; XML and LDIF describe it.
    const stateXml = await virsh.saveImageXml(path.join(result.backupDir, `${vm.name}.state.${date}`));
    expect(stateXml).toContain(`<name>${vm.name}</name>`);
    expect(await fs.readFile(path.join(result.backupDir, `${vm.name}.xml.${date}`), 'utf8')).toContain(
      `<name>${vm.name}</name>`,
    );
    const ldif = await fs.readFile(path.join(result.backupDir, `${vm.name}.ldif.${date}`), 'utf8');
    expect(ldif).toMatch(new RegExp(`^dn: sstVirtualMachine=${vm.name},ou=virtual machines`, 'm'));
    expect(ldif).toContain('dn: sstDisk=vdb,ou=devices,');
    expect(ldif).not.toContain(`ou=${date}`);
    // Guest data and RAM are readable by root (and the plan's image group) only.
    expect(await modesIn(result.backupDir)).toEqual(
      privateBackupModes(
        vm.name,
        date,
        vm.disks.map((d) => d.file),
      ),
    );
    // Every file is in the manifest with the digest sha256sum computes.
    await expectManifestOfBackup(result.backupDir, vm.name, date);
    // Nothing is left in the retain area or on the RAM disk.
    expect(await tree_of(roots.retain)).not.toContainEqual(expect.stringContaining(vm.name));
    expect(await tree_of(roots.ramDisk)).not.toContainEqual(expect.stringContaining(vm.name));
    // The run leaf went through the whole protocol.
    const leaf = (await leaves(vm.name)).find((l) => l.runDate === date);
    expect(leaf).toMatchObject({ mode: 'finished', returnValue: 0 });
    expect(leaf!.state).toMatch(/^\d{8}T\d{6}Z$/);
    expect(leaf!.executionTimes).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^snapshot: \d+$/),
        expect.stringMatching(/^downtime: \d+$/),
      ]),
    );
    expect(result.downtimeMs).toBeGreaterThan(0);
  });

  it('backs up a shut-down VM: it stays off, gets a placeholder state, and its backup equals its disk', async () => {
    const vm = await createVm({ name: 'vmbt-off', node: NODE, disks: 1 });
    const a = { pattern: 0x5d, offset: 2 * MiB, length: 3 * MiB };
    await guestWrite(vm.name, 0, a);
    await virsh.destroy(vm.name);
    const expected = await expectedDisk(node.scratch(), 'off-vda', SANDBOX_DISK_SIZE, [a]);

    const result = await backup(vm.name);

    expect(await virsh.state(vm.name)).toBe('shut off');
    expect(result.wasRunning).toBe(false);
    expect(result.downtimeMs).toBe(0);
    expect(await backingFileOf(vm.disks[0]!.file)).toBeUndefined();
    const date = result.runDate;
    expect(await fs.readFile(path.join(result.backupDir, `${vm.name}.state.${date}`), 'utf8')).toBe(
      PLACEHOLDER_STATE,
    );
    const saved = path.join(result.backupDir, `${path.basename(vm.disks[0]!.file)}.${date}`);
    expect(await modesIn(result.backupDir)).toEqual(privateBackupModes(vm.name, date, [vm.disks[0]!.file]));
    expect(await sameGuestContent(expected, saved)).toBe(true);
    expect(await sameGuestContent(expected, vm.disks[0]!.file)).toBe(true);
    // Started afterwards, the guest reads its data from the live disk.
    await virsh.start(vm.name);
    expect(await guestReads(vm.name, 0, a)).toBe(true);
    expect((await leaves(vm.name)).find((l) => l.runDate === date)).toMatchObject({
      mode: 'finished',
      returnValue: 0,
    });
  });

  it('applies the backup plan permission to the backed-up disk images', async () => {
    const files = (await tree_of(roots.backup)).filter((f) => f.includes('vmbt-run2-disk'));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const out = await run('stat', ['-c', '%a %U %G', f]);
      expect(out).toBe('660 root root');
    }
  });
});
