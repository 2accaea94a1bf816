import { randomUUID } from 'node:crypto';
import { promises as fs } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cloneDomainXml, interfaceCount, interfaceMacs } from '../../src/domain/clone-xml';
import { xmlFacts } from '../../src/domain/conflicts';
import { allDisks, fileDisks, memoryBytes, withBackingFiles } from '../../src/domain/domain-xml';
import { checkRestoreXml } from '../../src/domain/restore-xml';
import { describeDomainXml } from '../../src/domain/verification';
import { escapeXml } from '../../src/domain/xml/entities';
import { parseDomainXml } from '../../src/domain/xml/parse';
import { serializeXml } from '../../src/domain/xml/serialize';
import { loadDevEnv } from '../support/dev-env';

/**
 * The XML code on the XML libvirt itself writes: a one-disk and a two-disk VM with network
 * interfaces, running and inactive, read, edited, and the edits defined again by libvirt.
 */

loadDevEnv();
const URI = process.env['LIBVIRT_URI']!;
const IMAGES_ROOT = process.env['VMBACKUP_IMAGES_ROOT']!;
const tag = String(process.pid % 100000);
const DIR = path.join(IMAGES_ROOT, `vmxt-${tag}`);
const NETWORK = `vmxt-net-${tag}`;
const BRIDGE = `vmxt${tag}`; // at most 15 characters
const MiB = 1024 * 1024;

async function virsh(...args: string[]): Promise<string> {
  return (await execa('virsh', ['-q', '-c', URI, ...args])).stdout;
}

/** Runs virsh and ignores a failure: for the cleanup of what may not exist. */
async function tryVirsh(...args: string[]): Promise<void> {
  await execa('virsh', ['-q', '-c', URI, ...args], { reject: false });
}

async function qcow2(file: string): Promise<string> {
  await execa('qemu-img', ['create', '-q', '-f', 'qcow2', file, '64M']);
  return file;
}

async function defineXml(name: string, xml: string): Promise<void> {
  const file = path.join(DIR, `${name}.xml`);
  await fs.writeFile(file, xml);
  await virsh('define', '--', file);
  domains.add(name);
}

const domains = new Set<string>();

interface TestVm {
  name: string;
  description: string;
  disks: Map<string, string>;
  interfaces: Array<{ mac: string; source: string; model: string }>;
  running: string;
  inactive: string;
}

/** The XML a test writes by hand; libvirt's own XML is what `virsh dumpxml` gives back. */
function handXml(vm: Omit<TestVm, 'running' | 'inactive'>): string {
  const disks = [...vm.disks]
    .map(
      ([target, file]) => `    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${escapeXml(file)}'/>
      <target dev='${target}' bus='virtio'/>
    </disk>`,
    )
    .join('\n');
  const interfaces = vm.interfaces
    .map((i) =>
      i.source === 'user'
        ? `    <interface type='user'><mac address='${i.mac}'/><model type='${i.model}'/></interface>`
        : `    <interface type='network'><mac address='${i.mac}'/><source network='${i.source}'/><model type='${i.model}'/></interface>`,
    )
    .join('\n');
  return `<domain type='qemu'>
  <name>${vm.name}</name>
  <description>${escapeXml(vm.description)}</description>
  <memory unit='MiB'>32</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
${disks}
${interfaces}
    <console type='pty'/>
    <memballoon model='none'/>
  </devices>
</domain>
`;
}

async function makeVm(vm: Omit<TestVm, 'running' | 'inactive'>): Promise<TestVm> {
  for (const file of vm.disks.values()) await qcow2(file);
  await defineXml(vm.name, handXml(vm));
  await virsh('start', '--', vm.name);
  return {
    ...vm,
    running: await virsh('dumpxml', '--', vm.name),
    inactive: await virsh('dumpxml', '--inactive', '--', vm.name),
  };
}

let one: TestVm;
let two: TestVm;

