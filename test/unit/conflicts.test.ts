import { describe, expect, it } from 'vitest';
import {
  findConflicts,
  inconsistencies,
  rejectDecision,
  xmlFacts,
  type Conflict,
  type ConfigSnapshot,
} from '../../src/domain/conflicts';
import { parseLdif } from '../../src/directory/ldif-parse';

const VM_DN =
  'sstVirtualMachine=vm-0042,ou=virtual machines,ou=virtualization,ou=services,o=stepping-stone,c=ch';
const IMAGES = '/var/virtualization/vm-persistent/0f83f084-8080-413e-b558-b678e504836e';
const VDA = `${IMAGES}/vm-0042-vda.qcow2`;
const VDB = `${IMAGES}/vm-0042-vdb.qcow2`;
const ISO = '/var/virtualization/iso/debian-12.iso';
const MAC = '52:54:00:3a:9b:01';
const GIB2 = '2147483648';
const GIB4 = '4294967296';

// ---- A VM's configuration: its directory subtree (as exported LDIF) and its libvirt XML ----

interface Disk {
  dev: string;
  /** sstSourceFile of `sstDisk=<dev>,ou=devices`, or null when the directory has no such entry. */
  dir: string | null;
  /** `<source file>` of the XML disk, or null when the XML has no such disk. */
  xml: string | null;
}

interface Config {
  name: string;
  description: string | null;
  displayName: string;
  sstMemory: string;
  /** XML `<memory>` text and unit. */
  memory: [number, string];
  sstVcpu: string;
  vcpu: string;
  disks: Disk[];
  sstMacAddress: string;
  mac: string;
  bridge: string;
  iso: string;
  /** Operational attributes that change on every write. */
  csn: string;
}

const BASE: Config = {
  name: 'vm-0042',
  description: 'Web server of the shop',
  displayName: 'shop-web',
  sstMemory: GIB2,
  memory: [2097152, 'KiB'],
  sstVcpu: '2',
  vcpu: '2',
  disks: [{ dev: 'vda', dir: VDA, xml: VDA }],
  sstMacAddress: MAC,
  mac: MAC,
  bridge: 'vmbr0',
  iso: ISO,
  csn: '20260101030000.000000Z#000000#000#000000',
};

function config(changes: Partial<Config> = {}): Config {
  return { ...BASE, ...changes };
}

function operational(c: Config, uuid: string): string[] {
  return [
    `structuralObjectClass: organizationalUnit`,
    `entryUUID: ${uuid}`,
    `creatorsName: cn=Manager,o=stepping-stone,c=ch`,
    `createTimestamp: 20250601120000Z`,
    `entryCSN: ${c.csn}`,
    `modifiersName: cn=Manager,o=stepping-stone,c=ch`,
    `modifyTimestamp: ${c.csn.slice(0, 14)}Z`,
    `entryDN: ${uuid}`,
    `subschemaSubentry: cn=Subschema`,
    `hasSubordinates: TRUE`,
  ];
}

/** The VM's subtree the way the directory exports it, operational attributes included. */
function ldifOf(c: Config): string {
  const records: string[][] = [
    [
      `dn: ${VM_DN}`,
      'objectClass: top',
      'objectClass: sstVirtualizationVirtualMachine',
      'sstVirtualMachine: vm-0042',
      `sstDisplayName: ${c.displayName}`,
      `sstMemory: ${c.sstMemory}`,
      `sstVCPU: ${c.sstVcpu}`,
      'sstNode: kvm-01',
      'sstOSBootDevice: hd',
      'sstOSBootDevice: cdrom',
      ...operational(c, '6c0b3a2e-0000-4000-8000-000000000001'),
    ],
    [`dn: ou=devices,${VM_DN}`, 'objectClass: organizationalUnit', 'ou: devices'],
    ...c.disks
      .filter((d) => d.dir !== null)
      .map((d) => [
        `dn: sstDisk=${d.dev},ou=devices,${VM_DN}`,
        'objectClass: top',
        'objectClass: sstVirtualizationVirtualMachineDisk',
        `sstDisk: ${d.dev}`,
        'sstDevice: disk',
        'sstType: file',
        `sstSourceFile: ${d.dir}`,
        'sstTargetBus: virtio',
        'sstDriverName: qemu',
        'sstDriverType: qcow2',
        ...operational(c, `6c0b3a2e-0000-4000-8000-00000000d${d.dev}`),
      ]),
    [
      `dn: sstDisk=hdc,ou=devices,${VM_DN}`,
      'objectClass: top',
      'objectClass: sstVirtualizationVirtualMachineDisk',
      'sstDisk: hdc',
      'sstDevice: cdrom',
      `sstSourceFile: ${c.iso}`,
    ],
    [
      `dn: sstInterface=0,ou=devices,${VM_DN}`,
      'objectClass: top',
      'objectClass: sstVirtualizationVirtualMachineInterface',
      'sstInterface: 0',
      `sstMacAddress: ${c.sstMacAddress}`,
      `sstSourceBridge: ${c.bridge}`,
      'sstModelType: virtio',
      'sstType: bridge',
    ],
  ];
  return 'version: 1\n\n' + records.map((r) => r.join('\n') + '\n').join('\n');
}

