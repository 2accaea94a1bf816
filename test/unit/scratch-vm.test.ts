import { describe, expect, it } from 'vitest';
import { hasInterfaces, scratchDomainXml } from '../../src/domain/scratch-xml';
import { describeDomainXml } from '../../src/domain/verification';

const XML = `<domain type='qemu' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>
  <name>vm1</name>
  <uuid>0b0f8a8e-7a4c-4b83-9c1e-111111111111</uuid>
  <description>a &amp; b</description>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/img/vm1-a.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='sda' bus='sata'/></disk>
    <interface type='bridge'><mac address='52:54:00:aa:bb:cc'/><source bridge='br0'/><target dev='vnet3'/><model type='virtio'/></interface>
  </devices>
  <qemu:commandline><qemu:arg value='-device'/></qemu:commandline>
</domain>
`;
const change = {
  name: 'vm1-drill-abc123',
  uuid: '0b0f8a8e-7a4c-4b83-9c1e-222222222222',
  disks: new Map([['vda', '/retain/drills/vm1/x/vm1-a.qcow2']]),
  interfaces: 'isolate' as const,
  network: 'vmbackup-drill',
};

describe('scratch VM XML', () => {
  it('renames the domain, gives it the new UUID and points its disks at the scratch copies, leaving the rest', () => {
    const out = scratchDomainXml(XML, change);
    expect(describeDomainXml(out)).toEqual({
      name: change.name,
      disks: [{ target: 'vda', source: change.disks.get('vda') }],
    });
    expect(out).toContain(`<uuid>${change.uuid}</uuid>`);
    expect(out).not.toContain('111111111111');
    expect(out).toContain("<source file='/iso/x.iso'/>".replace(/'/g, '"'));
    expect(out).toContain('a &amp; b');
    expect(out).toContain('<qemu:arg value="-device"/>');
  });

  it('attaches interfaces to the isolated network without the live tap device, keeping the device and its MAC', () => {
    const out = scratchDomainXml(XML, change);
    expect(out).toMatch(
      /<interface type="network"><source network="vmbackup-drill"\/><mac address="52:54:00:aa:bb:cc"\/><model type="virtio"\/><\/interface>/,
    );
    expect(out).not.toContain('br0');
    expect(out).not.toContain('vnet3');
  });

  it('drops interfaces for a boot', () => {
    const out = scratchDomainXml(XML, { ...change, interfaces: 'remove' });
    expect(hasInterfaces(out)).toBe(false);
    expect(hasInterfaces(XML)).toBe(true);
  });

  it.each([
    ['a disk without its copy', { ...change, disks: new Map() }, /no scratch copy for disk vda/],
    [
      'a copy for a disk it does not have',
      { ...change, disks: new Map([...change.disks, ['vdb', '/x']]) },
      /has no disk vdb/,
    ],
  ])('refuses %s', (_, c, error) => {
    expect(() => scratchDomainXml(XML, c)).toThrow(error);
  });

  it('refuses a DOCTYPE and broken XML', () => {
    expect(() => scratchDomainXml(`<!DOCTYPE x>${XML}`, change)).toThrow(/DOCTYPE/);
    expect(() => scratchDomainXml(XML.replace('</name>', ''), change)).toThrow(/not well-formed/);
  });
});
