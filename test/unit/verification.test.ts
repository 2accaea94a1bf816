import { SAVE_HEADER_BYTES } from '../../src/domain/save-image';
import { describe, expect, it } from 'vitest';
import { buildManifest, parseManifest } from '../../src/domain/manifest';
import {
  describeDomainXml,
  diskDifferences,
  formatMark,
  markOf,
  parseMark,
  stateFileKind,
  verificationDue,
  verifyOutcome,
  type VerifyReport,
} from '../../src/domain/verification';

const PLACEHOLDER = 'Machine is not running, no state file\n';
const SHA = 'a'.repeat(64);

function saveHeader(magic: string, version: number, dataLen: number): Buffer {
  const b = Buffer.alloc(SAVE_HEADER_BYTES);
  b.write(magic, 0, 'latin1');
  b.writeUInt32LE(version, 16);
  b.writeUInt32LE(dataLen, 20);
  return b;
}

const XML = `<domain type='qemu'>
  <name>vm1</name>
  <devices>
    <disk type='file' device='disk'><source file='/img/vm1-b.qcow2'/><target dev='vdb' bus='virtio'/></disk>
    <disk type='file' device='disk'><source file='/img/vm1-a.qcow2'/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><source file='/iso/x.iso'/><target dev='sda' bus='sata'/></disk>
  </devices>
</domain>`;

describe('manifest', () => {
  const m = buildManifest(
    'vm1',
    '20260101T000000Z',
    [
      { name: 'b', size: 1, sha256: SHA },
      { name: 'a', size: 2, sha256: SHA },
    ],
    new Date(0),
  );

  it('lists the files sorted by name and reads back as written', () => {
    expect(m.files.map((f) => f.name)).toEqual(['a', 'b']);
    expect(parseManifest(JSON.stringify(m), 'vm1', '20260101T000000Z')).toEqual(m);
  });

  it.each([
    ['not JSON', '{', /not JSON/],
    ['another format', JSON.stringify({ ...m, format: 'x' }), /not a vmbackup-manifest\/1/],
    ['another VM', JSON.stringify({ ...m, vm: 'vm2' }), /describes vm2/],
    ['a bad digest', JSON.stringify({ ...m, files: [{ name: 'a', size: 1, sha256: 'zz' }] }), /malformed/],
    [
      'a path as name',
      JSON.stringify({ ...m, files: [{ name: '../a', size: 1, sha256: SHA }] }),
      /malformed/,
    ],
    ['a negative size', JSON.stringify({ ...m, files: [{ name: 'a', size: -1, sha256: SHA }] }), /malformed/],
  ])('refuses %s', (_, text, error) => {
    expect(() => parseManifest(text, 'vm1', '20260101T000000Z')).toThrow(error);
  });
});

describe('state file kinds', () => {
  it('knows the placeholder of a shut-down VM', () => {
    expect(stateFileKind(Buffer.from(PLACEHOLDER), PLACEHOLDER)).toEqual({ kind: 'placeholder' });
  });

  it('refuses a placeholder with more after it', () => {
    expect(stateFileKind(Buffer.from(PLACEHOLDER + 'x'), PLACEHOLDER).kind).toBe('bad');
  });

  it('knows a complete libvirt save image and the length of its header data', () => {
    expect(stateFileKind(saveHeader('LibvirtQemudSave', 2, 4096), PLACEHOLDER)).toEqual({
      kind: 'save-image',
      dataBytes: 4096,
    });
  });

  it.each([
    ['a save that never completed', saveHeader('LibvirtQemudPart', 2, 4096), /never completed/],
    ['another magic', saveHeader('LibvirtQemudSavf', 2, 4096), /neither/],
    ['an unknown version', saveHeader('LibvirtQemudSave', 9, 4096), /unknown version 9/],
    ['an empty header', saveHeader('LibvirtQemudSave', 2, 0), /implausible/],
    ['a short file', Buffer.from('LibvirtQemudSave'), /neither/],
  ])('refuses %s', (_, head, problem) => {
    const k = stateFileKind(head, PLACEHOLDER);
    expect(k.kind).toBe('bad');
    expect(k.kind === 'bad' && k.problem).toMatch(problem);
  });
});

