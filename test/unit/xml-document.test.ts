import { describe, expect, it } from 'vitest';
import { decodeXml, escapeXml, XmlSyntaxError } from '../../src/domain/xml/entities';
import { parseDomainXml, parseXml } from '../../src/domain/xml/parse';
import { serializeXml } from '../../src/domain/xml/serialize';
import { XmlComment, XmlElement, XmlText } from '../../src/domain/xml/tree';

/** What `virsh dumpxml` writes (libvirt 9/10): single quotes, two-space indent, a final newline. */
const LIBVIRT = `<domain type='qemu' id='3'>
  <name>xml-test &amp; co</name>
  <uuid>2d1c1a8e-7c34-4b43-9a51-3f6f1b2a0c11</uuid>
  <description>it&apos;s &lt;ours&gt; &quot;x&quot;</description>
  <memory unit='KiB'>65536</memory>
  <currentMemory unit='KiB'>65536</currentMemory>
  <vcpu placement='static'>1</vcpu>
  <resource>
    <partition>/machine</partition>
  </resource>
  <os>
    <type arch='x86_64' machine='pc-i440fx-8.2'>hvm</type>
    <boot dev='hd'/>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/var/lib/x/a.qcow2' index='1'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
      <alias name='virtio-disk0'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x04' function='0x0'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:01'/>
      <source network='vmbackup-xmltest' portid='8d1f2a6e-0c61-4d55-8d7d-1b4f7c2e9a10' bridge='virbr7'/>
      <target dev='vnet4'/>
      <model type='virtio'/>
      <alias name='net0'/>
    </interface>
  </devices>
  <seclabel type='dynamic' model='dac' relabel='yes'>
    <label>+64055:+994</label>
    <imagelabel>+64055:+994</imagelabel>
  </seclabel>
</domain>
`;

function refusal(xml: string): XmlSyntaxError {
  try {
    parseDomainXml(xml);
  } catch (e) {
    if (e instanceof XmlSyntaxError) return e;
    throw e;
  }
  throw new Error('not refused');
}

describe('parseDomainXml and serializeXml', () => {
  it("writes libvirt's own XML back byte for byte", () => {
    expect(serializeXml(parseDomainXml(LIBVIRT))).toBe(LIBVIRT);
  });

  it('keeps an XML declaration, comments, white space and attribute order', () => {
    const xml = `<?xml version='1.0' encoding='UTF-8'?>\n<!--\nWARNING: THIS IS AN AUTO-GENERATED FILE.\n-->\n<domain type='kvm'>\n\t<!-- a -- b -->\n  <e z='1' a='2'/>\n</domain>`;
    expect(serializeXml(parseDomainXml(xml))).toBe(xml);
  });

  it("writes libvirt's quotes and empty elements, and can write double quotes", () => {
    const doc = parseDomainXml(`<domain type="qemu"><devices></devices><e a="it's"/></domain>`);
    expect(serializeXml(doc)).toBe(`<domain type='qemu'><devices/><e a='it&apos;s'/></domain>`);
    expect(serializeXml(doc, { quote: '"' })).toBe(
      `<domain type="qemu"><devices/><e a="it&apos;s"/></domain>`,
    );
  });

  it('decodes entities and character references in text and attributes', () => {
    const root = parseDomainXml(
      `<domain><name>a&amp;b&#x41;&#66;&lt;&gt;&apos;&quot;</name><e v='&#47;etc&#x2F;x &#233;&#x1F600;'/></domain>`,
    ).root;
    expect(root.first('name')?.text()).toBe(`a&bAB<>'"`);
    expect(root.first('e')?.attr('v')).toBe('/etc/x é😀');
  });

  it('escapes what it writes: text and attribute values cannot inject XML', () => {
    const doc = parseDomainXml(`<domain><name>x</name><e/></domain>`);
    doc.root.first('name')!.setText(`</name><evil/>&x;`);
    doc.root.first('e')!.setAttr('v', `' a='b\n`);
    const out = serializeXml(doc);
    expect(out).toBe(
      `<domain><name>&lt;/name&gt;&lt;evil/&gt;&amp;x;</name><e v='&apos; a=&apos;b&#10;'/></domain>`,
    );
    const again = parseDomainXml(out).root;
    expect(again.first('name')?.text()).toBe(`</name><evil/>&x;`);
    expect(again.first('e')?.attr('v')).toBe(`' a='b\n`);
    expect(again.elements()).toHaveLength(2);
  });

  it.each([
    ['a DOCTYPE', `<!DOCTYPE domain>${LIBVIRT}`, 'markup', /DOCTYPE/],
    [
      'entity declarations (billion laughs, external files)',
      `<!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;"><!ENTITY f SYSTEM "file:///etc/shadow">]><domain><name>&b;&f;</name></domain>`,
      'markup',
      /DOCTYPE, entity declaration/,
    ],
    ['a CDATA section', `<domain><name><![CDATA[x]]></name></domain>`, 'markup', /CDATA/],
    ['a processing instruction', `<domain><?php echo 1 ?></domain>`, 'markup', /processing instruction/],
    ['a late XML declaration', `<domain/><?xml version='1.0'?>`, 'markup', /processing instruction/],
    ['an unknown entity', `<domain><name>&nbsp;</name></domain>`, 'entity', /unknown entity &nbsp;/],
    ['a bare &', `<domain><e a='x & y'/></domain>`, 'malformed', /bare &/],
    ['a < in an attribute', `<domain><e a='<x'/></domain>`, 'malformed', /well-formed/],
    ['a reference to no XML character', `<domain>&#0;</domain>`, 'malformed', /no XML character/],
    ['an unclosed element', `<domain><name>x</domain>`, 'malformed', /well-formed/],
    ['an empty document', ``, 'malformed', /well-formed/],
    ['text after the root', `<domain/>x`, 'malformed', /well-formed/],
    ['two roots', `<domain/><domain/>`, 'root', /one <domain>/],
    ['another root', `<network><name>n</name></network>`, 'root', /one <domain>/],
  ])('refuses %s', (_, xml, problem, detail) => {
    const e = refusal(xml);
    expect(e.problem).toBe(problem);
    expect(e.detail).toMatch(detail);
  });

  it('parses any root with parseXml', () => {
    expect(parseXml(`<network><name>n</name></network>`).root.name).toBe('network');
  });
});

