import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { BackupError, ErrorCode } from './errors';

/**
 * A domain XML turned into another domain's: new name and UUID, every file disk on a copy
 * of its image, interfaces removed or moved onto an isolated network, optionally new MAC
 * addresses. Used by the restore drill (a scratch VM) and by restore `--as` (a new VM).
 * Everything else stays exactly as libvirt wrote it; nothing here parses XML with regexes.
 */

export interface CloneSpec {
  name: string;
  uuid: string;
  /** Disk target → the new image file; every file disk of the XML must have one. */
  disks: ReadonlyMap<string, string>;
  /**
   * `remove`: no network device at all (a booted scratch VM). `{ network }`: each
   * interface stays (the saved device state has it) but on that libvirt network only.
   * `keep`: interfaces as they are.
   */
  interfaces: 'remove' | 'keep' | { network: string };
  /** New MAC address of the n-th interface; absent: MACs kept. */
  macs?: readonly string[] | undefined;
}

interface Node {
  [name: string]: unknown;
  ':@'?: Record<string, string>;
}

const OPTIONS = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false, // entities pass through as written
  trimValues: false,
  suppressEmptyNode: true,
  commentPropName: '#comment',
} as const;

const refuse = (why: string) =>
  new BackupError(ErrorCode.unsupportedConfigurationValue, `cannot clone the domain XML: ${why}`);

/** An attribute or text value as XML writes it (parsing keeps entities unexpanded). */
export function xmlEscape(v: string): string {
  return v
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

const nameOf = (n: Node): string => Object.keys(n).find((k) => k !== ':@')!;
const kids = (n: Node): Node[] => n[nameOf(n)] as Node[];
const attr = (n: Node, a: string): string | undefined => n[':@']?.[`@_${a}`];
const setAttr = (n: Node, a: string, v: string) => {
  n[':@'] = { ...(n[':@'] ?? {}), [`@_${a}`]: xmlEscape(v) };
};
const element = (name: string, attrs: Record<string, string> = {}, children: Node[] = []): Node => {
  const e: Node = { [name]: children };
  for (const [k, v] of Object.entries(attrs)) setAttr(e, k, v);
  return e;
};
const textNode = (v: string): Node => ({ '#text': xmlEscape(v) });
const isElement = (n: Node) => !['#text', '#comment'].includes(nameOf(n));

function parseDomain(xml: string): Node[] {
  if (/<!DOCTYPE|<!ENTITY|<!\[CDATA\[/i.test(xml))
    throw refuse('it has a DOCTYPE, entity declaration or CDATA section');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw refuse(`it is not well-formed: ${valid.err.msg}`);
  const top = new XMLParser(OPTIONS).parse(xml) as Node[];
  const domains = top.filter(isElement);
  if (domains.length !== 1 || nameOf(domains[0]!) !== 'domain')
    throw refuse('it is not one <domain> element');
  return top;
}

/** Children of an interface that tie it to the host's network and go when it moves to an isolated one. */
const HOST_TIES = new Set([
  'source',
  'target',
  'virtualport',
  'filterref',
  'ip',
  'route',
  'portForward',
  'bandwidth',
]);

function cloneInterface(iface: Node, network: string, mac: string | undefined): Node {
  const children: Node[] = [];
  for (const c of kids(iface)) {
    if (HOST_TIES.has(nameOf(c))) continue;
    if (nameOf(c) === 'mac' && mac !== undefined) {
      children.push(element('mac', { address: mac }));
      continue;
    }
    children.push(c);
  }
  children.unshift(element('source', { network }));
  const out: Node = { interface: children, ':@': { ...(iface[':@'] ?? {}) } };
  setAttr(out, 'type', 'network');
  return out;
}

function cloneDevices(devices: Node, spec: CloneSpec, seen: Set<string>): void {
  const out: Node[] = [];
  let ifaceIndex = 0;
  for (const d of kids(devices)) {
    const name = nameOf(d);
    if (name === 'disk' && (attr(d, 'device') ?? 'disk') === 'disk') {
      const target = kids(d).find((k) => nameOf(k) === 'target');
      const dev = target ? attr(target, 'dev') : undefined;
      if (attr(d, 'type') !== 'file' || dev === undefined)
        throw refuse(`disk ${dev ?? '?'} is not a file disk; only file disks can be copied`);
      const file = spec.disks.get(dev);
      if (file === undefined) throw refuse(`no copy is given for disk ${dev}`);
      for (const k of kids(d)) if (nameOf(k) === 'source') setAttr(k, 'file', file);
      seen.add(dev);
    } else if (name === 'interface') {
      const mac = spec.macs?.[ifaceIndex++];
      if (spec.interfaces === 'remove') continue;
      if (spec.interfaces !== 'keep') {
        out.push(cloneInterface(d, spec.interfaces.network, mac));
        continue;
      }
      if (mac !== undefined) for (const k of kids(d)) if (nameOf(k) === 'mac') setAttr(k, 'address', mac);
    }
    out.push(d);
  }
  devices[nameOf(devices)] = out;
}

export function cloneDomainXml(xml: string, spec: CloneSpec): string {
  const top = parseDomain(xml);
  const domain = top.find(isElement)!;
  const children = kids(domain);
  const seen = new Set<string>();
  let hasUuid = false;
  for (const c of children) {
    const name = nameOf(c);
    if (name === 'name') c[name] = [textNode(spec.name)];
    else if (name === 'uuid') {
      c[name] = [textNode(spec.uuid)];
      hasUuid = true;
    } else if (name === 'devices') cloneDevices(c, spec, seen);
    // A copy would open the original's UEFI variable store: refused until it is copied too.
    else if (name === 'os' && kids(c).some((k) => nameOf(k) === 'nvram'))
      throw refuse("it has an <nvram> (UEFI variables), which would be the original's file");
  }
  if (!hasUuid) {
    const at = children.findIndex((c) => nameOf(c) === 'name');
    children.splice(at + 1, 0, element('uuid', {}, [textNode(spec.uuid)]));
  }
  for (const target of spec.disks.keys()) if (!seen.has(target)) throw refuse(`it has no disk ${target}`);
  return new XMLBuilder(OPTIONS).build(top) as string;
}

/** Interfaces in the XML: a saved state that has some cannot lose them. */
export function interfaceCount(xml: string): number {
  const domain = parseDomain(xml).find(isElement)!;
  return kids(domain)
    .filter((c) => nameOf(c) === 'devices')
    .flatMap((c) => kids(c))
    .filter((d) => nameOf(d) === 'interface').length;
}

/** The MAC addresses of the interfaces, in order (undefined for one without). */
export function interfaceMacs(xml: string): Array<string | undefined> {
  const domain = parseDomain(xml).find(isElement)!;
  return kids(domain)
    .filter((c) => nameOf(c) === 'devices')
    .flatMap((c) => kids(c))
    .filter((d) => nameOf(d) === 'interface')
    .map((i) => {
      const mac = kids(i).find((k) => nameOf(k) === 'mac');
      return mac ? attr(mac, 'address') : undefined;
    });
}
