import { describe, expect, it } from 'vitest';
import { toLdif } from '../../src/directory/ldif';

const VM = 'sstVirtualMachine=web01,ou=virtual machines,ou=virtualization,ou=services,o=t';

/** The entries of an LDIF text, each as its lines. */
function records(ldif: string): string[][] {
  return ldif
    .split('\n\n')
    .map((r) => r.split('\n').filter((l) => l !== ''))
    .filter((r) => r.length > 0);
}

describe('toLdif', () => {
  it('writes one entry as dn line, attribute lines and a final newline', () => {
    expect(toLdif([{ dn: VM, attributes: { objectclass: ['top'], sstnode: ['kvm-01'] } }])).toBe(
      `dn: ${VM}\nobjectclass: top\nsstnode: kvm-01\n`,
    );
  });

  it('separates entries by one blank line', () => {
    expect(
      toLdif([
        { dn: 'ou=a,o=t', attributes: { ou: ['a'] } },
        { dn: 'ou=b,o=t', attributes: { ou: ['b'] } },
      ]),
    ).toBe('dn: ou=a,o=t\nou: a\n\ndn: ou=b,o=t\nou: b\n');
  });

  it('writes parents before children whatever the input order', () => {
    const ldif = toLdif([
      { dn: `sstDisk=vda,ou=devices,${VM}`, attributes: { sstdisk: ['vda'] } },
      { dn: `ou=devices,${VM}`, attributes: { ou: ['devices'] } },
      { dn: `ou=20260101T030000Z,ou=backup,${VM}`, attributes: { ou: ['20260101T030000Z'] } },
      { dn: VM, attributes: { sstvirtualmachine: ['web01'] } },
      { dn: `ou=backup,${VM}`, attributes: { ou: ['backup'] } },
    ]);
    const dns = records(ldif).map((r) => r[0]);
    const index = (dn: string) => dns.indexOf(`dn: ${dn}`);
    expect(dns).toHaveLength(5);
    expect(index(VM)).toBe(0);
    expect(index(`ou=devices,${VM}`)).toBeGreaterThan(index(VM));
    expect(index(`ou=backup,${VM}`)).toBeGreaterThan(index(VM));
    expect(index(`sstDisk=vda,ou=devices,${VM}`)).toBeGreaterThan(index(`ou=devices,${VM}`));
    expect(index(`ou=20260101T030000Z,ou=backup,${VM}`)).toBeGreaterThan(index(`ou=backup,${VM}`));
  });

  it('keeps parents first even when the parent DN contains an escaped comma', () => {
    const parent = 'sstVirtualMachine=a\\,b,ou=virtual machines,o=t';
    const ldif = toLdif([
      { dn: `ou=backup,${parent}`, attributes: { ou: ['backup'] } },
      { dn: parent, attributes: { sstvirtualmachine: ['a,b'] } },
    ]);
    expect(records(ldif).map((r) => r[0])).toEqual([`dn: ${parent}`, `dn: ou=backup,${parent}`]);
  });

  it('orders siblings deterministically', () => {
    const a = { dn: 'sstDisk=vda,ou=devices,o=t', attributes: { sstdisk: ['vda'] } };
    const b = { dn: 'sstDisk=vdb,ou=devices,o=t', attributes: { sstdisk: ['vdb'] } };
    expect(toLdif([b, a])).toBe(toLdif([a, b]));
    expect(records(toLdif([b, a])).map((r) => r[0])).toEqual([`dn: ${a.dn}`, `dn: ${b.dn}`]);
  });

  it('writes objectclass first, then the other attributes in name order', () => {
    const ldif = toLdif([
      {
        dn: VM,
        attributes: {
          sstvcpu: ['2'],
          description: ['x'],
          objectclass: ['top', 'sstVirtualizationVirtualMachine'],
          sstmemory: ['1024'],
        },
      },
    ]);
    expect(records(ldif)[0]).toEqual([
      `dn: ${VM}`,
      'objectclass: top',
      'objectclass: sstVirtualizationVirtualMachine',
      'description: x',
      'sstmemory: 1024',
      'sstvcpu: 2',
    ]);
  });

  it('writes every value of a multi-valued attribute on its own line, in order', () => {
    const ldif = toLdif([
      { dn: VM, attributes: { sstprovisioningexecutiontime: ['snapshot: 5', 'downtime: 2'] } },
    ]);
    expect(records(ldif)[0]).toEqual([
      `dn: ${VM}`,
      'sstprovisioningexecutiontime: snapshot: 5',
      'sstprovisioningexecutiontime: downtime: 2',
    ]);
  });

  it('writes nothing for an attribute without values', () => {
    expect(toLdif([{ dn: 'ou=a,o=t', attributes: { ou: ['a'], description: [] } }])).toBe(
      'dn: ou=a,o=t\nou: a\n',
    );
  });

  it('returns an empty text for no entries', () => {
    expect(toLdif([])).toBe('');
  });

  it.each([
    ['a URI', 'file:///var/backup/virtualization'],
    ['inner spaces and colons', 'snapshot: 5'],
    ['a value with < inside', 'a<b'],
    ['punctuation', `a,b=c+d;e"f'g\\h#i`],
  ])('writes %s as plain text', (_what, value) => {
    expect(toLdif([{ dn: 'ou=a,o=t', attributes: { description: [value] } }])).toBe(
      `dn: ou=a,o=t\ndescription: ${value}\n`,
    );
  });

  it.each([
    ['non-ASCII characters', 'Zürich', 'WsO8cmljaA=='],
    ['a leading space', ' x', 'IHg='],
    ['a leading colon', ':x', 'Ong='],
    ['a leading <', '<x', 'PHg='],
    ['a newline', 'a\nb', 'YQpi'],
    ['a carriage return', 'a\rb', 'YQ1i'],
    ['a NUL byte', 'a\u0000b', 'YQBi'],
  ])('base64-encodes a value with %s', (_what, value, base64) => {
    expect(toLdif([{ dn: 'ou=a,o=t', attributes: { description: [value] } }])).toBe(
      `dn: ou=a,o=t\ndescription:: ${base64}\n`,
    );
  });

  it('base64-encodes a non-ASCII DN', () => {
    expect(toLdif([{ dn: 'ou=Zürich,o=t', attributes: { ou: ['Zürich'] } }])).toBe(
      'dn:: b3U9WsO8cmljaCxvPXQ=\nou:: WsO8cmljaA==\n',
    );
  });

  it('encodes only the unsafe values of a multi-valued attribute', () => {
    expect(toLdif([{ dn: 'ou=a,o=t', attributes: { description: ['plain', 'Zürich'] } }])).toBe(
      'dn: ou=a,o=t\ndescription: plain\ndescription:: WsO8cmljaA==\n',
    );
  });
});
