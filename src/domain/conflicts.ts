import { devicesOf, memoryBytesOf, readDomainXml } from './domain-xml';
import type { Attributes } from './plan';
import type { XmlElement } from './xml/tree';

/**
 * The differences between a VM's backed-up configuration and its live one, one item per
 * differing directory attribute or XML element, and the user's choice for each.
 */
export type Side = 'backup' | 'live';

export interface Conflict {
  /** Stable key the decision refers to: `dir:<relative dn>:<attribute>` or `xml:<element>`. */
  id: string;
  source: 'directory' | 'xml';
  /** Human-readable name of what differs. */
  what: string;
  backup: string | null;
  live: string | null;
  /** The other side of the same fact (directory ↔ XML): must be decided the same way. */
  linkedTo?: string | undefined;
  /** Changing this is not possible when the VM comes back from its saved state. */
  fixedByState?: boolean | undefined;
  /** The whole directory entry exists on this side only: all its attributes go together. */
  entryOnlyIn?: 'backup' | 'live' | undefined;
}

export interface Inconsistency {
  config: 'backup' | 'live';
  what: string;
  directory: string | null;
  xml: string | null;
}

export interface ConfigSnapshot {
  vmDn: string;
  entries: ReadonlyArray<{ dn: string; attributes: Attributes }>;
  xml: string;
}

const IGNORED_ATTRIBUTES = new Set([
  'entryuuid',
  'entrycsn',
  'createtimestamp',
  'modifytimestamp',
  'creatorsname',
  'modifiersname',
  'structuralobjectclass',
  'subschemasubentry',
  'hassubordinates',
  'entrydn',
]);

function relativeDn(dn: string, vmDn: string): string {
  const d = dn.toLowerCase();
  const base = vmDn.toLowerCase();
  if (d === base) return '.';
  return d.endsWith(`,${base}`) ? d.slice(0, -(base.length + 1)) : d;
}

function show(values: readonly string[] | undefined): string | null {
  return values && values.length ? [...values].sort().join(', ') : null;
}

// ---- XML facts: the few elements that matter for a VM's identity and hardware ----

export interface XmlFacts {
  name: string | null;
  description: string | null;
  memoryBytes: string | null;
  vcpu: string | null;
  disks: Map<string, { source: string | null; format: string | null }>;
  interfaces: Array<{ mac: string | null; source: string | null; model: string | null }>;
}

const NO_FACTS = (): XmlFacts => ({
  name: null,
  description: null,
  memoryBytes: null,
  vcpu: null,
  disks: new Map(),
  interfaces: [],
});

/** The trimmed text of the domain's child `name`, or null without one. */
function textOf(domain: XmlElement, name: string): string | null {
  return domain.first(name)?.text().trim() ?? null;
}

/** The facts of a domain XML; an empty XML (no live VM) has none. */
export function xmlFacts(xml: string): XmlFacts {
  if (xml.trim() === '') return NO_FACTS();
  const domain = readDomainXml(xml).root;
  const disks = new Map<string, { source: string | null; format: string | null }>();
  for (const d of devicesOf(domain, 'disk')) {
    if ((d.attr('device') ?? 'disk') !== 'disk') continue;
    const target = d.first('target')?.attr('dev');
    if (target)
      disks.set(target, {
        source: d.first('source')?.attr('file') ?? null,
        format: d.first('driver')?.attr('type') ?? null,
      });
  }
  const interfaces = devicesOf(domain, 'interface').map((i) => {
    const source = i.first('source');
    return {
      mac: i.first('mac')?.attr('address') ?? null,
      // A running VM's XML adds bridge='virbrN' to a network source: the network is what counts.
      source: source?.attr('network') ?? source?.attr('bridge') ?? null,
      model: i.first('model')?.attr('type') ?? null,
    };
  });
  const memory = memoryBytesOf(domain);
  return {
    name: textOf(domain, 'name'),
    description: textOf(domain, 'description'),
    memoryBytes: memory === undefined ? null : String(memory),
    vcpu: textOf(domain, 'vcpu'),
    disks,
    interfaces,
  };
}

