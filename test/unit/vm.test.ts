import { describe, expect, it } from 'vitest';
import type { Attributes } from '../../src/domain/plan';
import { disksFromEntries } from '../../src/domain/vm';
import { expectBackupError } from './expect-backup-error';

const DEVICES = 'ou=devices,sstVirtualMachine=web01,ou=virtual machines,ou=virtualization,ou=services,o=t';

function disk(target: string, sourceFile: string, device = 'disk'): { dn: string; attributes: Attributes } {
  return {
    dn: `sstDisk=${target},${DEVICES}`,
    attributes: {
      objectclass: ['top', 'sstVirtualizationVirtualMachineDisk'],
      sstdevice: [device],
      sstdisk: [target],
      sstsourcefile: [sourceFile],
      ssttargetbus: ['virtio'],
      ssttype: ['file'],
    },
  };
}

describe('disksFromEntries', () => {
  it('returns target and source file of every disk', () => {
    expect(disksFromEntries('web01', [disk('vda', '/var/virtualization/p/a.qcow2')])).toEqual([
      { target: 'vda', sourceFile: '/var/virtualization/p/a.qcow2' },
    ]);
  });

  it('skips CD-ROMs', () => {
    expect(
      disksFromEntries('web01', [
        disk('hdc', '/iso/install.iso', 'cdrom'),
        disk('vda', '/var/virtualization/p/a.qcow2'),
      ]),
    ).toEqual([{ target: 'vda', sourceFile: '/var/virtualization/p/a.qcow2' }]);
  });

  it('skips floppies and other non-disk devices, even with an invalid sstDisk', () => {
    expect(
      disksFromEntries('web01', [
        disk('fda', '/img/floppy.img', 'floppy'),
        { dn: `sstDisk=X,${DEVICES}`, attributes: { sstdevice: ['cdrom'], sstdisk: ['X'] } },
        disk('vda', '/var/virtualization/p/a.qcow2'),
      ]).map((d) => d.target),
    ).toEqual(['vda']);
  });

  it('treats an entry without sstDevice as a disk', () => {
    expect(
      disksFromEntries('web01', [
        { dn: `sstDisk=vda,${DEVICES}`, attributes: { sstdisk: ['vda'], sstsourcefile: ['/v/a.qcow2'] } },
      ]),
    ).toEqual([{ target: 'vda', sourceFile: '/v/a.qcow2' }]);
  });

  it('sorts disks by target', () => {
    expect(
      disksFromEntries('web01', [
        disk('vdc', '/v/c.qcow2'),
        disk('vda', '/v/a.qcow2'),
        disk('vdb', '/v/b.qcow2'),
      ]),
    ).toEqual([
      { target: 'vda', sourceFile: '/v/a.qcow2' },
      { target: 'vdb', sourceFile: '/v/b.qcow2' },
      { target: 'vdc', sourceFile: '/v/c.qcow2' },
    ]);
  });

  it.each(['vda', 'sda', 'hdb', 'xvda', 'vdaa'])('accepts the target %j', (target) => {
    expect(disksFromEntries('web01', [disk(target, '/v/a.qcow2')])[0]?.target).toBe(target);
  });

  it.each([
    ['an upper-case target', 'VDA'],
    ['a digit', 'vd1'],
    ['a path', '../vda'],
    ['a too short target', 'vd'],
    ['a too long target', 'vdaaaa'],
    ['a space', 'vd a'],
    ['an empty target', ''],
  ])('refuses %s as sstDisk with code 39 naming the entry', (_what, target) => {
    const entry = disk(target, '/v/a.qcow2');
    expectBackupError(() => disksFromEntries('web01', [entry]), 39, entry.dn);
  });

  it('refuses a disk without sstDisk with code 39', () => {
    expectBackupError(
      () =>
        disksFromEntries('web01', [
          { dn: `cn=odd,${DEVICES}`, attributes: { sstdevice: ['disk'], sstsourcefile: ['/v/a.qcow2'] } },
        ]),
      39,
      'invalid sstDisk',
    );
  });

  it('refuses a disk without sstSourceFile with code 2 naming the entry', () => {
    expectBackupError(
      () =>
        disksFromEntries('web01', [
          { dn: `sstDisk=vda,${DEVICES}`, attributes: { sstdevice: ['disk'], sstdisk: ['vda'] } },
        ]),
      2,
      `sstDisk=vda,${DEVICES}: no sstSourceFile`,
    );
  });

  it('refuses a disk with an empty sstSourceFile with code 2', () => {
    expectBackupError(() => disksFromEntries('web01', [disk('vda', '')]), 2, 'sstSourceFile');
  });

  it('fails with code 2 naming the VM when it has no disk at all', () => {
    expectBackupError(() => disksFromEntries('web01', []), 2, 'web01');
  });

  it('fails with code 2 when the VM has only CD-ROMs', () => {
    expectBackupError(() => disksFromEntries('web01', [disk('hdc', '/iso/x.iso', 'cdrom')]), 2, 'web01');
  });
});
