import { describe, expect, it } from 'vitest';
import { findConflicts, type ConfigSnapshot } from '../../src/domain/conflicts';
import { resolveXml } from '../../src/domain/resolve';
import { checkRestoreXml } from '../../src/domain/restore-xml';
import { expectBackupError } from './expect-backup-error';

const ROOT = '/var/virtualization';
const VDA = `${ROOT}/vm-persistent/pool/web01-vda.qcow2`;
const VDB = `${ROOT}/vm-persistent/pool/web01-vdb.qcow2`;
const rules = { vm: 'web01', imagesRoot: ROOT, withState: true };

/** What `virsh dumpxml --inactive` writes: the backed-up XML. */
const BACKUP = `<domain type='kvm'>
  <name>web01</name>
  <uuid>0f83f084-8080-413e-b558-b678e504836e</uuid>
  <description>web server</description>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>2097152</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <nvram>/var/lib/libvirt/qemu/nvram/web01_VARS.fd</nvram>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${VDA}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${VDB}'/>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/srv/iso/install.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:12:34:56'/>
      <source network='default'/>
      <model type='virtio'/>
    </interface>
    <serial type='file'>
      <source path='/var/log/libvirt/qemu/web01-serial.log'/>
    </serial>
  </devices>
</domain>
`;

function snapshot(xml: string): ConfigSnapshot {
  return { vmDn: 'sstVirtualMachine=web01,o=x', entries: [], xml };
}

/** The XML the workflow resolves when the user takes the live side of every conflict. */
function resolvedTakingLive(liveXml: string): string {
  const conflicts = findConflicts(snapshot(BACKUP), snapshot(liveXml));
  return resolveXml(BACKUP, conflicts, Object.fromEntries(conflicts.map((c) => [c.id, 'live' as const])));
}

describe('the restore XML the node defines', () => {
  it('accepts the backed-up XML itself and returns its disk sources', () => {
    expect(checkRestoreXml(BACKUP, BACKUP, rules)).toEqual(
      new Map([
        ['vda', VDA],
        ['vdb', VDB],
      ]),
    );
  });

  it('accepts what the decisions change: description, disk source, network; memory and vCPUs without state', () => {
    const moved = `${ROOT}/vm-persistent/other/web01-vdb.qcow2`;
    const live = BACKUP.replace('web server', 'web &amp; mail &lt;server&gt;')
      .replace(VDB, moved)
      .replace("network='default'", "network='lan2'")
      .replace(/2097152/g, '4194304')
      .replace('>2</vcpu>', '>4</vcpu>');
    const xml = resolvedTakingLive(live);
    expect(xml).not.toBe(BACKUP);
    expect(checkRestoreXml(BACKUP, xml, { ...rules, withState: false }).get('vdb')).toBe(moved);
    // With the saved state, memory and vCPUs are the state's.
    expectBackupError(() => checkRestoreXml(BACKUP, xml, rules), 39, /memory.*saved state/);
  });

  it('accepts a description the user drops', () => {
    const xml = resolvedTakingLive(BACKUP.replace(/\n\s*<description>.*<\/description>/, ''));
    expect(xml).not.toContain('<description>');
    expect(checkRestoreXml(BACKUP, xml, rules).size).toBe(2);
  });

  it('refuses an added <qemu:commandline>', () => {
    const xml = BACKUP.replace(
      "<domain type='kvm'>",
      "<domain type='kvm' xmlns:qemu='http://libvirt.org/schemas/domain/qemu/1.0'>",
    ).replace(
      '</devices>',
      "</devices>\n  <qemu:commandline><qemu:arg value='-fsdev'/><qemu:arg value='local,path=/'/></qemu:commandline>",
    );
    expectBackupError(() => checkRestoreXml(BACKUP, xml, rules), 39, /qemu:commandline/);
  });

  it('refuses a swapped emulator', () => {
    const xml = BACKUP.replace('/usr/bin/qemu-system-x86_64', '/tmp/evil-qemu');
    expectBackupError(() => checkRestoreXml(BACKUP, xml, rules), 39, /devices\/emulator/);
  });

  it('refuses a disk source outside the images root, also through ..', () => {
    for (const foreign of ['/etc/shadow', `${ROOT}/../etc/shadow`, '/var/virtualization2/x.qcow2'])
      expectBackupError(() => checkRestoreXml(BACKUP, BACKUP.replace(VDB, foreign), rules), 39, /vdb/);
  });

  it('refuses a disk source written with character references to hide a path outside the root', () => {
    const xml = BACKUP.replace(VDB, '&#47;etc&#47;shadow');
    expectBackupError(() => checkRestoreXml(BACKUP, xml, rules), 39, /outside the configured roots/);
  });

  it('refuses an extra disk, even one inside the images root', () => {
    const extra = `<disk type='file' device='disk'><source file='${ROOT}/vm-persistent/pool/other.qcow2'/><target dev='vdc' bus='virtio'/></disk>\n  </devices>`;
    expectBackupError(
      () => checkRestoreXml(BACKUP, BACKUP.replace('</devices>', extra), rules),
      39,
      /adds <disk>/,
    );
  });

  it('refuses a changed loader, nvram, CD-ROM or serial log file', () => {
    for (const [from, to] of [
      ['/usr/share/OVMF/OVMF_CODE_4M.fd', '/root/evil.fd'],
      ['/var/lib/libvirt/qemu/nvram/web01_VARS.fd', '/etc/passwd'],
      ['/srv/iso/install.iso', '/etc/shadow'],
      ['/var/log/libvirt/qemu/web01-serial.log', '/etc/cron.d/x'],
    ] as const)
      expectBackupError(() => checkRestoreXml(BACKUP, BACKUP.replace(from, to), rules), 39, /differs/);
  });

  it('refuses a DOCTYPE with entities (expansion or external files)', () => {
    const xml = `<!DOCTYPE domain [<!ENTITY x SYSTEM "file:///etc/shadow"><!ENTITY a "aaaaaaaa">]>\n${BACKUP.replace(
      'web server',
      '&x;&a;',
    )}`;
    expectBackupError(() => checkRestoreXml(BACKUP, xml, rules), 39, /DOCTYPE/);
  });

  it('refuses an unknown entity, malformed XML, another VM name and a second root element', () => {
    expectBackupError(
      () => checkRestoreXml(BACKUP, BACKUP.replace('web server', '&x;'), rules),
      39,
      /entity/,
    );
    expectBackupError(() => checkRestoreXml(BACKUP, BACKUP.replace('</os>', ''), rules), 39, /well-formed/);
    expectBackupError(() => checkRestoreXml(BACKUP, BACKUP.replace(/web01</, 'db01<'), rules), 39, /differs/);
    expectBackupError(() => checkRestoreXml(BACKUP, `${BACKUP}<domain/>`, rules), 39, /one <domain>/);
  });

  it('refuses a changed MAC address with the saved state, and a bridge name that is no name', () => {
    const mac = BACKUP.replace('52:54:00:12:34:56', '52:54:00:65:43:21');
    expectBackupError(() => checkRestoreXml(BACKUP, mac, rules), 39, /MAC/);
    expect(checkRestoreXml(BACKUP, mac, { ...rules, withState: false }).size).toBe(2);
    const bridge = BACKUP.replace("network='default'", "network='a b'");
    expectBackupError(() => checkRestoreXml(BACKUP, bridge, rules), 39, /network or bridge name/);
  });
});
