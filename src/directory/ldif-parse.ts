import type { Attributes } from '../domain/plan';

export interface LdifEntry {
  dn: string;
  attributes: Attributes;
}

/** Parses LDIF content records (RFC 2849): folded lines, base64 values, comments. */
export function parseLdif(text: string): LdifEntry[] {
  const lines: string[] = [];
  for (const raw of text.replace(/\r\n/g, '\n').split('\n')) {
    if (raw.startsWith(' ') && lines.length > 0 && lines[lines.length - 1] !== '')
      lines[lines.length - 1] += raw.slice(1);
    else lines.push(raw);
  }
  const entries: LdifEntry[] = [];
  let current: { dn: string; attributes: Record<string, string[]> } | undefined;
  for (const line of lines) {
    if (line === '') {
      if (current) entries.push(current);
      current = undefined;
      continue;
    }
    if (line.startsWith('#') || /^version:\s*1$/.test(line)) continue;
    const m = /^([A-Za-z0-9;.-]+)(::?) *(.*)$/.exec(line);
    if (!m) throw new Error(`malformed LDIF line: ${JSON.stringify(line.slice(0, 80))}`);
    const [, name, sep, rest] = m as unknown as [string, string, string, string];
    const value = sep === '::' ? Buffer.from(rest, 'base64').toString('utf8') : rest;
    if (name.toLowerCase() === 'dn') {
      if (current) entries.push(current);
      current = { dn: value, attributes: {} };
      continue;
    }
    if (!current) throw new Error(`LDIF attribute ${name} before any dn`);
    (current.attributes[name.toLowerCase()] ??= []).push(value);
  }
  if (current) entries.push(current);
  return entries;
}
