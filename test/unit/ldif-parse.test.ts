import { describe, expect, it } from 'vitest';
import { parseLdif, type LdifEntry } from '../../src/directory/ldif-parse';
import { toLdif } from '../../src/directory/ldif';

const VM =
  'sstVirtualMachine=vm-0042,ou=virtual machines,ou=virtualization,ou=services,o=stepping-stone,c=ch';

describe('parseLdif: basic records', () => {
  it('returns no entries for empty input', () => {
    expect(parseLdif('')).toEqual([]);
    expect(parseLdif('\n\n')).toEqual([]);
  });

  it('reads one entry with its dn and attribute values', () => {
    expect(parseLdif(`dn: ${VM}\nobjectclass: top\nsstnode: kvm-01\n`)).toEqual([
      { dn: VM, attributes: { objectclass: ['top'], sstnode: ['kvm-01'] } },
    ]);
  });

  it('collects repeated attribute lines into one multi-valued attribute, in file order', () => {
    const [entry] = parseLdif(
      `dn: ${VM}\nobjectClass: top\nsstOSBootDevice: hd\nobjectClass: sstVirtualizationVirtualMachine\nsstOSBootDevice: cdrom\n`,
    );
    expect(entry!.attributes).toEqual({
      objectclass: ['top', 'sstVirtualizationVirtualMachine'],
      sstosbootdevice: ['hd', 'cdrom'],
    });
  });

  it('lower-cases attribute names but keeps the case of the dn and of values', () => {
    const [entry] = parseLdif(`DN: ${VM}\nsstDisplayName: Web Server\nSSTMEMORY: 2147483648\n`);
    expect(entry).toEqual({
      dn: VM,
      attributes: { sstdisplayname: ['Web Server'], sstmemory: ['2147483648'] },
    });
  });

  it('keeps attribute options as part of the lower-cased name', () => {
    const [entry] = parseLdif('dn: o=t\ndescription;lang-DE: Webserver\n');
    expect(entry!.attributes).toEqual({ 'description;lang-de': ['Webserver'] });
  });

  it('reads an empty value as the empty string', () => {
    const [entry] = parseLdif('dn: o=t\ndescription:\nsn: \n');
    expect(entry!.attributes).toEqual({ description: [''], sn: [''] });
  });

  it('keeps colons and trailing text inside a plain value', () => {
    const [entry] = parseLdif('dn: o=t\nsstmacaddress: 52:54:00:3a:9b:01\nlabeledURI: http://x/a: b\n');
    expect(entry!.attributes).toEqual({
      sstmacaddress: ['52:54:00:3a:9b:01'],
      labeleduri: ['http://x/a: b'],
    });
  });

  it('accepts CRLF line endings', () => {
    expect(parseLdif('dn: o=t\r\nsn: x\r\ncn: y\r\n\r\ndn: ou=a,o=t\r\nou: a\r\n')).toEqual([
      { dn: 'o=t', attributes: { sn: ['x'], cn: ['y'] } },
      { dn: 'ou=a,o=t', attributes: { ou: ['a'] } },
    ]);
  });
});

