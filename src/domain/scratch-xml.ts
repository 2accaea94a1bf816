import { XMLBuilder, XMLParser, XMLValidator } from 'fast-xml-parser';
import { BackupError, ErrorCode } from './errors';

/**
 * A backed-up domain XML turned into a scratch VM's: another name and UUID, its disks at
 * scratch copies, its network interfaces on an isolated network (a restore from saved
 * state must keep every device) or gone (a boot may drop them). Everything else is kept
 * as libvirt wrote it, namespaced elements included.
 */
export interface ScratchChange {
  name: string;
  uuid: string;
  /** Disk target → the scratch copy's path. Every file-backed disk must be named. */
  disks: ReadonlyMap<string, string>;
  /** `isolate`: interfaces attached to `network`; `remove`: interfaces dropped. */
  interfaces: 'isolate' | 'remove';
  network: string;
}

type Attrs = Record<string, string>;
interface Node {
  [tag: string]: unknown;
  ':@'?: Attrs;
}

const options = {
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false,
  trimValues: false,
  suppressEmptyNode: true,
} as const;
const parser = new XMLParser(options);
const builder = new XMLBuilder(options);

const tagOf = (n: Node): string => Object.keys(n).find((k) => k !== ':@')!;
const childrenOf = (n: Node): Node[] => n[tagOf(n)] as Node[];
const child = (n: Node, tag: string): Node | undefined => childrenOf(n).find((c) => tagOf(c) === tag);
const refuse = (why: string) =>
  new BackupError(ErrorCode.unsupportedConfigurationValue, `scratch VM XML: ${why}`);

function setText(n: Node, tag: string, value: string): void {
  const el = child(n, tag);
  if (!el) throw refuse(`no <${tag}>`);
  el[tag] = [{ '#text': value }];
}

export function scratchDomainXml(xml: string, change: ScratchChange): string {
  if (/<!DOCTYPE|<!ENTITY/i.test(xml)) throw refuse('has a DOCTYPE or entity declaration');
  const valid = XMLValidator.validate(xml);
  if (valid !== true) throw refuse(`not well-formed: ${valid.err.msg}`);
  const top = parser.parse(xml) as Node[];
  const domain = top.find((n) => tagOf(n) === 'domain');
  if (!domain) throw refuse('no <domain>');
  setText(domain, 'name', change.name);
  const uuid = child(domain, 'uuid');
  if (uuid) setText(domain, 'uuid', change.uuid);
  else childrenOf(domain).splice(1, 0, { uuid: [{ '#text': change.uuid }] });
  const devices = child(domain, 'devices');
  if (!devices) throw refuse('no <devices>');
  const seen = new Set<string>();
  const kept: Node[] = [];
  for (const d of childrenOf(devices)) {
    const tag = tagOf(d);
    if (tag === 'disk' && (d[':@']?.['device'] ?? 'disk') === 'disk') {
      const target = child(d, 'target')?.[':@']?.['dev'];
      const source = child(d, 'source');
      if (!target || !source?.[':@']?.['file']) throw refuse(`a disk without target or source file`);
      const copy = change.disks.get(target);
      if (!copy) throw refuse(`no scratch copy for disk ${target}`);
      source[':@'] = { ...source[':@'], file: copy };
      seen.add(target);
    } else if (tag === 'interface') {
      if (change.interfaces === 'remove') continue;
      // On the isolated network, without the live VM's tap device name.
      d[':@'] = { ...d[':@'], type: 'network' };
      d[tag] = childrenOf(d).filter((c) => !['source', 'target', 'virtualport'].includes(tagOf(c)));
      childrenOf(d).unshift({ source: [], ':@': { network: change.network } });
    }
    kept.push(d);
  }
  for (const target of change.disks.keys()) if (!seen.has(target)) throw refuse(`it has no disk ${target}`);
  devices['devices'] = kept;
  return builder.build(top) as string;
}

/** Whether a domain XML has network interfaces (the drill then needs its isolated network). */
export function hasInterfaces(xml: string): boolean {
  const top = parser.parse(xml) as Node[];
  const domain = top.find((n) => tagOf(n) === 'domain');
  const devices = domain && child(domain, 'devices');
  return !!devices && childrenOf(devices).some((d) => tagOf(d) === 'interface');
}
