import { BackupError, ErrorCode } from './errors';
import { XmlSyntaxError } from './xml/entities';
import { parseDomainXml } from './xml/parse';
import { serializeXml } from './xml/serialize';
import { XmlElement, XmlText, type XmlDocument } from './xml/tree';

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

const refuse = (why: string) =>
  new BackupError(ErrorCode.unsupportedConfigurationValue, `cannot clone the domain XML: ${why}`);

function parseDomain(xml: string): XmlDocument {
  try {
    return parseDomainXml(xml);
  } catch (e) {
    if (e instanceof XmlSyntaxError) throw refuse(`it ${e.detail}`);
    throw e;
  }
}

const devices = (domain: XmlElement, name: string): XmlElement[] =>
  domain.elements('devices').flatMap((d) => d.elements(name));

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

function cloneInterface(iface: XmlElement, network: string, mac: string | undefined): XmlElement {
  const out = new XmlElement(iface.name, iface.attributes, [...iface.children]).setAttr('type', 'network');
  out.remove(...out.elements().filter((c) => HOST_TIES.has(c.name)));
  if (mac !== undefined) for (const m of out.elements('mac')) m.setAttr('address', mac);
  const source = new XmlElement('source', { network });
  const first = out.elements()[0];
  if (first) out.insertBefore(first, source);
  else out.children.push(source);
  return out;
}

function cloneDevices(parent: XmlElement, spec: CloneSpec, seen: Set<string>): void {
  let ifaceIndex = 0;
  const drop: XmlElement[] = [];
  for (const d of parent.elements()) {
    if (d.name === 'disk' && (d.attr('device') ?? 'disk') === 'disk') {
      const dev = d.first('target')?.attr('dev');
      if (d.attr('type') !== 'file' || dev === undefined)
        throw refuse(`disk ${dev ?? '?'} is not a file disk; only file disks can be copied`);
      const file = spec.disks.get(dev);
      if (file === undefined) throw refuse(`no copy is given for disk ${dev}`);
      for (const k of d.elements('source')) k.setAttr('file', file);
      seen.add(dev);
    } else if (d.name === 'interface') {
      const mac = spec.macs?.[ifaceIndex++];
      if (spec.interfaces === 'remove') drop.push(d);
      else if (spec.interfaces !== 'keep')
        parent.children[parent.children.indexOf(d)] = cloneInterface(d, spec.interfaces.network, mac);
      else if (mac !== undefined) for (const k of d.elements('mac')) k.setAttr('address', mac);
    }
  }
  parent.remove(...drop);
}

export function cloneDomainXml(xml: string, spec: CloneSpec): string {
  const doc = parseDomain(xml);
  const domain = doc.root;
  const seen = new Set<string>();
  // A copy would open the original's UEFI variable store: refused until it is copied too.
  if (domain.elements('os').some((os) => os.first('nvram')))
    throw refuse("it has an <nvram> (UEFI variables), which would be the original's file");
  for (const c of domain.elements()) {
    if (c.name === 'name') c.setText(spec.name);
    else if (c.name === 'uuid') c.setText(spec.uuid);
    else if (c.name === 'devices') cloneDevices(c, spec, seen);
  }
  if (!domain.first('uuid')) {
    const uuid = new XmlElement('uuid', {}, [new XmlText(spec.uuid)]);
    const name = domain.first('name');
    if (name) domain.insertAfter(name, uuid);
    else domain.children.unshift(uuid);
  }
  for (const target of spec.disks.keys()) if (!seen.has(target)) throw refuse(`it has no disk ${target}`);
  // The copies have always been written with double quotes.
  return serializeXml(doc, { quote: '"' });
}

/** Interfaces in the XML: a saved state that has some cannot lose them. */
export function interfaceCount(xml: string): number {
  return devices(parseDomain(xml).root, 'interface').length;
}

/** The MAC addresses of the interfaces, in order (undefined for one without). */
export function interfaceMacs(xml: string): Array<string | undefined> {
  return devices(parseDomain(xml).root, 'interface').map((i) => i.first('mac')?.attr('address'));
}
