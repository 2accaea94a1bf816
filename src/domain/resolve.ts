import type { Conflict, Decision } from './conflicts';
import type { Attributes } from './plan';

/**
 * The configuration a restore writes: the live directory entries and the backed-up XML
 * (the saved state needs the backed-up machine), each changed where the user chose the
 * other side.
 */
export interface ResolvedEntry {
  /** DN relative to the VM entry (`.` for the VM entry itself), lower-cased. */
  rdn: string;
  attributes: Record<string, string[]>;
}

function relative(dn: string, vmDn: string): string {
  const d = dn.toLowerCase();
  const base = vmDn.toLowerCase();
  return d === base ? '.' : d.endsWith(`,${base}`) ? d.slice(0, -(base.length + 1)) : d;
}

function byRdn(
  entries: ReadonlyArray<{ dn: string; attributes: Attributes }>,
  vmDn: string,
): Map<string, Record<string, string[]>> {
  return new Map(
    entries.map((e) => [
      relative(e.dn, vmDn),
      Object.fromEntries(Object.entries(e.attributes).map(([k, v]) => [k, [...v]])),
    ]),
  );
}

export function resolveEntries(
  backup: { vmDn: string; entries: ReadonlyArray<{ dn: string; attributes: Attributes }> },
  live: { vmDn: string; entries: ReadonlyArray<{ dn: string; attributes: Attributes }> },
  conflicts: readonly Conflict[],
  decision: Decision,
): ResolvedEntry[] {
  const b = byRdn(backup.entries, backup.vmDn);
  const resolved = byRdn(live.entries, live.vmDn);
  for (const c of conflicts) {
    if (c.source !== 'directory' || decision[c.id] !== 'backup') continue;
    const [, rdn, attribute] = /^dir:(.*):([^:]+)$/.exec(c.id) as unknown as [string, string, string];
    const values = b.get(rdn)?.[attribute];
    const entry = resolved.get(rdn) ?? {};
    if (values?.length) entry[attribute] = [...values];
    else delete entry[attribute];
    resolved.set(rdn, entry);
  }
  return [...resolved.entries()]
    .filter(([, attributes]) => Object.keys(attributes).length > 0)
    .map(([rdn, attributes]) => ({ rdn, attributes }))
    .sort((x, y) =>
      x.rdn === '.'
        ? -1
        : y.rdn === '.'
          ? 1
          : x.rdn.split(',').length - y.rdn.split(',').length || x.rdn.localeCompare(y.rdn),
    );
}

function escapeText(v: string): string {
  return v.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function escapeAttr(v: string): string {
  return escapeText(v).replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

function setDescription(xml: string, value: string | null): string {
  const without = xml.replace(/\n?\s*<description>[\s\S]*?<\/description>/, '');
  if (value === null) return without;
  return without.replace(/(<name>[\s\S]*?<\/name>)/, `$1\n  <description>${escapeText(value)}</description>`);
}

function setInDevice(
  xml: string,
  element: 'disk' | 'interface',
  pick: (el: string, index: number) => boolean,
  edit: (el: string) => string,
): string {
  let index = 0;
  return xml.replace(new RegExp(`<${element}\\b[^>]*>[\\s\\S]*?</${element}>`, 'g'), (el) => {
    const hit = pick(el, index);
    if (element === 'interface' || /device=['"]disk['"]/.test(el)) index++;
    return hit ? edit(el) : el;
  });
}

/** Backed-up XML with the live value put back wherever the user chose the live side. */
export function resolveXml(backupXml: string, conflicts: readonly Conflict[], decision: Decision): string {
  let xml = backupXml;
  for (const c of conflicts) {
    if (c.source !== 'xml' || decision[c.id] !== 'live') continue;
    const disk = /^xml:disk\[(\w+)\]$/.exec(c.id);
    const iface = /^xml:interface\[(\d+)\]\.(mac|source)$/.exec(c.id);
    if (c.id === 'xml:description') xml = setDescription(xml, c.live);
    else if (c.id === 'xml:memory' && c.live) {
      const kib = String(Math.floor(Number(c.live) / 1024));
      xml = xml
        .replace(/<memory\b[^>]*>\d+<\/memory>/, `<memory unit='KiB'>${kib}</memory>`)
        .replace(
          /<currentMemory\b[^>]*>\d+<\/currentMemory>/,
          `<currentMemory unit='KiB'>${kib}</currentMemory>`,
        );
    } else if (c.id === 'xml:vcpu' && c.live)
      xml = xml.replace(/(<vcpu\b[^>]*>)\d+(<\/vcpu>)/, `$1${c.live}$2`);
    else if (disk && c.live && c.backup) {
      xml = setInDevice(
        xml,
        'disk',
        (el) => new RegExp(`<target\\b[^>]*dev=['"]${disk[1]}['"]`).test(el),
        (el) => el.replace(/(<source\b[^>]*\bfile=)(['"])[^'"]*\2/, `$1'${escapeAttr(c.live!)}'`),
      );
    } else if (iface && c.live && c.backup) {
      const n = Number(iface[1]);
      xml = setInDevice(
        xml,
        'interface',
        (_el, i) => i === n,
        (el) =>
          iface[2] === 'mac'
            ? el.replace(/(<mac\b[^>]*\baddress=)(['"])[^'"]*\2/, `$1'${escapeAttr(c.live!)}'`)
            : el.replace(/(<source\b[^>]*\b(?:bridge|network)=)(['"])[^'"]*\2/, `$1'${escapeAttr(c.live!)}'`),
      );
    } else {
      throw new Error(`cannot take the live value of ${c.id} into the restored XML`);
    }
  }
  return xml;
}