/** XML facts as flat `id → value` pairs, with the directory attribute each one mirrors. */
function xmlItems(
  f: XmlFacts,
): Map<
  string,
  { what: string; value: string | null; mirror?: { rdn: string; attribute: string }; fixedByState?: boolean }
> {
  const items = new Map<
    string,
    {
      what: string;
      value: string | null;
      mirror?: { rdn: string; attribute: string };
      fixedByState?: boolean;
    }
  >();
  items.set('xml:name', { what: 'XML <name>', value: f.name, fixedByState: true });
  items.set('xml:description', { what: 'XML <description>', value: f.description });
  items.set('xml:memory', {
    what: 'XML <memory> (bytes)',
    value: f.memoryBytes,
    mirror: { rdn: '.', attribute: 'sstmemory' },
    fixedByState: true,
  });
  items.set('xml:vcpu', {
    what: 'XML <vcpu>',
    value: f.vcpu,
    mirror: { rdn: '.', attribute: 'sstvcpu' },
    fixedByState: true,
  });
  for (const [target, d] of f.disks) {
    items.set(`xml:disk[${target}]`, {
      what: `XML disk ${target} source`,
      value: d.source,
      mirror: { rdn: `sstdisk=${target},ou=devices`, attribute: 'sstsourcefile' },
    });
  }
  f.interfaces.forEach((i, n) => {
    const rdn = `sstinterface=${n},ou=devices`;
    items.set(`xml:interface[${n}].mac`, {
      what: `XML interface ${n} MAC address`,
      value: i.mac,
      fixedByState: true,
      mirror: { rdn, attribute: 'sstmacaddress' },
    });
    items.set(`xml:interface[${n}].source`, {
      what: `XML interface ${n} source`,
      value: i.source,
      mirror: { rdn, attribute: 'sstsourcebridge' },
    });
  });
  return items;
}

type EntryMap = Map<string, Attributes>;

function entryMap(s: ConfigSnapshot): EntryMap {
  return new Map(s.entries.map((e) => [relativeDn(e.dn, s.vmDn), e.attributes]));
}

/** Where the directory entry and the XML of one configuration disagree with each other. */
export function inconsistencies(config: 'backup' | 'live', s: ConfigSnapshot): Inconsistency[] {
  const entries = entryMap(s);
  const out: Inconsistency[] = [];
  for (const [, item] of xmlItems(xmlFacts(s.xml))) {
    if (!item.mirror) continue;
    const dir = show(entries.get(item.mirror.rdn)?.[item.mirror.attribute]);
    if (dir !== item.value)
      out.push({
        config,
        what: `${item.what} vs ${item.mirror.rdn === '.' ? '' : `${item.mirror.rdn}: `}${item.mirror.attribute}`,
        directory: dir,
        xml: item.value,
      });
  }
  return out;
}