beforeAll(async () => {
  await fs.mkdir(DIR, { recursive: true });
  const netFile = path.join(DIR, 'network.xml');
  await fs.writeFile(
    netFile,
    `<network><name>${NETWORK}</name><bridge name='${BRIDGE}' stp='on' delay='0'/></network>\n`,
  );
  await virsh('net-define', '--', netFile);
  await virsh('net-start', '--', NETWORK);
  one = await makeVm({
    name: `vmxt-one-${tag}`,
    description: 'one disk, one network',
    disks: new Map([['vda', path.join(DIR, 'one-disk0.qcow2')]]),
    interfaces: [{ mac: '52:54:00:7e:01:01', source: NETWORK, model: 'virtio' }],
  });
  two = await makeVm({
    name: `vmxt-two-${tag}`,
    // What libvirt escapes its own way: &, <, > and both quotes, in text and in a file name.
    description: `disks & nets <two> 'q' "d"`,
    disks: new Map([
      ['vda', path.join(DIR, "two-disk0 a&b'c.qcow2")],
      ['vdb', path.join(DIR, 'two-disk1.qcow2')],
    ]),
    interfaces: [
      { mac: '52:54:00:7e:02:01', source: NETWORK, model: 'virtio' },
      { mac: '52:54:00:7e:02:02', source: 'user', model: 'e1000' },
    ],
  });
});

afterAll(async () => {
  for (const name of domains) {
    await tryVirsh('destroy', '--', name);
    await tryVirsh('undefine', '--', name);
  }
  await tryVirsh('net-destroy', '--', NETWORK);
  await tryVirsh('net-undefine', '--', NETWORK);
  await fs.rm(DIR, { recursive: true, force: true });
});

const vms = () => [one, two];

describe.each(['one', 'two'] as const)('libvirt XML of the %s-disk VM', (which) => {
  const vm = () => (which === 'one' ? one : two);
  const both = () => [
    ['running', vm().running],
    ['inactive', vm().inactive],
  ];

  it('is what libvirt wrote: live details in the running XML only', () => {
    expect(vm().running).toMatch(/<domain type='qemu' id='\d+'>/);
    expect(vm().running).toContain(`bridge='${BRIDGE}'`);
    expect(vm().inactive).not.toContain(`bridge='${BRIDGE}'`);
  });

  it('comes back byte for byte from the parser and serializer', () => {
    for (const [, xml] of both()) expect(serializeXml(parseDomainXml(xml!))).toBe(xml);
  });

  it('gives its file disks, all disks and memory', () => {
    for (const [, xml] of both()) {
      expect(fileDisks(xml!)).toEqual(vm().disks);
      expect(allDisks(xml!)).toEqual(
        [...vm().disks].map(([target, source]) => ({ target, source, type: 'file', device: 'disk' })),
      );
      expect(memoryBytes(xml!)).toBe(32 * MiB);
      expect(describeDomainXml(xml!)).toEqual({
        name: vm().name,
        disks: [...vm().disks].map(([target, source]) => ({ target, source })),
      });
    }
  });

  it('gives the facts a restore compares: name, description, disks, interfaces with MAC and source', () => {
    for (const [, xml] of both()) {
      const f = xmlFacts(xml!);
      expect(f.name).toBe(vm().name);
      expect(f.description).toBe(vm().description);
      expect(f.memoryBytes).toBe(String(32 * MiB));
      expect(f.vcpu).toBe('1');
      expect(f.disks).toEqual(
        new Map([...vm().disks].map(([t, source]) => [t, { source, format: 'qcow2' }])),
      );
      expect(f.interfaces).toEqual(
        vm().interfaces.map((i) => ({ ...i, source: i.source === 'user' ? null : i.source })),
      );
      expect(interfaceMacs(xml!)).toEqual(vm().interfaces.map((i) => i.mac));
    }
  });

  it('accepts its inactive XML as restore XML, and refuses what no decision reaches', () => {
    const rules = { vm: vm().name, imagesRoot: IMAGES_ROOT, withState: true };
    expect(checkRestoreXml(vm().inactive, vm().inactive, rules)).toEqual(vm().disks);
    const doc = parseDomainXml(vm().inactive);
    doc.root.first('description')!.setText('changed & <decided>');
    expect(checkRestoreXml(vm().inactive, serializeXml(doc), rules)).toEqual(vm().disks);
    doc.root.at('devices', 'emulator')!.setText('/tmp/evil-qemu');
    expect(() => checkRestoreXml(vm().inactive, serializeXml(doc), rules)).toThrow(
      /restore XML refused.*devices\/emulator/,
    );
    const mac = vm().inactive.replace(vm().interfaces[0]!.mac, '52:54:00:7e:ff:ff');
    expect(() => checkRestoreXml(vm().inactive, mac, rules)).toThrow(/MAC/);
    expect(checkRestoreXml(vm().inactive, mac, { ...rules, withState: false })).toEqual(vm().disks);
  });
});

