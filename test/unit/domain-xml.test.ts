import { describe, expect, it } from 'vitest';
import { fileDisks, memoryBytes, withBackingFiles } from '../../src/domain/domain-xml';

const VDA = '/var/virtualization/vm-persistent/0f83f084-8080-413e-b558-b678e504836e/8798a1d2.qcow2';
const VDB = '/var/virtualization/vm-persistent/0f83f084-8080-413e-b558-b678e504836e/data.qcow2';

/** What `virsh dumpxml` prints for a running VM with two file disks, a CD-ROM and an RBD disk. */
const DOMAIN_XML = `<domain type='kvm' id='7'>
  <name>web01</name>
  <uuid>0f83f084-8080-413e-b558-b678e504836e</uuid>
  <memory unit='KiB'>2097152</memory>
  <currentMemory unit='KiB'>1048576</currentMemory>
  <vcpu placement='static'>2</vcpu>
  <os>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' cache='none'/>
      <source file='${VDA}' index='3'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type="file" device="disk">
      <driver name="qemu" type="qcow2"/>
      <source file="${VDB}" index="2">
        <seclabel model="dac" relabel="no"/>
      </source>
      <backingStore type="file" index="4">
        <format type="qcow2"/>
        <source file="/var/virtualization/retain/data.qcow2.20260101T030000Z"/>
        <backingStore type="file" index="5">
          <format type="raw"/>
          <source file="/var/virtualization/base/data.raw"/>
          <backingStore/>
        </backingStore>
      </backingStore>
      <target dev="vdb" bus="virtio"/>
      <alias name="virtio-disk1"/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/var/virtualization/iso/install.iso' index='1'/>
      <backingStore/>
      <target dev='sda' bus='sata'/>
      <readonly/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='rbd-pool/web01-scratch'>
        <host name='ceph-mon1' port='6789'/>
      </source>
      <target dev='vdc' bus='virtio'/>
    </disk>
    <interface type='bridge'>
      <source bridge='br0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
    </interface>
  </devices>
</domain>
`;

/** All `<disk>` elements of an XML document, in document order. */
function disksOf(xml: string): string[] {
  return xml.match(/<disk\b[\s\S]*?<\/disk>/g) ?? [];
}

/** The `<disk>` element whose target is `dev`. */
function diskOf(xml: string, dev: string): string {
  const found = disksOf(xml).filter((d) => new RegExp(`<target dev=['"]${dev}['"]`).test(d));
  expect(found, `exactly one disk with target ${dev}`).toHaveLength(1);
  return found[0]!;
}

/** Removes white space between tags so that element structure can be compared exactly. */
function compact(xml: string): string {
  return xml.replace(/>\s+</g, '><').trim();
}

/** Everything but the disk elements. */
function outsideDisks(xml: string): string {
  return xml.replace(/<disk\b[\s\S]*?<\/disk>/g, '<disk/>');
}

describe('fileDisks', () => {
  it('maps the target of every file-backed disk to its source file', () => {
    expect(fileDisks(DOMAIN_XML)).toEqual(
      new Map([
        ['vda', VDA],
        ['vdb', VDB],
      ]),
    );
  });

  it('leaves out CD-ROMs and network disks', () => {
    const disks = fileDisks(DOMAIN_XML);
    expect(disks.has('sda')).toBe(false);
    expect(disks.has('vdc')).toBe(false);
    expect([...disks.values()]).not.toContain('/var/virtualization/iso/install.iso');
  });

  it('takes the top image, not a file of its backing chain', () => {
    expect(fileDisks(DOMAIN_XML).get('vdb')).toBe(VDB);
  });

  it('leaves out block devices', () => {
    const xml = `<domain><devices><disk type='block' device='disk'><source dev='/dev/vg0/web01'/><target dev='vda' bus='virtio'/></disk></devices></domain>`;
    expect(fileDisks(xml).size).toBe(0);
  });

  it('unescapes XML entities in the source path', () => {
    const xml = `<domain><devices><disk type='file' device='disk'><source file='/v/it&apos;s &amp; &quot;x&quot;.qcow2'/><target dev='vda' bus='virtio'/></disk></devices></domain>`;
    expect(fileDisks(xml).get('vda')).toBe(`/v/it's & "x".qcow2`);
  });

  it('skips a file disk without a source (an empty drive)', () => {
    const xml = `<domain><devices><disk type='file' device='disk'><target dev='vda' bus='virtio'/></disk></devices></domain>`;
    expect(fileDisks(xml).size).toBe(0);
  });

  it('finds nothing in a domain without disks', () => {
    expect(fileDisks('<domain type="kvm"><name>x</name><devices/></domain>').size).toBe(0);
  });
});