describe('the tree', () => {
  const xml = `<domain>\n  <devices>\n    <disk type='file'>\n      <source file='/a'/>\n      <backingStore/>\n      <target dev='vda'/>\n    </disk>\n  </devices>\n</domain>\n`;

  it('finds children by name and paths of names', () => {
    const root = parseDomainXml(xml).root;
    expect(root.elements().map((e) => e.name)).toEqual(['devices']);
    expect(root.at('devices', 'disk', 'target')?.attr('dev')).toBe('vda');
    expect(root.at('devices', 'interface')).toBeUndefined();
    expect(root.first('devices')?.elements('disk')).toHaveLength(1);
  });

  it('removes and inserts children with their indentation', () => {
    const doc = parseDomainXml(xml);
    const disk = doc.root.at('devices', 'disk')!;
    disk.remove(disk.first('backingStore')!);
    disk.insertAfter(disk.first('source')!, new XmlElement('x', { a: '1' }));
    disk.insertBefore(disk.first('source')!, new XmlComment(' top '));
    expect(serializeXml(doc)).toBe(
      `<domain>\n  <devices>\n    <disk type='file'>\n      <!-- top -->\n      <source file='/a'/>\n      <x a='1'/>\n      <target dev='vda'/>\n    </disk>\n  </devices>\n</domain>\n`,
    );
  });

  it('sets and removes attributes in place and replaces text', () => {
    const doc = parseDomainXml(`<domain a='1' b='2'><name>x<!-- c --></name></domain>`);
    doc.root.setAttr('a', '3').setAttr('c', '4').removeAttr('b');
    doc.root.first('name')!.setText('y');
    expect(serializeXml(doc)).toBe(`<domain a='3' c='4'><name>y</name></domain>`);
    expect(new XmlElement('n', {}, [new XmlText('a'), new XmlElement('b'), new XmlText('c')]).text()).toBe(
      'ac',
    );
  });
});

describe('escapeXml and decodeXml', () => {
  it('are each other’s inverse', () => {
    for (const v of [`a&b<c>d'e"f`, 'plain', '&amp;', '\t\n', 'é😀'])
      expect(decodeXml(escapeXml(v, true))).toBe(v);
  });
});