/** What `virsh dumpxml` prints for the running VM. */
function xmlOf(c: Config): string {
  const disks = c.disks
    .filter((d) => d.xml !== null)
    .map(
      (d, i) => `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='${d.xml}' index='${i + 2}'/>
      <backingStore/>
      <target dev='${d.dev}' bus='virtio'/>
      <alias name='virtio-disk${i}'/>
    </disk>
`,
    )
    .join('');
  return `<domain type='kvm' id='17'>
  <name>${c.name}</name>
  <uuid>0f83f084-8080-413e-b558-b678e504836e</uuid>
${c.description === null ? '' : `  <description>${c.description}</description>\n`}  <memory unit='${c.memory[1]}'>${c.memory[0]}</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>${c.vcpu}</vcpu>
  <os>
    <type arch='x86_64' machine='pc-i440fx-2.1'>hvm</type>
    <boot dev='hd'/>
  </os>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <devices>
    <emulator>/usr/bin/qemu-kvm</emulator>
${disks}    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='${c.iso}' index='1'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='bridge'>
      <mac address='${c.mac}'/>
      <source bridge='${c.bridge}'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
    <memballoon model='virtio'/>
  </devices>
</domain>
`;
}

/** A snapshot as the restore builds it: entries parsed from LDIF, the VM's DN from the first entry. */
function snapshot(c: Config): ConfigSnapshot {
  const entries = parseLdif(ldifOf(c));
  return { vmDn: entries[0]!.dn, entries, xml: xmlOf(c) };
}

function ids(conflicts: readonly Conflict[]): string[] {
  return conflicts.map((c) => c.id);
}

// ---- xmlFacts ----

const DOMAIN_XML = `<domain type='kvm' id='7'>
  <name>vm-0042</name>
  <uuid>0f83f084-8080-413e-b558-b678e504836e</uuid>
  <description>
    Shop web server (production)
  </description>
  <memory unit='MiB'>3072</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <vcpus>
    <vcpu id='0' enabled='yes' hotpluggable='no'/>
  </vcpus>
  <os>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='${VDA}' index='3'/>
      <backingStore type='file' index='4'>
        <format type='qcow2'/>
        <source file='/var/virtualization/retain/vm-0042-vda.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
    </disk>
    <disk type="file" device="disk">
      <driver name="qemu" type="raw"/>
      <source file="${VDB}"/>
      <target dev="vdb" bus="virtio"/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='${ISO}'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:3a:9b:01'/>
      <source bridge='vmbr0'/>
      <target dev='vnet0'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
    <interface type='network'>
      <mac address="52:54:00:3a:9b:02"/>
      <source network="isolated"/>
      <model type="e1000"/>
    </interface>
  </devices>
</domain>
`;

