import type { Conflict, Decision } from './conflicts';
import { devicesOf, readDomainXml } from './domain-xml';
import type { Attributes } from './plan';
import { serializeXml } from './xml/serialize';
import { XmlElement, XmlText } from './xml/tree';

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

function setDescription(domain: XmlElement, value: string | null): void {
  const old = domain.first('description');
  if (value === null) {
    if (old) domain.remove(old);
    return;
  }
  if (old) old.setText(value);
  else {
    const name = domain.first('name');
    const element = new XmlElement('description', {}, [new XmlText(value)]);
    if (name) domain.insertAfter(name, element);
    else domain.children.unshift(element);
  }
}

/** The file disks (`device='disk'`) and the interfaces, in document order. */
const fileDisks = (domain: XmlElement) =>
  devicesOf(domain, 'disk').filter((d) => (d.attr('device') ?? 'disk') === 'disk');

/** Backed-up XML with the live value put back wherever the user chose the live side. */
export function resolveXml(backupXml: string, conflicts: readonly Conflict[], decision: Decision): string {
  const doc = readDomainXml(backupXml, 'backed-up domain XML');
  const domain = doc.root;
  const cannot = (c: Conflict) => new Error(`cannot take the live value of ${c.id} into the restored XML`);
  let changed = false;
  for (const c of conflicts) {
    if (c.source !== 'xml' || decision[c.id] !== 'live') continue;
    const disk = /^xml:disk\[(\w+)\]$/.exec(c.id);
    const iface = /^xml:interface\[(\d+)\]\.(mac|source)$/.exec(c.id);
    changed = true;
    if (c.id === 'xml:description') setDescription(domain, c.live);
    else if (c.id === 'xml:memory' && c.live) {
      const kib = String(Math.floor(Number(c.live) / 1024));
      for (const name of ['memory', 'currentMemory']) domain.first(name)?.setAttr('unit', 'KiB').setText(kib);
    } else if (c.id === 'xml:vcpu' && c.live) domain.first('vcpu')?.setText(c.live);
    else if (disk && c.live && c.backup) {
      const source = fileDisks(domain)
        .find((d) => d.first('target')?.attr('dev') === disk[1])
        ?.first('source');
      if (source?.attr('file') === undefined) throw cannot(c);
      source.setAttr('file', c.live);
    } else if (iface && c.live && c.backup) {
      const element = devicesOf(domain, 'interface')[Number(iface[1])];
      if (iface[2] === 'mac') {
        const mac = element?.first('mac');
        if (!mac) throw cannot(c);
        mac.setAttr('address', c.live);
      } else {
        const source = element?.first('source');
        const attribute = ['bridge', 'network'].find((a) => source?.attr(a) !== undefined);
        if (!source || !attribute) throw cannot(c);
        source.setAttr(attribute, c.live);
      }
    } else throw cannot(c);
  }
  // Untouched, the backed-up XML goes back exactly as libvirt wrote it.
  return changed ? serializeXml(doc) : backupXml;
}
