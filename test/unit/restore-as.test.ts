import { describe, expect, it } from 'vitest';
import { newImageName } from '../../src/activities/node/restore-as';
import { StoneyTree } from '../../src/directory/dn';
import { copyVmEntries } from '../../src/directory/vm-copy';
import { interfaceMacs } from '../../src/domain/clone-xml';
import { decideRestoreAs, type RestoreAsWorld } from '../../src/domain/steps/restore-as';

const base: RestoreAsWorld = {
  vm: 'web1',
  as: 'web2',
  journal: true,
  finished: false,
  domain: { state: 'absent', reason: '' },
  domainOurs: false,
  images: [{ target: 'vda', exists: true }],
  withState: true,
  stateCopied: true,
  startAfter: false,
};
const next = (w: Partial<RestoreAsWorld>) => {
  const d = decideRestoreAs({ ...base, ...w });
  return d.kind === 'act' ? `${d.action.kind}${d.action.target ? ` ${d.action.target}` : ''}` : d.kind;
};
const off = { state: 'shut off' as const, reason: '' };
const running = { state: 'running' as const, reason: '' };

describe('decideRestoreAs', () => {
  it('walks from nothing to a running new VM', () => {
    expect(next({ journal: false, images: [{ target: 'vda', exists: false }], stateCopied: false })).toBe(
      'begin',
    );
    expect(next({ images: [{ target: 'vda', exists: false }], stateCopied: false })).toBe('copy-disk vda');
    expect(next({ stateCopied: false })).toBe('copy-state');
    expect(next({})).toBe('define');
    expect(next({ domain: off, domainOurs: true })).toBe('restore-from-state');
    expect(next({ domain: running, domainOurs: true })).toBe('finish');
    expect(next({ domain: running, domainOurs: true, stateCopied: false, finished: true })).toBe('done');
  });

  it('a VM that was off is defined and left off, or started when the plan says so', () => {
    expect(next({ withState: false, stateCopied: false, domain: off, domainOurs: true })).toBe('finish');
    expect(next({ withState: false, domain: off, domainOurs: true, startAfter: true })).toBe('start-vm');
  });

  it('refuses a taken name before it changes anything, and never touches a domain it did not make', () => {
    expect(next({ journal: false, domain: off })).toBe('refuse');
    expect(next({ journal: true, domain: running })).toBe('refuse');
    expect(next({ journal: false, images: [{ target: 'vda', exists: true }] })).toBe('refuse');
  });

  it('waits for a libvirt job (a restore still running after a kill)', () => {
    expect(next({ domain: { state: 'paused', reason: '', job: 'Restore' }, domainOurs: true })).toBe('wait');
  });
});

describe('restore --as names and entries', () => {
  it('derives the new image names from the new VM name', () => {
    expect(newImageName('/img/pool/web1-disk0.qcow2', 'web1', 'web2')).toBe('web2-disk0.qcow2');
    expect(newImageName('/img/pool/data.qcow2', 'web1', 'web2')).toBe('web2-data.qcow2');
  });

  it('renames the backed-up subtree: DNs escaped, name, node, disk files and MACs swapped', () => {
    const tree = new StoneyTree('o=x');
    const ldif = `dn: ${tree.vm('web1')}
objectclass: sstVirtualizationVirtualMachine
sstvirtualmachine: web1
sstnode: old-node
description: a web server

dn: ou=devices,${tree.vm('web1')}
ou: devices

dn: sstDisk=vda,ou=devices,${tree.vm('web1')}
sstdisk: vda
sstsourcefile: /img/web1-disk0.qcow2

dn: sstInterface=0,ou=devices,${tree.vm('web1')}
sstmacaddress: 52:54:00:AA:BB:CC
`;
    const out = copyVmEntries(ldif, tree, {
      vm: 'web1',
      as: 'web,2',
      node: 'node-a',
      files: [{ from: '/img/web1-disk0.qcow2', to: '/img/web,2-disk0.qcow2' }],
      macs: [{ from: '52:54:00:aa:bb:cc', to: '52:54:00:01:02:03' }],
    });
    expect(out.map((e) => e.dn)).toEqual([
      tree.vm('web,2'),
      `ou=devices,${tree.vm('web,2')}`,
      `sstDisk=vda,ou=devices,${tree.vm('web,2')}`,
      `sstInterface=0,ou=devices,${tree.vm('web,2')}`,
    ]);
    expect(out[0]!.dn).toContain('sstVirtualMachine=web\\,2,');
    expect(out[0]!.attributes).toMatchObject({
      sstvirtualmachine: ['web,2'],
      sstnode: ['node-a'],
      description: ['a web server'],
    });
    expect(out[2]!.attributes['sstsourcefile']).toEqual(['/img/web,2-disk0.qcow2']);
    expect(out[3]!.attributes['sstmacaddress']).toEqual(['52:54:00:01:02:03']);
    expect(() =>
      copyVmEntries(ldif, tree, { vm: 'web1', as: 'web2', node: 'n', files: [], macs: [] }),
    ).toThrow(/has no copy/);
  });

  it('lists the MACs of the interfaces in order', () => {
    expect(
      interfaceMacs(
        `<domain><devices><interface type='network'><mac address='52:54:00:00:00:01'/></interface><interface type='user'/></devices></domain>`,
      ),
    ).toEqual(['52:54:00:00:00:01', undefined]);
  });
});