describe('xmlFacts', () => {
  const facts = xmlFacts(DOMAIN_XML);

  it('reads the name and the trimmed description', () => {
    expect(facts.name).toBe('vm-0042');
    expect(facts.description).toBe('Shop web server (production)');
  });

  it('converts <memory> to bytes using its unit and ignores <currentMemory>', () => {
    expect(facts.memoryBytes).toBe(String(3072 * 1024 * 1024));
  });

  it('reads the maximum vcpu count from <vcpu>, not from <vcpus>', () => {
    expect(facts.vcpu).toBe('4');
  });

  it('lists file disks by target with their top source file and driver type, without the cdrom', () => {
    expect([...facts.disks.entries()]).toEqual([
      ['vda', { source: VDA, format: 'qcow2' }],
      ['vdb', { source: VDB, format: 'raw' }],
    ]);
    expect(facts.disks.has('hdc')).toBe(false);
  });

  it('lists interfaces in document order with MAC, bridge or network, and model', () => {
    expect(facts.interfaces).toEqual([
      { mac: '52:54:00:3a:9b:01', source: 'vmbr0', model: 'virtio' },
      { mac: '52:54:00:3a:9b:02', source: 'isolated', model: 'e1000' },
    ]);
  });

  it.each([
    ["<memory unit='KiB'>2097152</memory>", GIB2],
    ["<memory unit='k'>2097152</memory>", GIB2],
    ['<memory unit="MiB">2048</memory>', GIB2],
    ["<memory unit='M'>2048</memory>", GIB2],
    ["<memory unit='GiB'>2</memory>", GIB2],
    ["<memory unit='G'>4</memory>", GIB4],
    ["<memory unit='b'>1073741824</memory>", '1073741824'],
    ["<memory unit='bytes'>1073741824</memory>", '1073741824'],
    ['<memory>2097152</memory>', GIB2],
  ])('reads %s as %s bytes', (element, bytes) => {
    expect(xmlFacts(`<domain><name>x</name>${element}<devices></devices></domain>`).memoryBytes).toBe(bytes);
  });

  it('does not take <currentMemory> for <memory> even when it comes first', () => {
    const xml = `<domain><currentMemory unit='KiB'>1024</currentMemory><memory unit='KiB'>2048</memory></domain>`;
    expect(xmlFacts(xml).memoryBytes).toBe(String(2048 * 1024));
  });

  it('gives null or empty for everything an XML does not have', () => {
    expect(xmlFacts('')).toEqual({
      name: null,
      description: null,
      memoryBytes: null,
      vcpu: null,
      disks: new Map(),
      interfaces: [],
    });
  });

  it('gives a null source for a disk without a source file and null fields for a bare interface', () => {
    const xml = `<domain><devices>
      <disk type='network' device='disk'><driver name='qemu' type='raw'/>
        <source protocol='rbd' name='pool/vm-0042'/><target dev='vdc' bus='virtio'/></disk>
      <interface type='user'></interface>
    </devices></domain>`;
    const f = xmlFacts(xml);
    expect([...f.disks.entries()]).toEqual([['vdc', { source: null, format: 'raw' }]]);
    expect(f.interfaces).toEqual([{ mac: null, source: null, model: null }]);
  });
});

// ---- findConflicts ----

