/**
 * Small, targeted edits of libvirt domain XML. libvirt writes this XML itself, so the
 * shapes are regular; we only touch `<disk>` elements.
 */

function escapeAttr(value: string): string {
  return value
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/'/g, '&apos;')
    .replace(/"/g, '&quot;');
}

function unescapeAttr(value: string): string {
  return value
    .replace(/&apos;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

const DISK = /<disk\b[^>]*>[\s\S]*?<\/disk>/g;

function attr(element: string, tag: string, name: string): string | undefined {
  const m = new RegExp(`<${tag}\\b[^>]*\\b${name}=(['"])(.*?)\\1`).exec(element);
  return m?.[2] !== undefined ? unescapeAttr(m[2]) : undefined;
}

/** Target → source file of every file-backed `<disk device='disk'>`. */
export function fileDisks(xml: string): Map<string, string> {
  const disks = new Map<string, string>();
  for (const disk of xml.match(DISK) ?? []) {
    if (!/^<disk\b[^>]*\btype=['"]file['"]/.test(disk) || !/^<disk\b[^>]*\bdevice=['"]disk['"]/.test(disk))
      continue;
    const target = attr(disk, 'target', 'dev');
    const source = attr(disk, 'source', 'file');
    if (target && source) disks.set(target, source);
  }
  return disks;
}

export interface XmlDisk {
  target: string;
  /** `file`, `block`, `network`, `volume`, … */
  type: string;
  /** `disk`, `cdrom`, `floppy`, `lun` */
  device: string;
  source?: string | undefined;
}

/** Every `<disk>` of the domain, whatever its kind: what a backup must account for. */
export function allDisks(xml: string): XmlDisk[] {
  const out: XmlDisk[] = [];
  for (const disk of xml.match(DISK) ?? []) {
    const head = /^<disk\b[^>]*>/.exec(disk)?.[0] ?? '';
    const type = /\btype=(['"])(.*?)\1/.exec(head)?.[2] ?? 'file';
    const device = /\bdevice=(['"])(.*?)\1/.exec(head)?.[2] ?? 'disk';
    const target = attr(disk, 'target', 'dev') ?? '';
    const source =
      attr(disk, 'source', 'file') ?? attr(disk, 'source', 'dev') ?? attr(disk, 'source', 'name');
    out.push({ target, type, device, source });
  }
  return out;
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

/** Guest memory in bytes from `<memory unit='…'>`. */
export function memoryBytes(xml: string): number {
  const m = /<memory\b([^>]*)>(\d+)<\/memory>/.exec(xml);
  if (!m) return 0;
  return toBytes(Number(m[2]), /\bunit=['"](\w+)['"]/.exec(m[1] ?? '')?.[1]);
}

/** Removes the first `<backingStore …>` element of a disk, however deeply nested its chain. */
function withoutBackingStore(disk: string): string {
  const start = disk.indexOf('<backingStore');
  if (start < 0) return disk;
  const open = /<backingStore\b[^>]*?(\/?)>/y;
  let depth = 0;
  let i = start;
  while (i < disk.length) {
    open.lastIndex = i;
    const m = open.exec(disk);
    if (m) {
      i = open.lastIndex;
      if (m[1] !== '/') depth++;
      else if (depth === 0) return disk.slice(0, start) + disk.slice(i);
      continue;
    }
    if (disk.startsWith('</backingStore>', i)) {
      i += '</backingStore>'.length;
      depth--;
      if (depth === 0) return disk.slice(0, start) + disk.slice(i);
      continue;
    }
    i++;
  }
  return disk;
}

/**
 * Points each named disk at its retained image as backing file. A saved state records
 * `<backingStore/>` (no backing) for images that had none; restoring with that XML
 * would open the new overlay alone and the guest would see an empty disk.
 */
export function withBackingFiles(xml: string, backingByTarget: ReadonlyMap<string, string>): string {
  const seen = new Set<string>();
  const out = xml.replace(DISK, (disk) => {
    const target = attr(disk, 'target', 'dev');
    const backing = target ? backingByTarget.get(target) : undefined;
    if (!target || backing === undefined) return disk;
    seen.add(target);
    const stripped = withoutBackingStore(disk);
    const element = `<backingStore type='file'><format type='qcow2'/><source file='${escapeAttr(backing)}'/><backingStore/></backingStore>`;
    return stripped.replace(/(<source\b[^>]*\/>|<source\b[^>]*>[\s\S]*?<\/source>)/, `$1\n      ${element}`);
  });
  const missing = [...backingByTarget.keys()].filter((t) => !seen.has(t));
  if (missing.length) throw new Error(`domain XML has no disk ${missing.join(', ')}`);
  return out;
}