describe('memoryBytes', () => {
  it('converts KiB to bytes', () => {
    expect(memoryBytes(DOMAIN_XML)).toBe(2 * 1024 ** 3);
  });

  it('reads <memory>, not <currentMemory>', () => {
    const xml = `<domain><currentMemory unit='KiB'>1024</currentMemory><memory unit='KiB'>4096</memory></domain>`;
    expect(memoryBytes(xml)).toBe(4096 * 1024);
  });

  it('treats a value without unit as KiB, as libvirt does', () => {
    expect(memoryBytes('<domain><memory>524288</memory></domain>')).toBe(524288 * 1024);
  });

  it('returns 0 when the XML has no <memory> element', () => {
    expect(memoryBytes('<domain><name>x</name></domain>')).toBe(0);
  });
});

describe('withBackingFiles', () => {
  const RETAINED_A =
    '/var/virtualization/retain/vm-persistent/p/web01/20260102T030000Z/8798a1d2.qcow2.20260102T030000Z';
  const RETAINED_B =
    '/var/virtualization/retain/vm-persistent/p/web01/20260102T030000Z/data.qcow2.20260102T030000Z';

  it('replaces an empty <backingStore/> by an explicit qcow2 backing store with the given path', () => {
    const out = withBackingFiles(DOMAIN_XML, new Map([['vda', RETAINED_A]]));
    expect(compact(diskOf(out, 'vda'))).toBe(
      `<disk type='file' device='disk'>` +
        `<driver name='qemu' type='qcow2' cache='none'/>` +
        `<source file='${VDA}' index='3'/>` +
        `<backingStore type='file'><format type='qcow2'/><source file='${RETAINED_A}'/><backingStore/></backingStore>` +
        `<target dev='vda' bus='virtio'/>` +
        `<alias name='virtio-disk0'/>` +
        `<address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>` +
        `</disk>`,
    );
  });

  it('replaces a whole nested backing chain by the given backing file', () => {
    const out = withBackingFiles(DOMAIN_XML, new Map([['vdb', RETAINED_B]]));
    // The document is written back with libvirt's quotes ('), whatever the input used.
    expect(compact(diskOf(out, 'vdb'))).toBe(
      `<disk type='file' device='disk'>` +
        `<driver name='qemu' type='qcow2'/>` +
        `<source file='${VDB}' index='2'><seclabel model='dac' relabel='no'/></source>` +
        `<backingStore type='file'><format type='qcow2'/><source file='${RETAINED_B}'/><backingStore/></backingStore>` +
        `<target dev='vdb' bus='virtio'/>` +
        `<alias name='virtio-disk1'/>` +
        `</disk>`,
    );
    expect(out).not.toContain('data.qcow2.20260101T030000Z');
    expect(out).not.toContain('/var/virtualization/base/data.raw');
  });

  it('adds a backing store to a disk that had no <backingStore> element', () => {
    const xml = `<domain><devices>
    <disk type='file' device='disk'>
      <source file='/v/a.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices></domain>`;
    expect(compact(diskOf(withBackingFiles(xml, new Map([['vda', '/r/a.qcow2']])), 'vda'))).toBe(
      `<disk type='file' device='disk'>` +
        `<source file='/v/a.qcow2'/>` +
        `<backingStore type='file'><format type='qcow2'/><source file='/r/a.qcow2'/><backingStore/></backingStore>` +
        `<target dev='vda' bus='virtio'/>` +
        `</disk>`,
    );
  });

  it('updates several disks at once', () => {
    const out = withBackingFiles(
      DOMAIN_XML,
      new Map([
        ['vda', RETAINED_A],
        ['vdb', RETAINED_B],
      ]),
    );
    expect(compact(diskOf(out, 'vda'))).toContain(
      `<source file='${VDA}' index='3'/><backingStore type='file'><format type='qcow2'/><source file='${RETAINED_A}'/><backingStore/></backingStore><target`,
    );
    expect(compact(diskOf(out, 'vdb'))).toContain(
      `</source><backingStore type='file'><format type='qcow2'/><source file='${RETAINED_B}'/><backingStore/></backingStore><target`,
    );
  });

  it('leaves the other disks and the rest of the document untouched', () => {
    const out = withBackingFiles(DOMAIN_XML, new Map([['vda', RETAINED_A]]));
    // As the serializer writes them: libvirt's quotes, everything else as it was.
    const before = disksOf(DOMAIN_XML.replace(/"/g, "'"));
    const after = disksOf(out);
    expect(after).toHaveLength(4);
    expect(after[1]).toBe(before[1]);
    expect(after[2]).toBe(before[2]);
    expect(after[3]).toBe(before[3]);
    expect(outsideDisks(out)).toBe(outsideDisks(DOMAIN_XML));
  });

  it('writes the libvirt XML of the other disks back byte for byte', () => {
    const out = withBackingFiles(DOMAIN_XML, new Map([['vdb', RETAINED_B]]));
    expect(disksOf(out)[0]).toBe(disksOf(DOMAIN_XML)[0]);
    expect(out.endsWith('</domain>\n')).toBe(true);
  });

  it('keeps white space, comments and an XML declaration around the disks', () => {
    const xml = `<?xml version='1.0'?>\n<domain>\n  <!-- made by hand -->\n  <devices>\n    <disk type='file' device='disk'>\n      <source file='/v/a.qcow2'/>\n      <backingStore type='file'><format type='raw'/><source file='/old'/></backingStore>\n      <target dev='vda'/>\n    </disk>\n  </devices>\n</domain>\n`;
    expect(withBackingFiles(xml, new Map([['vda', '/r/a.qcow2']]))).toBe(
      `<?xml version='1.0'?>\n<domain>\n  <!-- made by hand -->\n  <devices>\n    <disk type='file' device='disk'>\n      <source file='/v/a.qcow2'/>\n      <backingStore type='file'><format type='qcow2'/><source file='/r/a.qcow2'/><backingStore/></backingStore>\n      <target dev='vda'/>\n    </disk>\n  </devices>\n</domain>\n`,
    );
  });

  it('refuses XML that is not a domain, or that libvirt would never write', () => {
    const vda = new Map([['vda', '/r/a.qcow2']]);
    expect(() => withBackingFiles('<network/>', vda)).toThrow(/not one <domain>/);
    expect(() => withBackingFiles(`<!DOCTYPE d>${DOMAIN_XML}`, vda)).toThrow(/DOCTYPE/);
    expect(() => withBackingFiles(DOMAIN_XML.replace('</os>', ''), vda)).toThrow(/well-formed/);
  });

  it('keeps the top image as the source of the disk', () => {
    const out = withBackingFiles(
      DOMAIN_XML,
      new Map([
        ['vda', RETAINED_A],
        ['vdb', RETAINED_B],
      ]),
    );
    expect(fileDisks(out)).toEqual(
      new Map([
        ['vda', VDA],
        ['vdb', VDB],
      ]),
    );
  });

  it("escapes ' and & (and other XML specials) in the backing path", () => {
    const out = withBackingFiles(DOMAIN_XML, new Map([['vda', `/r/it's & <"x">.qcow2`]]));
    const disk = compact(diskOf(out, 'vda'));
    expect(disk).toContain(
      `<backingStore type='file'><format type='qcow2'/><source file='/r/it&apos;s &amp; &lt;&quot;x&quot;&gt;.qcow2'/><backingStore/></backingStore>`,
    );
    expect(disk).not.toContain(`it's`);
  });

  it('returns the document unchanged when no disk is named', () => {
    expect(withBackingFiles(DOMAIN_XML, new Map())).toBe(DOMAIN_XML);
  });

  it('throws for a target that is not in the XML, naming it', () => {
    expect(() => withBackingFiles(DOMAIN_XML, new Map([['vdz', '/r/z.qcow2']]))).toThrow(/vdz/);
  });

  it('throws when only some of the named targets exist', () => {
    expect(() =>
      withBackingFiles(
        DOMAIN_XML,
        new Map([
          ['vda', RETAINED_A],
          ['vdq', '/r/q.qcow2'],
        ]),
      ),
    ).toThrow(/vdq/);
  });
});

describe('memoryBytes honours the unit attribute', () => {
  it('reads MiB and GiB values in their unit', () => {
    expect(memoryBytes("<domain><memory unit='MiB'>512</memory></domain>")).toBe(512 * 1024 * 1024);
    expect(memoryBytes('<domain><memory unit="GiB">2</memory></domain>')).toBe(2 * 1024 ** 3);
  });
});