describe('findConflicts', () => {
  it('finds nothing when both configurations are the same', () => {
    expect(findConflicts(snapshot(BASE), snapshot(BASE))).toEqual([]);
  });

  it('ignores operational attributes such as entryCSN and modifyTimestamp', () => {
    const live = snapshot(config({ csn: '20260315101500.123456Z#000000#000#000000' }));
    expect(live.entries[0]!.attributes.entrycsn).toEqual(['20260315101500.123456Z#000000#000#000000']);
    expect(findConflicts(snapshot(BASE), live)).toEqual([]);
  });

  it('compares memory in bytes, whatever unit each XML uses', () => {
    expect(findConflicts(snapshot(BASE), snapshot(config({ memory: [2048, 'MiB'] })))).toEqual([]);
  });

  it('ignores the order of values of a multi-valued attribute', () => {
    const b = snapshot(BASE);
    const l = snapshot(BASE);
    const vm = l.entries[0]!;
    l.entries[0]!.attributes = { ...vm.attributes, sstosbootdevice: ['cdrom', 'hd'] };
    expect(findConflicts(b, l)).toEqual([]);
  });

  it('matches entries by DN whatever its case', () => {
    const live = snapshot(BASE);
    const upper = live.entries.map((e) => ({ ...e, dn: e.dn.toUpperCase() }));
    expect(
      findConflicts(snapshot(BASE), { vmDn: VM_DN.toUpperCase(), entries: upper, xml: live.xml }),
    ).toEqual([]);
  });

  it('ignores a change of the cdrom image in the XML', () => {
    const b = snapshot(BASE);
    const l = snapshot(BASE);
    l.xml = l.xml.replace(ISO, '/var/virtualization/iso/other.iso');
    expect(findConflicts(b, l)).toEqual([]);
  });

  it('reports one conflict for a changed attribute of the VM entry', () => {
    expect(findConflicts(snapshot(BASE), snapshot(config({ displayName: 'shop-web-new' })))).toEqual([
      {
        id: 'dir:.:sstdisplayname',
        source: 'directory',
        what: 'VM entry: sstdisplayname',
        backup: 'shop-web',
        live: 'shop-web-new',
      },
    ]);
  });

  it('reports a changed attribute of a child entry under its lower-cased relative DN', () => {
    const l = snapshot(BASE);
    const iface = l.entries.find((e) => e.dn.startsWith('sstInterface=0'))!;
    iface.attributes = { ...iface.attributes, sstmodeltype: ['e1000'] };
    expect(findConflicts(snapshot(BASE), l)).toEqual([
      {
        id: 'dir:sstinterface=0,ou=devices:sstmodeltype',
        source: 'directory',
        what: 'sstinterface=0,ou=devices: sstmodeltype',
        backup: 'virtio',
        live: 'e1000',
      },
    ]);
  });

  it('shows a multi-valued attribute as its sorted values joined by ", "', () => {
    const l = snapshot(BASE);
    l.entries[0]!.attributes = { ...l.entries[0]!.attributes, sstosbootdevice: ['network', 'hd', 'cdrom'] };
    const [c] = findConflicts(snapshot(BASE), l);
    expect(c).toMatchObject({ id: 'dir:.:sstosbootdevice', backup: 'cdrom, hd', live: 'cdrom, hd, network' });
  });

  it('reports an attribute that exists on one side only with null on the other', () => {
    const l = snapshot(BASE);
    l.entries[0]!.attributes = { ...l.entries[0]!.attributes, sstfeature: ['acpi'] };
    const b = snapshot(BASE);
    const devices = b.entries.find((e) => e.dn.startsWith('ou=devices'))!;
    devices.attributes = { ...devices.attributes, description: ['all devices'] };
    expect(findConflicts(b, l)).toEqual([
      {
        id: 'dir:.:sstfeature',
        source: 'directory',
        what: 'VM entry: sstfeature',
        backup: null,
        live: 'acpi',
      },
      {
        id: 'dir:ou=devices:description',
        source: 'directory',
        what: 'ou=devices: description',
        backup: 'all devices',
        live: null,
      },
    ]);
  });

  it('reports every attribute of a disk added live only with backup null, plus the XML disk', () => {
    const live = config({
      disks: [
        { dev: 'vda', dir: VDA, xml: VDA },
        { dev: 'vdb', dir: VDB, xml: VDB },
      ],
    });
    const conflicts = findConflicts(snapshot(BASE), snapshot(live));
    const rdn = 'sstdisk=vdb,ou=devices';
    expect(ids(conflicts)).toEqual([
      ...[
        'objectclass',
        'sstdevice',
        'sstdisk',
        'sstdrivername',
        'sstdrivertype',
        'sstsourcefile',
        'ssttargetbus',
        'ssttype',
      ].map((a) => `dir:${rdn}:${a}`),
      'xml:disk[vdb]',
    ]);
    expect(conflicts.every((c) => c.backup === null)).toBe(true);
    expect(conflicts.find((c) => c.id === `dir:${rdn}:objectclass`)).toMatchObject({
      what: `${rdn}: objectclass`,
      live: 'sstVirtualizationVirtualMachineDisk, top',
    });
    expect(conflicts.find((c) => c.id === `dir:${rdn}:sstsourcefile`)).toEqual({
      id: `dir:${rdn}:sstsourcefile`,
      source: 'directory',
      what: `${rdn}: sstsourcefile`,
      backup: null,
      live: VDB,
      linkedTo: 'xml:disk[vdb]',
      entryOnlyIn: 'live',
    });
    expect(conflicts.find((c) => c.id === 'xml:disk[vdb]')).toEqual({
      id: 'xml:disk[vdb]',
      source: 'xml',
      what: 'XML disk vdb source',
      backup: null,
      live: VDB,
      linkedTo: `dir:${rdn}:sstsourcefile`,
      fixedByState: true,
    });
  });

  it('links a memory change in sstMemory and in the XML both ways; the XML side is fixed by the state', () => {
    const conflicts = findConflicts(
      snapshot(BASE),
      snapshot(config({ sstMemory: GIB4, memory: [4096, 'MiB'] })),
    );
    expect(conflicts).toEqual([
      {
        id: 'dir:.:sstmemory',
        source: 'directory',
        what: 'VM entry: sstmemory',
        backup: GIB2,
        live: GIB4,
        linkedTo: 'xml:memory',
      },
      {
        id: 'xml:memory',
        source: 'xml',
        what: 'XML <memory> (bytes)',
        backup: GIB2,
        live: GIB4,
        linkedTo: 'dir:.:sstmemory',
        fixedByState: true,
      },
    ]);
    expect(conflicts[0]!.fixedByState).toBeUndefined();
  });

  it('does not link a directory memory change to an XML memory that did not change', () => {
    const conflicts = findConflicts(snapshot(BASE), snapshot(config({ sstMemory: GIB4 })));
    expect(conflicts).toHaveLength(1);
    expect(conflicts[0]).toMatchObject({ id: 'dir:.:sstmemory', backup: GIB2, live: GIB4 });
    expect(conflicts[0]!.linkedTo).toBeUndefined();
  });

  it('does not link an XML memory change to a directory memory that did not change', () => {
    const conflicts = findConflicts(snapshot(BASE), snapshot(config({ memory: [4, 'GiB'] })));
    expect(conflicts).toEqual([
      {
        id: 'xml:memory',
        source: 'xml',
        what: 'XML <memory> (bytes)',
        backup: GIB2,
        live: GIB4,
        fixedByState: true,
      },
    ]);
    expect(conflicts[0]!.linkedTo).toBeUndefined();
  });

  it('links a vcpu change in sstVCPU and in the XML both ways; the XML side is fixed by the state', () => {
    const conflicts = findConflicts(snapshot(BASE), snapshot(config({ sstVcpu: '4', vcpu: '4' })));
    expect(conflicts).toEqual([
      {
        id: 'dir:.:sstvcpu',
        source: 'directory',
        what: 'VM entry: sstvcpu',
        backup: '2',
        live: '4',
        linkedTo: 'xml:vcpu',
      },
      {
        id: 'xml:vcpu',
        source: 'xml',
        what: 'XML <vcpu>',
        backup: '2',
        live: '4',
        linkedTo: 'dir:.:sstvcpu',
        fixedByState: true,
      },
    ]);
  });

  it('reports a description changed in the XML only, not fixed by the state', () => {
    expect(
      findConflicts(snapshot(BASE), snapshot(config({ description: 'Web server of the new shop' }))),
    ).toEqual([
      {
        id: 'xml:description',
        source: 'xml',
        what: 'XML <description>',
        backup: 'Web server of the shop',
        live: 'Web server of the new shop',
        fixedByState: false,
      },
    ]);
  });

  it('reports a description removed live with live null', () => {
    expect(findConflicts(snapshot(BASE), snapshot(config({ description: null })))).toEqual([
      expect.objectContaining({ id: 'xml:description', backup: 'Web server of the shop', live: null }),
    ]);
  });

  it('reports a MAC change in the XML as xml:interface[0].mac, fixed by the state', () => {
    expect(findConflicts(snapshot(BASE), snapshot(config({ mac: '52:54:00:aa:bb:cc' })))).toEqual([
      {
        id: 'xml:interface[0].mac',
        source: 'xml',
        what: 'XML interface 0 MAC address',
        backup: MAC,
        live: '52:54:00:aa:bb:cc',
        fixedByState: true,
      },
    ]);
  });

  it('reports a MAC change in directory and XML as one conflict each', () => {
    const conflicts = findConflicts(
      snapshot(BASE),
      snapshot(config({ mac: '52:54:00:aa:bb:cc', sstMacAddress: '52:54:00:aa:bb:cc' })),
    );
    expect(ids(conflicts)).toEqual(['dir:sstinterface=0,ou=devices:sstmacaddress', 'xml:interface[0].mac']);
    expect(conflicts.map((c) => [c.backup, c.live])).toEqual([
      [MAC, '52:54:00:aa:bb:cc'],
      [MAC, '52:54:00:aa:bb:cc'],
    ]);
  });

  it('reports a changed bridge in the directory and as xml:interface[0].source, linked, not fixed by the state', () => {
    const conflicts = findConflicts(snapshot(BASE), snapshot(config({ bridge: 'vmbr1' })));
    expect(conflicts).toEqual([
      {
        id: 'dir:sstinterface=0,ou=devices:sstsourcebridge',
        source: 'directory',
        what: 'sstinterface=0,ou=devices: sstsourcebridge',
        backup: 'vmbr0',
        live: 'vmbr1',
        linkedTo: 'xml:interface[0].source',
        entryOnlyIn: undefined,
      },
      {
        id: 'xml:interface[0].source',
        source: 'xml',
        what: 'XML interface 0 source',
        backup: 'vmbr0',
        live: 'vmbr1',
        linkedTo: 'dir:sstinterface=0,ou=devices:sstsourcebridge',
        fixedByState: false,
      },
    ]);
  });

  it('links a moved disk image in sstSourceFile and in the XML; a changed source is not fixed by the state', () => {
    const moved = `${IMAGES}/moved-vda.qcow2`;
    const conflicts = findConflicts(
      snapshot(BASE),
      snapshot(config({ disks: [{ dev: 'vda', dir: moved, xml: moved }] })),
    );
    expect(conflicts).toEqual([
      {
        id: 'dir:sstdisk=vda,ou=devices:sstsourcefile',
        source: 'directory',
        what: 'sstdisk=vda,ou=devices: sstsourcefile',
        backup: VDA,
        live: moved,
        linkedTo: 'xml:disk[vda]',
      },
      {
        id: 'xml:disk[vda]',
        source: 'xml',
        what: 'XML disk vda source',
        backup: VDA,
        live: moved,
        linkedTo: 'dir:sstdisk=vda,ou=devices:sstsourcefile',
        fixedByState: false,
      },
    ]);
  });

  it('reports a renamed domain as xml:name, fixed by the state', () => {
    expect(findConflicts(snapshot(BASE), snapshot(config({ name: 'vm-0042-renamed' })))).toEqual([
      {
        id: 'xml:name',
        source: 'xml',
        what: 'XML <name>',
        backup: 'vm-0042',
        live: 'vm-0042-renamed',
        fixedByState: true,
      },
    ]);
  });

  it('orders directory conflicts by relative DN and attribute, then XML conflicts by id', () => {
    const live = config({
      displayName: 'other',
      sstMemory: GIB4,
      memory: [4096, 'MiB'],
      bridge: 'vmbr1',
      description: 'changed',
      mac: '52:54:00:aa:bb:cc',
    });
    expect(ids(findConflicts(snapshot(BASE), snapshot(live)))).toEqual([
      'dir:.:sstdisplayname',
      'dir:.:sstmemory',
      'dir:sstinterface=0,ou=devices:sstsourcebridge',
      'xml:description',
      'xml:interface[0].mac',
      'xml:interface[0].source',
      'xml:memory',
    ]);
  });

  it('gives the same ids, order and links whatever the order of entries in the snapshots', () => {
    const b = snapshot(BASE);
    const l = snapshot(config({ sstMemory: GIB4, memory: [4096, 'MiB'], displayName: 'x', bridge: 'vmbr1' }));
    const expected = findConflicts(b, l);
    expect(expected).toHaveLength(5);
    const reversed = (s: ConfigSnapshot) => ({ ...s, entries: [...s.entries].reverse() });
    expect(findConflicts(reversed(b), reversed(l))).toEqual(expected);
  });

  it('reports every backed-up value against null when the VM is gone live', () => {
    const conflicts = findConflicts(snapshot(BASE), { vmDn: VM_DN, entries: [], xml: '' });
    expect(conflicts.length).toBeGreaterThan(20);
    expect(conflicts.every((c) => c.live === null && c.backup !== null)).toBe(true);
    expect(conflicts.find((c) => c.id === 'xml:memory')).toMatchObject({
      backup: GIB2,
      linkedTo: 'dir:.:sstmemory',
      fixedByState: true,
    });
    expect(conflicts.find((c) => c.id === 'xml:disk[vda]')).toMatchObject({
      backup: VDA,
      linkedTo: 'dir:sstdisk=vda,ou=devices:sstsourcefile',
      fixedByState: true,
    });
    expect(conflicts.some((c) => c.id.includes('entrycsn') || c.id.includes('entryuuid'))).toBe(false);
  });
});

