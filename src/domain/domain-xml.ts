import { BackupError, ErrorCode } from './errors';
import { XmlSyntaxError } from './xml/entities';
import { parseDomainXml } from './xml/parse';
import { serializeXml } from './xml/serialize';
import { XmlElement, type XmlDocument } from './xml/tree';

/**
 * What the node reads from and changes in libvirt domain XML: disks, memory and backing
 * files, on the parsed tree (src/domain/xml); everything not touched is written back as
 * libvirt wrote it.
 */

/** The domain XML parsed, or a BackupError saying why it cannot be one. */
export function readDomainXml(xml: string, what = 'domain XML'): XmlDocument {
  try {
    return parseDomainXml(xml);
  } catch (e) {
    if (e instanceof XmlSyntaxError)
      throw new BackupError(ErrorCode.unsupportedConfigurationValue, `${what} ${e.detail}`);
    throw e;
  }
}

/** The `<devices>` children of the domain named `name`, in document order. */
export function devicesOf(domain: XmlElement, name: string): XmlElement[] {
  return domain.elements('devices').flatMap((d) => d.elements(name));
}

export interface XmlDisk {
  target: string;
  /** `file`, `block`, `network`, `volume`, … */
  type: string;
  /** `disk`, `cdrom`, `floppy`, `lun` */
  device: string;
  source?: string | undefined;
}

function describeDisk(disk: XmlElement): XmlDisk {
  const source = disk.first('source');
  return {
    target: disk.first('target')?.attr('dev') ?? '',
    // libvirt's defaults when the attributes are left out
    type: disk.attr('type') ?? 'file',
    device: disk.attr('device') ?? 'disk',
    source: source?.attr('file') ?? source?.attr('dev') ?? source?.attr('name'),
  };
}

/** Target → source file of every file-backed `<disk device='disk'>` of a parsed domain. */
export function fileDisksOf(domain: XmlElement): Map<string, string> {
  const disks = new Map<string, string>();
  for (const d of devicesOf(domain, 'disk').map(describeDisk))
    if (d.type === 'file' && d.device === 'disk' && d.target && d.source) disks.set(d.target, d.source);
  return disks;
}

/** Target → source file of every file-backed `<disk device='disk'>`. */
export function fileDisks(xml: string): Map<string, string> {
  return fileDisksOf(readDomainXml(xml).root);
}

/** Every `<disk>` of the domain, whatever its kind: what a backup must account for. */
export function allDisks(xml: string): XmlDisk[] {
  return devicesOf(readDomainXml(xml).root, 'disk').map(describeDisk);
}

// libvirt's units: powers of 1000 for KB/MB/…, of 1024 for k/KiB/M/MiB/….
const UNITS: Record<string, number> = {
  b: 1,
  bytes: 1,
  kb: 1e3,
  k: 1024,
  kib: 1024,
  mb: 1e6,
  m: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1e9,
  g: 1024 ** 3,
  gib: 1024 ** 3,
  tb: 1e12,
  t: 1024 ** 4,
  tib: 1024 ** 4,
};

/** `value` in `unit` (libvirt's spelling, default KiB) as bytes. */
export function toBytes(value: number, unit = 'KiB'): number {
  return value * (UNITS[unit.toLowerCase()] ?? 1024);
}

/** Guest memory in bytes from the domain's `<memory unit='…'>`, or undefined without one. */
export function memoryBytesOf(domain: XmlElement): number | undefined {
  const memory = domain.first('memory');
  const n = memory?.text().trim();
  if (!memory || !n || !/^\d+$/.test(n)) return undefined;
  return toBytes(Number(n), memory.attr('unit'));
}

/** Guest memory in bytes from `<memory unit='…'>`; 0 without one. */
export function memoryBytes(xml: string): number {
  return memoryBytesOf(readDomainXml(xml).root) ?? 0;
}

/** `<backingStore type='file'><format type='qcow2'/><source file='…'/><backingStore/></backingStore>` */
function backingStore(file: string): XmlElement {
  return new XmlElement('backingStore', { type: 'file' }, [
    new XmlElement('format', { type: 'qcow2' }),
    new XmlElement('source', { file }),
    new XmlElement('backingStore'),
  ]);
}

/**
 * Points each named disk at its retained image as backing file, right after its
 * `<source>`, in place of whatever backing chain it had. A saved state records
 * `<backingStore/>` (no backing) for images that had none; restoring with that XML
 * would open the new overlay alone and the guest would see an empty disk.
 */
export function withBackingFiles(xml: string, backingByTarget: ReadonlyMap<string, string>): string {
  const doc = readDomainXml(xml);
  if (!backingByTarget.size) return xml;
  const seen = new Set<string>();
  for (const disk of devicesOf(doc.root, 'disk')) {
    const target = disk.first('target')?.attr('dev');
    const backing = target === undefined ? undefined : backingByTarget.get(target);
    if (target === undefined || backing === undefined) continue;
    const source = disk.first('source');
    if (!source) throw new Error(`disk ${target} of the domain XML has no <source>`);
    disk.remove(...disk.elements('backingStore'));
    disk.insertAfter(source, backingStore(backing));
    seen.add(target);
  }
  const missing = [...backingByTarget.keys()].filter((t) => !seen.has(t));
  if (missing.length) throw new Error(`domain XML has no disk ${missing.join(', ')}`);
  return serializeXml(doc);
}