describe('parseLdif: several entries', () => {
  it('splits entries at blank lines and returns them in file order', () => {
    const text = [
      `dn: ${VM}`,
      'sstvirtualmachine: vm-0042',
      '',
      `dn: ou=devices,${VM}`,
      'ou: devices',
      '',
      `dn: sstDisk=vda,ou=devices,${VM}`,
      'sstdisk: vda',
      '',
    ].join('\n');
    expect(parseLdif(text)).toEqual([
      { dn: VM, attributes: { sstvirtualmachine: ['vm-0042'] } },
      { dn: `ou=devices,${VM}`, attributes: { ou: ['devices'] } },
      { dn: `sstDisk=vda,ou=devices,${VM}`, attributes: { sstdisk: ['vda'] } },
    ]);
  });

  it('tolerates several blank lines between entries and a last entry without a final newline', () => {
    expect(parseLdif('\n\ndn: ou=a,o=t\nou: a\n\n\n\ndn: ou=b,o=t\nou: b')).toEqual([
      { dn: 'ou=a,o=t', attributes: { ou: ['a'] } },
      { dn: 'ou=b,o=t', attributes: { ou: ['b'] } },
    ]);
  });

  it('starts a new entry at a dn line even without a blank line before it', () => {
    expect(parseLdif('dn: ou=a,o=t\nou: a\ndn: ou=b,o=t\nou: b\n')).toEqual([
      { dn: 'ou=a,o=t', attributes: { ou: ['a'] } },
      { dn: 'ou=b,o=t', attributes: { ou: ['b'] } },
    ]);
  });

  it('keeps the attributes of each entry apart', () => {
    const entries = parseLdif('dn: ou=a,o=t\nou: a\ndescription: first\n\ndn: ou=b,o=t\nou: b\n');
    expect(entries[0]!.attributes).toEqual({ ou: ['a'], description: ['first'] });
    expect(entries[1]!.attributes).toEqual({ ou: ['b'] });
  });
});

describe('parseLdif: comments and version line', () => {
  it('skips a leading "version: 1" line and comment lines anywhere', () => {
    const text = [
      'version: 1',
      '',
      '# exported by vmbackup',
      `dn: ${VM}`,
      '# a comment between attributes',
      'sstnode: kvm-01',
      '',
      '# a comment between entries',
      '',
      `dn: ou=devices,${VM}`,
      'ou: devices',
      '',
    ].join('\n');
    expect(parseLdif(text)).toEqual([
      { dn: VM, attributes: { sstnode: ['kvm-01'] } },
      { dn: `ou=devices,${VM}`, attributes: { ou: ['devices'] } },
    ]);
  });

  it('treats a folded continuation of a comment as part of the comment', () => {
    const text = '# a long comment\n that: continues here\ndn: o=t\nsn: x\n';
    expect(parseLdif(text)).toEqual([{ dn: 'o=t', attributes: { sn: ['x'] } }]);
  });
});

describe('parseLdif: folded lines (RFC 2849)', () => {
  it('joins a continuation line to the previous line, dropping exactly its first space', () => {
    const text = 'dn: o=t\ndescription: first part\n  and second\n part three\nsn: x\n';
    expect(parseLdif(text)[0]!.attributes).toEqual({
      description: ['first part and secondpart three'],
      sn: ['x'],
    });
  });

  it('unfolds a folded dn', () => {
    const text =
      'dn: sstVirtualMachine=vm-0042,ou=virtual machines,ou=virtualiz\n ation,ou=services,o=stepping-stone,c=ch\nsn: x\n';
    expect(parseLdif(text)[0]!.dn).toBe(VM);
  });

  it('unfolds a folded base64 value before decoding it', () => {
    expect(parseLdif('dn: o=t\ndescription:: WsO8\n cmljaA==\n')[0]!.attributes).toEqual({
      description: ['Zürich'],
    });
  });

  it('unfolds a folded attribute name', () => {
    expect(parseLdif('dn: o=t\nsstSource\n File: /var/a.qcow2\n')[0]!.attributes).toEqual({
      sstsourcefile: ['/var/a.qcow2'],
    });
  });
});

describe('parseLdif: base64 values', () => {
  it('decodes "::" values as UTF-8', () => {
    const [entry] = parseLdif('dn: o=t\ndescription:: WsO8cmljaA==\nsn:: IGxlYWQ=\ncn:: OmNvbG9u\n');
    expect(entry!.attributes).toEqual({ description: ['Zürich'], sn: [' lead'], cn: [':colon'] });
  });

  it('decodes a base64 dn', () => {
    // "cn=Zürich,o=t"
    expect(parseLdif('dn:: Y249WsO8cmljaCxvPXQ=\nsn: x\n')[0]!.dn).toBe('cn=Zürich,o=t');
  });

  it('decodes a base64 value holding a newline', () => {
    expect(parseLdif('dn: o=t\ndescription:: YQpi\n')[0]!.attributes.description).toEqual(['a\nb']);
  });
});