describe('describeDomainXml', () => {
  it('reads the name and the file-backed disks, not the CD-ROM', () => {
    expect(describeDomainXml(XML)).toEqual({
      name: 'vm1',
      disks: [
        { target: 'vda', source: '/img/vm1-a.qcow2' },
        { target: 'vdb', source: '/img/vm1-b.qcow2' },
      ],
    });
  });

  it.each([
    ['a DOCTYPE', `<!DOCTYPE d [<!ENTITY x "y">]>${XML}`, /DOCTYPE/],
    ['broken XML', XML.replace('</name>', ''), /not well-formed/],
    ['another root', '<network><name>n</name></network>', /not a <domain>/],
    ['no name', "<domain type='qemu'><devices/></domain>", /no <name>/],
  ])('says what is wrong with %s', (_, xml, error) => {
    const d = describeDomainXml(xml);
    expect('error' in d && d.error).toMatch(error);
  });
});

describe('diskDifferences', () => {
  const a = { target: 'vda', source: '/img/a' };
  it('finds none when XML and LDIF agree', () => {
    expect(diskDifferences([a], [a])).toEqual([]);
  });
  it('names a disk missing on either side and a changed source', () => {
    expect(
      diskDifferences(
        [a, { target: 'vdb', source: '/img/b' }],
        [
          { target: 'vda', source: '/img/x' },
          { target: 'vdc', source: '/img/c' },
        ],
      ),
    ).toEqual([
      'disk vda is /img/a in the XML but /img/x in the LDIF',
      'disk vdb is in the XML but not in the LDIF',
      'disk vdc is in the LDIF but not in the XML',
    ]);
  });
});

describe('verification marks', () => {
  const report = (problems: VerifyReport['problems'], manifest = true): VerifyReport => ({
    vm: 'vm1',
    runDate: '20260101T000000Z',
    backupDir: '/b',
    outcome: verifyOutcome(manifest, problems),
    checkedAt: '2026-01-02T03:04:05.000Z',
    durationMs: 1,
    bytesRead: 0,
    bytesExpected: 0,
    files: 0,
    problems,
  });

  it('passes without problems, fails with any, and says when there is no manifest', () => {
    expect(report([]).outcome).toBe('passed');
    expect(report([{ file: 'f', problem: 'p' }]).outcome).toBe('failed');
    expect(report([], false).outcome).toBe('no-manifest');
    expect(report([{ file: 'f', problem: 'p' }], false).outcome).toBe('failed');
  });

  it('reads back what it wrote, with the first three problems and a count of the rest', () => {
    const problems = ['a', 'b', 'c', 'd', 'e'].map((file) => ({ file, problem: 'SHA-256 differs' }));
    const mark = markOf(report(problems));
    expect(mark.summary).toBe('a: SHA-256 differs; b: SHA-256 differs; c: SHA-256 differs (+2 more)');
    expect(parseMark(formatMark(mark))).toEqual(mark);
    expect(parseMark(formatMark(markOf(report([]))))).toEqual({
      outcome: 'passed',
      checkedAt: '2026-01-02T03:04:05.000Z',
    });
  });

  it('ignores other descriptions and malformed marks', () => {
    expect(parseMark('vmbackup backup directory: /b')).toBeUndefined();
    expect(parseMark('vmbackup verification: maybe 2026-01-01T00:00:00Z')).toBeUndefined();
    expect(parseMark('vmbackup verification: passed yesterday')).toBeUndefined();
  });

  it('is due when never verified or not within the window', () => {
    const now = new Date('2026-01-10T00:00:00Z');
    expect(verificationDue(undefined, now, 7)).toBe(true);
    expect(verificationDue({ outcome: 'passed', checkedAt: '2026-01-04T00:00:00Z' }, now, 7)).toBe(false);
    expect(verificationDue({ outcome: 'passed', checkedAt: '2026-01-03T00:00:00Z' }, now, 7)).toBe(true);
  });
});
