import { toBytes } from './domain-xml';
import { BackupError, ErrorCode } from './errors';
import { confine } from './paths';
import { XmlSyntaxError } from './xml/entities';
import { parseDomainXml } from './xml/parse';
import type { XmlElement } from './xml/tree';

/**
 * The node's check of the XML a restore defines. The workflow builds it from the backed-up
 * XML and the user's decisions (`resolveXml`); the node does not trust the queue, so it
 * compares it with the backed-up XML file it wrote itself: only what a decision may change
 * (description, memory, vCPUs, disk source files, interface MAC and network) may differ,
 * and a changed disk source must lie below the images root. All XML parsing of this check
 * is in this module.
 */

type Attrs = Record<string, string>;
/** An element: name, attributes, children; text is `['#text', { value }, []]`. Values are decoded. */
type Canon = [string, Attrs, Canon[]];
const text = (value: string): Canon => ['#text', { value }, []];

function refuse(why: string): BackupError {
  return new BackupError(ErrorCode.unsupportedConfigurationValue, `restore XML refused: ${why}`);
}

function parse(xml: string, which: string): Canon {
  try {
    return canon(parseDomainXml(xml).root);
  } catch (e) {
    if (e instanceof XmlSyntaxError) throw refuse(`the ${which} XML ${e.detail}`);
    throw e;
  }
}

/** The tree as compared: comments and white space between elements do not count, text is trimmed. */
function canon(e: XmlElement): Canon {
  const children: Canon[] = [];
  for (const c of e.children) {
    if (c.kind === 'element') children.push(canon(c));
    else if (c.kind === 'text' && c.value.trim() !== '') children.push(text(c.value.trim()));
  }
  return [e.name, Object.fromEntries(e.attributes), children];
}

const isElement = (c: Canon): boolean => c[0] !== '#text';
const elements = (c: Canon[]) => c.filter(isElement);
const textOf = (c: Canon[]): string => c.map((x) => (isElement(x) ? '' : x[1]['value']!)).join('');

/** What the decisions may change, taken out of the tree (the tree keeps a placeholder). */
interface Choices {
  memoryBytes: Record<string, number>;
  vcpu?: string | undefined;
  disks: Map<string, string>;
  macs: string[];
  networks: string[];
}

const MASK = '\u0000chosen';

function maskDomain(domain: Canon, which: string): { tree: Canon; choices: Choices } {
  const choices: Choices = { memoryBytes: {}, disks: new Map(), macs: [], networks: [] };
  const children: Canon[] = [];
  for (const c of domain[2]) {
    if (!isElement(c)) {
      children.push(c);
      continue;
    }
    const [name, attrs, kids] = c;
    if (name === 'description') {
      // The user may keep, change, add or drop it: text only.
      if (elements(kids).length || Object.keys(attrs).length)
        throw refuse(`<description> of the ${which} XML holds more than text`);
    } else if (name === 'memory' || name === 'currentMemory') {
      const n = textOf(kids).trim();
      if (!/^\d+$/.test(n) || elements(kids).length) throw refuse(`<${name}> is not a number`);
      choices.memoryBytes[name] = toBytes(Number(n), attrs['unit']);
      children.push([name, {}, [text(MASK)]]);
    } else if (name === 'vcpu') {
      const n = textOf(kids).trim();
      if (!/^\d+$/.test(n) || elements(kids).length) throw refuse('<vcpu> is not a number');
      choices.vcpu = n;
      children.push([name, attrs, [text(MASK)]]);
    } else if (name === 'devices') {
      children.push([name, attrs, kids.map((d) => maskDevice(d, choices))]);
    } else children.push(c);
  }
  return { tree: [domain[0], domain[1], children], choices };
}

function maskDevice(d: Canon, choices: Choices): Canon {
  if (!isElement(d)) return d;
  const [name, attrs, kids] = d;
  if (name === 'disk' && attrs['type'] === 'file' && (attrs['device'] ?? 'disk') === 'disk') {
    const target = elements(kids).find((k) => k[0] === 'target')?.[1]['dev'];
    const sources = elements(kids).filter((k) => k[0] === 'source');
    if (target === undefined || sources.length !== 1 || sources[0]![1]['file'] === undefined) return d;
    choices.disks.set(target, sources[0]![1]['file']);
    return [name, attrs, kids.map((k) => (k === sources[0] ? masked(k, ['file']) : k))];
  }
  if (name === 'interface') {
    return [
      name,
      attrs,
      kids.map((k) => {
        if (!isElement(k)) return k;
        if (k[0] === 'mac' && k[1]['address'] !== undefined) {
          choices.macs.push(k[1]['address'].toLowerCase());
          return masked(k, ['address']);
        }
        if (k[0] === 'source') {
          for (const a of ['bridge', 'network']) if (k[1][a] !== undefined) choices.networks.push(k[1][a]);
          return masked(k, ['bridge', 'network']);
        }
        return k;
      }),
    ];
  }
  return d;
}