describe('parseLdif: round trip with toLdif', () => {
  const entries: LdifEntry[] = [
    {
      dn: VM,
      attributes: {
        objectclass: ['top', 'sstVirtualizationVirtualMachine'],
        sstdisplayname: ['Web server Zürich'],
        description: [' leading space', ':leading colon', '<leading angle', 'trailing space ', 'a\nb', ''],
        sstmemory: ['2147483648'],
      },
    },
    {
      dn: `sstDisk=vda,ou=devices,${VM}`,
      attributes: {
        objectclass: ['top', 'sstVirtualizationVirtualMachineDisk'],
        sstdisk: ['vda'],
        sstsourcefile: ['/var/virtualization/vm-persistent/0f83f084/vm-0042-vda.qcow2'],
      },
    },
    { dn: `ou=devices,${VM}`, attributes: { objectclass: ['organizationalUnit'], ou: ['devices'] } },
    { dn: 'cn=Zürich,o=stepping-stone,c=ch', attributes: { cn: ['Zürich'], sn: ['日本語'] } },
  ];

  it('gives back every entry, value and value order that toLdif wrote (parents first)', () => {
    expect(parseLdif(toLdif(entries))).toEqual([entries[3], entries[0], entries[2], entries[1]]);
  });

  it('exercises base64 lines in that round trip', () => {
    const ldif = toLdif(entries);
    // The values that are not safe strings went through "::" and still came back intact.
    expect(ldif).toContain('dn:: ');
    expect(ldif.match(/^description:: /gm)).toHaveLength(5);
    const parsed = parseLdif(ldif).find((e) => e.dn === VM)!;
    expect(parsed.attributes.description).toEqual([
      ' leading space',
      ':leading colon',
      '<leading angle',
      'trailing space ',
      'a\nb',
      '',
    ]);
  });

  it('round-trips an LDIF that is parsed and written again unchanged', () => {
    const ldif = toLdif(entries);
    expect(toLdif(parseLdif(ldif))).toBe(ldif);
  });
});

describe('parseLdif: malformed input', () => {
  it('throws on a line that is not "name: value"', () => {
    expect(() => parseLdif('dn: o=t\nthis is not ldif\n')).toThrow('malformed LDIF line: "this is not ldif"');
  });

  it('throws on an attribute name with characters LDIF does not allow', () => {
    expect(() => parseLdif('dn: o=t\nsst_memory: 1\n')).toThrow('malformed LDIF line: "sst_memory: 1"');
  });

  it('quotes at most the first 80 characters of a malformed line', () => {
    let message = '';
    try {
      parseLdif(`dn: o=t\n${'x'.repeat(200)}\n`);
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toBe(`malformed LDIF line: "${'x'.repeat(80)}"`);
  });

  it('throws on a continuation line with nothing before it', () => {
    expect(() => parseLdif(' orphan: value\ndn: o=t\n')).toThrow('malformed LDIF line: " orphan: value"');
  });

  it('throws on a continuation line that follows a blank line', () => {
    expect(() => parseLdif('dn: o=t\nsn: x\n\n continued\n')).toThrow('malformed LDIF line: " continued"');
  });

  it('throws on an attribute before any dn', () => {
    expect(() => parseLdif('sstNode: kvm-01\ndn: o=t\n')).toThrow('LDIF attribute sstNode before any dn');
  });

  it('throws on an attribute after a blank line that ended the previous entry', () => {
    expect(() => parseLdif('dn: o=t\nsn: a\n\nsn: b\n')).toThrow('LDIF attribute sn before any dn');
  });
});

describe('parseLdif spacing', () => {
  it('ignores any number of spaces after the colon', () => {
    expect(parseLdif('dn: cn=x\nsn:   x\n')[0]?.attributes['sn']).toEqual(['x']);
  });
});
