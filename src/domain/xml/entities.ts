/**
 * XML's escaping, both ways: the one place that turns values into XML and references in
 * XML back into values. Only XML's five entities and character references exist here; a
 * document cannot declare more (the parser refuses DTDs).
 */

/** What is wrong with a document: `markup` it may not have, not `malformed`, an unknown `entity`, or another `root`. */
export type XmlProblem = 'markup' | 'malformed' | 'entity' | 'root';

/**
 * Why a document is refused. `detail` completes a sentence about the document ("… has a
 * DOCTYPE"), for callers that name the document in their own words.
 */
export class XmlSyntaxError extends Error {
  constructor(
    readonly problem: XmlProblem,
    readonly detail: string,
  ) {
    super(`the XML ${detail}`);
    this.name = 'XmlSyntaxError';
  }
}

/**
 * A value as XML writes it, in text or in an attribute: libvirt escapes the same five
 * characters everywhere, so text and attributes come out as libvirt writes them.
 */
export function escapeXml(value: string, inAttribute = false): string {
  let out = '';
  for (const ch of value) {
    // A parser turns white space in an attribute into spaces unless it is a reference.
    if (inAttribute && (ch === '\n' || ch === '\r' || ch === '\t')) {
      out += `&#${ch.charCodeAt(0)};`;
      continue;
    }
    if (ch === '&') out += '&amp;';
    else if (ch === '<') out += '&lt;';
    else if (ch === '>') out += '&gt;';
    else if (ch === "'") out += '&apos;';
    else if (ch === '"') out += '&quot;';
    else out += ch;
  }
  return out;
}

export const malformed = (why: string) => new XmlSyntaxError('malformed', `is not well-formed XML: ${why}`);

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', apos: "'", quot: '"' };

/** A code point XML 1.0 allows in a document. */
function allowed(cp: number): boolean {
  return (
    cp === 0x9 ||
    cp === 0xa ||
    cp === 0xd ||
    (cp >= 0x20 && cp <= 0xd7ff) ||
    (cp >= 0xe000 && cp <= 0xfffd) ||
    (cp >= 0x10000 && cp <= 0x10ffff)
  );
}

function reference(ref: string): string {
  const named = Object.hasOwn(NAMED, ref) ? NAMED[ref] : undefined;
  if (named !== undefined) return named;
  let cp = NaN;
  if (/^#x[0-9a-fA-F]+$/.test(ref)) cp = parseInt(ref.slice(2), 16);
  else if (/^#[0-9]+$/.test(ref)) cp = parseInt(ref.slice(1), 10);
  else if (/^[A-Za-z_][\w.-]*$/.test(ref))
    throw new XmlSyntaxError('entity', `has an unknown entity &${ref};`);
  else throw malformed(`a malformed reference &${ref.slice(0, 20)}`);
  if (!allowed(cp)) throw malformed(`&${ref}; is no XML character`);
  return String.fromCodePoint(cp);
}

/**
 * Text or an attribute value as written (`raw`) turned into what it means. Throws
 * XmlSyntaxError for an unknown entity, a bare `&`, or a `<` (which an attribute cannot hold).
 */
export function decodeXml(raw: string): string {
  let out = '';
  let i = 0;
  for (;;) {
    const amp = raw.indexOf('&', i);
    const chunk = raw.slice(i, amp < 0 ? raw.length : amp);
    if (chunk.includes('<')) throw malformed('a < in a value');
    out += chunk;
    if (amp < 0) return out;
    const semi = raw.indexOf(';', amp);
    if (semi < 0 || semi - amp > 40) throw malformed('a bare &');
    out += reference(raw.slice(amp + 1, semi));
    i = semi + 1;
  }
}
