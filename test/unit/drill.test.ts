import { describe, expect, it } from 'vitest';
import { cloneDomainXml, interfaceCount } from '../../src/domain/clone-xml';
import {
  parseSaveData,
  rewriteSaveData,
  SAVE_HEADER_BYTES,
  SAVE_IMAGE_MAGIC,
} from '../../src/domain/save-image';
import { decideDrill, DRILL_ACTIONS, type DrillWorld } from '../../src/domain/steps/drill';

const XML = `<domain type='qemu'>
  <name>web1</name>
  <uuid>e9d2d1ca-4c52-40ff-afcd-1747aa5608f6</uuid>
  <memory unit='KiB'>32768</memory>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='/images/web1-disk0.qcow2'/>
      <backingStore/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <source file='/iso/install.iso'/>
      <target dev='hdc' bus='ide'/>
    </disk>
    <interface type='bridge'>
      <mac address='52:54:00:dc:a6:af'/>
      <source bridge='br0'/>
      <target dev='vnet3'/>
      <model type='virtio'/>
      <address type='pci' domain='0x0000' bus='0x00' slot='0x02' function='0x0'/>
    </interface>
    <console type='pty'/>
  </devices>
</domain>
`;

const spec = {
  name: 'web1-drill-12021215',
  uuid: '11111111-2222-3333-4444-555555555555',
  disks: new Map([['vda', '/retain/drills/web1/x/web1-disk0.qcow2']]),
};

describe('cloneDomainXml', () => {
  it('gives the copy its name, UUID and disk copies and keeps everything else as written', () => {
    const out = cloneDomainXml(XML, { ...spec, interfaces: 'keep' });
    expect(out).toContain('<name>web1-drill-12021215</name>');
    expect(out).toContain('<uuid>11111111-2222-3333-4444-555555555555</uuid>');
    expect(out).toContain(`<source file="/retain/drills/web1/x/web1-disk0.qcow2"/>`);
    expect(out).toContain(`<source file="/iso/install.iso"/>`); // a cdrom is not copied
    expect(out).toContain('<backingStore/>');
    expect(out).toContain(`<source bridge="br0"/>`);
    expect(out).not.toContain('e9d2d1ca');
    // Idempotent on its own output.
    expect(cloneDomainXml(out, { ...spec, interfaces: 'keep' })).toBe(out);
  });

  it('removes interfaces, or moves them onto an isolated network without their host ties', () => {
    expect(interfaceCount(cloneDomainXml(XML, { ...spec, interfaces: 'remove' }))).toBe(0);
    const moved = cloneDomainXml(XML, { ...spec, interfaces: { network: 'vmbackup-drill' } });
    expect(interfaceCount(moved)).toBe(1);
    expect(moved).toContain('<interface type="network">');
    expect(moved).toContain('<source network="vmbackup-drill"/>');
    expect(moved).not.toContain('br0');
    expect(moved).not.toContain('vnet3');
    expect(moved).toContain('52:54:00:dc:a6:af');
    expect(moved).toContain(`slot="0x02"`); // the guest's PCI address stays: the saved state has it
  });

  it('gives new MAC addresses', () => {
    const out = cloneDomainXml(XML, { ...spec, interfaces: 'keep', macs: ['52:54:00:00:00:01'] });
    expect(out).toContain('52:54:00:00:00:01');
    expect(out).not.toContain('52:54:00:dc:a6:af');
  });

  it('refuses a disk without a copy, a copy for a disk it lacks, and XML with a DTD', () => {
    expect(() => cloneDomainXml(XML, { ...spec, disks: new Map(), interfaces: 'keep' })).toThrow(
      /no copy.*vda/,
    );
    expect(() =>
      cloneDomainXml(XML, { ...spec, disks: new Map([...spec.disks, ['vdb', '/x']]), interfaces: 'keep' }),
    ).toThrow(/no disk vdb/);
    expect(() =>
      cloneDomainXml(`<!DOCTYPE x [<!ENTITY a "b">]>${XML}`, { ...spec, interfaces: 'keep' }),
    ).toThrow(/DOCTYPE/);
  });

  it("refuses a UEFI VM's <nvram>: the copy would write the original's variable store", () => {
    const uefi = XML.replace(
      '<devices>',
      '<os><nvram>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram></os>\n  <devices>',
    );
    expect(() => cloneDomainXml(uefi, { ...spec, interfaces: 'keep' })).toThrow(/nvram/);
  });

  it('escapes what it writes: a name cannot inject XML', () => {
    const out = cloneDomainXml(XML, { ...spec, name: `a<b>&"c'`, interfaces: 'keep' });
    expect(out).toContain('<name>a&lt;b&gt;&amp;&quot;c&apos;</name>');
  });
});