// ---- inconsistencies ----

describe('inconsistencies', () => {
  it('finds none when directory and XML of one configuration agree', () => {
    expect(inconsistencies('backup', snapshot(BASE))).toEqual([]);
    expect(inconsistencies('live', snapshot(config({ memory: [2, 'GiB'] })))).toEqual([]);
  });

  it('detects sstMemory disagreeing with the XML memory', () => {
    expect(inconsistencies('backup', snapshot(config({ memory: [4096, 'MiB'] })))).toEqual([
      { config: 'backup', what: 'XML <memory> (bytes) vs sstmemory', directory: GIB2, xml: GIB4 },
    ]);
  });

  it('detects a disk whose XML source is not its sstSourceFile', () => {
    const other = `${IMAGES}/other.qcow2`;
    expect(
      inconsistencies('live', snapshot(config({ disks: [{ dev: 'vda', dir: VDA, xml: other }] }))),
    ).toEqual([
      {
        config: 'live',
        what: 'XML disk vda source vs sstdisk=vda,ou=devices: sstsourcefile',
        directory: VDA,
        xml: other,
      },
    ]);
  });

  it('detects an XML disk without a directory entry', () => {
    const c = config({
      disks: [
        { dev: 'vda', dir: VDA, xml: VDA },
        { dev: 'vdb', dir: null, xml: VDB },
      ],
    });
    expect(inconsistencies('backup', snapshot(c))).toEqual([
      {
        config: 'backup',
        what: 'XML disk vdb source vs sstdisk=vdb,ou=devices: sstsourcefile',
        directory: null,
        xml: VDB,
      },
    ]);
  });

  it('detects sstVCPU disagreeing with the XML vcpu', () => {
    expect(inconsistencies('backup', snapshot(config({ sstVcpu: '1' })))).toEqual([
      { config: 'backup', what: 'XML <vcpu> vs sstvcpu', directory: '1', xml: '2' },
    ]);
  });

  it('reports several disagreements of one configuration, each once', () => {
    const found = inconsistencies('live', snapshot(config({ sstMemory: GIB4, vcpu: '8' })));
    expect(found.map((i) => i.what)).toEqual(['XML <memory> (bytes) vs sstmemory', 'XML <vcpu> vs sstvcpu']);
    expect(found.every((i) => i.config === 'live')).toBe(true);
  });

  it('does not compare what the directory does not mirror (description, cdrom)', () => {
    const s = snapshot(config({ description: 'something else' }));
    s.xml = s.xml.replace(ISO, '/var/virtualization/iso/other.iso');
    expect(inconsistencies('backup', s)).toEqual([]);
  });

  it('detects a MAC address in the XML that differs from sstMacAddress', () => {
    expect(inconsistencies('backup', snapshot(config({ mac: '52:54:00:aa:bb:cc' })))).toEqual([
      {
        config: 'backup',
        what: 'XML interface 0 MAC address vs sstinterface=0,ou=devices: sstmacaddress',
        directory: MAC,
        xml: '52:54:00:aa:bb:cc',
      },
    ]);
  });
});

