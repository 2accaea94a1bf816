import { escapeXml } from './entities';
import type { XmlDocument, XmlNode } from './tree';

/**
 * A tree back as XML text: elements, attributes (in their order), text and comments as
 * they are, values escaped by `escapeXml`, empty elements as `<name/>` — libvirt's own
 * conventions, so an unchanged libvirt document comes out as it went in.
 */

export interface SerializeOptions {
  /** The attribute quote; libvirt writes `'`. */
  quote?: "'" | '"';
}

function attributes(attrs: ReadonlyMap<string, string>, q: string): string {
  let out = '';
  for (const [k, v] of attrs) out += ` ${k}=${q}${escapeXml(v, true)}${q}`;
  return out;
}

function node(n: XmlNode, q: string): string {
  if (n.kind === 'text') return escapeXml(n.value);
  if (n.kind === 'comment') return `<!--${n.value}-->`;
  const head = `<${n.name}${attributes(n.attributes, q)}`;
  if (!n.children.length) return `${head}/>`;
  return `${head}>${n.children.map((c) => node(c, q)).join('')}</${n.name}>`;
}

export function serializeXml(doc: XmlDocument, options: SerializeOptions = {}): string {
  const q = options.quote ?? "'";
  const parts = doc.top.map((n) => node(n, q));
  if (doc.declaration) parts.unshift(`<?xml${attributes(doc.declaration, q)}?>`);
  return doc.leading + parts.join('\n') + doc.trailing;
}