function masked(e: Canon, names: string[]): Canon {
  const attrs = { ...e[1] };
  for (const n of names) if (n in attrs) attrs[n] = MASK;
  return [e[0], attrs, e[2]];
}

/** The first place two trees differ, as a path of element names. */
function firstDifference(a: Canon, b: Canon, at: string): string | undefined {
  if (a[0] !== b[0]) return `${at}: <${a[0]}> became <${b[0]}>`;
  if (!isElement(a)) return a[1]['value'] === b[1]['value'] ? undefined : `${at}: text differs`;
  const here = `${at}/${a[0]}`;
  const [ka, kb] = [Object.keys(a[1]).sort(), Object.keys(b[1]).sort()];
  const attrs = new Set([...ka, ...kb]);
  for (const k of attrs) if (a[1][k] !== b[1][k]) return `${here}: attribute ${k} differs`;
  const [ca, cb] = [a[2], b[2]];
  for (let i = 0; i < Math.max(ca.length, cb.length); i++) {
    const x = ca[i];
    const y = cb[i];
    if (!x) return `${here}: adds <${y![0]}>`;
    if (!y) return `${here}: drops <${x[0]}>`;
    const d = firstDifference(x, y, here);
    if (d) return d;
  }
  return undefined;
}

function namespaced(c: Canon, out: Set<string>): Set<string> {
  if (!isElement(c)) return out;
  if (c[0].includes(':')) out.add(c[0]);
  for (const k of Object.keys(c[1])) if (k.startsWith('xmlns')) out.add(`${c[0]} ${k}`);
  for (const k of c[2]) namespaced(k, out);
  return out;
}

export interface RestoreXmlCheck {
  vm: string;
  imagesRoot: string;
  /** The VM comes back from its saved state: memory, vCPUs and MACs are fixed by it. */
  withState: boolean;
}

/**
 * Refuses (BackupError) a restore XML that is not the backed-up one changed only where a
 * decision may change it. Returns the disk sources, target → file, for the node to check
 * after symlink resolution.
 */
export function checkRestoreXml(backupXml: string, xml: string, rules: RestoreXmlCheck): Map<string, string> {
  const backup = parse(backupXml, 'backed-up');
  const given = parse(xml, 'restore');
  const known = namespaced(backup, new Set());
  const added = [...namespaced(given, new Set())].filter((n) => !known.has(n));
  if (added.length)
    throw refuse(`it adds ${added.join(', ')} (e.g. qemu:commandline), which the backup has not`);
  const b = maskDomain(backup, 'backed-up');
  const g = maskDomain(given, 'restore');
  const diff = firstDifference(b.tree, g.tree, '');
  if (diff) throw refuse(`it differs from the backed-up XML where no decision reaches (${diff})`);
  const name = elements(given[2]).find((c) => c[0] === 'name');
  if (!name || textOf(name[2]) !== rules.vm) throw refuse(`its <name> is not ${rules.vm}`);
  if (rules.withState) {
    for (const k of ['memory', 'currentMemory'])
      if (b.choices.memoryBytes[k] !== g.choices.memoryBytes[k])
        throw refuse(`<${k}> changes, but the saved state fixes it`);
    if (b.choices.vcpu !== g.choices.vcpu) throw refuse('<vcpu> changes, but the saved state fixes it');
    if (b.choices.macs.join() !== g.choices.macs.join())
      throw refuse('a MAC address changes, but the saved state fixes it');
  }
  for (const mac of g.choices.macs)
    if (!/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/.test(mac)) throw refuse(`${mac} is not a MAC address`);
  for (const n of g.choices.networks)
    if (!/^[\w.:-]+$/.test(n)) throw refuse(`${JSON.stringify(n)} is not a network or bridge name`);
  for (const [target, file] of g.choices.disks) {
    if (file.includes('\0')) throw refuse(`disk ${target} has a NUL in its source`);
    confine(file, [rules.imagesRoot], `restore XML: disk ${target}`);
  }
  return g.choices.disks;
}