// ---- rejectDecision ----

describe('rejectDecision', () => {
  // Display name (directory only), description (XML only), memory (both, linked, fixed by the state).
  const conflicts = findConflicts(
    snapshot(BASE),
    snapshot(
      config({ displayName: 'shop-web-new', description: 'new', sstMemory: GIB4, memory: [4096, 'MiB'] }),
    ),
  );
  const allBackup = {
    'dir:.:sstdisplayname': 'backup',
    'dir:.:sstmemory': 'backup',
    'xml:description': 'backup',
    'xml:memory': 'backup',
  } as const;

  it('works on the expected conflicts', () => {
    expect(ids(conflicts)).toEqual(Object.keys(allBackup));
  });

  it('accepts a complete, consistent decision', () => {
    expect(rejectDecision(conflicts, allBackup, true)).toBeUndefined();
    expect(
      rejectDecision(
        conflicts,
        { ...allBackup, 'dir:.:sstdisplayname': 'live', 'xml:description': 'live' },
        true,
      ),
    ).toBeUndefined();
  });

  it.each([null, undefined, 'backup', 42, true, ['backup'], []])('rejects %j as not a decision', (d) => {
    expect(rejectDecision(conflicts, d, false)).toBe(
      'a decision maps each conflict id to "backup" or "live"',
    );
  });

  it('rejects ids that are not conflicts, naming them', () => {
    const message = rejectDecision(
      conflicts,
      { ...allBackup, 'dir:.:sstnode': 'backup', 'xml:vcpu': 'live' },
      false,
    );
    expect(message).toBe('unknown conflict ids: dir:.:sstnode, xml:vcpu');
  });

  it.each(['Backup', 'LIVE', 'both', '', null, true, 1])(
    'rejects the choice %j, naming the conflict',
    (v) => {
      const message = rejectDecision(conflicts, { ...allBackup, 'xml:description': v }, false);
      expect(message).toBe('each choice must be "backup" or "live": xml:description');
    },
  );

  it('rejects a decision that leaves conflicts undecided, listing them', () => {
    const message = rejectDecision(
      conflicts,
      { 'dir:.:sstdisplayname': 'live', 'xml:description': 'live' },
      false,
    );
    expect(message).toBe('undecided conflicts: dir:.:sstmemory, xml:memory');
  });

  it('rejects an empty decision when there are conflicts, listing all of them', () => {
    expect(rejectDecision(conflicts, {}, false)).toBe(`undecided conflicts: ${ids(conflicts).join(', ')}`);
  });

  it('rejects linked conflicts decided differently, as inconsistent', () => {
    const message = rejectDecision(conflicts, { ...allBackup, 'xml:memory': 'live' }, false);
    expect(message).toContain('inconsistent');
    expect(message).toContain('dir:.:sstmemory and xml:memory');
    expect(message).toContain('must both take the backup or both the live value');
    expect(rejectDecision(conflicts, { ...allBackup, 'dir:.:sstmemory': 'live' }, false)).toContain(
      'inconsistent',
    );
  });

  it('rejects the live value of a conflict fixed by the saved state when restoring with state', () => {
    const message = rejectDecision(
      conflicts,
      { ...allBackup, 'dir:.:sstmemory': 'live', 'xml:memory': 'live' },
      true,
    );
    expect(message).toBe(
      'xml:memory: the VM comes back from its saved state, which fixes XML <memory> (bytes); take the backup value (or restore without state)',
    );
  });

  it('accepts the live value of a conflict fixed by the saved state when restoring without state', () => {
    expect(
      rejectDecision(conflicts, { ...allBackup, 'dir:.:sstmemory': 'live', 'xml:memory': 'live' }, false),
    ).toBeUndefined();
  });

  it('accepts the live value of conflicts not fixed by the state when restoring with state', () => {
    const mac = findConflicts(snapshot(BASE), snapshot(config({ bridge: 'vmbr1', description: 'x' })));
    const live = Object.fromEntries(ids(mac).map((id) => [id, 'live']));
    expect(rejectDecision(mac, live, true)).toBeUndefined();
  });

  it('rejects a live MAC address when restoring with state', () => {
    const mac = findConflicts(snapshot(BASE), snapshot(config({ mac: '52:54:00:aa:bb:cc' })));
    expect(rejectDecision(mac, { 'xml:interface[0].mac': 'live' }, true)).toContain(
      'xml:interface[0].mac: the VM comes back from its saved state, which fixes XML interface 0 MAC address',
    );
    expect(rejectDecision(mac, { 'xml:interface[0].mac': 'live' }, false)).toBeUndefined();
  });

  it('rejects taking a device that exists live only, even without state', () => {
    const added = findConflicts(
      snapshot(BASE),
      snapshot(
        config({
          disks: [
            { dev: 'vda', dir: VDA, xml: VDA },
            { dev: 'vdb', dir: VDB, xml: VDB },
          ],
        }),
      ),
    );
    const live = Object.fromEntries(ids(added).map((id) => [id, 'live']));
    expect(rejectDecision(added, live, false)).toBe(
      'xml:disk[vdb]: a restore cannot add or remove a device; take the backup value',
    );
    const backup = Object.fromEntries(ids(added).map((id) => [id, 'backup']));
    expect(rejectDecision(added, backup, true)).toBeUndefined();
  });

  it('rejects taking the absence of a device that exists in the backup only', () => {
    const removed = findConflicts(
      snapshot(
        config({
          disks: [
            { dev: 'vda', dir: VDA, xml: VDA },
            { dev: 'vdb', dir: VDB, xml: VDB },
          ],
        }),
      ),
      snapshot(BASE),
    );
    expect(removed.find((c) => c.id === 'xml:disk[vdb]')).toMatchObject({ backup: VDB, live: null });
    const live = Object.fromEntries(ids(removed).map((id) => [id, 'live']));
    expect(rejectDecision(removed, live, false)).toBe(
      'xml:disk[vdb]: a restore cannot add or remove a device; take the backup value',
    );
  });

  it('accepts an empty decision when there are no conflicts', () => {
    expect(rejectDecision([], {}, true)).toBeUndefined();
    expect(rejectDecision([], {}, false)).toBeUndefined();
  });

  it('still rejects a non-object decision when there are no conflicts', () => {
    expect(rejectDecision([], null, true)).toBe('a decision maps each conflict id to "backup" or "live"');
  });

  it('rejects unknown ids when there are no conflicts', () => {
    expect(rejectDecision([], { 'xml:memory': 'backup' }, false)).toBe('unknown conflict ids: xml:memory');
  });
});

