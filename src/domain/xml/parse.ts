import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { decodeXml, malformed, XmlSyntaxError } from './entities';
import { XmlComment, XmlElement, XmlText, type XmlDocument, type XmlNode } from './tree';

/**
 * The safe reading of a domain XML. libvirt never writes a DTD, entity declarations, CDATA
 * sections or processing instructions, so a document with any of them is refused before
 * it is parsed: nothing can be expanded, included or hidden. Values are decoded by
 * `decodeXml` alone (XML's five entities and character references).
 */

interface Ordered {
  [name: string]: unknown;
  ':@'?: Record<string, unknown>;
}

const parser = new XMLParser({
  preserveOrder: true,
  ignoreAttributes: false,
  attributeNamePrefix: '',
  parseTagValue: false,
  parseAttributeValue: false,
  processEntities: false, // decoded here, strictly
  htmlEntities: false,
  trimValues: false, // the white space libvirt writes is kept
  ignoreDeclaration: false,
  ignorePiTags: false,
  commentPropName: '#comment',
  cdataPropName: '#cdata',
});

const refuseMarkup = (what: string) => new XmlSyntaxError('markup', `has ${what}`);

/** Refuses markup that is no element, text or comment, and an XML declaration that is not first. */
function plainMarkup(xml: string): void {
  const first = xml.length - xml.trimStart().length;
  let i = 0;
  for (;;) {
    const lt = xml.indexOf('<', i);
    if (lt < 0) return;
    if (xml.startsWith('<!--', lt)) {
      const end = xml.indexOf('-->', lt + 4);
      if (end < 0) throw malformed('a comment is not closed');
      i = end + 3;
      continue;
    }
    if (xml.startsWith('<!', lt)) throw refuseMarkup('a DOCTYPE, entity declaration or CDATA section');
    if (xml.startsWith('<?', lt)) {
      const name = xml.slice(lt + 2, lt + 6);
      if (lt !== first || !/^xml[\s?]$/.test(name)) throw refuseMarkup('a processing instruction');
    }
    i = lt + 1;
  }
}

function nameOf(node: Ordered): string {
  const name = Object.keys(node).find((k) => k !== ':@');
  if (name === undefined) throw malformed('an empty node');
  return name;
}

function attributesOf(node: Ordered): Array<[string, string]> {
  return Object.entries(node[':@'] ?? {}).map(([k, v]) => [k, decodeXml(String(v))]);
}

function rawText(nodes: unknown): string {
  return (nodes as Ordered[]).map((n) => String(n['#text'] ?? '')).join('');
}

function convert(node: Ordered): XmlNode {
  const name = nameOf(node);
  const content = node[name];
  if (name === '#text') return new XmlText(decodeXml(String(content)));
  if (name === '#comment') return new XmlComment(rawText(content));
  if (name === '#cdata') throw refuseMarkup('a DOCTYPE, entity declaration or CDATA section');
  if (name.startsWith('?')) throw refuseMarkup('a processing instruction');
  return new XmlElement(name, attributesOf(node), (content as Ordered[]).map(convert));
}

/** Parses a document with one root element, or throws XmlSyntaxError saying why not. */
export function parseXml(xml: string): XmlDocument {
  plainMarkup(xml);
  if (!xml.trimEnd().endsWith('>')) throw malformed('text after the root element');
  const valid = XMLValidator.validate(xml, { allowBooleanAttributes: false });
  if (valid !== true) throw malformed(`${valid.err.msg} (line ${valid.err.line})`);
  let declaration: Map<string, string> | undefined;
  const top: Array<XmlElement | XmlComment> = [];
  for (const node of parser.parse(xml) as Ordered[]) {
    if (nameOf(node) === '?xml' && !declaration && !top.length) {
      declaration = new Map(attributesOf(node));
      continue;
    }
    const n = convert(node);
    if (n.kind === 'text') {
      if (n.value.trim() !== '') throw malformed('text outside the root element');
      continue;
    }
    top.push(n);
  }
  const roots = top.filter((n): n is XmlElement => n.kind === 'element');
  if (roots.length !== 1) throw new XmlSyntaxError('root', 'is not one element');
  const trimmedStart = xml.trimStart();
  return {
    declaration,
    top,
    root: roots[0]!,
    leading: xml.slice(0, xml.length - trimmedStart.length),
    trailing: trimmedStart.slice(trimmedStart.trimEnd().length),
  };
}

/** Parses a libvirt domain XML: a document whose one root element is `<domain>`. */
export function parseDomainXml(xml: string): XmlDocument {
  let doc: XmlDocument | undefined;
  try {
    doc = parseXml(xml);
  } catch (e) {
    if (!(e instanceof XmlSyntaxError) || e.problem !== 'root') throw e;
  }
  if (doc?.root.name !== 'domain') throw new XmlSyntaxError('root', 'is not one <domain> element');
  return doc;
}