describe('edits libvirt defines', () => {
  /** A scratch copy of a VM: its own name, UUID and images, on the test network. */
  async function scratch(vm: TestVm, xml: string, suffix: string) {
    const name = `${vm.name}-${suffix}`;
    const disks = new Map<string, string>();
    for (const target of vm.disks.keys())
      disks.set(target, await qcow2(path.join(DIR, `${name}-${target}.qcow2`)));
    return { name, disks, uuid: randomUUID(), xml };
  }

  it('withBackingFiles: a backing file per disk, kept by libvirt in the definition and opened at start', async () => {
    for (const vm of vms()) {
      const backing = new Map<string, string>();
      for (const target of vm.disks.keys())
        backing.set(target, await qcow2(path.join(DIR, `${vm.name}-${target}.retained 'b'&.qcow2`)));
      const edited = withBackingFiles(vm.inactive, backing);
      // Only the backing stores changed.
      const chains = parseDomainXml(edited)
        .root.at('devices')!
        .elements('disk')
        .map((d) => d.first('backingStore'));
      expect(chains.map((b) => b?.at('source')?.attr('file'))).toEqual([...backing.values()]);
      expect(chains.map((b) => b?.at('format')?.attr('type'))).toEqual(
        [...backing.values()].map(() => 'qcow2'),
      );
      expect(fileDisks(edited)).toEqual(vm.disks);
      const s = await scratch(vm, edited, 'bk');
      const copy = cloneDomainXml(edited, { ...s, interfaces: { network: NETWORK } });
      await defineXml(s.name, copy);
      const defined = await virsh('dumpxml', '--inactive', '--', s.name);
      expect(fileDisks(defined)).toEqual(s.disks);
      const definedChains = parseDomainXml(defined)
        .root.at('devices')!
        .elements('disk')
        .map((d) => d.at('backingStore', 'source')?.attr('file'));
      expect(definedChains).toEqual([...backing.values()]);
      await virsh('start', '--paused', '--', s.name);
      const running = await virsh('dumpxml', '--', s.name);
      const runningChains = parseDomainXml(running)
        .root.at('devices')!
        .elements('disk')
        .map((d) => d.at('backingStore', 'source')?.attr('file'));
      expect(runningChains).toEqual([...backing.values()]);
      await virsh('destroy', '--', s.name);
    }
  });

  it('withBackingFiles refuses a disk the XML has not', () => {
    expect(() => withBackingFiles(one.inactive, new Map([['vdz', '/x.qcow2']]))).toThrow(
      'domain XML has no disk vdz',
    );
  });

  it('cloneDomainXml: copies libvirt defines, with interfaces kept, moved or removed and new MACs', async () => {
    for (const vm of vms()) {
      const kept = await scratch(vm, vm.inactive, 'keep');
      const macs = vm.interfaces.map((_, i) => `52:54:00:7e:0c:${String(i).padStart(2, '0')}`);
      await defineXml(kept.name, cloneDomainXml(vm.inactive, { ...kept, interfaces: 'keep', macs }));
      const keptXml = await virsh('dumpxml', '--inactive', '--', kept.name);
      expect(xmlFacts(keptXml)).toMatchObject({ name: kept.name, description: vm.description });
      expect(fileDisks(keptXml)).toEqual(kept.disks);
      expect(interfaceMacs(keptXml)).toEqual(macs);
      expect(xmlFacts(keptXml).interfaces.map((i) => i.source)).toEqual(
        vm.interfaces.map((i) => (i.source === 'user' ? null : i.source)),
      );
      expect(await virsh('domuuid', '--', kept.name)).toBe(kept.uuid);

      // From the running XML, as a drill does from a saved state: on the test network only.
      const moved = await scratch(vm, vm.running, 'move');
      await defineXml(moved.name, cloneDomainXml(vm.running, { ...moved, interfaces: { network: NETWORK } }));
      const movedXml = await virsh('dumpxml', '--inactive', '--', moved.name);
      expect(xmlFacts(movedXml).interfaces).toEqual(
        vm.interfaces.map((i) => ({ mac: i.mac, source: NETWORK, model: i.model })),
      );
      expect(fileDisks(movedXml)).toEqual(moved.disks);

      const bare = await scratch(vm, vm.inactive, 'bare');
      await defineXml(bare.name, cloneDomainXml(vm.inactive, { ...bare, interfaces: 'remove' }));
      const bareXml = await virsh('dumpxml', '--inactive', '--', bare.name);
      expect(interfaceCount(bareXml)).toBe(0);
      expect(fileDisks(bareXml)).toEqual(bare.disks);
      await virsh('start', '--paused', '--', bare.name);
      await virsh('destroy', '--', bare.name);
    }
  });
});