describe('regressions', () => {
  it('refuses taking part of a disk entry that exists live only from each side', () => {
    const conflicts = findConflicts(
      snapshot(BASE),
      snapshot(
        config({
          disks: [
            { dev: 'vda', dir: VDA, xml: VDA },
            { dev: 'vdb', dir: VDB, xml: VDB },
          ],
        }),
      ),
    );
    const decision = Object.fromEntries(
      conflicts.map((c) => [c.id, c.id.endsWith(':objectclass') ? 'live' : 'backup']),
    );
    expect(rejectDecision(conflicts, decision, false)).toMatch(/exists on one side only/);
    expect(
      rejectDecision(conflicts, Object.fromEntries(conflicts.map((c) => [c.id, 'backup'])), true),
    ).toBeUndefined();
  });

  it('decodes XML entities in descriptions and disk sources', () => {
    const xml = `<domain><name>x</name><description>Web &amp; mail</description><devices><disk type='file' device='disk'><source file='/img/a&amp;b.qcow2'/><target dev='vda'/></disk></devices></domain>`;
    const facts = xmlFacts(xml);
    expect(facts.description).toBe('Web & mail');
    expect(facts.disks.get('vda')?.source).toBe('/img/a&b.qcow2');
  });

  it('reads memory in decimal and binary units as libvirt defines them', () => {
    expect(xmlFacts("<domain><memory unit='MB'>2</memory></domain>").memoryBytes).toBe('2000000');
    expect(xmlFacts("<domain><memory unit='TiB'>2</memory></domain>").memoryBytes).toBe(
      String(2 * 1024 ** 4),
    );
  });
});