/** One conflict per differing directory attribute (whole VM subtree) or XML element. */
export function findConflicts(backup: ConfigSnapshot, live: ConfigSnapshot): Conflict[] {
  const conflicts: Conflict[] = [];
  const b = entryMap(backup);
  const l = entryMap(live);
  const mirrorIds = new Map<string, string>();
  const bx = xmlItems(xmlFacts(backup.xml));
  const lx = xmlItems(xmlFacts(live.xml));
  for (const id of new Set([...bx.keys(), ...lx.keys()])) {
    const item = bx.get(id) ?? lx.get(id)!;
    if (item.mirror) mirrorIds.set(`dir:${item.mirror.rdn}:${item.mirror.attribute}`, id);
  }
  for (const rdn of [...new Set([...b.keys(), ...l.keys()])].sort()) {
    const be = b.get(rdn);
    const le = l.get(rdn);
    const names = new Set([...Object.keys(be ?? {}), ...Object.keys(le ?? {})]);
    for (const name of [...names].sort()) {
      if (IGNORED_ATTRIBUTES.has(name)) continue;
      const bv = be ? show(be[name]) : null;
      const lv = le ? show(le[name]) : null;
      if (bv === lv) continue;
      const id = `dir:${rdn}:${name}`;
      conflicts.push({
        id,
        source: 'directory',
        what: `${rdn === '.' ? 'VM entry' : rdn}: ${name}`,
        backup: bv,
        live: lv,
        linkedTo: mirrorIds.get(id),
        entryOnlyIn: !le ? 'backup' : !be ? 'live' : undefined,
      });
    }
  }
  for (const id of [...new Set([...bx.keys(), ...lx.keys()])].sort()) {
    const bi = bx.get(id);
    const li = lx.get(id);
    const bv = bi?.value ?? null;
    const lv = li?.value ?? null;
    if (bv === lv) continue;
    const item = (bi ?? li)!;
    const mirror = item.mirror ? `dir:${item.mirror.rdn}:${item.mirror.attribute}` : undefined;
    // A device present on one side only changes the machine the saved state describes.
    const deviceSetChanges = (id.startsWith('xml:disk[') || id.startsWith('xml:interface[')) && (!bi || !li);
    conflicts.push({
      id,
      source: 'xml',
      what: item.what,
      backup: bv,
      live: lv,
      linkedTo: mirror && conflicts.some((c) => c.id === mirror) ? mirror : undefined,
      fixedByState: item.fixedByState || deviceSetChanges,
    });
  }
  // Links are symmetric and only between conflicts that exist.
  const ids = new Set(conflicts.map((c) => c.id));
  for (const c of conflicts) if (c.linkedTo && !ids.has(c.linkedTo)) c.linkedTo = undefined;
  for (const c of conflicts) if (c.linkedTo) conflicts.find((o) => o.id === c.linkedTo)!.linkedTo = c.id;
  return conflicts;
}

export type Decision = Record<string, Side>;

/**
 * Why a decision cannot be carried out, or undefined when it can: every conflict decided,
 * nothing unknown, directory and XML decided alike, and — when the VM comes back from its
 * saved state — nothing changed that the saved state fixes.
 */
export function rejectDecision(
  conflicts: readonly Conflict[],
  decision: unknown,
  withState: boolean,
): string | undefined {
  if (typeof decision !== 'object' || decision === null || Array.isArray(decision))
    return 'a decision maps each conflict id to "backup" or "live"';
  const d = decision as Record<string, unknown>;
  const ids = new Set(conflicts.map((c) => c.id));
  const unknown = Object.keys(d).filter((k) => !ids.has(k));
  if (unknown.length) return `unknown conflict ids: ${unknown.join(', ')}`;
  const bad = Object.entries(d).filter(([, v]) => v !== 'backup' && v !== 'live');
  if (bad.length) return `each choice must be "backup" or "live": ${bad.map(([k]) => k).join(', ')}`;
  const missing = conflicts.filter((c) => !(c.id in d)).map((c) => c.id);
  if (missing.length) return `undecided conflicts: ${missing.join(', ')}`;
  const wholeEntries = new Map<string, Set<unknown>>();
  for (const c of conflicts) {
    if (!c.entryOnlyIn) continue;
    const rdn = c.id.replace(/^dir:(.*):[^:]+$/, '$1');
    wholeEntries.set(rdn, (wholeEntries.get(rdn) ?? new Set()).add(d[c.id]));
  }
  for (const [rdn, sides] of wholeEntries) {
    if (sides.size > 1)
      return `inconsistent: the entry ${rdn} exists on one side only; decide all its attributes alike`;
  }
  for (const c of conflicts) {
    if (c.linkedTo && d[c.id] !== d[c.linkedTo]) {
      return `inconsistent: ${c.id} and ${c.linkedTo} describe the same thing and must both take the backup or both the live value`;
    }
    if (
      c.source === 'xml' &&
      /^xml:(disk|interface)\[/.test(c.id) &&
      (c.backup === null || c.live === null) &&
      d[c.id] === 'live'
    ) {
      return `${c.id}: a restore cannot add or remove a device; take the backup value`;
    }
    if (withState && c.fixedByState && d[c.id] === 'live') {
      return `${c.id}: the VM comes back from its saved state, which fixes ${c.what}; take the backup value (or restore without state)`;
    }
  }
  return undefined;
}