/** A save image's first bytes as libvirt 9.0 writes them: the cookie right behind the XML, padding after. */
function image(xml: string, cookie: string | undefined, dataLen: number): Buffer {
  const b = Buffer.alloc(SAVE_HEADER_BYTES + dataLen);
  b.write(SAVE_IMAGE_MAGIC, 0, 'latin1');
  const xmlLen = Buffer.byteLength(xml) + 1;
  [2, dataLen, 1, 0, cookie === undefined ? 0 : xmlLen].forEach((w, i) => b.writeUInt32LE(w, 16 + 4 * i));
  b.write(xml, SAVE_HEADER_BYTES, 'utf8');
  if (cookie !== undefined) b.write(cookie, SAVE_HEADER_BYTES + xmlLen, 'utf8');
  return b;
}

describe('save image header', () => {
  const cookie = '<cookie><cpu mode="custom"/></cookie>\n';

  it('reads XML and cookie, and rewrites a longer XML in the same length, the cookie moved behind it', () => {
    const orig = image('<domain>a</domain>', cookie, 4096);
    const parsed = parseSaveData(orig);
    expect(parsed).toMatchObject({
      xml: '<domain>a</domain>',
      cookie,
      header: { dataLen: 4096, wasRunning: 1 },
    });
    const longer = `<domain>${'b'.repeat(1000)}</domain>`;
    const out = rewriteSaveData(parsed, longer);
    expect(out.length).toBe(orig.length);
    const again = parseSaveData(out);
    expect(again.xml).toBe(longer);
    expect(again.cookie).toBe(cookie);
    expect(again.header.cookieOffset).toBe(Buffer.byteLength(longer) + 1);
    expect(again.header).toMatchObject({ version: 2, dataLen: 4096, wasRunning: 1, compressed: 0 });
    // Shorter again: no trace of the longer one remains in the data.
    const short = rewriteSaveData(again, '<domain/>');
    expect(parseSaveData(short).xml).toBe('<domain/>');
    expect(short.includes(Buffer.from('bbbb'))).toBe(false);
  });

  it('keeps an image without a cookie without one', () => {
    const out = rewriteSaveData(parseSaveData(image('<domain/>', undefined, 512)), '<domain>x</domain>');
    expect(parseSaveData(out)).toMatchObject({
      xml: '<domain>x</domain>',
      cookie: undefined,
      header: { cookieOffset: 0 },
    });
  });

  it('refuses an XML that does not fit, a NUL in it, and what is not a save image', () => {
    const parsed = parseSaveData(image('<domain/>', cookie, 100));
    expect(() => rewriteSaveData(parsed, `<domain>${'x'.repeat(100)}</domain>`)).toThrow(/do not fit/);
    expect(() => rewriteSaveData(parsed, '<domain>\0</domain>')).toThrow(/NUL/);
    expect(() => parseSaveData(Buffer.from('Machine is not running, no state file\n'))).toThrow(/save image/);
    const wrong = image('<domain/>', cookie, 100);
    wrong.write('X', 0);
    expect(() => parseSaveData(wrong)).toThrow(/magic/);
  });
});

const base: DrillWorld = {
  vm: 'web1',
  scratch: 'web1-drill-1',
  journal: 'ours',
  scratchDirExists: true,
  domain: { state: 'absent', reason: '' },
  domainOurs: false,
  disks: [{ target: 'vda', copied: true }],
  withState: true,
  stateCopied: true,
  compared: true,
  failed: false,
  needsNetwork: false,
  networkReady: false,
  started: false,
  checked: false,
  resultWritten: false,
};
const running = { state: 'running' as const, reason: 'restored' };
const next = (w: Partial<DrillWorld>) => {
  const d = decideDrill({ ...base, ...w });
  return d.kind === 'act' ? `${d.action.kind}${d.action.target ? ` ${d.action.target}` : ''}` : d.kind;
};

describe('decideDrill', () => {
  it('walks a drill from nothing to done', () => {
    expect(
      next({
        journal: 'none',
        scratchDirExists: false,
        disks: [{ target: 'vda', copied: false }],
        stateCopied: false,
        compared: false,
      }),
    ).toBe('begin');
    expect(next({ disks: [{ target: 'vda', copied: false }], stateCopied: false, compared: false })).toBe(
      'copy-disk vda',
    );
    expect(next({ stateCopied: false, compared: false })).toBe('copy-state');
    expect(next({ compared: false })).toBe('compare-disks');
    expect(next({ needsNetwork: true })).toBe('ensure-network');
    expect(next({})).toBe('start-scratch');
    expect(next({ started: true, domain: running, domainOurs: true })).toBe('check-running');
    expect(next({ started: true, checked: true, domain: running, domainOurs: true })).toBe('destroy-scratch');
    expect(next({ started: true, checked: true })).toBe('write-result');
    expect(next({ started: true, checked: true, resultWritten: true })).toBe('remove-scratch');
    expect(next({ journal: 'none', scratchDirExists: false, resultWritten: true })).toBe('done');
  });

  it('a boot needs no state copy; a start killed halfway is checked, not repeated', () => {
    expect(next({ withState: false, stateCopied: false })).toBe('start-scratch');
    expect(next({ domain: running, domainOurs: true })).toBe('check-running');
    expect(next({ domain: { state: 'paused', reason: '', job: 'Restore' }, domainOurs: true })).toBe('wait');
  });

  it('a failure skips to the result, destroying a running scratch VM first', () => {
    expect(next({ failed: true, disks: [{ target: 'vda', copied: false }] })).toBe('write-result');
    expect(next({ failed: true, domain: running, domainOurs: true })).toBe('destroy-scratch');
    expect(next({ failed: true, resultWritten: true })).toBe('remove-scratch');
  });

  it("cleans up an earlier drill's leftovers before it begins", () => {
    expect(next({ journal: 'stale', domain: running, domainOurs: true })).toBe('destroy-scratch');
    expect(next({ journal: 'stale' })).toBe('remove-scratch');
    expect(next({ journal: 'none', scratchDirExists: true })).toBe('begin');
  });

  it('never touches a domain of that name it did not make', () => {
    for (const journal of ['none', 'ours', 'stale'] as const)
      expect(next({ journal, domain: running, domainOurs: false })).toBe('refuse');
  });

  it('never starts a VM once the result is written or after a failure, in any world (exhaustive)', () => {
    const bools = [false, true];
    let worlds = 0;
    for (const journal of ['none', 'ours', 'stale'] as const)
      for (const state of ['absent', 'running', 'shut off'] as const)
        for (const failed of bools)
          for (const resultWritten of bools)
            for (const started of bools)
              for (const checked of bools)
                for (const compared of bools)
                  for (const copied of bools) {
                    const w: DrillWorld = {
                      ...base,
                      journal,
                      domain: { state, reason: '' },
                      domainOurs: state !== 'absent',
                      failed,
                      resultWritten,
                      started,
                      checked,
                      compared,
                      disks: [{ target: 'vda', copied }],
                    };
                    const d = decideDrill(w);
                    worlds++;
                    if (d.kind !== 'act') continue;
                    expect(DRILL_ACTIONS).toContain(d.action.kind);
                    if (d.action.kind === 'start-scratch') {
                      expect(failed || resultWritten || !compared || !copied || journal !== 'ours').toBe(
                        false,
                      );
                      expect(state).not.toBe('running');
                    }
                    if (d.action.kind === 'write-result') expect(state).not.toBe('running');
                  }
    expect(worlds).toBe(3 * 3 * 64);
  });
});
